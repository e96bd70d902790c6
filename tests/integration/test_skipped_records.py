"""Skipped records through ansible-playbook: a record failing the same way run after run stops failing the task,
is listed by sync_job_info, and syncs once its cause is fixed and it is restored."""

from __future__ import annotations

from tests.support.fixtures import execute, rows


def _customer_job(result):
    return next(job for job in result["jobs"] if job["mapping"] == "CUSTOMER")


def test_a_record_failing_the_same_way_is_skipped_listed_and_restored(demo, play):
    demo.declare()
    demo.run("full")
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    execute(demo.erp, "update customer set salesperson_code = 'ZZ', modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') where no = ?",
            number)
    for attempt in (1, 2):
        failed = play("sync.yml", check=False, sync_mode="modified")
        assert failed["rc"] != 0, "run %d: the record's lookup cannot resolve" % attempt
        assert number in failed["stdout"] and "ZZ" in failed["stdout"]
    result = play("sync.yml", sync_mode="modified")  # why: run 3 skips the record: the task succeeds without tolerate_record_errors
    job = _customer_job(result)
    assert job["counts"]["failed"] == 0 and job["counts"]["skipped"] == 1

    info = play("skipped.yml", step="info")
    listed = [r for r in info["skipped_records"] if r["mapping"] == "CUSTOMER"]
    assert [(r["side"], r["record_id"], r["attempts"]) for r in listed] == [("local", number, 2)]
    assert "ZZ" in listed[0]["message"]

    # the salesperson is created in the CRM and brought to the ERP; until restored the customer stays skipped
    execute(demo.crm, "insert into systemuser (systemuserid, fullname, nickname) values ('b0000000-0000-0000-0000-0000000000zz', "
                      "'Zoe Zimmer', 'ZZ')")
    play("sync.yml", sync_mode="full", sync_mappings=["SALESPEOPLE"])
    assert rows(demo.erp, "select name from salesperson where code = 'ZZ'") == [("Zoe Zimmer",)]
    execute(demo.erp, "update customer set modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') where no = ?", number)
    result = play("sync.yml", sync_mode="modified")
    assert _customer_job(result)["counts"]["skipped"] == 1, "changed, but skipped until restored"
    planned = play("skipped.yml", "--check", step="restore", restore_records=[number])
    assert planned["changed"] and [r["record_id"] for r in planned["records"]] == [number]
    info = play("skipped.yml", step="info")
    assert [r["record_id"] for r in info["skipped_records"]] == [number], "check mode restored nothing"

    restored = play("skipped.yml", step="restore", restore_records=[number])
    assert restored["changed"] and restored["uncoupled"] == []
    again = play("skipped.yml", step="restore", restore_records=[number])
    assert not again["changed"]
    result = play("sync.yml", sync_mode="modified")
    job = _customer_job(result)
    assert job["counts"]["modified"] == 1 and job["counts"]["failed"] == job["counts"]["skipped"] == 0
    owner = rows(demo.crm, "select ownerid from account where accountnumber = ?", number)[0][0]
    assert owner == "b0000000-0000-0000-0000-0000000000zz"
    info = play("skipped.yml", step="info")
    assert info["skipped_records"] == []


def test_sync_of_chosen_records_writes_exactly_those(demo, play):
    demo.declare()
    demo.run("full")
    numbers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 4")]
    for number in numbers:
        execute(demo.erp, "update customer set city = 'Chosen City', modified_on = strftime('%Y-%m-%d %H:%M:%f', 'now') "
                          "where no = ?", number)
    execute(demo.crm, "create table writes (accountnumber text)")
    execute(demo.crm, "create trigger count_writes after update on account begin insert into writes values (new.accountnumber); end")
    result = play("sync.yml", sync_mode="modified", sync_mappings=["CUSTOMER"], sync_records=numbers[:2])
    assert [job["mapping"] for job in result["jobs"]] == ["CUSTOMER"]
    assert _customer_job(result)["counts"]["modified"] == 2 and result["changed"]
    assert sorted(r[0] for r in rows(demo.crm, "select distinct accountnumber from writes")) == sorted(numbers[:2])
    refused = play("sync.yml", check=False, sync_mode="modified", sync_mappings=["CUSTOMER", "CONTACTS"], sync_records=numbers[:1])
    assert refused["rc"] != 0 and "name it alone in mappings" in refused["stdout"]
