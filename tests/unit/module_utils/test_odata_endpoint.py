"""The web endpoints (Dataverse, Business Central) against the protocol test double in tests/support.

Every test runs real HTTP on 127.0.0.1 through the endpoint and the sync engine.
"""

from __future__ import annotations

import os
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from ansible_collections.tablesync.integration.plugins.module_utils import odata_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support import FaultPlan, ODataService
from tests.support.fixtures import ROOT
from tests.support.web_schemas import (
    declare_business_central,
    declare_dataverse,
    endpoint_options,
    seed_business_central,
    seed_dataverse_users,
)

CONTACT_LOOKUP = {"contacts.parentcustomerid": {"navigation": "parentcustomerid_account", "entity_set": "accounts"}}


def bc_dataverse_set() -> list[dict]:
    with open(os.path.join(ROOT, "roles", "default_mappings", "defaults", "main.yml")) as handle:
        return yaml.safe_load(handle)["default_mappings_business_central_dataverse"]


def alone(definition: dict) -> dict:
    """A default mapping declared without the mappings its lookups translate through."""
    fields = [f for f in definition["fields"] if not f.get("lookup")]
    return dict(definition, fields=fields, dependencies=[], match_on=None)


@pytest.fixture
def services():
    with ODataService("business_central") as bc, ODataService("dataverse") as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        yield bc, dv


class Pair:
    """The engine between a Business Central double (local) and a Dataverse double (integration)."""

    def __init__(self, bc: ODataService, dv: ODataService, store_path: str, **options):
        self.bc, self.dv, self.store_path = bc, dv, store_path
        self.local = endpoint_options(bc, **options.get("local", {}))
        self.integration = endpoint_options(dv, lookups=CONTACT_LOOKUP, **options.get("integration", {}))
        self.opened: list = []

    def engine(self):
        store = Store(self.store_path)
        endpoints = {"local": open_endpoint("local", self.local), "integration": open_endpoint("integration", self.integration)}
        self.opened += [store, *endpoints.values()]
        return store, endpoints

    def declare(self, definitions=None):
        store, endpoints = self.engine()
        for definition in definitions if definitions is not None else bc_dataverse_set():
            clean = normalize(definition)
            mapping = Mapping.from_definition(clean)
            mapping.bind(open_tables(mapping, endpoints))
            store.put_mapping(clean)

    def run(self, mode="full", names=None, **options):
        store, endpoints = self.engine()
        return SyncRunner(store, endpoints, RunOptions(**options)).run(mode, names)

    def close(self):
        for item in self.opened:
            item.close()


@pytest.fixture
def pair(services, tmp_path):
    bc, dv = services
    p = Pair(bc, dv, str(tmp_path / "store.sqlite"))
    yield p
    p.close()


def counts(result, name):
    return next(j.counts for j in result.jobs if j.mapping == name)


def writes(svc: ODataService) -> int:
    """Requests that write: single-record requests, $batch and CreateMultiple/UpdateMultiple."""
    return sum(n for (method, kind), n in svc.request_counts().items() if method in ("POST", "PATCH", "DELETE") and kind != "token")


# -- columns, reads ------------------------------------------------------------------------------


def test_columns_come_from_metadata_and_tables_resolve_by_entity_type(services):
    bc, dv = services
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        table = endpoint.table("account", "accountid")  # the entity type name finds the entity set
        cols = table.info.columns
        assert table.info.name == "accounts"
        assert (cols["accountid"].kind, cols["accountid"].primary_key) == ("uuid", True)
        assert (cols["name"].kind, cols["name"].max_length) == ("text", 160)
        assert cols["creditlimit"].kind == "decimal" and cols["creditonhold"].kind == "boolean"
        assert cols["modifiedon"].kind == "datetime" and cols["modifiedon"].server_generated
        assert cols["ownerid"].kind == "uuid"  # the lookup, read from _ownerid_value
        with pytest.raises(EndpointError, match="no entity set nosuchtable"):
            endpoint.table("nosuchtable", "id")
    finally:
        endpoint.close()


