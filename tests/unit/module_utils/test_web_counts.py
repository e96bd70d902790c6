"""Web sources count the records a read will return (Table.count), so running jobs report their total and progress.

Business Central and generic OData answer ``/$count``; Dataverse counts with ``$count=true`` up to 5,000 and
answers ``RetrieveTotalRecordCount`` for a whole table beyond that. A count that cannot be had is None, never an error.
"""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.filters import parse_filter
from ansible_collections.tablesync.integration.plugins.module_utils.progress import running_progress
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support import ODataService
from tests.support.web_schemas import declare_business_central, declare_dataverse, endpoint_options, seed_business_central
from tests.unit.module_utils.test_odata_endpoint import Pair, alone, bc_dataverse_set


@pytest.fixture
def bc():
    with ODataService("business_central") as svc:
        declare_business_central(svc)
        yield svc


@pytest.fixture
def dv():
    with ODataService("dataverse") as svc:
        declare_dataverse(svc)
        yield svc


def _scanned(table, fields, **options) -> int:
    return sum(len(page) for page in table.scan(fields, **options))


def test_business_central_counts_with_the_count_segment_and_the_reads_filter(bc):
    seed_business_central(bc, customers=9)
    endpoint = open_endpoint("local", endpoint_options(bc))
    try:
        table = endpoint.table("customers", "id")
        fields = ["id", "number", "lastModifiedDateTime"]
        bc.reset_counters()
        assert table.count() == _scanned(table, fields) == 9
        assert [r.path.rsplit("/", 1)[-1] for r in bc.request_log if r.kind == "collection"][0] == "$count"
        where = parse_filter("city eq 'Springfield' and number ne 'C00003'")
        assert table.count(where) == _scanned(table, fields, where=where)
        since = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(days=1)
        assert table.count(modified_field="lastModifiedDateTime", modified_since=since) == 0
        # a filter Business Central refuses ('or' across fields) is applied on the client by the read: not counted
        assert table.count(parse_filter("city eq 'X' or number eq 'C00001'")) is None
    finally:
        endpoint.close()


def test_dataverse_counts_up_to_5000_then_takes_the_tables_snapshot(dv):
    dv.insert("accounts", [{"name": "A%05d" % i, "accountnumber": "N%05d" % i} for i in range(5004)])
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        table = endpoint.table("accounts", "accountid")
        dv.reset_counters()
        assert table.count(parse_filter("accountnumber eq 'N00007' or accountnumber eq 'N00008'")) == 2
        assert table.count() == 5004  # past the 5000 of $count: RetrieveTotalRecordCount
        assert any("RetrieveTotalRecordCount" in r.path for r in dv.request_log)
        # a filtered read past 5000 has no cheap count
        assert table.count(parse_filter("accountnumber ne 'N00007'")) is None
    finally:
        endpoint.close()


def test_a_count_the_service_cannot_give_is_none(dv, monkeypatch):
    endpoint = open_endpoint("integration", endpoint_options(dv))
    try:
        table = endpoint.table("accounts", "accountid")

        def refuse(*_args, **_kwargs):
            raise EndpointError("GET accounts: HTTP 503")

        monkeypatch.setattr(table.client, "request", refuse)
        assert table.count() is None
    finally:
        endpoint.close()


def test_a_running_job_reading_a_web_source_reports_its_total(bc, dv, tmp_path, monkeypatch):
    seed_business_central(bc, customers=25)
    pair = Pair(bc, dv, str(tmp_path / "store.sqlite"))
    seen: list[dict] = []
    real_commit = Store.commit_batch

    def commit_and_look(store, *args, **kwargs):
        result = real_commit(store, *args, **kwargs)
        rows = [r for r in store.jobs(status=["running"]) if r["mapping"] == "CUSTOMER"]
        seen.extend(running_progress(store, rows).values())
        return result

    try:
        customer = next(d for d in bc_dataverse_set() if d["name"] == "CUSTOMER")
        pair.declare([alone(customer)])
        monkeypatch.setattr(Store, "commit_batch", commit_and_look)
        result = pair.run("full", batch_size=10)
        assert result.jobs[0].counts["inserted"] == 25
        assert seen, "no batch of the CUSTOMER job was committed while it ran"
        assert {p["total"] for p in seen} == {25} and all(p["percentage"] is not None for p in seen)
        assert seen[0]["read"] < 25
    finally:
        pair.close()
