"""A full sync converges: coupled CRM records edited behind a one-way mapping's back are written again.

The demo's CUSTOMER and ITEM-PRODUCT mappings (to_integration) on SQLite. Edits are made
in the CRM directly, so no source record changes and only the full sync's read of the
coupled destination records can find them. Checked in one process, with the pages planned
ahead by a second process, and in check mode.
"""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.values import fingerprint
from tests.support.fixtures import customer_account_mapping, execute, file_digest, rows

ACCOUNT = "select accountid, accountnumber, name, address1_city, telephone1, emailaddress1, creditlimit, creditonhold from account"
PRODUCT = "select productid, productnumber, name, price, standardcost, producttypecode from product"


def crm(demo) -> dict[str, list[tuple]]:
    return {"account": sorted(rows(demo.crm, ACCOUNT)), "product": sorted(rows(demo.crm, PRODUCT))}


def edit_crm(demo) -> list[tuple[str, str]]:
    """Edit 5 accounts and 3 products of the item mapping in the CRM; returns (mapping, integration id) of each."""
    accounts = [r[0] for r in rows(demo.crm, "select accountid from account order by accountnumber")]
    products = [r[0] for r in rows(demo.crm, "select productid from product where producttypecode = 1 order by productnumber")]
    edits = [
        ("update account set name = 'Edited in the CRM' where accountid = ?", accounts[0]),
        ("update account set telephone1 = '000', emailaddress1 = NULL where accountid = ?", accounts[1]),
        ("update account set creditlimit = 1 where accountid = ?", accounts[17]),
        ("update account set creditonhold = 1 - creditonhold where accountid = ?", accounts[60]),
        ("update account set address1_city = 'Nowhere', name = name || ' ' where accountid = ?", accounts[-1]),
        ("update product set price = price + 100 where productid = ?", products[0]),
        ("update product set name = 'Renamed', standardcost = NULL where productid = ?", products[4]),
        ("update product set name = upper(name) || '!' where productid = ?", products[-1]),
    ]
    for sql, record_id in edits:
        execute(demo.crm, sql, record_id)
    return [("CUSTOMER", a) for a in (accounts[0], accounts[1], accounts[17], accounts[60], accounts[-1])] + [
        ("ITEM-PRODUCT", p) for p in (products[0], products[4], products[-1])]


def counts(run) -> dict[str, dict[str, int]]:
    return {j.mapping: j.counts for j in run.jobs}


def synced_and_edited(demo, **options):
    demo.declare()
    demo.run("full", **options)
    before = crm(demo)
    edited = edit_crm(demo)
    assert crm(demo) != before
    return before, edited


@pytest.mark.parametrize("ahead", [False, True], ids=["one process", "planned ahead"])
def test_a_full_sync_rewrites_coupled_records_edited_in_the_crm(demo, forks, ahead):
    # why: batches of 7 make the demo's flows many pages long, so that with read-ahead later pages are planned by a second process
    options = {"batch_size": 7, "read_ahead": ahead}
    before, edited = synced_and_edited(demo, **options)
    forks.clear()
    run = demo.run("full", **options)
    assert bool(forks) == ahead
    assert crm(demo) == before, "the 8 edited CRM records hold the ERP's values again"
    assert run.changed
    by_mapping = counts(run)
    assert by_mapping["CUSTOMER"]["modified"] == 5 and by_mapping["ITEM-PRODUCT"]["modified"] == 3
    assert sum(c["modified"] for c in by_mapping.values()) == 8
    assert all(c["failed"] == c["inserted"] == c["deleted"] == 0 for c in by_mapping.values())
    records = sorted((r["mapping"], r["integration_id"]) for j in run.jobs for r in j.records if r["action"] == "modified")
    assert records == sorted(edited)
    store = demo.engine()[0]
    logged = {j["mapping"]: j["modified"] for j in store.jobs(run_id=run.run_id)}
    assert logged["CUSTOMER"] == 5 and logged["ITEM-PRODUCT"] == 3

    again = demo.run("full", **options)
    assert not again.changed
    assert all(c["modified"] == 0 and c["unchanged"] == c["read"] for c in counts(again).values())


def test_check_mode_counts_the_rewrites_and_writes_nothing(demo):
    before, _edited = synced_and_edited(demo)
    files = [demo.erp, demo.crm, demo.store_path]
    demo.close()
    for path in files:  # checkpoint WAL so the digest covers everything
        execute(path, "pragma wal_checkpoint(truncate)")
    digests = {p: file_digest(p) for p in files}
    plan = demo.run("full", dry_run=True)
    demo.close()
    assert {p: file_digest(p) for p in files} == digests
    assert counts(plan)["CUSTOMER"]["modified"] == 5 and counts(plan)["ITEM-PRODUCT"]["modified"] == 3
    assert plan.changed
    real = demo.run("full")
    assert counts(plan) == counts(real)
    assert crm(demo) == before


