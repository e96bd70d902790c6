"""The sync engine end to end on real SQLite databases: full, modified, failures, check mode."""

from __future__ import annotations

import os

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from tests.support.fixtures import default_mapping_set, execute, file_digest, rows

ORDER = ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"]


def counts(run, mapping):
    return next(j.counts for j in run.jobs if j.mapping == mapping)


def test_full_sync_creates_and_couples_every_record_in_reference_order(demo):
    demo.declare()
    run = demo.run("full")
    assert [j.mapping for j in run.jobs] == ORDER
    assert run.changed
    customers = rows(demo.erp, "select count(*) from customer")[0][0]
    assert counts(run, "CUSTOMER")["inserted"] == customers
    assert rows(demo.crm, "select count(*), count(distinct accountnumber) from account")[0] == (customers, customers)
    # the job log knew how many records each job would read (progress of running jobs: sync_job_info)
    assert rows(demo.store_path, "select total, read from tablesync_jobs where mapping = 'CUSTOMER'") == [(customers, customers)]
    # every account is coupled to the customer it was made from
    store = demo.engine()[0]
    couplings = {c.local_id: c.integration_id for page in store.iter_couplings("CUSTOMER") for c in page}
    accounts = dict(rows(demo.crm, "select accountnumber, accountid from account"))
    assert couplings == accounts
    # salespeople come from CRM users (from_integration), keyed by nickname
    assert sorted(r[0] for r in rows(demo.erp, "select code from salesperson")) == sorted(
        r[0] for r in rows(demo.crm, "select nickname from systemuser"))
    assert rows(demo.crm, "select count(*) from product where producttypecode = 1")[0][0] == 30


def test_rerun_full_sync_is_unchanged(demo):
    demo.declare()
    demo.run("full")
    again = demo.run("full")
    assert not again.changed
    for job in again.jobs:
        assert job.counts["unchanged"] == job.counts["read"]
        assert job.counts["inserted"] == job.counts["modified"] == job.counts["failed"] == 0


def test_modified_sync_reads_only_changed_records(demo):
    demo.declare()
    demo.run("full")
    changed = demo.change_customers(5)
    run = demo.run("modified")
    customer = counts(run, "CUSTOMER")
    assert customer["modified"] == 5
    assert customer["read"] == 5, "a modified-records run must not read unchanged customers"
    assert all(counts(run, m)["read"] == 0 for m in ORDER if m != "CUSTOMER")
    phones = dict(rows(demo.erp, "select no, phone from customer"))
    for number in changed:
        assert rows(demo.crm, "select telephone1 from account where accountnumber = ?", number)[0][0] == phones[number]


def test_modified_sync_without_modified_field_compares_fingerprints(demo):
    definitions = default_mapping_set()
    for d in definitions:
        d.pop("local_modified_field", None)
    demo.declare(definitions)
    demo.run("full")
    demo.change_customers(3)
    run = demo.run("modified")
    assert counts(run, "CUSTOMER")["modified"] == 3
    assert counts(run, "CUSTOMER")["unchanged"] == 197


def test_synch_only_coupled_records_and_after_full_sync(demo):
    demo.declare()
    demo.run("full")
    execute(demo.erp, "insert into customer (no, name, credit_limit, blocked, modified_on) values ('NEW1', 'New Ltd', 0, 0, '2099-01-01 00:00:00')")
    run = demo.run("modified")
    assert counts(run, "CUSTOMER")["skipped"] == 1 and counts(run, "CUSTOMER")["inserted"] == 0
    assert run.synch_only_coupled_records["CUSTOMER"] is True
    full = demo.run("full", after_full_sync="create_new_records")
    assert counts(full, "CUSTOMER")["inserted"] == 1
    assert full.synch_only_coupled_records["CUSTOMER"] is False
    execute(demo.erp, "insert into customer (no, name, credit_limit, blocked, modified_on) values ('NEW2', 'Newer Ltd', 0, 0, '2099-01-02 00:00:00')")
    assert counts(demo.run("modified"), "CUSTOMER")["inserted"] == 1
    restored = demo.run("full", after_full_sync="only_coupled_records")
    assert restored.synch_only_coupled_records["CUSTOMER"] is True and restored.changed


def test_a_bad_record_fails_alone_and_is_retried(demo):
    demo.declare()
    # the CRM refuses names longer than 12 characters for this test
    execute(demo.crm, "create trigger short_names before insert on account when length(new.name) > 40 "
                      "begin select raise(abort, 'name too long'); end")
    execute(demo.erp, "update customer set name = 'A very long customer name that the CRM refuses' where no = (select min(no) from customer)")
    bad = rows(demo.erp, "select min(no) from customer")[0][0]
    run = demo.run("full")
    job = next(j for j in run.jobs if j.mapping == "CUSTOMER")
    assert job.counts["failed"] == 1 and job.counts["inserted"] == 199
    assert job.errors[0]["record_id"] == bad and "name too long" in job.errors[0]["message"]
    assert job.status == "partial"
    # the next modified run retries it even though it did not change, and succeeds once fixed
    again = demo.run("modified", skip_after_failures=3)
    assert counts(again, "CUSTOMER")["failed"] == 1
    execute(demo.crm, "drop trigger short_names")
    fixed = demo.run("modified", skip_after_failures=3)
    assert counts(fixed, "CUSTOMER")["inserted"] == 1 and counts(fixed, "CUSTOMER")["failed"] == 0
    assert counts(demo.run("modified"), "CUSTOMER")["failed"] == 0


def test_conversion_error_names_the_field_and_record(demo):
    demo.declare()
    execute(demo.erp, "update customer set credit_limit = 'lots' where no = (select min(no) from customer)")
    run = demo.run("full")
    err = next(j for j in run.jobs if j.mapping == "CUSTOMER").errors[0]
    assert "creditlimit" in err["message"] and err["record_id"] == rows(demo.erp, "select min(no) from customer")[0][0]


