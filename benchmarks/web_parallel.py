"""Sequential against parallel write requests, SQLite -> Dataverse and SQLite -> Business Central doubles.

    .venv/bin/python -m benchmarks.web_parallel [--dataverse 100000] [--business-central 20000]

Each protocol test double (tests/support) gets a service-time model: 50 ms per request and 2 ms of
server time per record written (--latency, --per-record), a concurrency limit with 429 and
Retry-After beyond it (Dataverse: 16, also sent as x-ms-dop-hint, within its documented 52 per
user, and 6,000 requests and 1,200 s of execution time per 5 minutes; Business Central: 5 per user,
95 queued). A full sync creates the customers once with one request in flight
(max_parallel_requests 1) and once as the endpoint chooses; the table shows wall time, requests,
records/s, 429 answers and the records/s the double's limits allow (its bound).

Then, without the service-time model, --lost records are synchronised to each double with a
tenth of the write answers lost after the service carried the request out (connection reset, 502,
504), creates and then updates, and the duplicates, missing and failed records are counted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "collections"), ROOT]
importlib.import_module("tests.conftest")  # links the checkout under collections/
from tests.support import FaultPlan, ODataService  # noqa: E402
from tests.support.faults import LOST_AFTER_COMMIT  # noqa: E402
from tests.support.service_time import ServiceTime  # noqa: E402
from tests.support.web_load import WebLoad  # noqa: E402

# (requests in flight the double allows, its x-ms-dop-hint, records per write request, records per engine page: the
# sync's default batch_size, whose consecutive pages are written together)
SERVICES = {"dataverse": (16, 16, 1000, 1000), "business_central": (5, None, 100, 1000)}


def model(flavour: str, latency: float, per_record: float) -> ServiceTime:
    limit, hint, batch, dummy = SERVICES[flavour]
    if flavour == "dataverse":
        return ServiceTime(latency=latency, per_record=per_record, max_concurrent=limit, dop_hint=hint,
                           window_requests=6000, window_execution=1200.0)
    return ServiceTime(latency=latency, per_record=per_record, max_concurrent=limit, queue=95)


def timed_sync(flavour: str, records: int, latency: float, per_record: float, parallel: bool) -> dict[str, Any]:
    limit, hint, batch, page = SERVICES[flavour]
    options: dict[str, Any] = {"batch_size": batch} if parallel else {"batch_size": batch, "max_parallel_requests": 1}
    with ODataService(flavour) as svc, tempfile.TemporaryDirectory() as tmp:
        load = WebLoad(svc, tmp, customers=records, **options)
        svc.service_time = time_model = model(flavour, latency, per_record)
        svc.reset_counters()
        started = time.monotonic()
        job = load.run("full", batch_size=page)
        wall = time.monotonic() - started
        assert job.counts["inserted"] == records and job.counts["failed"] == 0, job.errors[:3]
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}
        requests = sum(1 for r in svc.request_log if r.kind != "token")
        return {"wall": wall, "requests": requests, "rate": records / wall, "throttled": time_model.refused, "peak": time_model.peak,
                "bound": time_model.bound(batch)}


def lost_answers(flavour: str, records: int) -> dict[str, Any]:
    with ODataService(flavour) as svc, tempfile.TemporaryDirectory() as tmp:
        load = WebLoad(svc, tmp, customers=records)
        svc.faults = FaultPlan(rate=0.1, kinds=LOST_AFTER_COMMIT, writes_only=True, seed=20)
        full = load.run("full")
        load.change_all()
        modified = load.run("modified")
        lost = len(svc.faults.injected)
        writes = svc.faults.requests_seen
        svc.faults = None
        problems = load.problems()
        return {"lost": lost, "writes": writes, "failed": full.counts["failed"] + modified.counts["failed"],
                "inserted": full.counts["inserted"], "modified": modified.counts["modified"],
                "duplicates": len(problems["duplicates"]), "missing": len(problems["missing"]), "wrong": len(problems["wrong"])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataverse", type=int, default=100000, help="customers created in Dataverse (default 100000)")
    parser.add_argument("--business-central", type=int, default=20000, help="customers created in Business Central (default 20000)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (default 0.05)")
    parser.add_argument("--per-record", type=float, default=0.002, help="server seconds per record written (default 0.002)")
    parser.add_argument("--lost", type=int, default=20000, help="records of the lost-answers run per endpoint (0: skip it)")
    args = parser.parse_args()
    print("%-17s %-10s %8s %8s %9s %10s %5s %5s %10s %8s %8s" % (
        "endpoint", "requests", "records", "wall s", "requests", "records/s", "429", "peak", "bound/s", "% bound", "speed-up"))
    for flavour, records in (("dataverse", args.dataverse), ("business_central", args.business_central)):
        if not records:
            continue
        sequential = timed_sync(flavour, records, args.latency, args.per_record, parallel=False)
        parallel = timed_sync(flavour, records, args.latency, args.per_record, parallel=True)
        for name, run in (("sequential", sequential), ("parallel", parallel)):
            print("%-17s %-10s %8d %8.1f %9d %10.0f %5d %5d %10.0f %7.0f%% %7.1fx" % (
                flavour, name, records, run["wall"], run["requests"], run["rate"], run["throttled"], run["peak"], run["bound"],
                100 * run["rate"] / run["bound"], run["rate"] / sequential["rate"]))
        sys.stdout.flush()
    if args.lost:
        print()
        print("%-17s %8s %14s %9s %9s %7s %10s %8s %6s" % (
            "lost answers", "records", "answers lost", "inserted", "modified", "failed", "duplicates", "missing", "wrong"))
        for flavour in SERVICES:
            run = lost_answers(flavour, args.lost)
            print("%-17s %8d %6d of %5d %9d %9d %7d %10d %8d %6d" % (
                flavour, args.lost, run["lost"], run["writes"], run["inserted"], run["modified"], run["failed"], run["duplicates"],
                run["missing"], run["wrong"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
