"""Match-based coupling on real SQLite databases that already share customers."""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.couple_uncoupled import create_unmatched
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.matching import MatchKey, couple_matches, match_mapping
from ansible_collections.tablesync.integration.plugins.module_utils.verify import verify_mapping
from tests.support.fixtures import execute, rows
from tests.support.shared_customers import FOLDED_EMAIL, customer_mapping, email_counts


def couplings(demo) -> dict[str, str]:
    store = demo.engine()[0]
    return {c.local_id: c.integration_id for page in store.iter_couplings("CUSTOMER") for c in page}


def test_bidirectional_full_sync_with_match_on_never_duplicates(shared):
    data = shared.data
    shared.declare([customer_mapping("bidirectional", match_on=[FOLDED_EMAIL])])
    ambiguous_erp = sorted(r for r in rows(data.erp, "select * from customer") if r[2].strip().casefold() in data.ambiguous)
    ambiguous_crm = sorted(r for r in rows(data.crm, "select * from account") if r[3].strip().casefold() in data.ambiguous)
    assert len(ambiguous_erp) + len(ambiguous_crm) == data.ambiguous_records == 15
    before = {"customer": {e: n for e, n in email_counts(data.erp, "customer", "email").items() if e in data.ambiguous},
              "account": {e: n for e, n in email_counts(data.crm, "account", "emailaddress1").items() if e in data.ambiguous}}

    run = shared.run("full", batch_size=40)

    job = run.jobs[0]
    assert job.matching["counts"]["coupled"] == len(data.shared) == 150
    assert job.matching["counts"]["ambiguous"] == 5
    assert job.matching["counts"]["ambiguous_records"] == 15
    assert sorted(a["key"][0] for a in job.matching["ambiguous"]) == sorted(data.ambiguous)
    assert job.counts["coupled"] == 150
    assert job.counts["inserted"] == len(data.erp_only) + len(data.crm_only) == 100
    # the ambiguous records of both sides are held: failed with their reason, so every later run retries them
    assert job.counts["failed"] == 15 and run.status == "partial"
    assert all(e["message"].startswith("ambiguous match in mapping CUSTOMER") for e in job.errors)
    store = shared.engine(read_only=True)[0]
    held = {side: store.failed_ids("CUSTOMER", side) for side in ("local", "integration")}
    assert held["local"] == sorted(r[0] for r in ambiguous_erp)
    assert held["integration"] == sorted(r[0] for r in ambiguous_crm)
    # no e-mail is held twice on either side, except the ambiguous ones, which are untouched
    for path, table, column in ((data.erp, "customer", "email"), (data.crm, "account", "emailaddress1")):
        counts = email_counts(path, table, column)
        assert set(counts) == set(data.shared) | set(data.erp_only) | set(data.crm_only) | set(data.ambiguous)
        assert [e for e, n in counts.items() if n != 1 and e not in data.ambiguous] == []
        assert {e: counts[e] for e in data.ambiguous} == before[table]
    assert sorted(r for r in rows(data.erp, "select * from customer") if r[2].strip().casefold() in data.ambiguous) == ambiguous_erp
    assert sorted(r for r in rows(data.crm, "select * from account") if r[3].strip().casefold() in data.ambiguous) == ambiguous_crm
    # every other record is coupled exactly once, to the record with its e-mail
    coupled = couplings(shared)
    assert len(coupled) == len(set(coupled.values())) == 250
    erp_email = {no: email.strip().casefold() for no, email in rows(data.erp, "select no, email from customer")}
    crm_email = {i: email.strip().casefold() for i, email in rows(data.crm, "select accountid, emailaddress1 from account")}
    assert all(erp_email[lid] == crm_email[iid] for lid, iid in coupled.items())
    assert not set(erp_email[lid] for lid in coupled) & set(data.ambiguous)
    # the first sync of a matched pair followed the mapping's (initial) direction: local wins
    assert rows(data.crm, "select name, accountnumber from account where emailaddress1 = 'customer1@example.com'") == [("Customer 1", "C00001")]
    # and a second full sync finds nothing to do
    again = shared.run("full", batch_size=40)
    assert again.jobs[0].counts["coupled"] == again.jobs[0].counts["inserted"] == again.jobs[0].counts["modified"] == 0
    assert again.jobs[0].counts["failed"] == 15
    assert not again.changed


