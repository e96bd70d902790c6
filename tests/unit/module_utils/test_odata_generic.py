"""The generic ``odata`` endpoint against a real OData v4 server (odatapy's in-memory service)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import rows
from tests.support.odatapy_server import ODataV4Server

MAPPING = {
    "name": "CUSTOMER-ODATA",
    "local_table": "customer",
    "local_key": "no",
    "local_modified_field": "modified_on",
    "integration_table": "Customers",
    "integration_key": "ID",
    "integration_modified_field": "ModifiedAt",
    "direction": "to_integration",
    "fields": [
        {"field": "no", "integration_field": "Number"},
        {"field": "name", "integration_field": "Name"},
        {"field": "city", "integration_field": "City"},
        {"field": "credit_limit", "integration_field": "CreditLimit"},
        {"field": "blocked", "integration_field": "Blocked"},
    ],
}


@pytest.fixture
def server():
    with ODataV4Server() as srv:
        yield srv


def run(demo, server, mode, options=None):
    store = Store(demo.store_path)
    endpoints = {"local": open_endpoint("local", demo.local),
                 "integration": open_endpoint("integration", options or {"type": "odata", "url": server.url})}
    try:
        if not store.list_mappings():
            clean = normalize(MAPPING)
            Mapping.from_definition(clean).bind(open_tables(Mapping.from_definition(clean), endpoints))
            store.put_mapping(clean)
        return SyncRunner(store, endpoints).run(mode).jobs[0].counts
    finally:
        for item in (store, *endpoints.values()):
            item.close()


def odata_rows(server, options=None):
    endpoint = open_endpoint("integration", options or {"type": "odata", "url": server.url})
    try:
        table = endpoint.table("Customers", "ID")
        fields = ["ID", "Number", "Name", "City", "CreditLimit", "Blocked"]
        return {r[1]: dict(zip(fields, r)) for page in table.scan(fields) for r in page}
    finally:
        endpoint.close()


def test_sqlite_to_a_real_odata_v4_service_full_and_modified(demo, server):
    endpoint = open_endpoint("integration", {"type": "odata", "url": server.url})
    try:
        columns = endpoint.table("Customers", "ID").info.columns
        assert (columns["ID"].kind, columns["Name"].max_length, columns["CreditLimit"].kind) == ("uuid", 100, "decimal")
        assert columns["ModifiedAt"].kind == "datetime" and columns["Blocked"].kind == "boolean"
    finally:
        endpoint.close()
    counts = run(demo, server, "full")
    local = {r[0]: r for r in rows(demo.erp, "SELECT no, name, city, credit_limit FROM customer")}
    assert counts["inserted"] == len(local) and counts["failed"] == 0
    remote = odata_rows(server)
    assert set(remote) == set(local)
    some = next(iter(local))
    assert remote[some]["Name"] == local[some][1] and remote[some]["CreditLimit"] == Decimal(str(local[some][3]))

    changed = demo.change_customers(5)
    counts = run(demo, server, "modified")
    assert counts["modified"] == 5 and counts["inserted"] == 0
    local = {r[0]: r[1] for r in rows(demo.erp, "SELECT no, name FROM customer")}
    remote = odata_rows(server)
    assert all(remote[no]["Name"] == local[no] for no in changed)
    assert run(demo, server, "modified")["modified"] == 0


def test_reads_filter_and_page_on_a_real_odata_v4_service(demo, server):
    run(demo, server, "full")
    from ansible_collections.tablesync.integration.plugins.module_utils.filters import parse_filter

    expected = sorted(r[0] for r in rows(demo.erp, "SELECT no FROM customer WHERE credit_limit >= 5000"))
    assert 0 < len(expected) < 200
    endpoint = open_endpoint("integration", {"type": "odata", "url": server.url})
    try:
        table = endpoint.table("Customers", "ID")
        pages = list(table.scan(["ID", "Number"], where=parse_filter("CreditLimit ge 5000"), page_size=7))
        assert sorted(r[1] for p in pages for r in p) == expected
        assert len(pages) > 1  # server-driven paging followed through @odata.nextLink
        ids = [p[0][0] for p in pages[:2]]
        assert sorted(r[0] for r in table.read_by_ids(ids, ["ID"])) == sorted(ids)
        assert table.delete(ids[:1])[0].ok and table.update([(ids[0], {"Name": "gone"})])[0].missing
    finally:
        endpoint.close()


# -- authentication ---------------------------------------------------------------------------------------

BASIC_PASSWORD = "b4sic-Pa55-never-shown"
API_KEY = "k3y-never-shown-0123456789"


def test_a_source_behind_http_basic_synchronises(demo):
    with ODataV4Server(basic=("sync-user", BASIC_PASSWORD)) as srv:
        options = {"type": "odata", "url": srv.url, "user": "sync-user", "password": BASIC_PASSWORD}
        counts = run(demo, srv, "full", options)
        local = {r[0]: r[1] for r in rows(demo.erp, "SELECT no, name FROM customer")}
        assert counts["inserted"] == len(local) and counts["failed"] == 0
        assert {no: r["Name"] for no, r in odata_rows(srv, options).items()} == local
        assert srv.refused == 0
        for wrong in ({"type": "odata", "url": srv.url, "user": "sync-user", "password": "wrong-" + BASIC_PASSWORD},
                      {"type": "odata", "url": srv.url}):
            assert_refused(wrong, "Customers", "ID", BASIC_PASSWORD)
        assert srv.refused == 2


def assert_refused(options: dict, entity_set: str, key: str, secret: str) -> None:
    """Opening the entity set with these credentials fails with HTTP 401, and the message never holds the secret."""
    endpoint = open_endpoint("integration", options)
    try:
        with pytest.raises(EndpointError, match="HTTP 401") as raised:
            endpoint.table(entity_set, key)
        assert secret not in str(raised.value)
    finally:
        endpoint.close()


def test_an_api_key_header_authenticates_alone_or_with_basic():
    with ODataV4Server(api_key=("APIKey", API_KEY)) as srv:
        options = {"type": "odata", "url": srv.url, "api_key": API_KEY, "api_key_header": "APIKey"}
        endpoint = open_endpoint("integration", options)
        try:
            table = endpoint.table("Codes", "Code")
            assert table.insert([{"Code": "K1", "Name": "one"}])[0].ok
        finally:
            endpoint.close()
        assert_refused(dict(options, api_key="wrong"), "Codes", "Code", API_KEY)
    with ODataV4Server(basic=("u", BASIC_PASSWORD), api_key=("X-API-Key", API_KEY)) as srv:
        endpoint = open_endpoint("integration", {"type": "odata", "url": srv.url, "user": "u", "password": BASIC_PASSWORD, "api_key": API_KEY})
        try:
            assert endpoint.table("Codes", "Code").read_by_ids(["none"], ["Code"]) == []
        finally:
            endpoint.close()


@pytest.mark.parametrize("options, message", [
    ({"user": "u", "password": "p", "token": "t"}, "token and user are all set"),
    ({"password": "p"}, "with 'password' needs 'user'"),
    ({"user": "u", "client_id": "c", "scope": "s/.default"}, "client_id and user are all set"),
])
def test_conflicting_credentials_are_refused_before_any_request(options, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        open_endpoint("integration", dict({"type": "odata", "url": "http://127.0.0.1:9/odata/"}, **options))
    assert "'p'" not in str(raised.value)
