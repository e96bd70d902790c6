"""Bidirectional mappings on real SQLite databases: both directions, conflicts, deletions, the guard."""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import GuardError
from tests.support.fixtures import customer_account_mapping, execute, rows


def customer_mapping(**options):
    """customer <-> account, both ways; e-mail only flows to the CRM."""
    fields = [
        {"field": "no", "integration_field": "accountnumber"},
        {"field": "name", "integration_field": "name"},
        {"field": "city", "integration_field": "address1_city"},
        {"field": "phone", "integration_field": "telephone1"},
        {"field": "email", "integration_field": "emailaddress1", "direction": "to_integration"},
    ]
    return customer_account_mapping(**dict({"direction": "bidirectional", "fields": fields}, **options))


def job(run, name="CUSTOMER"):
    return next(j for j in run.jobs if j.mapping == name)


def first_customer(demo):
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    account = rows(demo.crm, "select accountid from account where accountnumber = ?", number)[0][0]
    return number, account


def customer(demo, number, column):
    return rows(demo.erp, "select %s from customer where no = ?" % column, number)[0][0]


def account(demo, accountid, column):
    return rows(demo.crm, "select %s from account where accountid = ?" % column, accountid)[0][0]


def synced(demo, **options):
    demo.declare([customer_mapping(**options)])
    demo.run("full")
    return first_customer(demo)


def test_full_sync_creates_uncoupled_records_of_both_sides(demo):
    execute(demo.crm, "insert into account (accountid, accountnumber, name, address1_city, telephone1) "
                      "values ('a0000000-0000-0000-0000-000000000001', 'CRM-1', 'Only In Crm', 'Oslo', '+47 1')")
    demo.declare([customer_mapping()])
    run = demo.run("full")
    counts = job(run).counts
    assert counts["inserted"] == 201 and counts["failed"] == 0
    assert counts["read"] == 201, "records created by the first flow are not read again by the second"
    assert rows(demo.erp, "select name, city, phone from customer where no = 'CRM-1'") == [("Only In Crm", "Oslo", "+47 1")]
    store = demo.engine()[0]
    assert store.count_couplings("CUSTOMER") == 201
    assert rows(demo.crm, "select count(*) from account")[0][0] == 201
    again = demo.run("full")
    assert job(again).counts["unchanged"] == job(again).counts["read"] == 402
    assert not again.changed


def test_changes_flow_each_way_and_never_ping_pong(demo):
    number, accountid = synced(demo)
    execute(demo.erp, "update customer set phone = '+1 555 0101' where no = ?", number)
    first = demo.run("modified")
    assert job(first).counts["modified"] == 1
    assert account(demo, accountid, "telephone1") == "+1 555 0101"
    for _attempt in range(2):
        assert job(demo.run("modified")).counts["modified"] == 0
    execute(demo.crm, "update account set address1_city = 'Bergen' where accountid = ?", accountid)
    back = demo.run("modified")
    assert job(back).counts["modified"] == 1
    assert customer(demo, number, "city") == "Bergen"
    for _attempt in range(2):
        again = demo.run("modified")
        assert job(again).counts["modified"] == 0 and not again.changed


def test_a_field_narrowed_to_one_direction_flows_only_that_way(demo):
    number, accountid = synced(demo)
    email = customer(demo, number, "email")
    execute(demo.crm, "update account set emailaddress1 = 'crm@example.com' where accountid = ?", accountid)
    for _attempt in range(3):
        assert job(demo.run("modified")).counts["modified"] == 0
    assert customer(demo, number, "email") == email
    execute(demo.erp, "update customer set email = 'erp@example.com' where no = ?", number)
    assert job(demo.run("modified")).counts["modified"] == 1
    assert account(demo, accountid, "emailaddress1") == "erp@example.com"
    assert job(demo.run("modified")).counts["modified"] == 0


