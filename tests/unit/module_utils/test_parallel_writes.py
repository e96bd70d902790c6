"""Parallel writes within service protection, against the protocol test doubles with their
service-time model (latency, server time per record, concurrency limit, x-ms-dop-hint)."""

from __future__ import annotations

import datetime
import email.utils
import os
import signal
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import http_client
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from tests.support import ODataService
from tests.support.service_time import ServiceTime
from tests.support.web_load import TARGETS, WebLoad
from tests.support.web_schemas import declare_business_central, declare_dataverse, endpoint_options


def write_rows(svc, count, **options):
    endpoint = open_endpoint("integration", endpoint_options(svc, **options))
    try:
        if svc.flavour == "dataverse":
            table = endpoint.table("accounts", "accountid")
            rows = [{"accountid": table.new_id(), "accountnumber": "N%04d" % i, "name": "A%d" % i} for i in range(count)]
        else:
            table = endpoint.table("customers", "id")
            rows = [{"number": "N%04d" % i, "displayName": "A%d" % i} for i in range(count)]
        return rows, table.insert(rows), endpoint.throttling()
    finally:
        endpoint.close()


@pytest.mark.parametrize("flavour, options, expected", [
    ("business_central", {}, 5),  # Business Central's limit per user
    ("business_central", {"max_parallel_requests": 1}, 1),
    ("dataverse", {"batch_size": 50, "bulk_operations": False}, 4),  # as x-ms-dop-hint says
    ("dataverse", {"batch_size": 50, "max_parallel_requests": 2}, 2),
])
def test_batches_go_out_on_as_many_connections_as_the_service_allows(flavour, options, expected):
    with ODataService(flavour) as svc:
        (declare_dataverse if flavour == "dataverse" else declare_business_central)(svc)
        svc.service_time = ServiceTime(latency=0.05, per_record=0.001, max_concurrent=52 if flavour == "dataverse" else 5,
                                       dop_hint=4 if flavour == "dataverse" else None)
        rows, results, throttling = write_rows(svc, 1000, **options)
        assert svc.service_time.peak == expected and svc.service_time.refused == 0 and throttling == (0, 0.0)
        assert all(r.ok for r in results) and len(results) == 1000
        # results in the order of the rows, each with its record's id
        number = "accountnumber" if flavour == "dataverse" else "number"
        held = {r[number]: r["accountid" if flavour == "dataverse" else "id"] for r in svc.rows("accounts" if flavour == "dataverse" else "customers")}
        assert [r.record_id for r in results] == [held[row[number]] for row in rows]


def test_a_429_pauses_for_the_retry_after_lowers_concurrency_and_is_reported_per_job(tmp_path):
    with ODataService("dataverse") as svc:
        svc.service_time = ServiceTime(latency=0.02, per_record=0.0005, max_concurrent=2, retry_after=1)
        load = WebLoad(svc, str(tmp_path), customers=1200, batch_size=100, max_parallel_requests=6)
        job = load.run("full")
        assert job.counts["inserted"] == 1200 and job.counts["failed"] == 0
        assert svc.service_time.refused > 0  # more were sent at once than the service allows, and it said so
        assert job.throttled == svc.service_time.refused and job.throttle_wait >= 1.0
        assert job.as_dict()["throttled"] == job.throttled
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}


def test_retry_after_is_read_as_seconds_or_an_http_date():
    assert http_client._retry_after("7") == 7.0
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
    assert 25 <= http_client._retry_after(email.utils.format_datetime(later, usegmt=True)) <= 30
    assert http_client._retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert http_client._retry_after("soon") is None


def test_the_dop_hint_and_a_low_request_budget_set_the_number_in_flight():
    from ansible_collections.tablesync.integration.plugins.module_utils.service_protection import Pacer

    pacer = Pacer(1, follow_hint=True, cap=52)
    pacer.answered({"x-ms-dop-hint": "8"})
    assert (pacer.limit, pacer.ceiling) == (8, 8)
    pacer.answered({"x-ms-dop-hint": "100"})
    assert pacer.limit == 52  # Dataverse's limit per user
    pacer.answered({"x-ms-ratelimit-burst-remaining-xrm-requests": "3"})
    assert pacer.limit == 3
    until = pacer.throttled_for(2.0)
    assert pacer.limit == 1 and pacer.throttled == 1 and 1.9 < pacer.waited <= 2.0 and until > 0
    pacer.answered({})
    pacer.answered({})
    assert pacer.limit == 2  # raised again one at a time


CLEAN = {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}


@pytest.mark.parametrize("flavour, in_flight, latency", [("dataverse", 16, 1.0), ("business_central", 5, 0.25)])
def test_consecutive_pages_are_written_together(tmp_path, flavour, in_flight, latency):
    # Pages of 20 records are one write request each: only pages on the wire together keep the service's
    # parallel requests busy (16 as Dataverse's x-ms-dop-hint says here, Business Central's 5 per user).
    # why: the job starts each page (read, intents stored) while the first is on the wire; the latency leaves
    # it over 50 ms per page to do so, so a busy machine does not make the peak fall short of the limit.
    with ODataService(flavour) as svc:
        svc.service_time = ServiceTime(latency=latency, per_record=0.0005, max_concurrent=in_flight,
                                       dop_hint=in_flight if flavour == "dataverse" else None)
        load = WebLoad(svc, str(tmp_path), customers=600)
        job = load.run("full", batch_size=20)
        assert job.counts["inserted"] == 600 and job.counts["failed"] == 0
        assert svc.service_time.peak == in_flight and svc.service_time.refused == 0
        assert load.problems() == CLEAN
        load.change_all()
        svc.service_time.peak = 0
        job = load.run("modified", batch_size=20)
        assert job.counts["modified"] == 600 and job.counts["failed"] == 0 and job.counts["inserted"] == 0
        assert svc.service_time.peak == in_flight
        assert load.problems() == CLEAN


@pytest.mark.parametrize("flavour", ["dataverse", "business_central"])
def test_a_run_killed_with_pages_on_the_wire_is_completed_by_the_next_without_duplicates(tmp_path, flavour):
    with ODataService(flavour) as svc:
        svc.service_time = ServiceTime(latency=0.1, per_record=0.001, max_concurrent=8, dop_hint=8 if flavour == "dataverse" else None)
        table = TARGETS[flavour][0]
        load = WebLoad(svc, str(tmp_path), customers=800)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the run that is killed
            try:
                load.run("full", batch_size=20)
            finally:
                os._exit(0)
        try:
            deadline = time.monotonic() + 60
            while len(svc.rows(table)) < 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(svc.rows(table)) >= 200, "the killed run never got going"
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert len(svc.rows(table)) < 800  # killed in the middle
        job = load.run("full", batch_size=20)
        assert job.counts["failed"] == 0
        assert load.problems() == CLEAN
        # the pages on the wire when it was killed had stored their intents: their records are coupled, not made again
        assert job.counts["coupled"] > 0
        assert job.counts["inserted"] + job.counts["unchanged"] == 800