def test_scan_selects_mapped_fields_filters_on_the_service_and_follows_next_links(services):
    bc = services[0]
    seed_business_central(bc, customers=7)
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        table = endpoint.table("customers", "id")
        from ansible_collections.tablesync.integration.plugins.module_utils.filters import parse_filter

        where = parse_filter("city eq 'Springfield' and number ne 'C00003'")
        fields = ["id", "number", "lastModifiedDateTime"]
        bc.reset_counters()
        pages = list(table.scan(fields, where=where, modified_field="lastModifiedDateTime", page_size=2))
        assert [len(p) for p in pages] == [2, 2, 2]
        assert sorted(r[1] for p in pages for r in p) == ["C%05d" % i for i in range(7) if i != 3]
        reads = [r for r in bc.request_log if r.kind == "collection" and "customers" in r.path]
        assert len(reads) == 3  # three server pages through @odata.nextLink
        first = [r for r in bc.request_log if "customers" in r.path][0]
        assert first.status == 200
        since = max(r[2] for p in pages for r in p)
        bc.update("customers", pages[0][0][0], {"displayName": "changed"})
        changed = [r[1] for p in table.scan(fields, modified_field="lastModifiedDateTime", modified_since=since) for r in p]
        assert "C00000" in changed or pages[0][0][1] in changed
    finally:
        endpoint.close()


def test_scan_request_carries_select_filter_orderby_and_maxpagesize(services, monkeypatch):
    dv = services[1]
    dv.insert("accounts", [{"name": "A%d" % i, "accountnumber": "N%d" % i} for i in range(3)])
    endpoint = open_endpoint("integration", endpoint_options(dv))
    sent = []
    original = endpoint.client.session.request

    def spy(method, url, **kw):
        sent.append((method, url, dict(kw.get("headers") or {})))
        return original(method, url, **kw)

    monkeypatch.setattr(endpoint.client.session, "request", spy)
    try:
        import datetime

        table = endpoint.table("accounts", "accountid")
        list(table.scan(["accountid", "name", "modifiedon"], modified_field="modifiedon",
                        modified_since=datetime.datetime(2020, 1, 1), page_size=2))
        get = [s for s in sent if s[0] == "GET" and "accounts?" in s[1]][0]
        query = parse_qs(urlsplit(get[1]).query)
        assert query["$select"] == ["accountid,name,modifiedon"]
        assert query["$filter"] == ["modifiedon ge 2020-01-01T00:00:00Z"]
        assert query["$orderby"] == ["modifiedon asc,accountid asc"]
        assert "$skip" not in query and get[2]["Prefer"] == "odata.maxpagesize=2"
    finally:
        endpoint.close()


# -- the default mapping set, business_central -> dataverse --------------------------------------------


def test_default_set_business_central_to_dataverse_full_then_modified(pair):
    bc, dv = pair.bc, pair.dv
    seed_business_central(bc, customers=25)
    seed_dataverse_users(dv)
    pair.declare()
    result = pair.run("full")
    assert result.status == "success", [j.errors for j in result.jobs]
    assert counts(result, "CUSTOMER")["inserted"] == 25
    assert counts(result, "CONTACTS")["inserted"] == 25
    assert counts(result, "ITEM-PRODUCT")["inserted"] == 10
    # salespeople exist on both sides: coupled on their code, none created twice
    assert counts(result, "SALESPEOPLE")["coupled"] == 3 and counts(result, "SALESPEOPLE")["inserted"] == 0
    accounts = {a["accountnumber"]: a for a in dv.rows("accounts")}
    assert accounts["C00004"]["name"] == "Customer 4" and accounts["C00004"]["creditlimit"] == 1042
    assert {p["producttypecode"] for p in dv.rows("products")} == {1}
    assert sorted(s["code"] for s in bc.rows("salespeoplePurchasers")) == ["SP00", "SP01", "SP02"]
    users = {u["nickname"]: u["systemuserid"] for u in dv.rows("systemusers")}
    customers = {c["number"]: c for c in bc.rows("customers")}
    assert {n: a["_ownerid_value"] for n, a in accounts.items()} == {n: users[c["salespersonCode"]] for n, c in customers.items()}

    # nothing changed: a modified run writes nothing
    dv.reset_counters()
    again = pair.run("modified")
    assert not again.changed and writes(dv) == 0

    customer = next(c for c in bc.rows("customers") if c["number"] == "C00007")
    bc.update("customers", customer["id"], {"displayName": "Renamed 7"})
    modified = pair.run("modified")
    assert counts(modified, "CUSTOMER")["modified"] == 1 and counts(modified, "CUSTOMER")["inserted"] == 0
    assert {a["accountnumber"]: a["name"] for a in dv.rows("accounts")}["C00007"] == "Renamed 7"
    assert len(dv.rows("accounts")) == 25

    # a salesperson renamed in Dataverse is updated in Business Central, addressed by its entity id
    user = next(u for u in dv.rows("systemusers") if u["nickname"] == "SP01")
    dv.update("systemusers", user["systemuserid"], {"fullname": "Renamed Person"})
    renamed = pair.run("modified")
    assert counts(renamed, "SALESPEOPLE")["modified"] == 1
    assert {s["code"]: s["displayName"] for s in bc.rows("salespeoplePurchasers")}["SP01"] == "Renamed Person"
    assert len(bc.rows("salespeoplePurchasers")) == 3