def both_sides_change_phone(demo, number, accountid):
    execute(demo.erp, "update customer set phone = 'local phone' where no = ?", number)
    execute(demo.crm, "update account set telephone1 = 'crm phone' where accountid = ?", accountid)


def test_conflict_none_fails_the_record_naming_both_ids_and_fields(demo):
    number, accountid = synced(demo, update_conflict_resolution="none")
    both_sides_change_phone(demo, number, accountid)
    run = demo.run("modified")
    result = job(run)
    assert result.counts["failed"] == 1 and result.counts["modified"] == 0
    message = result.errors[0]["message"]
    assert number in message and accountid in message and "phone <-> telephone1" in message and "conflict" in message
    assert customer(demo, number, "phone") == "local phone" and account(demo, accountid, "telephone1") == "crm phone"
    # the conflict stays until someone resolves it; it is reported once per run, not once per side
    assert job(demo.run("modified")).counts["failed"] == 1


@pytest.mark.parametrize("policy, expected", [("local_wins", "local phone"), ("integration_wins", "crm phone")])
def test_conflict_resolved_by_a_winner(demo, policy, expected):
    number, accountid = synced(demo, update_conflict_resolution=policy)
    both_sides_change_phone(demo, number, accountid)
    run = demo.run("modified")
    assert job(run).counts["modified"] == 1 and job(run).counts["failed"] == 0
    assert customer(demo, number, "phone") == expected == account(demo, accountid, "telephone1")
    for _attempt in range(2):
        assert job(demo.run("modified")).counts["modified"] == 0


def test_merge_keeps_edits_of_different_fields_from_both_sides(demo):
    number, accountid = synced(demo, update_conflict_resolution="merge")
    execute(demo.erp, "update customer set phone = 'local phone' where no = ?", number)
    execute(demo.crm, "update account set address1_city = 'Crm City' where accountid = ?", accountid)
    run = demo.run("modified")
    assert job(run).counts["modified"] == 1 and job(run).counts["failed"] == 0
    assert customer(demo, number, "phone") == "local phone" == account(demo, accountid, "telephone1")
    assert customer(demo, number, "city") == "Crm City" == account(demo, accountid, "address1_city")
    for _attempt in range(2):
        assert job(demo.run("modified")).counts["modified"] == 0


@pytest.mark.parametrize("fallback, expected", [("none", None), ("local_wins", "local phone"), ("integration_wins", "crm phone")])
def test_merge_falls_back_for_a_field_changed_on_both_sides(demo, fallback, expected):
    number, accountid = synced(demo, update_conflict_resolution="merge", merge_fallback=fallback)
    both_sides_change_phone(demo, number, accountid)
    execute(demo.crm, "update account set address1_city = 'Crm City' where accountid = ?", accountid)
    result = job(demo.run("modified"))
    if expected is None:
        assert result.counts["failed"] == 1
        assert "phone <-> telephone1" in result.errors[0]["message"]
        assert "city" not in result.errors[0]["message"], "only the field changed on both sides is a conflict"
        assert customer(demo, number, "city") != "Crm City", "nothing is written for a record in conflict"
    else:
        assert result.counts["modified"] == 1
        assert customer(demo, number, "phone") == expected == account(demo, accountid, "telephone1")
        assert customer(demo, number, "city") == "Crm City"


def test_both_sides_changed_to_the_same_value_is_no_conflict(demo):
    number, accountid = synced(demo, update_conflict_resolution="none")
    execute(demo.erp, "update customer set phone = 'same' where no = ?", number)
    execute(demo.crm, "update account set telephone1 = 'same' where accountid = ?", accountid)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 0 and result.counts["modified"] == 0
    assert customer(demo, number, "phone") == "same" == account(demo, accountid, "telephone1")
    again = job(demo.run("modified"))
    assert again.counts["failed"] == again.counts["modified"] == 0


# -- one-way fields inside a bidirectional mapping -----------------------------------------------------------


