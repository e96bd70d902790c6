"""Couplings, verification and mapping export through real ansible-playbook runs."""

from __future__ import annotations

import hashlib

from tests.support.fixtures import Demo, execute, rows
from tests.support.shared_customers import build_shared_customers, email_counts


def _coupled(demo: Demo) -> dict[str, str]:
    return dict(rows(demo.store_path, "select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'"))


def _digest(*paths: str) -> list[str]:
    out = []
    for path in paths:
        with open(path, "rb") as handle:
            out.append(hashlib.sha256(handle.read()).hexdigest())
    return out


def test_coupling_module_is_idempotent(demo, play, run_sync):
    demo.declare()
    run_sync(sync_mode="full")
    customers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 3")]
    accounts = dict(rows(demo.crm, "select accountnumber, accountid from account"))
    records = [{"local_id": no, "integration_id": accounts[no]} for no in customers]

    gone = play("coupling.yml", "--diff", coupling_state="absent", coupling_records=records)
    assert gone["changed"] is True and gone["uncoupled"] == 3
    assert not set(customers) & set(_coupled(demo))
    line = "%s <-> %s" % (customers[0], accounts[customers[0]])
    assert line in gone["diff"]["before"]["couplings"] and gone["diff"]["after"]["couplings"] == []
    assert "couplings of CUSTOMER" in gone["stdout"]
    assert play("coupling.yml", coupling_state="absent", coupling_records=records)["changed"] is False

    planned = play("coupling.yml", "--check", coupling_records=records)
    assert planned["changed"] is True and planned["coupled"] == 3
    assert not set(customers) & set(_coupled(demo)), "check mode wrote couplings"
    first = play("coupling.yml", coupling_records=records)
    assert first["changed"] is True and first["coupled"] == 3
    second = play("coupling.yml", coupling_records=records)
    assert second["changed"] is False and second["coupled"] == 0
    assert {k: v for k, v in _coupled(demo).items() if k in customers} == {no: accounts[no] for no in customers}

    # a record coupled to another partner is refused unless forced; an unknown record is named
    swap = {"coupling_local_id": customers[0], "coupling_integration_id": accounts[customers[1]]}
    refused = play("coupling.yml", expect_failure=True, **swap)
    assert refused["failed"] is True and "coupled to" in refused["msg"] and "force" in refused["msg"]
    missing = play("coupling.yml", expect_failure=True, coupling_local_id="NO-SUCH", coupling_integration_id=accounts[customers[0]])
    assert missing["failed"] is True and "local record NO-SUCH does not exist" in missing["msg"]
    forced = play("coupling.yml", coupling_force=True, **swap)
    assert forced["changed"] is True and forced["uncoupled"] == 2
    assert _coupled(demo)[customers[0]] == accounts[customers[1]] and customers[1] not in _coupled(demo)
    assert play("coupling.yml", coupling_force=True, **swap)["changed"] is False


def test_match_coupling_and_bidirectional_full_sync_through_playbooks(tmp_path, play, run_sync):
    data = build_shared_customers(str(tmp_path / "shared"))
    shared = Demo(str(tmp_path / "shared"), data.erp, data.crm, str(tmp_path / "shared" / "store.sqlite"))
    play("declare_customer.yml", databases=shared)

    planned = play("coupling.yml", "--check", databases=shared, coupling_match=True)
    assert planned["changed"] is True and planned["counts"]["coupled"] == 150
    assert _coupled(shared) == {}
    matched = play("coupling.yml", databases=shared, coupling_match=True)
    assert matched["counts"] == dict(planned["counts"])
    assert matched["counts"]["ambiguous"] == 5 and matched["counts"]["unmatched"] == 100
    assert len(_coupled(shared)) == 150
    # the job log keeps the matching: the pairs, and the ambiguous and unmatched records with their reasons
    logged = rows(shared.store_path, "select id, status, coupled, failed from tablesync_jobs where mode = 'match'")
    assert [r[1:3] for r in logged] == [("partial", 150)]
    reasons = [r[0].split(" in mapping")[0] for r in rows(shared.store_path, "select message from tablesync_job_errors where job_id = ?",
                                                          logged[0][0])]
    assert reasons.count("ambiguous match") == matched["counts"]["ambiguous_records"] and reasons.count("unmatched") == 100
    assert logged[0][3] == len(reasons)
    assert play("coupling.yml", databases=shared, coupling_match=True)["changed"] is False

    result = run_sync(sync_mode="full", store_path=shared.store_path, erp=shared.erp, crm=shared.crm, batch_size=40,
                      tolerate_record_errors=True)
    assert result["totals"]["inserted"] == 100
    assert result["jobs"][0]["matching"]["counts"]["ambiguous"] == 5
    # the records of the ambiguous keys are held on both sides: they fail, and every later run retries them
    assert result["totals"]["failed"] == 15 and all(e["message"].startswith("ambiguous match") for e in result["errors"])
    for path, table, column in ((data.erp, "customer", "email"), (data.crm, "account", "emailaddress1")):
        counts = email_counts(path, table, column)
        assert [e for e, n in counts.items() if n != 1 and e not in data.ambiguous] == []
    assert len(_coupled(shared)) == 250