def test_bulk_writes_take_at_most_two_requests_per_thousand_records(pair):
    bc, dv = pair.bc, pair.dv
    bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(1000)])
    pair.declare([alone(m) for m in bc_dataverse_set() if m["name"] == "CUSTOMER"])
    dv.reset_counters()
    assert counts(pair.run("full"), "CUSTOMER")["inserted"] == 1000
    assert writes(dv) <= 2 and dv.row_writes["create"] == 1000
    for row in bc.rows("customers"):
        bc.update("customers", row["id"], {"displayName": row["displayName"] + " v2"})
    dv.reset_counters()
    assert counts(pair.run("modified"), "CUSTOMER")["modified"] == 1000
    assert writes(dv) <= 2 and dv.row_writes["update"] == 1000


def test_a_refused_record_fails_alone_with_the_service_message(pair):
    bc, dv = pair.bc, pair.dv
    bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(5)])
    bc.insert("customers", [{"number": "LONG", "displayName": "x" * 100}])
    dv._defs["accounts"].fields["name"] = type(dv._defs["accounts"].fields["name"])("string", 50)  # a narrower column on the service
    pair.declare([alone(m) for m in bc_dataverse_set() if m["name"] == "CUSTOMER"])
    pair.integration["bulk_operations"] = True
    # the engine checks lengths against $metadata first; bypass it by a direct endpoint write
    endpoint = open_endpoint("integration", pair.integration)
    try:
        table = endpoint.table("account", "accountid")
        rows = [{"accountid": table.new_id(), "name": "ok %d" % i} for i in range(3)] + [{"accountid": table.new_id(), "name": "y" * 60}]
        results = table.insert(rows)
        assert [r.ok for r in results] == [True, True, True, False]
        assert "exceeded the maximum allowed length of '50'" in results[3].error
        assert sorted(a["name"] for a in dv.rows("accounts")) == ["ok 0", "ok 1", "ok 2"]
    finally:
        endpoint.close()
    result = pair.run("full")
    job = counts(result, "CUSTOMER")
    assert job["inserted"] == 5 and job["failed"] == 1
    error = result.jobs[0].errors[0]
    assert "50" in error["message"]


def test_lookups_are_bound_and_read_back(services):
    dv = services[1]
    endpoint = open_endpoint("integration", endpoint_options(dv, lookups=CONTACT_LOOKUP))
    try:
        users = seed_dataverse_users(dv)
        accounts = endpoint.table("account", "accountid")
        account_id = accounts.new_id()
        assert accounts.insert([{"accountid": account_id, "name": "Parent", "ownerid": users[1]}])[0].ok
        contacts = endpoint.table("contact", "contactid")
        contact_id = contacts.new_id()
        assert contacts.insert([{"contactid": contact_id, "lastname": "Child", "parentcustomerid": account_id}])[0].ok
        assert dv.get("contacts", contact_id)["_parentcustomerid_value"] == account_id
        assert dv.get("accounts", account_id)["_ownerid_value"] == users[1]
        assert contacts.read_by_ids([contact_id], ["contactid", "parentcustomerid"]) == [(contact_id, account_id)]
        assert contacts.update([(contact_id, {"parentcustomerid": None})])[0].ok
        assert dv.get("contacts", contact_id)["_parentcustomerid_value"] is None
    finally:
        endpoint.close()
    ambiguous = open_endpoint("integration", endpoint_options(dv))
    try:
        table = ambiguous.table("contacts", "contactid")
        result = table.insert([{"contactid": table.new_id(), "parentcustomerid": account_id}])[0]
        assert not result.ok and "parentcustomerid_account, parentcustomerid_contact" in result.error
    finally:
        ambiguous.close()


