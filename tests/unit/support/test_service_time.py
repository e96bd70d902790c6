"""The service-time model of the OData test double: concurrency limit with 429 and Retry-After,
x-ms-dop-hint and the per-window counters, over real HTTP."""

from __future__ import annotations

import threading

import requests

from tests.support import ODataService
from tests.support.service_time import ServiceTime


def test_requests_beyond_the_concurrency_limit_get_429_with_retry_after_and_the_headers_count_the_window():
    with ODataService("dataverse", static_token="t") as svc:
        svc.add_entity_set("accounts", fields={"name": "string"})
        svc.service_time = ServiceTime(latency=0.3, max_concurrent=2, dop_hint=2, retry_after=3, window_requests=100,
                                       window_execution=1200.0)
        answers: list[requests.Response] = []
        lock = threading.Lock()

        def get() -> None:
            answer = requests.get(svc.api_root + "accounts", headers={"Authorization": "Bearer t"}, timeout=10)
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=get) for dummy in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 429, 429, 429]
        refused = [a for a in answers if a.status_code == 429]
        assert all(a.headers["Retry-After"] == "3" and a.json()["error"]["code"] == "0x80072326" for a in refused)
        assert svc.service_time.peak == 2 and svc.service_time.refused == 3
        ok = [a for a in answers if a.status_code == 200]
        assert all(a.headers["x-ms-dop-hint"] == "2" for a in ok)
        assert sorted(int(a.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) for a in ok)[0] == 98


def test_business_central_queues_beyond_its_limit_and_writes_take_server_time_per_record():
    with ODataService("business_central", static_token="t") as svc:
        svc.add_entity_set("customers", fields={"number": "string(20)"})
        svc.service_time = ServiceTime(latency=0.1, per_record=0.01, max_concurrent=1, queue=5)
        url = svc.base_url + "customers"
        threads = [threading.Thread(target=requests.post, args=(url,),
                                    kwargs={"json": {"number": "C%d" % i}, "headers": {"Authorization": "Bearer t"}, "timeout": 10})
                   for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(svc.rows("customers")) == 3  # queued, none refused
        assert svc.service_time.refused == 0 and svc.service_time.peak == 1
        assert round(svc.service_time.execution, 3) == 0.03
