"""The service-time model of the OData test double: concurrency limit with 429 and Retry-After,
x-ms-dop-hint and the per-window counters, over real HTTP."""

from __future__ import annotations

import threading

import requests

from tests.support import ODataService
from tests.support.service_time import ServiceTime


def _at_once(svc: ODataService, tokens: list[str]) -> list[tuple[str, requests.Response]]:
    """One GET per token, all sent at the same moment; (token, answer) pairs."""
    answers: list[tuple[str, requests.Response]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def get(token: str) -> None:
        start.wait()
        answer = requests.get(svc.api_root + "accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        with lock:
            answers.append((token, answer))

    threads = [threading.Thread(target=get, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_requests_beyond_the_concurrency_limit_get_429_with_retry_after_and_the_headers_count_the_window():
    with ODataService("dataverse", static_token="t") as svc:
        svc.add_entity_set("accounts", fields={"name": "string"})
        svc.service_time = ServiceTime(latency=0.3, max_concurrent=2, dop_hint=2, retry_after=3, window_requests=100,
                                       window_execution=1200.0)
        answers = [answer for dummy, answer in _at_once(svc, ["t"] * 5)]
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


# -- per-user service protection ---------------------------------------------------------------------


def _token(svc: ODataService, client_id: str, secret: str) -> requests.Response:
    return requests.post(svc.token_url, data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                                              "scope": svc.accepted_scopes()[0]}, timeout=10)


def test_each_application_user_gets_the_full_concurrency_limit():
    with ODataService("dataverse") as svc:
        svc.add_entity_set("accounts", fields={"name": "string"})
        svc.add_client("app-two", "secret-two")
        first = _token(svc, svc.client_id, svc.client_secret).json()["access_token"]
        second = _token(svc, "app-two", "secret-two").json()["access_token"]
        svc.service_time = ServiceTime(latency=0.3, max_concurrent=2, dop_hint=2, per_user=True)
        answers = _at_once(svc, [first, first, second, second])
        assert [a.status_code for dummy, a in answers] == [200] * 4
        users = svc.service_time.users
        assert users[svc.client_id].peak == 2 and users["app-two"].peak == 2
        assert svc.service_time.peak == 4 and svc.service_time.refused == 0 and svc.service_time.requests == 4


def test_a_user_beyond_its_limit_gets_429_while_another_user_does_not():
    with ODataService("dataverse") as svc:
        svc.add_entity_set("accounts", fields={"name": "string"})
        svc.add_client("app-two", "secret-two")
        assert _token(svc, "app-two", svc.client_secret).status_code == 401  # each client has its own secret
        first = _token(svc, svc.client_id, svc.client_secret).json()["access_token"]
        second = _token(svc, "app-two", "secret-two").json()["access_token"]
        svc.service_time = ServiceTime(latency=0.3, max_concurrent=2, retry_after=3, window_requests=100, per_user=True)
        answers = _at_once(svc, [first, first, first, second])
        assert sorted(a.status_code for token, a in answers if token == first) == [200, 200, 429]
        [(dummy, other)] = [(token, a) for token, a in answers if token == second]
        assert other.status_code == 200
        # why: the window counts the requests of one user: the second user's first request leaves 99 of 100
        assert other.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "99"
        refused = next(a for dummy, a in answers if a.status_code == 429)
        assert refused.headers["Retry-After"] == "3" and refused.json()["error"]["code"] == "0x80072326"
        users = svc.service_time.users
        assert (users[svc.client_id].refused, users["app-two"].refused, svc.service_time.refused) == (1, 0, 1)