def test_check_mode_plans_the_couplings_a_real_full_sync_makes(shared):
    shared.declare([customer_mapping("bidirectional", match_on=[FOLDED_EMAIL])])
    shared.close()
    plan = shared.run("full", dry_run=True, batch_size=40)
    assert couplings(shared) == {}
    real = shared.run("full", batch_size=40)
    # (records a bidirectional run creates in its first flow are read again in its second, so "read" differs)
    for key in ("coupled", "inserted", "modified", "failed"):
        assert plan.jobs[0].counts[key] == real.jobs[0].counts[key], key
    assert plan.jobs[0].matching == real.jobs[0].matching


def test_initial_direction_from_integration_lets_the_crm_win_the_first_sync(shared):
    shared.declare([customer_mapping("bidirectional", match_on=[FOLDED_EMAIL], initial_direction="from_integration")])
    shared.run("full")
    assert rows(shared.data.erp, "select name from customer where no = 'C00001'") == [("Customer 1 Ltd",)]
    assert rows(shared.data.crm, "select name from account where accountnumber = 'A00001'") == [("Customer 1 Ltd",)]


def test_to_integration_full_sync_creates_only_the_missing_records(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration", match_on=[FOLDED_EMAIL])])
    crm_before = rows(data.crm, "select count(*) from account")[0][0]
    run = shared.run("full")
    assert run.jobs[0].counts["coupled"] == 150
    assert run.jobs[0].counts["inserted"] == len(data.erp_only)
    assert rows(data.crm, "select count(*) from account")[0][0] == crm_before + len(data.erp_only)


def test_matching_is_exact_unless_a_field_folds_case_and_spaces(shared):
    shared.declare([customer_mapping("to_integration")])
    store, endpoints = shared.engine(read_only=True)
    mapping = Mapping.from_definition(customer_mapping("to_integration"))
    tables = open_tables(mapping, endpoints)
    mapping.bind(tables)
    loose = match_mapping(mapping, tables, store, match_on=[FOLDED_EMAIL])
    strict = match_mapping(mapping, tables, store, match_on=["email"])
    assert strict.counts == match_mapping(mapping, tables, store, match_on=[
        {"field": "email", "integration_field": "emailaddress1", "ignore_case": False, "trim": False}]).counts
    # shared e-mails whose CRM copy differs in case or spaces do not match strictly
    variants = sum(1 for i in range(150) if i % 3 == 0 or i % 5 == 0 or i % 7 == 0)
    assert loose.counts["coupled"] == 150
    assert len([p for p in strict.pairs if p[0].startswith("C")]) == 150 - variants
    # strictly, the padded or upper-case second copies of the ambiguous e-mails no longer collide
    assert loose.counts["ambiguous"] == 5 and strict.counts["ambiguous"] == 0


def test_matching_on_the_key_itself(shared):
    # the CRM holds the ERP's customer number: the match field is the local key
    data = shared.data
    execute(data.crm, "update account set accountnumber = 'C' || substr(accountnumber, 2) where accountnumber like 'A%'")
    shared.declare([customer_mapping("to_integration")])
    store, endpoints = shared.engine(read_only=True)
    mapping = Mapping.from_definition(customer_mapping("to_integration"))
    tables = open_tables(mapping, endpoints)
    mapping.bind(tables)
    result = match_mapping(mapping, tables, store, match_on=[{"field": "no", "integration_field": "accountnumber"}])
    by_number = dict(rows(data.crm, "select accountnumber, accountid from account"))
    assert result.counts["coupled"] == 150 and result.counts["ambiguous"] == 0
    assert sorted(result.pairs) == sorted(("C%05d" % i, by_number["C%05d" % i]) for i in range(150))


def test_matching_on_two_fields_and_empty_values(shared):
    data = shared.data
    execute(data.erp, "update customer set email = null where no = 'C00002'")
    execute(data.crm, "update account set name = 'Customer 4' where accountnumber = 'A00004'")
    shared.declare([customer_mapping("to_integration")])
    store, endpoints = shared.engine(read_only=True)
    mapping = Mapping.from_definition(customer_mapping("to_integration"))
    tables = open_tables(mapping, endpoints)
    mapping.bind(tables)
    result = match_mapping(mapping, tables, store, match_on=["email", "name"])
    # names differ ('Customer 1' vs 'Customer 1 Ltd') except for the one renamed record
    account4 = rows(data.crm, "select accountid from account where accountnumber = 'A00004'")[0][0]
    assert [p for p in result.pairs if p[0].startswith("C")] == [("C00004", account4)]
    assert {"side": "local", "id": "C00002"} in result.unmatched_records  # an empty key matches nothing


def test_match_on_errors_name_the_entry(shared):
    with pytest.raises(MappingError, match=r"CUSTOMER, field match_on\[0\].*nosuch is not a field"):
        shared.declare([customer_mapping("to_integration", match_on=["nosuch"])])
    with pytest.raises(MappingError, match=r"match_on\[1\].*account has no column mail"):
        shared.declare([customer_mapping("to_integration", match_on=["email", {"field": "email", "integration_field": "mail"}])])
    with pytest.raises(MappingError, match="initial_direction applies to bidirectional"):
        Mapping.from_definition(customer_mapping("to_integration", initial_direction="from_integration"))


def test_match_key_normalises_values():
    norm = MatchKey("a", "b", ignore_case=True, trim=True).normaliser()
    assert norm("  Ann@Example.COM ") == norm("ann@example.com") == "ann@example.com"
    assert norm("   ") is None and norm(None) is None
    assert norm(5) == norm("5")
    exact = MatchKey("a", "b").normaliser()  # the default: values compare as they are
    assert exact(" A ") == " A " and exact("C00001") != exact("c00001") and exact("") is None


def test_pairs_coupled_by_matching_are_written_by_the_next_modified_sync(shared):
    data = shared.data
    execute(data.erp, "update customer set modified_on = '2020-01-01 00:00:00'")
    shared.declare([customer_mapping("to_integration")])
    assert shared.run("modified").jobs[0].counts["skipped"] == 207  # sets the watermark; creates nothing
    store, endpoints = shared.engine()
    mapping = Mapping.from_definition(customer_mapping("to_integration"))
    tables = open_tables(mapping, endpoints)
    mapping.bind(tables)
    found = match_mapping(mapping, tables, store, match_on=[FOLDED_EMAIL])
    couple_matches(store, "CUSTOMER", found.pairs, batch_size=40)
    # no record is newer than the watermark, yet every new pair is read (in pages) and written once
    run = shared.run("modified", batch_size=40)
    assert run.jobs[0].counts["read"] == 150 and run.jobs[0].counts["modified"] == 150
    assert run.jobs[0].counts["inserted"] == 0  # synch_only_coupled_records: uncoupled ones wait
    assert rows(data.crm, "select name from account where accountnumber = 'C00001'") == [("Customer 1",)]
    assert shared.run("modified", batch_size=40).jobs[0].counts["read"] == 0


def test_create_unmatched_creates_only_what_matches_nothing(shared):
    data = shared.data
    shared.declare([customer_mapping("to_integration")])
    store, endpoints = shared.engine()
    mapping = Mapping.from_definition(customer_mapping("to_integration"))
    tables = open_tables(mapping, endpoints)
    flows = mapping.bind(tables)
    found = match_mapping(mapping, tables, store, match_on=[FOLDED_EMAIL])
    couple_matches(store, "CUSTOMER", found.pairs)
    job = create_unmatched(mapping, tables, flows, store, found.held, batch_size=40)
    assert job.counts["inserted"] == len(data.erp_only) == 50
    # the ambiguous ERP records are not created: they fail, and the syncs retry them
    assert job.counts["failed"] == len(found.held["local"]) == 7
    assert all(e["message"].startswith("ambiguous match") for e in job.errors)
    assert store.failed_ids("CUSTOMER", "local") == sorted(found.held["local"])
    assert job.counts["modified"] == 0  # the matched pairs are left to the next sync
    assert rows(data.crm, "select name from account where accountnumber = 'A00001'") == [("Customer 1 Ltd",)]
    counts = email_counts(data.crm, "account", "emailaddress1")
    assert [e for e, n in counts.items() if n != 1 and e not in data.ambiguous] == []
    assert store.count_couplings("CUSTOMER") == 200
    assert store.jobs(mappings=["CUSTOMER"])[-1]["inserted"] == 50  # logged as a job


def test_verify_compares_a_bidirectional_pair_once(shared):
    shared.declare([customer_mapping("bidirectional", match_on=[FOLDED_EMAIL])])
    shared.run("full")
    execute(shared.data.crm, "update account set telephone1 = '999' where accountnumber = 'C00001'")
    store, endpoints = shared.engine(read_only=True)
    mapping = Mapping.from_definition(store.get_mapping("CUSTOMER"))
    tables = open_tables(mapping, endpoints)
    report = verify_mapping(mapping, tables, mapping.bind(tables), store).as_dict()
    assert report["couplings"] == 250 and report["in_agreement"] == 249
    # the ambiguous records were left uncoupled on purpose: verify lists them
    assert report["counts"]["uncoupled_local"] + report["counts"]["uncoupled_integration"] == 15
    assert report["differing"] == [{"local_id": "C00001", "integration_id": report["differing"][0]["integration_id"],
                                    "fields": [{"field": "telephone1", "side": "integration", "expected": "+45 1000 0001", "actual": "999"}]}]
