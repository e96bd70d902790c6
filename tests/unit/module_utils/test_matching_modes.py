"""Matching wherever a record would be created: modified runs, named mappings, retries, check mode, the default mappings."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import Demo, customer_account_mapping, execute, rows
from tests.support.shared_customers import FOLDED_EMAIL, customer_mapping


def accounts(demo: Demo) -> int:
    return rows(demo.crm, "select count(*) from account")[0][0]


def couplings(demo: Demo) -> dict[str, str]:
    return dict(rows(demo.store_path, "select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'"))


def logged_errors(demo: Demo, run_id: str) -> list[dict]:
    """The run's failed records as sync_job_info reads them: its jobs, then their errors."""
    store = Store(demo.store_path, read_only=True)
    try:
        return store.job_errors([job["id"] for job in store.jobs(run_id=run_id)])
    finally:
        store.close()


def test_held_matches_are_retried_by_modified_runs_and_resolve_once_the_data_is_unambiguous(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration", match_on=[FOLDED_EMAIL])])
    # the full sync lets scheduled runs create records, so a modified run would create the held ones if it could
    full = shared.run("full", batch_size=40, after_full_sync="create_new_records")
    assert full.jobs[0].matching["counts"]["ambiguous"] == 5
    held = sorted(r[0] for r in rows(data.erp, "select no from customer where no like 'X%'"))
    assert len(held) == 7 and full.jobs[0].counts["failed"] == 7
    before, coupled = accounts(shared), couplings(shared)

    for names in (None, ["CUSTOMER"]):  # all mappings, then the named one
        run = shared.run("modified", names, batch_size=40)
        job = run.jobs[0]
        assert job.counts["inserted"] == 0 and job.counts["coupled"] == 0 and job.counts["failed"] == 7
        assert accounts(shared) == before and couplings(shared) == coupled
        logged = logged_errors(shared, run.run_id)
        assert sorted(e["record_id"] for e in logged) == held
        assert all(e["message"].startswith("ambiguous match in mapping CUSTOMER") for e in logged)
        assert all(e["message"] in {x["message"] for x in job.errors} for e in logged)  # the task reports the same
        store = Store(shared.store_path, read_only=True)
        assert store.jobs(run_id=run.run_id)[0]["failed"] == 7 and store.jobs(run_id=run.run_id)[0]["status"] == "partial"
        store.close()
    x000 = next(e["message"] for e in logged if e["record_id"] == "X000")
    crm_twice0 = sorted(r[0] for r in rows(data.crm, "select accountid from account where trim(lower(emailaddress1)) = 'twice0@example.com'"))
    assert "'twice0@example.com'" in x000 and all(i in x000 for i in crm_twice0)

    # resolve: one CRM candidate left for the e-mails with two accounts, one ERP customer for those with two customers
    for k in range(5):
        if k % 2 == 0:
            execute(data.crm, "delete from account where accountnumber = ?", "Y%02d0" % k)  # the padded copy stays
        else:
            execute(data.erp, "delete from customer where no = ?", "X%02d1" % k)
    expected = {"X%02d0" % k: rows(data.crm, "select accountid from account where accountnumber like ?", "Y%02d_" % k)[0][0] for k in range(5)}
    before = accounts(shared)
    plan = shared.run("modified", dry_run=True, batch_size=40)
    assert accounts(shared) == before and couplings(shared) == coupled  # check mode writes nothing
    run = shared.run("modified", batch_size=40)
    for key in ("coupled", "inserted", "modified", "failed"):
        assert plan.jobs[0].counts[key] == run.jobs[0].counts[key], key
    assert run.jobs[0].counts["coupled"] == 5 and run.jobs[0].counts["inserted"] == 0 and run.jobs[0].counts["failed"] == 0
    assert accounts(shared) == before
    now = couplings(shared)
    assert {no: now[no] for no in expected} == expected
    # the pair was then written from the ERP: the padded CRM copy of the e-mail is the ERP's now
    assert rows(data.crm, "select emailaddress1 from account where accountid = ?", expected["X000"]) == [("twice0@example.com",)]
    assert shared.run("modified", batch_size=40).jobs[0].counts["failed"] == 0


def test_a_new_customer_whose_number_is_an_uncoupled_account_is_coupled_and_updated(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration", match_on=["no"], synch_only_coupled_records=False)])
    shared.run("full", batch_size=40)
    before = accounts(shared)
    execute(data.crm, "insert into account (accountid, accountnumber, name) values (?, 'N00001', 'Old name')", str(uuid.uuid4()))
    execute(data.erp, "insert into customer (no, name, email) values ('N00001', 'New customer', 'new@example.com')")
    account = rows(data.crm, "select accountid from account where accountnumber = 'N00001'")[0][0]

    plan = shared.run("modified", dry_run=True)
    assert plan.jobs[0].counts["coupled"] == 1 and plan.jobs[0].counts["inserted"] == 0 and plan.jobs[0].counts["modified"] == 1
    assert "N00001" not in couplings(shared) and rows(data.crm, "select name from account where accountid = ?", account) == [("Old name",)]

    run = shared.run("modified")
    job = run.jobs[0]
    assert job.counts["coupled"] == 1 and job.counts["inserted"] == 0 and job.counts["modified"] == 1 and job.counts["failed"] == 0
    assert {"mapping": "CUSTOMER", "action": "coupled", "local_id": "N00001", "integration_id": account} in job.records
    assert accounts(shared) == before + 1  # the account inserted by hand, no second one
    assert couplings(shared)["N00001"] == account
    assert rows(data.crm, "select name, emailaddress1 from account where accountid = ?", account) == [("New customer", "new@example.com")]
    again = shared.run("modified").jobs[0]
    assert again.counts["coupled"] == again.counts["inserted"] == again.counts["modified"] == 0


def test_a_new_customer_matching_a_coupled_account_is_held(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration", match_on=[FOLDED_EMAIL], synch_only_coupled_records=False)])
    shared.run("full", batch_size=40)
    execute(data.erp, "insert into customer (no, name, email) values ('N00002', 'Same mail', 'CUSTOMER1@example.com')")
    before = accounts(shared)
    job = shared.run("modified").jobs[0]
    assert job.counts["inserted"] == 0 and accounts(shared) == before
    assert job.counts["failed"] == 1 + 7  # and the ERP records of the ambiguous e-mails, held since the full sync
    message = next(e["message"] for e in job.errors if e["record_id"] == "N00002")
    account = couplings(shared)["C00001"]
    assert message.startswith("ambiguous match in mapping CUSTOMER: local record N00002")
    assert "integration record %s is coupled to local record C00001" % account in message


def test_two_new_customers_with_the_same_key_are_both_held(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration", match_on=["email"], synch_only_coupled_records=False)])
    shared.run("full", batch_size=40)
    for no in ("N00003", "N00004"):
        execute(data.erp, "insert into customer (no, name, email) values (?, 'Twin', 'twin@example.com')", no)
    before = accounts(shared)
    job = shared.run("modified").jobs[0]
    assert job.counts["failed"] == 2 and accounts(shared) == before
    assert sorted(e["record_id"] for e in job.errors) == ["N00003", "N00004"]
    assert "local record N00004 has the same key" in job.errors[0]["message"]


def test_a_match_field_no_field_mapping_reads_is_read_for_the_page(shared):
    data = shared.data
    fields = [{"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"}]
    email = {"field": "email", "integration_field": "emailaddress1"}
    shared.declare([customer_account_mapping(fields=fields, match_on=[email], synch_only_coupled_records=False)])
    shared.run("full", batch_size=40)
    crm_only = rows(data.crm, "select accountid from account where emailaddress1 = 'crm0@example.com'")[0][0]
    assert crm_only not in couplings(shared).values()
    execute(data.erp, "insert into customer (no, name, email) values ('N00009', 'Found by e-mail', 'crm0@example.com')")
    job = shared.run("modified", batch_size=40).jobs[0]
    assert job.counts["coupled"] == 1 and job.counts["inserted"] == 0
    assert couplings(shared)["N00009"] == crm_only
    assert rows(data.crm, "select accountnumber, name from account where accountid = ?", crm_only) == [("N00009", "Found by e-mail")]


@pytest.mark.parametrize("mode", ["full", "modified"])
def test_matching_is_exact_unless_a_field_ignores_case(shared, mode):
    data = shared.data
    execute(data.crm, "update account set accountnumber = 'c00001', name = 'CRM only' where accountnumber = 'K00001'")
    shared.declare([customer_mapping("to_integration", match_on=["no"], synch_only_coupled_records=False)])
    job = shared.run(mode, batch_size=40).jobs[0]
    # exact by default: the ERP's C00001 is not the CRM's c00001, which is left as it is
    assert job.counts["coupled"] == 0 and job.counts["failed"] == 0
    assert rows(data.crm, "select name from account where accountnumber = 'c00001'") == [("CRM only",)]
    assert rows(data.crm, "select name from account where accountnumber = 'C00001'") == [("Customer 1",)]


@pytest.mark.parametrize("mode", ["full", "modified"])
def test_ignore_case_couples_a_single_candidate_and_holds_two(shared, mode):
    data = shared.data
    execute(data.crm, "update account set accountnumber = 'c00001', name = 'CRM one' where accountnumber = 'K00001'")
    execute(data.crm, "update account set accountnumber = 'c00002' where accountnumber = 'K00002'")
    execute(data.crm, "update account set accountnumber = 'C00002' where accountnumber = 'K00003'")
    folded = {"field": "no", "integration_field": "accountnumber", "ignore_case": True}
    shared.declare([customer_mapping("to_integration", match_on=[folded], synch_only_coupled_records=False)])
    before = accounts(shared)
    job = shared.run(mode, batch_size=40).jobs[0]
    assert job.counts["coupled"] == 1 and job.counts["failed"] == 1
    one = rows(data.crm, "select accountid from account where accountnumber = 'C00001'")[0][0]
    assert couplings(shared)["C00001"] == one  # c00001 was coupled and written from the ERP
    two = sorted(r[0] for r in rows(data.crm, "select accountid from account where lower(accountnumber) = 'c00002'"))
    assert len(two) == 2 and "C00002" not in couplings(shared)
    (error,) = job.errors
    assert error["record_id"] == "C00002" and error["message"].startswith("ambiguous match in mapping CUSTOMER")
    assert all(i in error["message"] for i in two)
    assert accounts(shared) == before + 207 - 2  # every other customer was created


def test_modified_bidirectional_run_holds_records_on_their_own_side(shared):
    shared.declare([customer_mapping("bidirectional", match_on=[FOLDED_EMAIL])])
    shared.run("full", batch_size=40)
    before = accounts(shared), rows(shared.data.erp, "select count(*) from customer")[0][0]
    job = shared.run("modified", batch_size=40).jobs[0]
    assert job.counts["failed"] == 15 and job.counts["inserted"] == 0
    assert sorted({e["side"] for e in job.errors}) == ["integration", "local"]
    assert (accounts(shared), rows(shared.data.erp, "select count(*) from customer")[0][0]) == before


def test_the_default_mappings_couple_the_base_currency_the_crm_already_holds(demo):
    usd = str(uuid.uuid4())
    execute(demo.crm, "insert into transactioncurrency (transactioncurrencyid, isocurrencycode, currencyname) values (?, 'USD', 'Dollar')", usd)
    demo.declare()
    plan = demo.run("full", dry_run=True)
    run = demo.run("full")
    assert [j.counts for j in plan.jobs] == [j.counts for j in run.jobs]
    currency = run.jobs[0]
    assert currency.mapping == "CURRENCY" and currency.counts["coupled"] == 1 and currency.counts["failed"] == 0
    assert rows(demo.crm, "select transactioncurrencyid, currencyname from transactioncurrency where isocurrencycode = 'USD'") == [(usd, "US Dollar")]
    assert ("USD", usd) in rows(demo.store_path, "select local_id, integration_id from tablesync_couplings where mapping = 'CURRENCY'")
    assert run.failed_records == 0