def with_city_from_crm(**options):
    """customer_mapping with the city flowing from the CRM only (e-mail still flows to it only)."""
    fields = [dict(f, direction="from_integration") if f["field"] == "city" else f for f in customer_mapping()["fields"]]
    return customer_mapping(fields=fields, **options)


@pytest.mark.parametrize("policy", ["none", "merge"])
def test_a_one_way_field_changed_on_both_sides_flows_its_way_without_conflict(demo, policy):
    number, accountid = synced(demo, update_conflict_resolution=policy)
    execute(demo.erp, "update customer set email = 'erp@example.com' where no = ?", number)
    execute(demo.crm, "update account set emailaddress1 = 'crm@example.com' where accountid = ?", accountid)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 0 and result.counts["modified"] == 1, result.errors
    assert account(demo, accountid, "emailaddress1") == "erp@example.com" == customer(demo, number, "email")
    for _attempt in range(2):
        again = demo.run("modified")
        assert job(again).counts["modified"] == job(again).counts["failed"] == 0 and not again.changed


def test_a_from_integration_field_changed_on_both_sides_is_written_to_the_local_side(demo):
    demo.declare([with_city_from_crm(update_conflict_resolution="none")])
    demo.run("full")
    number, accountid = first_customer(demo)
    execute(demo.erp, "update customer set city = 'Erp City' where no = ?", number)
    execute(demo.crm, "update account set address1_city = 'Crm City' where accountid = ?", accountid)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 0 and result.counts["modified"] == 1, result.errors
    assert customer(demo, number, "city") == "Crm City" == account(demo, accountid, "address1_city")
    assert job(demo.run("modified")).counts["modified"] == 0


def test_a_one_way_field_changed_where_it_does_not_flow_from_makes_no_conflict(demo):
    number, accountid = synced(demo, update_conflict_resolution="none")
    email = customer(demo, number, "email")
    execute(demo.crm, "update account set emailaddress1 = 'crm@example.com' where accountid = ?", accountid)
    execute(demo.erp, "update customer set name = 'Erp Name' where no = ?", number)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 0 and result.counts["modified"] == 1, result.errors
    assert account(demo, accountid, "name") == "Erp Name"
    assert customer(demo, number, "email") == email, "an e-mail changed in the CRM is never written back"
    assert job(demo.run("modified")).counts["modified"] == 0


def test_a_one_way_change_beside_a_change_of_the_other_side_is_no_conflict(demo):
    number, accountid = synced(demo, update_conflict_resolution="none")
    execute(demo.erp, "update customer set email = 'erp@example.com' where no = ?", number)
    execute(demo.crm, "update account set telephone1 = 'crm phone' where accountid = ?", accountid)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 0 and result.counts["modified"] == 1, result.errors
    assert account(demo, accountid, "emailaddress1") == "erp@example.com" and customer(demo, number, "phone") == "crm phone"
    assert job(demo.run("modified")).counts["modified"] == 0


def test_a_bidirectional_field_changed_on_both_sides_beside_a_one_way_field_still_conflicts(demo):
    number, accountid = synced(demo, update_conflict_resolution="none")
    both_sides_change_phone(demo, number, accountid)
    execute(demo.erp, "update customer set email = 'erp@example.com' where no = ?", number)
    result = job(demo.run("modified"))
    assert result.counts["failed"] == 1 and "phone <-> telephone1" in result.errors[0]["message"]
    assert "email" not in result.errors[0]["message"], "a one-way field is never a conflict"
    assert account(demo, accountid, "telephone1") == "crm phone" and account(demo, accountid, "emailaddress1") != "erp@example.com"