def test_business_central_updates_send_the_record_etag(services):
    bc = services[0]
    [rid] = bc.insert("customers", [{"number": "C1", "displayName": "One"}])
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        table = endpoint.table("customers", "id")
        assert table.update([(rid, {"displayName": "Two"})])[0].ok
        assert bc.get("customers", rid)["displayName"] == "Two"
        gone = table.update([("3f2504e0-4f89-41d3-9a0c-0305e82c3301", {"displayName": "x"})])[0]
        assert gone.missing and not gone.ok
        assert table.delete([rid])[0].ok and bc.get("customers", rid) is None
    finally:
        endpoint.close()


# -- crash safety ----------------------------------------------------------------------------------


class Killed(BaseException):
    """Stands for the process being killed right after a write request went through."""


def test_a_create_interrupted_before_its_coupling_is_not_duplicated(pair, monkeypatch):
    bc, dv = pair.bc, pair.dv
    bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(5)])
    seed_dataverse_users(dv)
    customer = [alone(m) for m in bc_dataverse_set() if m["name"] in ("CUSTOMER", "SALESPEOPLE")]
    pair.declare(customer)
    original = odata_endpoint.ODataTable.insert

    def insert_then_die(self, rows):
        original(self, rows)
        raise Killed()

    monkeypatch.setattr(odata_endpoint.ODataTable, "insert", insert_then_die)
    with pytest.raises(Killed):
        pair.run("full", ["CUSTOMER"])  # Dataverse: client-chosen GUIDs recorded before the request
    with pytest.raises(Killed):
        pair.run("full", ["SALESPEOPLE"])  # Business Central: server ids, found again by their values
    monkeypatch.setattr(odata_endpoint.ODataTable, "insert", original)
    result = pair.run("full")
    assert counts(result, "CUSTOMER")["coupled"] == 5 and counts(result, "CUSTOMER")["inserted"] == 0
    assert counts(result, "SALESPEOPLE")["coupled"] == 3 and counts(result, "SALESPEOPLE")["inserted"] == 0
    assert len(dv.rows("accounts")) == 5 and len(bc.rows("salespeoplePurchasers")) == 3


# -- service protection, tokens, secrets ---------------------------------------------------------------------


def test_full_sync_of_2000_records_survives_throttling_and_resets(pair):
    bc, dv = pair.bc, pair.dv
    bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(2000)])
    pair.declare([alone(m) for m in bc_dataverse_set() if m["name"] == "CUSTOMER"])
    plans = [FaultPlan(rate=0.1, kinds=("429", "503", "reset"), retry_after=1, seed=seed) for seed in (3, 4)]
    bc.faults, dv.faults = plans
    dv.reset_counters()
    result = pair.run("full", batch_size=200)
    bc.faults = dv.faults = None
    assert counts(result, "CUSTOMER")["inserted"] == 2000 and counts(result, "CUSTOMER")["failed"] == 0
    numbers = Counter(a["accountnumber"] for a in dv.rows("accounts"))
    assert len(numbers) == 2000 and set(numbers.values()) == {1}
    assert sum(len(p.injected) for p in plans) >= 2  # faults were really injected
    assert pair.run("modified").jobs[0].counts["inserted"] == 0


def test_expired_token_is_renewed_and_a_bad_secret_is_never_shown(services):
    dv = services[1]
    dv.insert("accounts", [{"name": "A"}])
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        table = endpoint.table("accounts", "accountid")
        dv.expire_tokens()
        assert len(table.read_by_ids([r["accountid"] for r in dv.rows("accounts")], ["accountid"])) == 1
        assert dv.request_counts()[("POST", "token")] == 2
    finally:
        endpoint.close()
    secret = "s3cr3t-value-that-must-not-leak"
    bad = open_endpoint("integration", endpoint_options(dv, client_secret=secret))
    try:
        with pytest.raises(EndpointError) as raised:
            bad.table("accounts", "accountid")
        assert "token request" in str(raised.value) and secret not in str(raised.value)
    finally:
        bad.close()


