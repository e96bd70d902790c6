"""Synchronise chosen records now (sync records:): exactly those, in the mapping's direction, nothing else moves."""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from tests.support.fixtures import execute, rows


def job(run, name="CUSTOMER"):
    return next(j for j in run.jobs if j.mapping == name)


def names(path, table, key, ids):
    return dict(rows(path, "select %s, name from %s where %s in (%s)" % (key, table, key, ",".join("?" * len(ids))), *ids))


@pytest.fixture
def synced(demo):
    demo.declare()
    demo.run("full")
    return demo


def customers(demo, count):
    return [r[0] for r in rows(demo.erp, "select no from customer order by no limit ?", count)]


def test_only_the_chosen_records_are_written_and_the_watermark_stays(synced):
    demo = synced
    changed = customers(demo, 5)
    for number in changed:
        execute(demo.erp, "update customer set name = name || ' (renamed)', modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                          "where no = ?", number)
    run = demo.run("modified", ["CUSTOMER"], records=changed[:2])
    counts = job(run).counts
    assert counts["read"] == 2 and counts["modified"] == 2 and counts["failed"] == 0
    assert [j.mapping for j in run.jobs] == ["CUSTOMER"], "dependencies are not run"
    crm = names(demo.crm, "account", "accountnumber", changed)
    assert all(crm[n].endswith("(renamed)") for n in changed[:2]) and not any(crm[n].endswith("(renamed)") for n in changed[2:])
    rest = job(demo.run("modified"))
    assert rest.counts["modified"] == 3, "the chosen run did not move the watermark past the others"


def test_a_chosen_record_is_written_even_unchanged_and_drift_is_repaired(synced):
    demo = synced
    number = customers(demo, 1)[0]
    execute(demo.crm, "update account set name = 'edited in the CRM' where accountnumber = ?", number)
    run = demo.run("modified", ["CUSTOMER"], records=[number])
    assert job(run).counts["modified"] == 1
    erp_name = rows(demo.erp, "select name from customer where no = ?", number)[0][0]
    assert names(demo.crm, "account", "accountnumber", [number]) == {number: erp_name}


def test_an_uncoupled_record_is_created_and_a_crm_id_syncs_its_partner(synced):
    demo = synced
    execute(demo.erp, "insert into customer (no, name, modified_on) values ('C99999', 'Chosen New', "
                      "strftime('%Y-%m-%d %H:%M:%f', 'now'))")
    number = customers(demo, 1)[0]
    account = rows(demo.crm, "select accountid from account where accountnumber = ?", number)[0][0]
    execute(demo.erp, "update customer set name = 'Pulled' where no = ?", number)
    run = demo.run("modified", ["CUSTOMER"], records=["C99999", account])
    counts = job(run).counts
    assert counts["inserted"] == 1 and counts["modified"] == 1
    assert names(demo.crm, "account", "accountnumber", ["C99999", number]) == {"C99999": "Chosen New", number: "Pulled"}
    store = demo.engine()[0]
    assert set(store.couplings_for("CUSTOMER", "local", ["C99999"])) == {"C99999"}


def test_records_the_mapping_cannot_synchronise_are_refused_before_anything_is_written(synced):
    demo = synced
    execute(demo.crm, "insert into account (accountid, accountnumber, name) values ('a0000000-0000-0000-0000-00000000c0de', 'X1', 'CRM only')")
    number = customers(demo, 1)[0]
    execute(demo.erp, "update customer set name = 'not written' where no = ?", number)
    with pytest.raises(MappingError, match=r"integration record a0000000-0000-0000-0000-00000000c0de is not coupled.*to_integration"):
        demo.run("modified", ["CUSTOMER"], records=[number, "a0000000-0000-0000-0000-00000000c0de"])
    with pytest.raises(MappingError, match="NOPE are in neither the local table customer nor the integration table account"):
        demo.run("modified", ["CUSTOMER"], records=["NOPE"])
    with pytest.raises(MappingError, match="name it alone in mappings"):
        demo.run("modified", ["CUSTOMER", "CONTACTS"], records=[number])
    assert names(demo.crm, "account", "accountnumber", [number])[number] != "not written"


def test_check_mode_plans_the_chosen_records(synced):
    demo = synced
    number = customers(demo, 1)[0]
    execute(demo.erp, "update customer set name = 'planned only' where no = ?", number)
    plan = demo.run("modified", ["CUSTOMER"], dry_run=True, records=[number])
    assert job(plan).counts["modified"] == 1
    assert names(demo.crm, "account", "accountnumber", [number])[number] != "planned only"
