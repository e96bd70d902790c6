"""Tests of the Dataverse / Business Central OData test double (tests/support).

Run from the repository root: ``.venv/bin/python -m pytest tests/unit/support -q``
(``python -m`` puts the repository root on sys.path, which ``import tests.support`` needs).
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support import (
    BatchChangeSet,
    BatchRequestPart,
    FaultPlan,
    ODataService,
    encode_json_request,
    encode_multipart_request,
    flatten_responses,
    parse_multipart_response,
)
from tests.support.batch_codec import BatchChangeSetResponse, parse_multipart_request
from tests.support.odata_model import ColumnType
from tests.support.query_eval import FilterEvaluator, QueryError, QueryOptions

ODATA_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


def fetch_token(svc: ODataService) -> str:
    response = requests.post(
        svc.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": svc.client_id,
            "client_secret": svc.client_secret,
            "scope": svc.accepted_scopes()[0],
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    return body["access_token"]


def session_for(svc: ODataService) -> requests.Session:
    session = requests.Session()
    session.headers.update(ODATA_HEADERS)
    session.headers["Authorization"] = f"Bearer {fetch_token(svc)}"
    return session


@pytest.fixture
def dv():
    with ODataService("dataverse") as svc:
        svc.add_entity_set(
            "accounts",
            fields={"name": "string(160)", "accountnumber": "string(20)", "revenue": "money", "numberofemployees": "int", "creditonhold": "bool"},
            change_tracking=True,
            alternate_keys=["accountnumber"],
        )
        svc.add_entity_set(
            "contacts",
            fields={"firstname": "string", "lastname": "string"},
            change_tracking=True,
            lookups={"parentcustomerid": [("parentcustomerid_account", "accounts"), ("parentcustomerid_contact", "contacts")]},
        )
        svc.add_entity_set("products", fields={"name": "string", "productnumber": "string"})
        yield svc


@pytest.fixture
def dvs(dv):
    session = session_for(dv)
    yield session
    session.close()


@pytest.fixture
def bc():
    with ODataService("business_central") as svc:
        svc.add_entity_set("customers", fields={"number": "string(20)", "displayName": "string(100)", "email": "string(80)", "creditLimit": "decimal"},
                           alternate_keys=["number"])
        svc.add_entity_set("items", fields={"number": "string(20)", "displayName": "string(100)", "unitPrice": "decimal"})
        yield svc


@pytest.fixture
def bcs(bc):
    session = session_for(bc)
    yield session
    session.close()


# ============================================================================================
# paging
# ============================================================================================


def test_paging_through_nextlink_returns_every_row_once_in_order(dv, dvs):
    dv.insert("accounts", [{"name": f"Account {i:02d}", "numberofemployees": i % 4} for i in range(23)])
    url = dv.base_url + "accounts?$select=name,numberofemployees&$orderby=numberofemployees desc,name asc"
    seen, pages = [], 0
    while url:
        response = dvs.get(url, headers={"Prefer": "odata.maxpagesize=5"})
        assert response.status_code == 200
        assert response.headers["OData-Version"] == "4.0"
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=5"
        body = response.json()
        assert len(body["value"]) <= 5
        seen += [(row["numberofemployees"], row["name"]) for row in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 5
    assert len(seen) == 23 and len(set(seen)) == 23
    assert seen == sorted(seen, key=lambda pair: (-pair[0], pair[1]))


def test_paging_default_order_and_skiptoken_is_opaque(dv, dvs):
    keys = dv.insert("accounts", [{"name": f"N{i}"} for i in range(7)])
    first = dvs.get(dv.base_url + "accounts", headers={"Prefer": "odata.maxpagesize=4"}).json()
    assert "$skiptoken=" in first["@odata.nextLink"]
    second = dvs.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=4"}).json()
    assert "@odata.nextLink" not in second
    returned = [row["accountid"] for row in first["value"] + second["value"]]
    assert sorted(returned) == sorted(keys)


def test_maxpagesize_default_5000_and_larger_requests_ignored(dv, dvs):
    dv.insert("products", [{"name": f"P{i}"} for i in range(5003)])
    default = dvs.get(dv.base_url + "products?$select=name")
    assert len(default.json()["value"]) == 5000
    assert "Preference-Applied" not in default.headers
    assert "@odata.nextLink" in default.json()
    too_big = dvs.get(dv.base_url + "products?$select=name", headers={"Prefer": "odata.maxpagesize=6000"})
    assert len(too_big.json()["value"]) == 5000
    assert "Preference-Applied" not in too_big.headers
    rest = dvs.get(default.json()["@odata.nextLink"]).json()
    assert len(rest["value"]) == 3 and "@odata.nextLink" not in rest


def test_count_top_and_skip(dv, dvs):
    dv.insert("accounts", [{"name": f"A{i}", "revenue": i * 10} for i in range(10)])
    body = dvs.get(dv.base_url + "accounts?$count=true&$filter=revenue ge 50&$top=2&$orderby=revenue").json()
    assert body["@odata.count"] == 5
    assert [row["revenue"] for row in body["value"]] == [50, 60]
    assert "@odata.nextLink" not in body
    # page-results.md: with both $top and odata.maxpagesize, $top is ignored.
    both = dvs.get(dv.base_url + "accounts?$top=2&$orderby=revenue", headers={"Prefer": "odata.maxpagesize=4"}).json()
    assert len(both["value"]) == 4 and "@odata.nextLink" in both
    skip = dvs.get(dv.base_url + "accounts?$skip=2")
    assert skip.status_code == 400
    assert skip.json()["error"]["message"] == "The query parameter $skip is not supported"
    count = dvs.get(dv.base_url + "accounts/$count")
    assert count.status_code == 200 and count.text == "10" and count.headers["Content-Type"].startswith("text/plain")


def test_filter_operators_over_http(dv, dvs):
    dv.insert(
        "accounts",
        [
            {"name": "Contoso Ltd", "accountnumber": "C1", "revenue": 100, "creditonhold": False},
            {"name": "contoso (sample)", "accountnumber": "C2", "revenue": 250.5, "creditonhold": True},
            {"name": "Fabrikam", "accountnumber": None, "revenue": None},
        ],
    )

    def names(expr):
        response = dvs.get(dv.base_url + "accounts", params={"$filter": expr, "$select": "name"})
        assert response.status_code == 200, response.text
        return sorted(row["name"] for row in response.json()["value"])

    assert names("name eq 'CONTOSO LTD'") == ["Contoso Ltd"]  # case-insensitive
    assert names("startswith(name,'cont') and revenue gt 100") == ["contoso (sample)"]
    assert names("contains(name,'(sample)') or accountnumber eq null") == ["Fabrikam", "contoso (sample)"]
    assert names("not startswith(name,'Con%')") == ["Fabrikam"]
    assert names("accountnumber in ('C1','C2')") == ["Contoso Ltd", "contoso (sample)"]
    assert names("accountnumber ne 'C1'") == ["contoso (sample)"]  # SQL semantics: null does not match ne
    assert names("creditonhold eq true") == ["contoso (sample)"]
    assert names(f"modifiedon ge 2000-01-01T00:00:00Z and accountid ne {uuid.uuid4()}") == ["Contoso Ltd", "Fabrikam", "contoso (sample)"]
    bad = dvs.get(dv.base_url + "accounts", params={"$filter": "revenue eq '100'"})
    assert bad.status_code == 400 and "incompatible types" in bad.json()["error"]["message"]
    unknown = dvs.get(dv.base_url + "accounts", params={"$filter": "nosuch eq 1"})
    assert unknown.status_code == 400 and "Could not find a property named 'nosuch'" in unknown.json()["error"]["message"]


# ============================================================================================
# writes
# ============================================================================================


def test_create_returns_odata_entityid_and_representation(dv, dvs):
    response = dvs.post(dv.base_url + "accounts", json={"name": "Sample Account", "revenue": 5000000})
    assert response.status_code == 204
    entity_id = response.headers["OData-EntityId"]
    assert entity_id.startswith(dv.base_url + "accounts(")
    key = entity_id[entity_id.index("(") + 1 : -1]
    row = dv.get("accounts", key)
    assert row["name"] == "Sample Account" and row["modifiedon"] and row["versionnumber"]

    representation = dvs.post(dv.base_url + "accounts?$select=name", json={"name": "With data"}, headers={"Prefer": "return=representation"})
    assert representation.status_code == 201
    assert representation.headers["Preference-Applied"] == "return=representation"
    assert "OData-EntityId" not in representation.headers
    body = representation.json()
    assert body["@odata.context"].endswith("$metadata#accounts(name)/$entity")
    assert body["name"] == "With data" and body["@odata.etag"].startswith('W/"')

    fetched = dvs.get(entity_id)
    assert fetched.status_code == 200 and fetched.json()["accountid"] == key


def test_create_with_client_key_and_duplicate(dv, dvs):
    key = str(uuid.uuid4())
    assert dvs.post(dv.base_url + "accounts", json={"accountid": key, "name": "Mine"}).status_code == 204
    duplicate = dvs.post(dv.base_url + "accounts", json={"accountid": key, "name": "Again"})
    assert duplicate.status_code == 412
    assert duplicate.json()["error"]["code"] == "0x80040237"
    invalid = dvs.post(dv.base_url + "accounts", json={"name": "x", "nosuchcolumn": 1})
    assert invalid.status_code == 400 and "Invalid property 'nosuchcolumn'" in invalid.json()["error"]["message"]
    too_long = dvs.post(dv.base_url + "accounts", json={"name": "x", "accountnumber": "A" * 21})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "0x80044331"
    assert len(dv.rows("accounts")) == 1


def test_patch_if_match_star_on_missing_is_404_and_plain_patch_upserts(dv, dvs):
    key = str(uuid.uuid4())
    missing = dvs.patch(f"{dv.base_url}accounts({key})", json={"name": "x"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "0x80040217", "message": f"account With Id = {key} Does Not Exist"}
    assert dv.rows("accounts") == []

    upsert = dvs.patch(f"{dv.base_url}accounts({key})", json={"name": "created by upsert"})
    assert upsert.status_code == 204
    assert dv.get("accounts", key)["name"] == "created by upsert"

    update = dvs.patch(f"{dv.base_url}accounts({key})", json={"name": "updated"}, headers={"If-Match": "*"})
    assert update.status_code == 204
    assert dv.get("accounts", key)["name"] == "updated"

    prevent_update = dvs.patch(f"{dv.base_url}accounts({key})", json={"name": "no"}, headers={"If-None-Match": "*"})
    assert prevent_update.status_code == 412


def test_dataverse_optimistic_concurrency_and_delete(dv, dvs):
    (key,) = dv.insert("accounts", [{"name": "v1"}])
    etag = dvs.get(f"{dv.base_url}accounts({key})").json()["@odata.etag"]
    not_modified = dvs.get(f"{dv.base_url}accounts({key})", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    dv.update("accounts", key, {"name": "changed by someone else"})
    stale = dvs.patch(f"{dv.base_url}accounts({key})", json={"name": "mine"}, headers={"If-Match": etag})
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "0x80060882"
    stale_delete = dvs.delete(f"{dv.base_url}accounts({key})", headers={"If-Match": etag})
    assert stale_delete.status_code == 412
    fresh = dv.etag("accounts", key)
    returned = dvs.patch(f"{dv.base_url}accounts({key})?$select=name", json={"name": "mine"}, headers={"If-Match": fresh, "Prefer": "return=representation"})
    assert returned.status_code == 200 and returned.json()["name"] == "mine"
    assert dvs.delete(f"{dv.base_url}accounts({key})").status_code == 204
    assert dvs.delete(f"{dv.base_url}accounts({key})").status_code == 404


def test_alternate_key_addressing_and_upsert(dv, dvs):
    dv.insert("accounts", [{"name": "Alt", "accountnumber": "ALT-1"}])
    got = dvs.get(dv.base_url + "accounts(accountnumber='ALT-1')")
    assert got.status_code == 200 and got.json()["name"] == "Alt"
    created = dvs.patch(dv.base_url + "accounts(accountnumber='ALT-2')", json={"name": "Upserted"})
    assert created.status_code == 204
    assert {r["accountnumber"] for r in dv.rows("accounts")} == {"ALT-1", "ALT-2"}
    duplicate = dvs.post(dv.base_url + "accounts", json={"name": "dup", "accountnumber": "alt-1"})
    assert duplicate.status_code == 412 and duplicate.json()["error"]["code"] == "0x80060892"


def test_lookup_bind_and_value(dv, dvs):
    (account,) = dv.insert("accounts", [{"name": "Parent"}])
    response = dvs.post(
        dv.base_url + "contacts",
        json={"lastname": "Smith", "parentcustomerid_account@odata.bind": f"/accounts({account})"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["_parentcustomerid_value"] == account
    contact = response.json()["contactid"]
    filtered = dvs.get(dv.base_url + "contacts", params={"$filter": f"_parentcustomerid_value eq {account}"}).json()
    assert [row["contactid"] for row in filtered["value"]] == [contact]
    annotated = dvs.get(f"{dv.base_url}contacts({contact})", headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert annotated["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"

    missing = str(uuid.uuid4())
    bad = dvs.post(dv.base_url + "contacts", json={"lastname": "X", "parentcustomerid_account@odata.bind": f"/accounts({missing})"})
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "0x80040217"
    read_only = dvs.post(dv.base_url + "contacts", json={"lastname": "X", "_parentcustomerid_value": account})
    assert read_only.status_code == 400
    cleared = dvs.patch(f"{dv.base_url}contacts({contact})", json={"parentcustomerid_account@odata.bind": None})
    assert cleared.status_code == 204 and dv.get("contacts", contact)["_parentcustomerid_value"] is None


# ============================================================================================
# Business Central
# ============================================================================================


def test_bc_companies_and_crud_with_etags(bc, bcs):
    companies = bcs.get(bc.api_root + "companies").json()["value"]
    assert [c["id"] for c in companies] == [bc.company_id]
    created = bcs.post(bc.base_url + "customers", json={"number": "C10000", "displayName": "Adatum"})
    assert created.status_code == 201
    body = created.json()
    assert body["@odata.etag"].startswith('W/"') and body["lastModifiedDateTime"].endswith("Z")
    assert body["email"] == ""  # BC blank values, never null
    key = body["id"]
    entity_url = f"{bc.base_url}customers({key})"
    assert created.headers["Location"] == entity_url

    no_if_match = bcs.patch(entity_url, json={"displayName": "x"})
    assert no_if_match.status_code == 400
    assert no_if_match.json()["error"]["code"] == "BadRequest_InvalidToken"
    assert bcs.delete(entity_url).status_code == 400

    ok = bcs.patch(entity_url, json={"displayName": "Adatum Corp"}, headers={"If-Match": body["@odata.etag"]})
    assert ok.status_code == 200 and ok.json()["displayName"] == "Adatum Corp"
    stale = bcs.patch(entity_url, json={"displayName": "stale"}, headers={"If-Match": body["@odata.etag"]})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "Request_EntityChanged"
    assert bc.get("customers", key)["displayName"] == "Adatum Corp"

    star = bcs.patch(entity_url, json={"creditLimit": 10}, headers={"If-Match": "*"})
    assert star.status_code == 200
    missing = bcs.patch(f"{bc.base_url}customers({uuid.uuid4()})", json={"displayName": "x"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert bcs.delete(entity_url, headers={"If-Match": star.json()["@odata.etag"]}).status_code == 204
    assert bc.rows("customers") == []


def test_bc_paging_filter_limitations_and_string_length(bc, bcs):
    bc.insert("customers", [{"number": f"C{i:03d}", "displayName": f"Customer {i}"} for i in range(9)])
    url = bc.base_url + "customers?$orderby=number"
    seen = []
    while url:
        body = bcs.get(url, headers={"Prefer": "odata.maxpagesize=4"}).json()
        seen += [row["number"] for row in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == [f"C{i:03d}" for i in range(9)]
    top_skip = bcs.get(bc.base_url + "customers?$orderby=number&$skip=2&$top=3&$count=true").json()
    assert [row["number"] for row in top_skip["value"]] == ["C002", "C003", "C004"] and top_skip["@odata.count"] == 9
    or_fields = bcs.get(bc.base_url + "customers", params={"$filter": "number eq 'C001' or displayName eq 'x'"})
    assert or_fields.status_code == 400 and "'OR' operator is not supported on distinct fields" in or_fields.json()["error"]["message"]
    same_field = bcs.get(bc.base_url + "customers", params={"$filter": "number eq 'C001' or number eq 'C002'"})
    assert len(same_field.json()["value"]) == 2
    too_long = bcs.post(bc.base_url + "customers", json={"number": "X" * 21})
    assert too_long.status_code == 400 and too_long.json()["error"]["code"] == "Application_StringExceededLength"


def test_bc_json_batch_isolation_snapshot_and_limit(bc, bcs):
    ok = {"method": "POST", "url": f"companies({bc.company_id})/items", "headers": {"Content-Type": "application/json"}, "body": {"number": "I1"}}
    bad = {"method": "POST", "url": f"companies({bc.company_id})/items", "headers": {"Content-Type": "application/json"}, "body": {"nosuch": 1}}
    response = bcs.post(bc.api_root + "$batch", json={"requests": [dict(ok, id="1"), dict(bad, id="2")]}, headers={"Isolation": "snapshot"})
    assert response.status_code == 200
    statuses = [(r["id"], r["status"]) for r in response.json()["responses"]]
    assert statuses == [("1", 201), ("2", 400)]
    assert bc.rows("items") == []  # Isolation: snapshot rolled the successful create back

    plain = bcs.post(bc.api_root + "$batch", json={"requests": [dict(ok, id="1"), dict(bad, id="2")]})
    assert [r["status"] for r in plain.json()["responses"]] == [201, 400]
    assert [row["number"] for row in bc.rows("items")] == ["I1"]

    over = bcs.post(bc.api_root + "$batch", json={"requests": [dict(ok, id=str(i)) for i in range(101)]})
    assert over.status_code == 400
    assert "'100'" in over.json()["error"]["message"]


# ============================================================================================
# $batch (Dataverse)
# ============================================================================================


def _post_batch(svc, session, items, **headers):
    content_type, body = encode_multipart_request(items)
    response = session.post(svc.api_root + "$batch", data=body, headers={"Content-Type": content_type, **headers})
    assert response.status_code == 200, response.text
    return parse_multipart_response(response.headers["Content-Type"], response.content), response


def _create(svc, name, content_id=None, **extra):
    body = json.dumps({"name": name, **extra}).encode()
    return BatchRequestPart("POST", svc.api_root + "accounts", {"Content-Type": "application/json"}, body, content_id)


def test_batch_continue_on_error_returns_successes(dv, dvs):
    items = [_create(dv, "one"), _create(dv, "two", nosuch=1), _create(dv, "three")]
    responses, raw = _post_batch(dv, dvs, items, Prefer="odata.continue-on-error")
    assert raw.headers["Preference-Applied"] == "odata.continue-on-error"
    assert [r.status for r in responses] == [204, 400, 204]
    assert responses[0].header("OData-EntityId") and responses[0].header("Location")
    assert sorted(r["name"] for r in dv.rows("accounts")) == ["one", "three"]


def test_batch_stops_at_first_error_without_continue_on_error(dv, dvs):
    items = [_create(dv, "one"), _create(dv, "two", nosuch=1), _create(dv, "three")]
    responses, _ignored = _post_batch(dv, dvs, items)
    assert [r.status for r in responses] == [204, 400]
    assert [r["name"] for r in dv.rows("accounts")] == ["one"]


def test_batch_changeset_is_atomic_and_supports_content_id(dv, dvs):
    good = BatchChangeSet(
        [
            _create(dv, "parent", content_id="1"),
            BatchRequestPart(
                "POST",
                dv.api_root + "contacts",
                {"Content-Type": "application/json"},
                json.dumps({"lastname": "child", "parentcustomerid_account@odata.bind": "$1"}).encode(),
                "2",
            ),
        ]
    )
    responses, _ignored = _post_batch(dv, dvs, [good, BatchRequestPart("GET", "accounts?$select=name", {"Accept": "application/json"})])
    assert isinstance(responses[0], BatchChangeSetResponse)
    assert [p.status for p in responses[0].parts] == [204, 204]
    assert [p.content_id for p in responses[0].parts] == ["1", "2"]
    assert responses[1].status == 200 and responses[1].json()["value"][0]["name"] == "parent"
    parent = dv.rows("accounts")[0]["accountid"]
    assert dv.rows("contacts")[0]["_parentcustomerid_value"] == parent

    failing = BatchChangeSet([_create(dv, "rolled back"), _create(dv, "bad", nosuch=1)])
    responses, _ignored = _post_batch(dv, dvs, [failing], Prefer="odata.continue-on-error")
    flat = flatten_responses(responses)
    assert len(flat) == 1 and flat[0].status == 400
    assert [r["name"] for r in dv.rows("accounts")] == ["parent"]


def test_batch_over_the_limit_is_400(dv, dvs):
    content_type, body = encode_multipart_request([_create(dv, f"a{i}") for i in range(1001)])
    response = dvs.post(dv.api_root + "$batch", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "maximum number of '1000'" in response.json()["error"]["message"]
    assert dv.rows("accounts") == []


# ============================================================================================
# bulk operations
# ============================================================================================


def test_createmultiple_is_all_or_nothing(dv, dvs):
    url = dv.base_url + "accounts/Microsoft.Dynamics.CRM.CreateMultiple"
    targets = [{"name": f"bulk {i}", "@odata.type": "Microsoft.Dynamics.CRM.account"} for i in range(3)]
    ok = dvs.post(url, json={"Targets": targets})
    assert ok.status_code == 200
    ids = ok.json()["Ids"]
    assert len(ids) == 3 and ok.json()["@odata.context"].endswith("Microsoft.Dynamics.CRM.CreateMultipleResponse")
    assert dv.request_counts()[("POST", "bulk")] == 1

    broken = targets + [{"name": "bad", "revenue": "lots", "@odata.type": "Microsoft.Dynamics.CRM.account"}]
    failed = dvs.post(url, json={"Targets": broken})
    assert failed.status_code == 400
    assert len(dv.rows("accounts")) == 3
    untyped = dvs.post(url, json={"Targets": [{"name": "no type"}]})
    assert untyped.status_code == 400

    update_url = dv.base_url + "accounts/Microsoft.Dynamics.CRM.UpdateMultiple"
    updates = [{"accountid": k, "name": "renamed", "@odata.type": "Microsoft.Dynamics.CRM.account"} for k in ids]
    missing = updates + [{"accountid": str(uuid.uuid4()), "name": "ghost", "@odata.type": "Microsoft.Dynamics.CRM.account"}]
    assert dvs.post(update_url, json={"Targets": missing}).status_code == 404
    assert {r["name"] for r in dv.rows("accounts")} == {"bulk 0", "bulk 1", "bulk 2"}
    assert dvs.post(update_url, json={"Targets": updates}).status_code == 204
    assert {r["name"] for r in dv.rows("accounts")} == {"renamed"}


# ============================================================================================
# change tracking
# ============================================================================================


def test_change_tracking_delta_returns_updates_and_deletions(dv, dvs):
    keys = dv.insert("accounts", [{"name": f"T{i}"} for i in range(5)])
    initial = dvs.get(dv.base_url + "accounts?$select=name", headers={"Prefer": "odata.track-changes, odata.maxpagesize=2"})
    assert "odata.track-changes" in initial.headers["Preference-Applied"]
    url, rows, delta_link = initial.json().get("@odata.nextLink"), initial.json()["value"], None
    while url:
        body = dvs.get(url, headers={"Prefer": "odata.maxpagesize=2"}).json()
        rows += body["value"]
        url = body.get("@odata.nextLink")
        delta_link = body.get("@odata.deltaLink")
    assert len(rows) == 5 and "$deltatoken=" in delta_link

    dvs.patch(f"{dv.base_url}accounts({keys[0]})", json={"name": "T0 changed"})
    dvs.delete(f"{dv.base_url}accounts({keys[1]})")
    created = dvs.post(dv.base_url + "accounts", json={"name": "new"}).headers["OData-EntityId"]

    delta = dvs.get(delta_link)
    assert delta.status_code == 200
    body = delta.json()
    assert body["@odata.context"].endswith("/$delta")
    changed = [row for row in body["value"] if "reason" not in row]
    deleted = [row for row in body["value"] if row.get("reason") == "deleted"]
    assert {row["name"] for row in changed} == {"T0 changed", "new"}
    assert created.endswith(f"({changed[-1]['accountid']})")
    assert deleted == [{"@odata.context": f"{dv.api_root}$metadata#accounts/$deletedEntity", "id": keys[1], "reason": "deleted"}]
    assert body["value"].index(deleted[0]) == len(body["value"]) - 1  # deletions come last

    again = dvs.get(body["@odata.deltaLink"]).json()
    assert again["value"] == []


def test_change_tracking_errors(dv, dvs):
    dv.insert("accounts", [{"name": "x"}])
    filtered = dvs.get(dv.base_url + "accounts?$filter=name eq 'x'", headers={"Prefer": "odata.track-changes"})
    assert filtered.status_code == 400
    assert filtered.json()["error"]["message"] == 'The "$filter" query parameter isn\'t supported when Change Tracking is enabled.'
    not_tracked = dvs.get(dv.base_url + "products", headers={"Prefer": "odata.track-changes"})
    assert not_tracked.status_code == 400 and not_tracked.json()["error"]["code"] == "0x80072491"

    link = dvs.get(dv.base_url + "accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]
    dv.expire_delta_tokens()
    expired = dvs.get(link)
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "0x80044352"
    unknown = dvs.get(dv.base_url + "accounts?$deltatoken=12345!01/01/2020 00:00:00")
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "0x80044352"


# ============================================================================================
# faults
# ============================================================================================


def test_fault_429_carries_retry_after_and_changes_nothing(dv, dvs):
    dv.faults = FaultPlan(sequence=["429", None], retry_after=7)
    throttled = dvs.post(dv.base_url + "accounts", json={"name": "should not exist"})
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert dv.rows("accounts") == []
    assert dvs.post(dv.base_url + "accounts", json={"name": "after"}).status_code == 204
    assert [r["name"] for r in dv.rows("accounts")] == ["after"]
    assert dv.faults.injected == [(0, "429")]


def test_bc_429_without_retry_after_and_503_with(bc, bcs):
    bc.faults = FaultPlan(sequence=["429", "503"])
    first = bcs.get(bc.base_url + "customers")
    assert first.status_code == 429 and "Retry-After" not in first.headers
    second = bcs.get(bc.base_url + "customers")
    assert second.status_code == 503 and second.headers["Retry-After"] == "1"


def test_reset_connection_raises_connection_error(dv, dvs):
    dv.faults = FaultPlan(sequence=["reset"])
    with pytest.raises(requests.ConnectionError):
        dvs.post(dv.base_url + "accounts", json={"name": "lost"})
    assert dv.rows("accounts") == []
    assert dvs.get(dv.base_url + "accounts").status_code == 200
    assert [(r.kind, r.status, r.fault) for r in dv.request_log][-2:] == [("collection", None, "reset"), ("collection", 200, None)]


def test_fault_rate_is_seeded_and_bounded(dv):
    plan = FaultPlan(rate=0.5, kinds=("503",), seed=7, max_faults=3)
    outcomes = [plan.next_fault() for _ignored in range(40)]
    again = FaultPlan(rate=0.5, kinds=("503",), seed=7, max_faults=3)
    assert outcomes == [again.next_fault() for _ignored in range(40)]
    assert outcomes.count("503") == 3


# ============================================================================================
# auth
# ============================================================================================


def test_token_required_and_token_errors(dv):
    no_token = requests.get(dv.base_url + "accounts", headers=ODATA_HEADERS)
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    bogus = requests.get(dv.base_url + "accounts", headers={**ODATA_HEADERS, "Authorization": "Bearer nope"})
    assert bogus.status_code == 401 and 'error="invalid_token"' in bogus.headers["WWW-Authenticate"]
    wrong_secret = requests.post(
        dv.token_url, data={"grant_type": "client_credentials", "client_id": dv.client_id, "client_secret": "wrong", "scope": dv.accepted_scopes()[0]}
    )
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    bad_scope = requests.post(
        dv.token_url, data={"grant_type": "client_credentials", "client_id": dv.client_id, "client_secret": dv.client_secret, "scope": "https://x/user"}
    )
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    token = fetch_token(dv)
    assert requests.get(dv.base_url + "accounts", headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}"}).status_code == 200
    assert dv.request_counts()[("POST", "token")] == 3


def test_token_expiry(dv):
    dv.token_lifetime = 0
    token = fetch_token(dv)
    expired = requests.get(dv.base_url + "accounts", headers={**ODATA_HEADERS, "Authorization": f"Bearer {token}"})
    assert expired.status_code == 401 and "expired" in expired.headers["WWW-Authenticate"]
    dv.token_lifetime = 3599
    token = fetch_token(dv)
    assert requests.get(dv.base_url + "accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    dv.expire_tokens()
    assert requests.get(dv.base_url + "accounts", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    dv.add_static_token("static")
    assert requests.get(dv.base_url + "accounts", headers={"Authorization": "Bearer static"}).status_code == 200


def test_bc_unauthenticated_error_body(bc):
    response = requests.get(bc.api_root + "companies")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Authentication_InvalidCredentials"


# ============================================================================================
# counters
# ============================================================================================


def test_request_counters(dv, dvs):
    dv.reset_counters()
    dvs.post(dv.base_url + "accounts", json={"name": "a"})
    dvs.get(dv.base_url + "accounts")
    key = dv.rows("accounts")[0]["accountid"]
    dvs.get(f"{dv.base_url}accounts({key})")
    _post_batch(dv, dvs, [_create(dv, "b"), _create(dv, "c")])
    counts = dv.request_counts()
    assert counts == {("POST", "collection"): 1, ("GET", "collection"): 1, ("GET", "entity"): 1, ("POST", "batch"): 1}
    assert dv.row_writes["create"] == 3 and dv.batch_operations == 2
    dv.reset_counters()
    assert dv.requests == [] and not dv.row_writes


# ============================================================================================
# unit tests of the building blocks
# ============================================================================================


COLUMNS = {
    "name": ColumnType("string"),
    "n": ColumnType("int"),
    "amount": ColumnType("decimal"),
    "flag": ColumnType("bool"),
    "when": ColumnType("datetime"),
    "day": ColumnType("date"),
    "ref": ColumnType("guid"),
}
ROW = {
    "name": "Alpha_1",
    "n": 5,
    "amount": 2.5,
    "flag": True,
    "when": "2024-05-01T10:00:00Z",
    "day": "2024-05-01",
    "ref": "8f4c3f92-312b-ee11-bdf4-000d3a993550",
}


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("n eq 5 and amount lt 3", True),
        ("n ge 6 or flag", True),
        ("not (n le 5)", False),
        ("n in (1, 5, 9)", True),
        ("amount gt 2.4", True),
        ("when gt 2024-05-01T09:59:59Z", True),
        ("when lt 2024-05-01", False),
        ("day eq 2024-05-01", True),
        ("ref eq 8F4C3F92-312B-EE11-BDF4-000D3A993550", True),
        ("ref eq '8f4c3f92-312b-ee11-bdf4-000d3a993550'", True),
        ("name eq 'alpha_1'", True),
        ("startswith(name,'Alp')", True),
        ("endswith(name,'_1')", True),
        ("contains(name,'ph[a-c]')", True),
        ("contains(name,'x')", False),
        ("name eq null", False),
        ("name ne null", True),
        ("n eq -5", False),
    ],
)
def test_filter_evaluator(expr, expected):
    predicate = FilterEvaluator(COLUMNS, QueryOptions()).compile(expr)
    assert predicate(ROW) is expected


@pytest.mark.parametrize("expr", ["n eq 'x'", "tolower(name) eq 'a'", "n add 1 eq 2", "name eq", "nosuch eq 1", "ref eq 'not-a-guid'"])
def test_filter_evaluator_rejects(expr):
    with pytest.raises(QueryError):
        FilterEvaluator(COLUMNS, QueryOptions()).compile(expr)


def test_batch_codec_round_trip():
    items = [
        BatchChangeSet([BatchRequestPart("POST", "accounts", {"Content-Type": "application/json"}, b'{"name": "a"}', "1")]),
        BatchRequestPart("GET", "accounts?$select=name", {"Accept": "application/json"}),
    ]
    content_type, body = encode_multipart_request(items)
    parsed = parse_multipart_request(content_type, body)
    assert isinstance(parsed[0], BatchChangeSet)
    assert parsed[0].parts[0].json() == {"name": "a"} and parsed[0].parts[0].content_id == "1"
    assert parsed[1].method == "GET" and parsed[1].url == "accounts?$select=name"
    json_body = json.loads(encode_json_request([BatchRequestPart("PATCH", "items(1)", {"If-Match": "*"}, b'{"a": 1}', request_id="r1")]))
    assert json_body == {"requests": [{"method": "PATCH", "url": "items(1)", "headers": {"If-Match": "*"}, "id": "r1", "body": {"a": 1}}]}


# ============================================================================================
# more paths
# ============================================================================================


def test_bc_multipart_batch_and_json_atomicity_group(bc, bcs):
    items_url = f"companies({bc.company_id})/items"
    parts = [
        BatchRequestPart("POST", items_url, {"Content-Type": "application/json"}, b'{"number": "M1"}'),
        BatchRequestPart("GET", items_url + "?$select=number", {"Accept": "application/json"}),
    ]
    content_type, body = encode_multipart_request(parts)
    response = bcs.post(bc.api_root + "$batch", data=body, headers={"Content-Type": content_type})
    assert response.status_code == 200
    answers = parse_multipart_response(response.headers["Content-Type"], response.content)
    assert [a.status for a in answers] == [201, 200]
    assert answers[1].json()["value"][0]["number"] == "M1"

    group = [
        {"id": "a", "atomicityGroup": "g", "method": "POST", "url": items_url, "headers": {"Content-Type": "application/json"}, "body": {"number": "G1"}},
        {"id": "b", "atomicityGroup": "g", "method": "POST", "url": items_url, "headers": {"Content-Type": "application/json"}, "body": {"bad": 1}},
    ]
    grouped = bcs.post(bc.api_root + "$batch", json={"requests": group}).json()["responses"]
    assert [(r["id"], r["status"]) for r in grouped] == [("a", 424), ("b", 400)]
    assert [row["number"] for row in bc.rows("items")] == ["M1"]


def test_bc_top_with_server_paging(bc, bcs):
    bc.insert("items", [{"number": f"I{i:02d}"} for i in range(10)])
    url, seen = bc.base_url + "items?$orderby=number&$top=5", []
    while url:
        body = bcs.get(url, headers={"Prefer": "odata.maxpagesize=2"}).json()
        seen += [row["number"] for row in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == ["I00", "I01", "I02", "I03", "I04"]


def test_metadata_document(dv, dvs):
    response = dvs.get(dv.api_root + "$metadata")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/xml"
    assert '<EntityType Name="account">' in response.text
    assert '<Property Name="accountnumber" Type="Edm.String" MaxLength="20" />' in response.text
    assert '<NavigationProperty Name="parentcustomerid_account" Type="Microsoft.Dynamics.CRM.account" />' in response.text


def test_delta_link_pages_and_delete_by_alternate_key(dv, dvs):
    dv.insert("accounts", [{"name": f"D{i}", "accountnumber": f"D{i}"} for i in range(3)])
    link = dvs.get(dv.base_url + "accounts?$select=name", headers={"Prefer": "odata.track-changes"}).json()["@odata.deltaLink"]
    for i in range(3):
        assert dvs.patch(f"{dv.base_url}accounts(accountnumber='D{i}')", json={"name": f"D{i}!"}, headers={"If-Match": "*"}).status_code == 204
    assert dvs.delete(f"{dv.base_url}accounts(accountnumber='D0')").status_code == 204
    first = dvs.get(link, headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert len(first["value"]) == 2 and "@odata.nextLink" in first and "@odata.deltaLink" not in first
    second = dvs.get(first["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=2"}).json()
    assert "@odata.deltaLink" in second
    everything = first["value"] + second["value"]
    assert [row.get("name") for row in everything if "reason" not in row] == ["D1!", "D2!"]
    assert [row["reason"] for row in everything if "reason" in row] == ["deleted"]


def test_unauthenticated_requests_are_counted_but_not_faulted(dv):
    dv.faults = FaultPlan(sequence=["503"])
    assert requests.get(dv.base_url + "accounts").status_code == 401
    assert dv.faults.requests_seen == 0
    assert dv.request_counts()[("GET", "collection")] == 1