def test_static_token(services):
    dv = services[1]
    dv.add_static_token("static-test-token")
    endpoint = open_endpoint("integration", {"type": "dataverse", "url": dv.api_root, "token": "static-test-token"})
    try:
        assert endpoint.table("accounts", "accountid").info.name == "accounts"
        assert dv.request_counts()[("POST", "token")] == 0
    finally:
        endpoint.close()


# -- change tracking and deletions -----------------------------------------------------------------


def test_dataverse_change_tracking_reads_changes_and_deletions_and_recovers_from_an_expired_link(services):
    dv = services[1]
    ids = dv.insert("accounts", [{"name": "A%d" % i, "accountnumber": "N%d" % i} for i in range(6)])
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        from ansible_collections.tablesync.integration.plugins.module_utils.filters import parse_filter

        table = endpoint.table("accounts", "accountid")
        where = parse_filter("accountnumber ne 'N5'")  # applied on the client: no $filter with change tracking
        first = table.track_changes(["accountid", "name"], where=where, page_size=4)
        pages = list(first.pages())
        assert first.full and sorted(r[1] for rows, gone in pages for r in rows) == ["A0", "A1", "A2", "A3", "A4"]
        assert len(pages) == 2 and first.delta_link
        dv.update("accounts", ids[1], {"name": "B1"})
        dv.delete("accounts", ids[2])
        delta = table.track_changes(["accountid", "name"], first.delta_link, where=where)
        changes = list(delta.pages())
        assert not delta.full
        assert [r for rows, gone in changes for r in rows] == [(ids[1], "B1")]
        assert [d for rows, deleted in changes for d in deleted] == [ids[2]]
        dv.expire_delta_tokens()
        again = table.track_changes(["accountid", "name"], delta.delta_link)
        assert len([r for rows, gone in again.pages() for r in rows]) == 5 and again.full and again.delta_link
    finally:
        endpoint.close()


def test_business_central_deletions_are_found_by_reading_the_coupled_ids(services):
    # why: Business Central has no change tracking; a full sync's deletion check reads the coupled ids (deletions.py)
    bc = services[0]
    ids = bc.insert("customers", [{"number": "C%d" % i, "displayName": "C"} for i in range(7)])
    bc.delete("customers", ids[3])
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        still = {row[0] for row in endpoint.table("customers", "id").read_by_ids(ids, ["id"])}
        assert set(ids) - still == {ids[3]}
        with pytest.raises(EndpointError, match="Dataverse feature"):
            endpoint.table("customers", "id").track_changes(["id"])
    finally:
        endpoint.close()


def test_retries_honour_retry_after_back_off_without_it_and_give_up_in_bounded_time(services):
    bc, dv = services
    dv.insert("accounts", [{"name": "A"}])
    endpoint = open_endpoint("integration", endpoint_options(dv))
    waits: list[float] = []
    try:
        table = endpoint.table("accounts", "accountid")
        endpoint.client._sleep = waits.append
        dv.faults = FaultPlan(sequence=["429", "503", "reset"], retry_after=1)
        assert [r[1] for p in table.scan(["accountid", "name"]) for r in p] == ["A"]
        assert waits[:2] == [1.0, 1.0] and 0 < waits[2] < 1  # Retry-After twice, then back-off after the reset
        dv.faults = FaultPlan(sequence=["503"] * 1000, retry_after=1)
        endpoint.client.settings.max_retry_seconds = 5
        waits.clear()
        with pytest.raises(EndpointError, match="HTTP 503"):
            list(table.scan(["accountid"]))
        assert sum(waits) <= 5
    finally:
        dv.faults = None
        endpoint.close()
    bc_endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        table = bc_endpoint.table("customers", "id")
        bc_endpoint.client._sleep = waits.append
        waits.clear()
        bc.faults = FaultPlan(sequence=["429"])  # Business Central may send no Retry-After
        assert list(table.scan(["id"])) == []
        assert len(waits) == 1 and 0 < waits[0] < 1
    finally:
        bc.faults = None
        bc_endpoint.close()