def test_pairs_fingerprinted_before_one_way_fields_were_told_apart_are_unchanged(demo):
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
    from ansible_collections.tablesync.integration.plugins.module_utils.values import fingerprint, id_text

    number, accountid = synced(demo, update_conflict_resolution="none")
    mapping = Mapping.from_definition(customer_mapping())
    _store, endpoints = demo.engine()
    for side, table in (("local", "customer"), ("integration", "account")):
        fields = mapping.read_fields(side)
        legacy = [(fingerprint([r[fields.index(f)] for f in mapping.side_fields(side)]), id_text(r[0]))
                  for page in endpoints[side].table(table, mapping.key(side)).scan(fields) for r in page]
        execute(demo.store_path, "update tablesync_couplings set %s_fp = NULL" % side)
        for fp, record_id in legacy:  # every pair as an earlier version stored it: one fingerprint over every field
            execute(demo.store_path, "update tablesync_couplings set %s_fp = ? where %s_id = ?" % (side, side), fp, record_id)
    execute(demo.erp, "update customer set phone = 'changed since' where no = ?", number)
    again = job(demo.run("full"))
    assert again.counts["failed"] == 0 and again.counts["modified"] == 1, "one side changed since: no conflict"
    assert account(demo, accountid, "telephone1") == "changed since"
    execute(demo.crm, "update account set emailaddress1 = 'crm@example.com' where accountid = ?", accountid)
    assert not demo.run("full").changed, "the pairs now carry fingerprints in parts"


def test_check_mode_plans_conflicts_and_changes_like_the_real_run(demo):
    number, accountid = synced(demo, update_conflict_resolution="local_wins")
    both_sides_change_phone(demo, number, accountid)
    demo.change_customers(4, seed=3)
    execute(demo.crm, "insert into account (accountid, accountnumber, name) values ('a0000000-0000-0000-0000-000000000002', 'CRM-2', 'New')")
    plan = demo.run("modified", dry_run=True)
    assert customer(demo, number, "phone") == "local phone" and account(demo, accountid, "telephone1") == "crm phone"
    real = demo.run("modified")
    assert job(plan).counts == job(real).counts


# -- deletions -------------------------------------------------------------------------------------------------


def one_way(**options):
    return customer_mapping(direction="to_integration", fields=customer_mapping()["fields"][:4], **options)


def declare_one_way(demo, **options):
    demo.declare([one_way(**options)])
    demo.run("full")
    return first_customer(demo)


def test_deleted_destination_without_a_policy_is_an_error(demo):
    number, accountid = declare_one_way(demo)
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    result = job(demo.run("full"))
    assert result.counts["failed"] == 1 and result.counts["deleted"] == 0
    assert accountid in result.errors[0]["message"] and "deletion_conflict_resolution" in result.errors[0]["message"]
    assert rows(demo.erp, "select count(*) from customer where no = ?", number)[0][0] == 1


def test_remove_coupling_forgets_the_deleted_record(demo):
    number, accountid = declare_one_way(demo, deletion_conflict_resolution="remove_coupling")
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    run = demo.run("full")
    assert job(run).counts["failed"] == 0 and run.changed
    assert job(run).counts["uncoupled"] == 1
    assert rows(demo.store_path, "select sum(uncoupled) from tablesync_jobs where run_id = ?", run.run_id) == [(1,)]
    store = demo.engine()[0]
    assert store.couplings_for("CUSTOMER", "local", [number]) == {}
    assert rows(demo.erp, "select count(*) from customer where no = ?", number)[0][0] == 1


def test_restore_records_recreates_and_recouples(demo):
    number, accountid = declare_one_way(demo, deletion_conflict_resolution="restore_records")
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    result = job(demo.run("full"))
    assert result.counts["inserted"] == 1 and result.counts["failed"] == 0
    restored = rows(demo.crm, "select accountid, name from account where accountnumber = ?", number)
    assert len(restored) == 1 and restored[0][1] == customer(demo, number, "name")
    store = demo.engine()[0]
    assert store.couplings_for("CUSTOMER", "local", [number])[number].integration_id == restored[0][0]
    assert job(demo.run("full")).counts["inserted"] == 0


