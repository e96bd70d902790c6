"""Writes whose answer is lost after the service carried them out (connection reset, 502, 504 from a
gateway): never a duplicate, never a false failure. Real HTTP to the protocol test doubles and to a
real OData v4 server on 127.0.0.1."""

from __future__ import annotations

from collections import Counter

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from tests.support import FaultPlan, ODataService
from tests.support.faults import LOST_AFTER_COMMIT
from tests.support.odatapy_server import ODataV4Server
from tests.support.web_load import WebLoad
from tests.support.web_schemas import declare_business_central, declare_dataverse, endpoint_options

TEXT_KEYS = ["C#0005", "C%0009", "O'Brien", "A B/1", "50% & more?"]


@pytest.fixture(params=["dataverse", "business_central"])
def service(request):
    with ODataService(request.param) as svc:
        (declare_dataverse if svc.flavour == "dataverse" else declare_business_central)(svc)
        yield svc


def open_table(svc, **options):
    endpoint = open_endpoint("integration", endpoint_options(svc, **options))
    endpoint.client._sleep = lambda seconds: None
    if svc.flavour == "dataverse":
        return endpoint, endpoint.table("accounts", "accountid"), "accountnumber", "name"
    return endpoint, endpoint.table("customers", "id"), "number", "displayName"


@pytest.mark.parametrize("bulk", [True, False])
@pytest.mark.parametrize("fault", LOST_AFTER_COMMIT)
def test_creates_and_updates_whose_answer_was_lost_are_done_once(service, fault, bulk):
    endpoint, table, number, name = open_table(service, bulk_operations=bulk)
    try:
        key = table.key
        rows = [{number: "N%02d" % i, name: "First %d" % i} for i in range(12)]
        for row in rows:
            if table.new_id():
                row[key] = table.new_id()
        service.faults = FaultPlan(sequence=[fault], writes_only=True)
        created = table.insert(rows)
        assert service.faults.injected == [(0, fault)]  # the first write request was carried out, its answer lost
        assert all(r.ok for r in created), created
        held = Counter(r[number] for r in service.rows(table.set_name))
        assert len(held) == 12 and set(held.values()) == {1}
        ids = {row[number]: row[key] for row in service.rows(table.set_name)}
        assert sorted(r.record_id for r in created) == sorted(ids.values())

        service.faults = FaultPlan(sequence=[fault], writes_only=True)
        updated = table.update([(ids["N%02d" % i], {name: "Second %d" % i}) for i in range(12)])
        assert service.faults.injected == [(0, fault)]
        assert all(r.ok for r in updated), [r.error for r in updated if not r.ok]  # no 412 from a resent ETag
        assert sorted(r[name] for r in service.rows(table.set_name)) == sorted("Second %d" % i for i in range(12))
    finally:
        service.faults = None
        endpoint.close()


def test_a_create_whose_answers_are_always_lost_fails_without_a_duplicate(service):
    endpoint, table, number, name = open_table(service, bulk_operations=False)
    try:
        service.faults = FaultPlan(sequence=["502"] * 50, writes_only=True)  # refused before any work, every time
        row = {number: "LOST", name: "Lost"}
        if table.new_id():
            row[table.key] = table.new_id()
        [result] = table.insert([row])
        assert not result.ok and "outcome of the create is unknown" in result.error
        assert service.rows(table.set_name) == []
    finally:
        service.faults = None
        endpoint.close()


@pytest.mark.parametrize("flavour", ["dataverse", "business_central"])
def test_a_sync_with_a_tenth_of_write_answers_lost_has_no_duplicate_missing_or_failed_record(tmp_path, flavour):
    with ODataService(flavour) as svc:
        load = WebLoad(svc, str(tmp_path), customers=1500, batch_size=50)
        svc.faults = FaultPlan(rate=0.1, kinds=LOST_AFTER_COMMIT, writes_only=True, seed=20)
        full = load.run("full")
        assert full.counts["inserted"] == 1500 and full.counts["failed"] == 0, full.errors[:3]
        load.change_all()
        modified = load.run("modified")
        lost = [kind for dummy, kind in svc.faults.injected]
        svc.faults = None
        assert modified.counts["modified"] == 1500 and modified.counts["failed"] == 0, modified.errors[:3]
        assert len(lost) >= 3  # answers were really lost (each kind is shown alone above)
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}


# -- record addresses ------------------------------------------------------------------------------------


@pytest.fixture
def odata():
    with ODataV4Server() as srv:
        yield srv


def test_text_keys_are_percent_encoded_in_record_addresses(odata):
    endpoint = open_endpoint("integration", {"type": "odata", "url": odata.url})
    try:
        table = endpoint.table("Codes", "Code")
        assert all(r.ok for r in table.insert([{"Code": k, "Name": "first"} for k in TEXT_KEYS]))
        results = table.update([(k, {"Name": "second"}) for k in TEXT_KEYS])
        assert [(r.ok, r.missing, r.record_id) for r in results] == [(True, False, k) for k in TEXT_KEYS]
        assert sorted(table.read_by_ids(TEXT_KEYS, ["Code", "Name"])) == sorted((k, "second") for k in TEXT_KEYS)
        assert all(r.ok for r in table.delete(TEXT_KEYS[:2]))
        assert sorted(r[0] for r in table.read_by_ids(TEXT_KEYS, ["Code"])) == sorted(TEXT_KEYS[2:])
    finally:
        endpoint.close()


def test_a_404_on_update_is_a_deletion_only_when_a_read_confirms_it(odata, monkeypatch):
    endpoint = open_endpoint("integration", {"type": "odata", "url": odata.url})
    try:
        table = endpoint.table("Codes", "Code")
        table.insert([{"Code": "K1", "Name": "one"}])
        # an address the service does not know (as a proxy or a garbled key would give): 404, yet the record exists
        monkeypatch.setattr(table, "_entity", lambda rid, current=None: "%s('elsewhere-%s')" % (table.url, rid))
        [kept, gone] = table.update([("K1", {"Name": "two"}), ("K2", {"Name": "two"})])
        assert not kept.ok and not kept.missing and "404" in kept.error
        assert gone.missing and not gone.ok
    finally:
        endpoint.close()