def test_a_stale_business_central_etag_fails_the_record_alone(services, monkeypatch):
    bc = services[0]
    ids = bc.insert("customers", [{"number": "C%d" % i, "displayName": "C"} for i in range(3)])
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        table = endpoint.table("customers", "id")
        original = table._current

        def etags_then_someone_edits(record_ids, columns=()):
            found = original(record_ids, columns)
            bc.update("customers", ids[1], {"displayName": "edited elsewhere"})
            return found

        monkeypatch.setattr(table, "_current", etags_then_someone_edits)
        results = table.update([(i, {"displayName": "ours"}) for i in ids])
        assert [r.ok for r in results] == [True, False, True]
        assert "Another user has already changed the record" in results[1].error
        assert bc.get("customers", ids[1])["displayName"] == "edited elsewhere"
    finally:
        endpoint.close()


def test_a_filter_business_central_refuses_is_applied_on_the_client(services):
    bc = services[0]
    bc.insert("customers", [{"number": "C%d" % i, "displayName": "D%d" % i, "city": "X" if i % 2 else "Y"} for i in range(6)])
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        from ansible_collections.tablesync.integration.plugins.module_utils.filters import parse_filter

        where = parse_filter("city eq 'X' or number eq 'C0'")  # 'or' across fields: refused by Business Central
        rows = [r for p in endpoint.table("customers", "id").scan(["id", "number"], where=where) for r in p]
        assert sorted(r[1] for r in rows) == ["C0", "C1", "C3", "C5"]
        assert any(r.status == 400 for r in bc.request_log)
    finally:
        endpoint.close()


@pytest.mark.parametrize("bulk", [True, False])
def test_a_create_whose_answer_was_lost_is_not_made_twice(services, bulk):
    bc, dv = services
    for svc, options, name, key, values in (
        (dv, {"bulk_operations": bulk}, "accounts", "accountid", lambda i: {"name": "A%d" % i}),
        (bc, {}, "customers", "id", lambda i: {"number": "C%d" % i, "displayName": "C%d" % i}),
    ):
        endpoint = open_endpoint("integration", endpoint_options(svc, **options))
        try:
            table = endpoint.table(name, key)
            endpoint.client._sleep = lambda seconds: None
            rows = [dict(values(i), **({key: table.new_id()} if table.new_id() else {})) for i in range(5)]
            svc.faults = FaultPlan(sequence=["reset_after"])  # processed, then the answer is lost
            results = table.insert(rows)
            svc.faults = None
            assert all(r.ok for r in results), results
            assert len(svc.rows(name)) == 5 and len({r.record_id for r in results}) == 5
            assert {r.record_id for r in results} == {row[key] for row in svc.rows(name)}
        finally:
            svc.faults = None
            endpoint.close()


def test_sync_into_business_central_survives_lost_answers_without_duplicates(pair):
    bc, dv = pair.bc, pair.dv
    dv.insert("systemusers", [{"fullname": "User %d" % i, "nickname": "U%04d" % i} for i in range(300)])
    pair.declare([m for m in bc_dataverse_set() if m["name"] == "SALESPEOPLE"])
    bc.faults = FaultPlan(rate=0.2, kinds=("429", "503", "reset", "reset_after"), seed=11)
    dv.faults = FaultPlan(rate=0.1, kinds=("429", "503", "reset"), retry_after=1, seed=12)
    result = pair.run("full", batch_size=50)
    injected = [fault[1] for fault in bc.faults.injected]
    bc.faults = dv.faults = None
    assert "reset_after" in injected
    job = counts(result, "SALESPEOPLE")
    assert job["inserted"] == 300 and job["failed"] == 0
    codes = Counter(s["code"] for s in bc.rows("salespeoplePurchasers"))
    assert len(codes) == 300 and set(codes.values()) == {1}


def test_a_table_without_bulk_operations_is_written_with_batch(services, monkeypatch):
    dv = services[1]
    from tests.support.odata_model import ODataError

    def unsupported(table, action, req):
        raise ODataError(404, "0x80060888", "Resource not found for the segment 'Microsoft.Dynamics.CRM.%s'." % action)

    monkeypatch.setattr(dv._dispatcher, "bulk", unsupported)
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        table = endpoint.table("accounts", "accountid")
        for round_ in range(2):
            assert all(r.ok for r in table.insert([{"accountid": table.new_id(), "name": "A%d%d" % (round_, i)} for i in range(3)]))
        assert dv.request_counts()[("POST", "bulk")] == 1 and dv.request_counts()[("POST", "batch")] == 2
        assert len(dv.rows("accounts")) == 6
    finally:
        endpoint.close()