def test_check_mode_plans_the_same_counts_and_writes_nothing(demo):
    demo.declare()
    files = [demo.erp, demo.crm, demo.store_path]
    for path in files:  # checkpoint WAL so the digest covers everything
        execute(path, "pragma wal_checkpoint(truncate)")
    before = {p: file_digest(p) for p in files}
    plan = demo.run("full", dry_run=True)
    demo.close()
    assert {p: file_digest(p) for p in files} == before
    assert not [f for f in os.listdir(demo.directory) if f.endswith("-wal") and os.path.getsize(os.path.join(demo.directory, f))]
    real = demo.run("full")
    assert [(j.mapping, j.counts) for j in plan.jobs] == [(j.mapping, j.counts) for j in real.jobs]
    assert plan.run_id is None


def test_validation_errors_name_mapping_and_field_and_write_nothing(demo):
    bad = default_mapping_set()[:1]
    bad[0]["fields"].append({"field": "nonexistent", "integration_field": "modifiedon"})
    with pytest.raises(MappingError, match="mapping CURRENCY, field nonexistent"):
        demo.declare(bad)
    store = demo.engine()[0]
    assert store.list_mappings() == []
    wrong_table = default_mapping_set()[:1]
    wrong_table[0]["integration_table"] = "currencies"
    with pytest.raises(MappingError, match=r"^mapping CURRENCY: integration endpoint \(.*\) has no table currencies$"):
        demo.declare(wrong_table)
    typo = default_mapping_set()[:1]
    typo[0]["directoin"] = "to_integration"
    with pytest.raises(MappingError, match="CURRENCY.*directoin"):
        demo.declare(typo)
    bad_filter = default_mapping_set()[:1]
    bad_filter[0]["table_filter"] = "nope eq 1"
    with pytest.raises(MappingError, match="CURRENCY.*nope"):
        demo.declare(bad_filter)
    bad_key = default_mapping_set()[:1]
    bad_key[0]["local_key"] = "exchange_rate"
    with pytest.raises(MappingError, match="keys must be text, integer or uuid"):
        demo.declare(bad_key)


def test_crash_between_create_and_coupling_is_repaired_without_duplicates(demo):
    """Simulates the window a kill can hit: records created, couplings not yet stored."""
    from ansible_collections.tablesync.integration.plugins.module_utils.store import pending_page

    demo.declare()
    demo.run("full", names=["CURRENCY"])
    store = demo.engine()[0]
    # forget two couplings and leave their pending intents, as a killed run would
    victims = rows(demo.erp, "select code from currency order by code limit 2")
    accounts = {}
    for (code,) in victims:
        accounts[code] = rows(demo.crm, "select transactioncurrencyid, isocurrencycode, currencyname, currencysymbol, exchangerate "
                                        "from transactioncurrency where isocurrencycode = ?", code)[0]
    with store.engine.begin() as conn:
        c = store.tables["couplings"]
        conn.execute(c.delete().where(c.c.mapping == "CURRENCY", c.c.local_id.in_([v[0] for v in victims])))
    # one intent knows the client-chosen id, the other only the values (server-generated keys)
    first, second = victims[0][0], victims[1][0]
    store.add_pending(pending_page("CURRENCY", "local", [
        (first, accounts[first][0], {"isocurrencycode": first}, {"src": "x", "dst": "y"}),
        (second, None, dict(zip(["isocurrencycode", "currencyname", "currencysymbol", "exchangerate"], accounts[second][1:])), {"src": "x", "dst": "y"}),
    ]))
    run = demo.run("modified", names=["CURRENCY"])
    assert counts(run, "CURRENCY")["coupled"] == 2
    assert counts(run, "CURRENCY")["inserted"] == 0
    n = rows(demo.erp, "select count(*) from currency")[0][0]
    assert rows(demo.crm, "select count(*), count(distinct isocurrencycode) from transactioncurrency")[0] == (n, n)
    assert store.count_couplings("CURRENCY") == n
    assert store.pending("CURRENCY") == []


def test_a_value_sqlite_stored_against_its_column_type_fails_only_its_record(demo):
    """SQLite keeps text in a numeric column; the read must not fail the page, the record fails alone, naming the field."""
    demo.declare()
    bad = rows(demo.erp, "select max(no) from customer")[0][0]
    execute(demo.erp, "update customer set credit_limit = 'lots' where no = ?", bad)
    run = demo.run("full")
    job = next(j for j in run.jobs if j.mapping == "CUSTOMER")
    customers = rows(demo.erp, "select count(*) from customer")[0][0]
    assert job.counts["failed"] == 1 and job.counts["inserted"] == customers - 1
    assert job.errors[0]["record_id"] == bad and "creditlimit" in job.errors[0]["message"] and "lots" in job.errors[0]["message"]
    assert rows(demo.crm, "select count(*) from account where accountnumber = ?", bad)[0][0] == 0


def test_progress_of_a_running_job():
    from datetime import datetime, timedelta

    from ansible_collections.tablesync.integration.plugins.module_utils.job_result import progress

    started = datetime(2026, 1, 1, 12, 0, 0)
    now = started + timedelta(seconds=40)
    assert progress(1000, 4000, started, now) == {"read": 1000, "total": 4000, "percentage": 25.0, "rate": 25.0, "eta_seconds": 120}
    assert progress(1000, None, started, now) == {"read": 1000, "total": None, "percentage": None, "rate": 25.0, "eta_seconds": None}
    assert progress(0, 10, started, started)["eta_seconds"] is None, "no rate yet: no ETA"
