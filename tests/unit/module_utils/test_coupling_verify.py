"""Explicit couplings and read-only verification, on the demo databases."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.coupling import apply_plan, plan_couple, plan_uncouple
from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.verify import verify_mapping
from tests.support.fixtures import execute, rows


def bound(demo, name, read_only=False):
    store, endpoints = demo.engine(read_only=read_only)
    mapping = Mapping.from_definition(store.get_mapping(name))
    tables = open_tables(mapping, endpoints)
    flows = mapping.bind(tables)
    return store, mapping, tables, flows


def couplings(store, name="CUSTOMER"):
    return {c.local_id: c for page in store.iter_couplings(name) for c in page}


def accounts_by_number(demo, *numbers):
    found = dict(rows(demo.crm, "select accountnumber, accountid from account"))
    return [found[n] for n in numbers]


def test_couple_then_first_modified_sync_follows_the_mapping_direction(demo):
    demo.declare()
    demo.run("full")
    store, mapping, tables = bound(demo, "CUSTOMER")[:3]
    customers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 2")]
    a0, a1 = accounts_by_number(demo, *customers)
    # swap the two couplings: each customer now points at the other's account
    plan = plan_couple(mapping, tables, store, [(customers[0], a1), (customers[1], a0)], force=True)
    assert sorted(plan.remove) == sorted([(customers[0], a0), (customers[1], a1)])
    apply_plan(store, plan)
    cps = couplings(store)
    assert (cps[customers[0]].integration_id, cps[customers[0]].local_fp) == (a1, None)
    # the pair has no fingerprints: the next modified-records run rewrites it from the ERP, although
    # neither record is newer than the watermark
    run = demo.run("modified")
    customer = next(j for j in run.jobs if j.mapping == "CUSTOMER")
    assert customer.counts["modified"] == 2 and customer.counts["read"] == 2
    assert rows(demo.crm, "select accountnumber from account where accountid = ?", a1) == [(customers[0],)]
    assert not next(j for j in demo.run("modified").jobs if j.mapping == "CUSTOMER").changed


def test_couple_is_idempotent_and_refuses_conflicts_without_force(demo):
    demo.declare()
    demo.run("full")
    store, mapping, tables = bound(demo, "CUSTOMER")[:3]
    c0, c1 = (r[0] for r in rows(demo.erp, "select no from customer order by no limit 2"))
    a0, a1 = accounts_by_number(demo, c0, c1)
    assert not plan_couple(mapping, tables, store, [(c0, a0), (c1, a1)]).changed
    with pytest.raises(RecordError, match="local record %s is coupled to integration record %s.*force" % (c0, a0)):
        plan_couple(mapping, tables, store, [(c0, a1)])
    with pytest.raises(RecordError, match="local record NOPE does not exist"):
        plan_couple(mapping, tables, store, [("NOPE", a0)])
    with pytest.raises(RecordError, match="integration records x, y do not exist"):
        plan_couple(mapping, tables, store, [(c0, "x"), (c1, "y")])
    with pytest.raises(RecordError, match="given twice"):
        plan_couple(mapping, tables, store, [(c0, a0), (c0, a1)])


def test_uncouple_by_either_id_is_idempotent(demo):
    demo.declare()
    demo.run("full")
    store, mapping, tables = bound(demo, "CUSTOMER")[:3]
    c0, c1, c2 = (r[0] for r in rows(demo.erp, "select no from customer order by no limit 3"))
    a0, a1, a2 = accounts_by_number(demo, c0, c1, c2)
    plan = plan_uncouple(mapping, store, [{"local_id": c0}, {"integration_id": a1}, {"local_id": c2, "integration_id": a0}])
    assert plan.remove == [(c0, a0), (c1, a1)]  # c2 is not coupled to a0: nothing to do for it
    apply_plan(store, plan)
    assert c0 not in couplings(store) and c2 in couplings(store)
    assert not plan_uncouple(mapping, store, [{"local_id": c0}, {"integration_id": a1}]).changed
    # couple them again, as new pairs
    again = plan_couple(mapping, tables, store, [(c0, a0), (c1, a1)])
    assert again.add == [(c0, a0), (c1, a1)] and again.remove == []


def _digest(*paths):
    out = []
    for path in paths:
        with open(path, "rb") as handle:
            out.append(hashlib.sha256(handle.read()).hexdigest())
    return out


def test_verify_lists_deleted_and_edited_records_and_writes_nothing(demo):
    demo.declare()
    demo.run("full")
    customers = [r[0] for r in rows(demo.erp, "select no from customer order by no")]
    gone_local, gone_crm, edited = customers[:3], customers[3:6], customers[6:8]
    accounts = dict(rows(demo.crm, "select accountnumber, accountid from account"))
    for no in gone_local:
        execute(demo.erp, "delete from customer where no = ?", no)
    for no in gone_crm:
        execute(demo.crm, "delete from account where accountnumber = ?", no)
    for no in edited:  # edited in the CRM directly: a to_integration sync never reads it
        execute(demo.crm, "update account set name = 'Edited', telephone1 = '000' where accountnumber = ?", no)
    demo.close()
    before = _digest(demo.erp, demo.crm, demo.store_path)

    store, mapping, tables, flows = bound(demo, "CUSTOMER", read_only=True)
    result = verify_mapping(mapping, tables, flows, store, batch_size=50).as_dict()
    demo.close()

    assert _digest(demo.erp, demo.crm, demo.store_path) == before
    assert result["couplings"] == 200
    assert result["counts"] == {"differing": 2, "missing_local": 3, "missing_integration": 3, "orphaned": 0,
                                "uncoupled_local": 0, "uncoupled_integration": 0}
    assert result["discrepancies"] == 8 and result["in_agreement"] == 192
    assert sorted(d["local_id"] for d in result["missing_local"]) == gone_local
    assert sorted(d["local_id"] for d in result["missing_integration"]) == gone_crm
    assert sorted((d["local_id"], d["integration_id"]) for d in result["differing"]) == sorted((n, accounts[n]) for n in edited)
    fields = {(f["field"], f["actual"]) for d in result["differing"] for f in d["fields"]}
    assert fields == {("name", "Edited"), ("telephone1", "000")}


def test_verify_lists_uncoupled_and_orphaned(demo):
    demo.declare()
    demo.run("full")
    execute(demo.erp, "insert into customer (no, name, credit_limit, blocked) values ('NEW1', 'New', 0, 0)")
    execute(demo.crm, "insert into account (accountid, accountnumber, name) values ('acc-x', 'X', 'Stray')")
    first = rows(demo.erp, "select no from customer order by no limit 1")[0][0]
    execute(demo.erp, "delete from customer where no = ?", first)
    execute(demo.crm, "delete from account where accountnumber = ?", first)
    store, mapping, tables, flows = bound(demo, "CUSTOMER", read_only=True)
    result = verify_mapping(mapping, tables, flows, store, max_reported=1).as_dict()
    assert result["counts"]["orphaned"] == 1 and result["orphaned"][0]["local_id"] == first
    assert result["uncoupled_local"] == [{"id": "NEW1"}] and result["uncoupled_integration"] == [{"id": "acc-x"}]
    assert result["discrepancies"] == 3 and result["truncated"] is False