def test_restore_records_in_a_modified_run_when_the_source_changed(demo):
    number, accountid = declare_one_way(demo, deletion_conflict_resolution="restore_records")
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    execute(demo.erp, "update customer set phone = 'new' where no = ?", number)
    plan = job(demo.run("modified", dry_run=True))
    result = job(demo.run("modified"))
    assert plan.counts == result.counts
    assert result.counts["inserted"] == 1
    assert rows(demo.crm, "select telephone1 from account where accountnumber = ?", number) == [("new",)]


def test_restore_records_on_the_source_side_of_a_one_way_mapping(demo):
    number, accountid = declare_one_way(demo, deletion_conflict_resolution="restore_records")
    name = customer(demo, number, "name")
    execute(demo.erp, "delete from customer where no = ?", number)
    result = job(demo.run("full"))
    assert result.counts["inserted"] == 1
    assert rows(demo.erp, "select name from customer where no = ?", number) == [(name,)]


def test_deletion_is_propagated_only_when_asked(demo):
    number, accountid = declare_one_way(demo, propagate_deletions=True)
    execute(demo.erp, "delete from customer where no = ?", number)
    result = job(demo.run("full"))
    assert result.counts["deleted"] == 1
    assert rows(demo.crm, "select count(*) from account where accountid = ?", accountid)[0][0] == 0
    assert job(demo.run("full")).counts["deleted"] == 0


def test_deletion_of_the_destination_is_not_propagated_back_by_a_one_way_mapping(demo):
    number, accountid = declare_one_way(demo, propagate_deletions=True)
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    result = job(demo.run("full"))
    assert result.counts["deleted"] == 0 and result.counts["failed"] == 1
    assert rows(demo.erp, "select count(*) from customer where no = ?", number)[0][0] == 1


def test_bidirectional_deletion_propagates_from_the_integration_side(demo):
    number, accountid = synced(demo, propagate_deletions=True)
    execute(demo.crm, "delete from account where accountid = ?", accountid)
    plan = demo.run("full", dry_run=True)
    run = demo.run("full")
    assert job(plan).counts == job(run).counts
    assert job(run).counts["deleted"] == 1 and job(run).counts["inserted"] == 0
    assert rows(demo.erp, "select count(*) from customer where no = ?", number)[0][0] == 0


# -- the guard ---------------------------------------------------------------------------------------------------


def test_guard_stops_mass_deletion_before_writing(demo):
    declare_one_way(demo, propagate_deletions=True, max_deletes=3)
    execute(demo.erp, "delete from customer where no in (select no from customer order by no limit 10)")
    with pytest.raises(GuardError, match=r"delete 10 and overwrite 0 of 200 .*max_deletes 3") as info:
        demo.run("full")
    assert info.value.plan["deleted"] == 10
    assert rows(demo.crm, "select count(*) from account")[0][0] == 200
    with pytest.raises(GuardError):
        demo.run("full", dry_run=True)
    store = demo.engine()[0]
    assert store.count_couplings("CUSTOMER") == 200


def test_guard_stops_mass_overwrite_by_share(demo):
    demo.declare([one_way(max_changes_percent=10)])
    demo.run("full")
    demo.change_customers(15)
    assert job(demo.run("modified", dry_run=True)).counts["modified"] == 15
    execute(demo.erp, "update customer set name = name || ' X'")
    with pytest.raises(GuardError, match="max_changes_percent 10"):
        demo.run("modified")
    assert rows(demo.crm, "select count(*) from account where name like '% X'")[0][0] == 0
    store = demo.engine()[0]
    failed_job = store.jobs(mappings=["CUSTOMER"])[-1]
    assert failed_job["status"] == "failed" and "nothing was written" in failed_job["message"]


def _killed_before_commit(demo, mode):
    """Run a sync in a forked child that SIGKILLs itself at its first store commit of a page, after that page's writes."""
    import os
    import signal

    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        def commit_batch(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        Store.commit_batch = commit_batch
        try:
            demo.run(mode, read_ahead=False)
        finally:
            os._exit(3)
    _pid, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status), "the run ended before its first commit; the test proves nothing"


