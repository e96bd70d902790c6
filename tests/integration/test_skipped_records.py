"""Skipped records through ansible-playbook: a record failing the same way run after run stops failing the task,
is listed by sync_job_info, and syncs once its cause is fixed and it is restored."""

from __future__ import annotations

import json

from tests.integration.conftest import ansible_playbook, extra_vars
from tests.support.fixtures import execute, rows


def _run(demo, tmp_path, playbook, check=True, *args, **variables):
    result_file = tmp_path / "result.json"
    if result_file.exists():
        result_file.unlink()
    proc = ansible_playbook(playbook, *args, *extra_vars(store_path=demo.store_path, erp=demo.erp, crm=demo.crm,
                                                         result_file=str(result_file), **variables), check=check)
    return proc, (json.loads(result_file.read_text()) if result_file.exists() else None)


def _customer_job(result):
    return next(job for job in result["jobs"] if job["mapping"] == "CUSTOMER")


def test_a_record_failing_the_same_way_is_skipped_listed_and_restored(demo, tmp_path):
    demo.declare()
    demo.run("full")
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    execute(demo.erp, "update customer set salesperson_code = 'ZZ', modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') where no = ?",
            number)
    for attempt in (1, 2):
        proc, _result = _run(demo, tmp_path, "sync.yml", False, sync_mode="modified")
        assert proc.returncode != 0, "run %d: the record's lookup cannot resolve" % attempt
        assert number in proc.stdout and "ZZ" in proc.stdout
    proc, result = _run(demo, tmp_path, "sync.yml", sync_mode="modified")
    assert proc.returncode == 0, "run 3 skips the record: the task succeeds without tolerate_record_errors"
    job = _customer_job(result)
    assert job["counts"]["failed"] == 0 and job["counts"]["skipped"] == 1

    _proc, info = _run(demo, tmp_path, "skipped.yml", step="info")
    listed = [r for r in info["skipped_records"] if r["mapping"] == "CUSTOMER"]
    assert [(r["side"], r["record_id"], r["attempts"]) for r in listed] == [("local", number, 2)]
    assert "ZZ" in listed[0]["message"]

    # the salesperson is created in the CRM and brought to the ERP; until restored the customer stays skipped
    execute(demo.crm, "insert into systemuser (systemuserid, fullname, nickname) values ('b0000000-0000-0000-0000-0000000000zz', "
                      "'Zoe Zimmer', 'ZZ')")
    _run(demo, tmp_path, "sync.yml", sync_mode="full", sync_mappings=["SALESPEOPLE"])
    assert rows(demo.erp, "select name from salesperson where code = 'ZZ'") == [("Zoe Zimmer",)]
    execute(demo.erp, "update customer set modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') where no = ?", number)
    proc, result = _run(demo, tmp_path, "sync.yml", sync_mode="modified")
    assert _customer_job(result)["counts"]["skipped"] == 1, "changed, but skipped until restored"
    _proc, planned = _run(demo, tmp_path, "skipped.yml", True, "--check", step="restore", restore_records=[number])
    assert planned["changed"] and [r["record_id"] for r in planned["records"]] == [number]
    _proc, info = _run(demo, tmp_path, "skipped.yml", step="info")
    assert [r["record_id"] for r in info["skipped_records"]] == [number], "check mode restored nothing"

    _proc, restored = _run(demo, tmp_path, "skipped.yml", step="restore", restore_records=[number])
    assert restored["changed"] and restored["uncoupled"] == []
    _proc, again = _run(demo, tmp_path, "skipped.yml", step="restore", restore_records=[number])
    assert not again["changed"]
    proc, result = _run(demo, tmp_path, "sync.yml", sync_mode="modified")
    job = _customer_job(result)
    assert job["counts"]["modified"] == 1 and job["counts"]["failed"] == job["counts"]["skipped"] == 0
    owner = rows(demo.crm, "select ownerid from account where accountnumber = ?", number)[0][0]
    assert owner == "b0000000-0000-0000-0000-0000000000zz"
    _proc, info = _run(demo, tmp_path, "skipped.yml", step="info")
    assert info["skipped_records"] == []


def test_sync_of_chosen_records_writes_exactly_those(demo, tmp_path):
    demo.declare()
    demo.run("full")
    numbers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 4")]
    for number in numbers:
        execute(demo.erp, "update customer set city = 'Chosen City', modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                          "where no = ?", number)
    execute(demo.crm, "create table writes (accountnumber text)")
    execute(demo.crm, "create trigger count_writes after update on account begin insert into writes values (new.accountnumber); end")
    _proc, result = _run(demo, tmp_path, "sync.yml", sync_mode="modified", sync_mappings=["CUSTOMER"], sync_records=numbers[:2])
    assert [job["mapping"] for job in result["jobs"]] == ["CUSTOMER"]
    assert _customer_job(result)["counts"]["modified"] == 2 and result["changed"]
    assert sorted(r[0] for r in rows(demo.crm, "select distinct accountnumber from writes")) == sorted(numbers[:2])
    proc, _result = _run(demo, tmp_path, "sync.yml", False, sync_mode="modified", sync_mappings=["CUSTOMER", "CONTACTS"],
                         sync_records=numbers[:1])
    assert proc.returncode != 0 and "name it alone in mappings" in proc.stdout
