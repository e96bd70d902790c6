"""Service protection windows counted by the client: a sync stays within the requests and execution
time a service allows per window, waiting instead of being refused with 429. Real HTTP to the OData
test double with its service-time model, its windows shrunk to a second; and the window arithmetic."""

from __future__ import annotations

import math
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import service_protection
from ansible_collections.tablesync.integration.plugins.module_utils.service_protection import (
    REMAINING_REQUESTS,
    REMAINING_TIME,
    Budget,
    Pacer,
    Window,
)
from tests.support import ODataService
from tests.support.service_time import ServiceTime
from tests.support.web_load import WebLoad


def sync_within(flavour, tmp_path, monkeypatch, budget, model, customers=60, **options):
    """A full sync of ``customers`` records into the double, whose service protection is ``model``, by a client whose
    own budget per window is ``budget``."""
    monkeypatch.setitem(service_protection.BUDGETS, flavour, budget)
    with ODataService(flavour) as svc:
        load = WebLoad(svc, str(tmp_path), customers=customers, **options)
        svc.service_time = model  # why: from here on; the set-up's requests above went to a service without limits
        started = time.monotonic()
        job = load.run("full")
        elapsed = time.monotonic() - started
        assert job.counts["inserted"] == customers and job.counts["failed"] == 0
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}
        return job, model, elapsed


def test_a_sync_sending_more_requests_than_a_window_allows_waits_instead_of_being_refused(tmp_path, monkeypatch):
    # Business Central: 6 requests per second here (6,000 per 5 minutes documented), 5 in flight, no headers to go by
    job, model, elapsed = sync_within("business_central", tmp_path, monkeypatch, Budget(6, None, 1.0),
                                      ServiceTime(latency=0.01, window=1.0, window_requests=6), batch_size=5)
    assert model.requests > 6  # more than one window's worth
    assert model.refused == 0 and job.throttled == 0
    assert job.throttle_wait > 0.5 and elapsed >= 1.0  # the client held requests back for the window to move on


def test_a_sync_stays_within_the_execution_time_of_a_window(tmp_path, monkeypatch):
    # Dataverse: 0.25 s of execution time per second here (1,200 s per 5 minutes documented); each write takes 0.1 s
    job, model, elapsed = sync_within("dataverse", tmp_path, monkeypatch, Budget(6000, 0.25, 1.0),
                                      ServiceTime(per_record=0.01, window=1.0, window_execution=0.25, window_requests=6000),
                                      customers=40, batch_size=10)
    assert model.execution >= 0.4  # more than one window's worth
    assert model.refused == 0 and job.throttled == 0 and job.throttle_wait > 0.5


def test_the_services_own_figure_counts_when_it_has_less_left_than_the_client_counted(tmp_path, monkeypatch):
    # the client would allow 1,000 requests a second; the service's header says when its 6 are used up
    job, model, elapsed = sync_within("dataverse", tmp_path, monkeypatch, Budget(1000, None, 1.0),
                                      ServiceTime(latency=0.01, window=1.0, window_requests=6), batch_size=5)
    assert model.requests > 6
    assert model.refused == 0 and job.throttled == 0 and job.throttle_wait > 0.5


def run(window, at, took):
    """One request started ``at`` and answered ``took`` seconds later."""
    window.finish(window.start(at), at + took)


def test_requests_leave_the_window_a_window_after_their_answer():
    window = Window(Budget(requests=3, execution=None, window=10.0))
    for at in (0.0, 1.0, 2.0):
        assert window.ready_at(at) == at
        run(window, at, 0.5)
    assert window.ready_at(3.0) == 10.5  # the first answer came at 0.5
    assert window.ready_at(10.5) == 10.5
    run(window, 10.5, 0.5)
    assert window.ready_at(11.0) == 11.5  # slides: the second leaves next


def test_requests_in_flight_count_until_their_answer():
    window = Window(Budget(requests=2, execution=None, window=10.0))
    first = window.start(0.0)
    window.start(0.0)
    assert window.ready_at(1.0) == math.inf  # only an answer tells when
    window.finish(first, 2.0)
    assert window.ready_at(2.0) == 12.0


def test_execution_time_is_counted_as_the_elapsed_time_of_each_request():
    window = Window(Budget(requests=100, execution=2.0, window=10.0))
    run(window, 0.0, 1.5)
    assert window.ready_at(1.5) == 1.5  # 1.5 s used of 2
    run(window, 1.5, 1.0)
    assert window.ready_at(2.5) == 11.5  # 2.5 s used; under 2 once the first leaves
    window.start(11.5)
    assert window.ready_at(12.25) == 12.25  # 1.0 s done and 0.75 s of the request in flight
    window.start(12.25)
    assert window.ready_at(12.375) == 12.5  # 1.0 + 0.875 + 0.125 s: under 2 once the 1.0 s leave at 12.5
    assert window.ready_at(13.75) == math.inf  # those in flight have taken 3.75 s: only their answers tell when
    assert Window(Budget(requests=100, execution=None, window=10.0)).ready_at(5.0) == 5.0


def test_the_smaller_of_the_services_figure_and_the_clients_own_decides():
    window = Window(Budget(requests=100, execution=1200.0, window=10.0))
    ticket = window.start(0.0)
    window.finish(ticket, 0.5)
    window.reported(ticket, requests=2, execution=None, now=0.5)  # other clients of the user used the rest
    run(window, 1.0, 0.5)
    assert window.ready_at(1.5) == 1.5
    run(window, 2.0, 0.5)
    assert window.ready_at(2.5) == 10.5  # the service's 2 are used; its figure holds for a window
    assert window.ready_at(10.5) == 10.5

    window = Window(Budget(requests=100, execution=1200.0, window=10.0))
    ticket = window.start(0.0)
    window.finish(ticket, 0.5)
    window.reported(ticket, requests=None, execution=0.4, now=0.5)
    assert window.ready_at(0.5) == 10.5  # its own 0.5 s may not be in the 0.4 s left


def test_the_pacer_waits_with_the_clients_sleep_and_counts_the_wait():
    pacer = Pacer(1, budget=Budget(requests=100, execution=1200.0, window=0.3))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    with pacer.slot(sleep) as ticket:
        pass
    pacer.answered({REMAINING_REQUESTS: "5", REMAINING_TIME: "0.00"}, ticket)  # milliseconds left: none
    started = time.monotonic()
    with pacer.slot(sleep):
        assert time.monotonic() - started >= 0.25
    assert len(slept) == 1 and 0.25 <= slept[0] <= 0.3 and pacer.waited == pytest.approx(slept[0], abs=0.01)
    assert pacer.throttled == 0


def test_the_documented_budgets():
    assert service_protection.BUDGETS == {"dataverse": Budget(6000, 1200.0, 300.0), "business_central": Budget(6000, None, 300.0)}