@pytest.mark.parametrize("policy", ["integration_wins", "none"])
def test_an_update_written_by_a_killed_run_is_not_a_conflict_for_the_next(demo, policy):
    """A run killed after updating the CRM and before storing the pair's fingerprints: the next run sees
    the ERP's newer change alone (not the killed run's own write as a CRM change): no conflict, nothing lost."""
    number, accountid = synced(demo, update_conflict_resolution=policy)
    execute(demo.erp, "update customer set city = 'Oslo' where no = ?", number)
    _killed_before_commit(demo, "modified")
    assert account(demo, accountid, "address1_city") == "Oslo", "the killed run wrote the CRM before its commit"
    execute(demo.erp, "update customer set city = 'Nice' where no = ?", number)
    run = demo.run("modified")
    assert job(run).counts["failed"] == 0, job(run).errors
    assert customer(demo, number, "city") == account(demo, accountid, "address1_city") == "Nice"
    assert rows(demo.store_path, "select count(*) from tablesync_pending_pages")[0][0] == 0
    assert job(demo.run("modified")).counts["modified"] == 0


def test_an_update_a_killed_run_wrote_and_nothing_changed_since_is_not_written_again(demo):
    number, accountid = synced(demo)
    execute(demo.crm, "update account set address1_city = 'Bergen' where accountid = ?", accountid)
    _killed_before_commit(demo, "modified")
    assert customer(demo, number, "city") == "Bergen"
    writes = rows(demo.erp, "select count(*) from customer where city = 'Bergen'")[0][0]
    run = demo.run("modified")
    assert job(run).counts["modified"] == 0 and job(run).counts["failed"] == 0, job(run).counts
    assert rows(demo.erp, "select count(*) from customer where city = 'Bergen'")[0][0] == writes
    assert account(demo, accountid, "address1_city") == "Bergen"


COUNTS = ("read", "inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled")


def test_a_bidirectional_run_writes_one_job_row_per_direction(demo):
    number, accountid = synced(demo)
    other = rows(demo.crm, "select accountid from account where accountid != ? order by accountid limit 1", accountid)[0][0]
    execute(demo.erp, "update customer set phone = '+1 555 0101' where no = ?", number)
    execute(demo.crm, "update account set address1_city = 'Bergen' where accountid = ?", other)
    run = demo.run("modified")
    result = job(run)
    logged = rows(demo.store_path, "select direction, status, %s from tablesync_jobs where run_id = ? order by id" % ", ".join(COUNTS),
                  run.run_id)
    assert [r[:2] for r in logged] == [("to_integration", "success"), ("from_integration", "success")]
    by_direction = {r[0]: dict(zip(COUNTS, r[2:])) for r in logged}
    assert by_direction["to_integration"]["modified"] == by_direction["from_integration"]["modified"] == 1
    assert {c: sum(d[c] for d in by_direction.values()) for c in COUNTS} == result.counts
    reported = result.as_dict()["directions"]
    assert {name: entry["counts"] for name, entry in reported.items()} == by_direction


def test_a_killed_run_is_marked_interrupted_by_the_next(demo):
    number, _accountid = synced(demo)
    execute(demo.erp, "update customer set phone = '+1 555 0101' where no = ?", number)
    _killed_before_commit(demo, "modified")
    killed = rows(demo.store_path, "select id from tablesync_runs where status = 'running'")
    assert len(killed) == 1
    demo.run("modified")
    assert rows(demo.store_path, "select status from tablesync_runs where id = ?", killed[0][0]) == [("interrupted",)]
    assert rows(demo.store_path, "select distinct status from tablesync_jobs where run_id = ?", killed[0][0]) == [("interrupted",)]
    assert rows(demo.store_path, "select count(*) from tablesync_runs where status = 'running'") == [(0,)]