def test_a_modified_run_leaves_crm_edits_alone(demo):
    """Modified runs keep their cost to the changes: they do not read the destination of unchanged records."""
    _before, _edited = synced_and_edited(demo)
    run = demo.run("modified")
    assert not run.changed
    assert rows(demo.crm, "select count(*) from account where name = 'Edited in the CRM'")[0][0] == 1


def test_a_destination_that_still_agrees_is_not_rewritten_and_its_fingerprint_is_renewed(demo):
    """A CRM record whose fingerprint is not the one stored (a value read back in another form) but whose values still
    agree with the ERP is no drift: it is left alone, and the fingerprint it has is stored for the next run."""
    demo.declare([customer_account_mapping(fields=[{"field": a, "integration_field": b} for a, b in (
        ("no", "accountnumber"), ("name", "name"), ("credit_limit", "creditlimit"))])])
    demo.run("full")
    numbers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 3")]
    execute(demo.store_path, "update tablesync_couplings set integration_fp = 'stale' where local_id in (?, ?, ?)", *numbers)
    run = demo.run("full")
    assert not run.changed and counts(run)["CUSTOMER"]["modified"] == 0 and counts(run)["CUSTOMER"]["unchanged"] == 200
    stored = dict(rows(demo.store_path, "select local_id, integration_fp from tablesync_couplings where local_id in (?, ?, ?)", *numbers))
    for number in numbers:
        values = rows(demo.crm, "select accountnumber, name, creditlimit from account where accountnumber = ?", number)[0]
        assert stored[number] == fingerprint(values)
    assert not demo.run("full").changed


@pytest.mark.parametrize("ahead", [False, True], ids=["one process", "planned ahead"])
def test_a_coupled_crm_record_found_deleted_is_restored(demo, forks, ahead):
    demo.declare([customer_account_mapping(deletion_conflict_resolution="restore_records", fields=[
        {"field": a, "integration_field": b} for a, b in (("no", "accountnumber"), ("name", "name"), ("city", "address1_city"))])])
    demo.run("full", batch_size=20, read_ahead=ahead)
    gone = [r[0] for r in rows(demo.crm, "select accountnumber from account order by accountnumber")][150:153]
    for number in gone:
        execute(demo.crm, "delete from account where accountnumber = ?", number)
    forks.clear()
    run = demo.run("full", batch_size=20, read_ahead=ahead)
    assert bool(forks) == ahead
    job = counts(run)["CUSTOMER"]
    assert job["inserted"] == 3 and job["failed"] == 0 and job["modified"] == 0
    assert rows(demo.crm, "select count(*), count(distinct accountnumber) from account")[0] == (200, 200)
    store = demo.engine()[0]
    coupled = store.couplings_for("CUSTOMER", "local", gone)
    restored = dict(rows(demo.crm, "select accountnumber, accountid from account where accountnumber in (?, ?, ?)", *gone))
    assert {n: cp.integration_id for n, cp in coupled.items()} == restored
    assert not demo.run("full", batch_size=20, read_ahead=ahead).changed


@pytest.mark.parametrize("ahead", [False, True], ids=["one process", "planned ahead"])
def test_deleted_erp_records_are_still_found_beside_the_repairs(demo, forks, ahead):
    """The pages read only the couplings of records that exist: a coupling whose ERP record is gone is found after them."""
    demo.declare([customer_account_mapping(propagate_deletions=True, fields=[
        {"field": a, "integration_field": b} for a, b in (("no", "accountnumber"), ("name", "name"), ("city", "address1_city"))])])
    demo.run("full", batch_size=20, read_ahead=ahead)
    numbers = [r[0] for r in rows(demo.erp, "select no from customer order by no")]
    execute(demo.erp, "delete from customer where no in (?, ?)", numbers[3], numbers[120])
    execute(demo.crm, "update account set name = 'Edited' where accountnumber = ?", numbers[121])
    plan = demo.run("full", batch_size=20, read_ahead=ahead, dry_run=True)
    run = demo.run("full", batch_size=20, read_ahead=ahead)
    assert counts(plan) == counts(run)
    job = counts(run)["CUSTOMER"]
    assert job["deleted"] == 2 and job["modified"] == 1 and job["failed"] == 0
    assert rows(demo.crm, "select count(*) from account where accountnumber in (?, ?)", numbers[3], numbers[120])[0][0] == 0
    assert rows(demo.crm, "select name from account where accountnumber = ?", numbers[121]) == rows(
        demo.erp, "select name from customer where no = ?", numbers[121])
    assert not demo.run("full", batch_size=20, read_ahead=ahead).changed