def test_verify_lists_exactly_the_drift_and_changes_nothing(demo, play, run_sync):
    demo.declare()
    run_sync(sync_mode="full")
    customers = [r[0] for r in rows(demo.erp, "select no from customer order by no")]
    gone_local, gone_crm, edited = customers[10:13], customers[20:23], customers[30:32]
    for no in gone_local:
        execute(demo.erp, "delete from customer where no = ?", no)
    for no in gone_crm:
        execute(demo.crm, "delete from account where accountnumber = ?", no)
    for no in edited:
        execute(demo.crm, "update account set name = name || ' (edited)' where accountnumber = ?", no)
    files = (demo.erp, demo.crm, demo.store_path)
    demo.close()
    before = _digest(*files)

    report = play("verify.yml", verify_mappings=["CUSTOMER"])
    assert _digest(*files) == before
    assert report["changed"] is False and report["discrepancies"] == 8
    customer = report["mappings"][0]
    assert customer["counts"] == {"differing": 2, "missing_local": 3, "missing_integration": 3, "orphaned": 0,
                                  "uncoupled_local": 0, "uncoupled_integration": 0}
    assert sorted(d["local_id"] for d in customer["missing_local"]) == gone_local
    assert sorted(d["local_id"] for d in customer["missing_integration"]) == gone_crm
    assert sorted(d["local_id"] for d in customer["differing"]) == edited
    assert {f["field"] for d in customer["differing"] for f in d["fields"]} == {"name"}
    assert play("verify.yml", "--check", verify_mappings=["CUSTOMER"])["discrepancies"] == 8

    # the reported pairs feed the coupling module: their next sync rewrites them from the ERP
    resynced = play("coupling.yml", coupling_records=customer["differing"], coupling_resync=True)
    assert resynced["changed"] is True and resynced["resynced"] == 2
    run_sync(sync_mode="modified", sync_mappings=["CUSTOMER"])
    assert play("verify.yml", verify_mappings=["CUSTOMER"])["mappings"][0]["counts"]["differing"] == 0


def test_table_mapping_info_exports_a_mapping_set_that_re_applies(demo, play, run_sync, tmp_path):
    demo.declare()
    run_sync(sync_mode="full", sync_mappings=["CURRENCY"])
    out = play("mapping_export.yml", other_store=str(tmp_path / "other.sqlite"))
    exported = out["exported"]
    assert exported["changed"] is False
    assert [m["name"] for m in exported["mappings"]][:3] == ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE"]
    assert exported["couplings"]["CURRENCY"] > 0 and exported["couplings"]["CUSTOMER"] == 0
    customer = next(m for m in exported["mappings"] if m["name"] == "CUSTOMER")
    assert customer["fields"][0] == {"field": "no", "integration_field": "accountnumber"}
    assert out["reexported"]["mappings"] == exported["mappings"]
    # declaring the export in the store it came from changes nothing
    again = play("mapping_export.yml", other_store=demo.store_path)
    assert all(not r["changed"] for r in again["declared"]["results"])
