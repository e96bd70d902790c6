"""One full sync split across 1, 2 and 4 hosts, each host an application user of its own: SQLite -> Dataverse double.

    .venv/bin/python -m benchmarks.distributed [--customers 20000] [--workers 1,2,4]

The Dataverse double (tests/support) limits each application user (client id) separately, as
Dataverse's service protection does: 4 requests in flight per user (also sent as x-ms-dop-hint),
429 and Retry-After beyond them, 6,000 requests and 1,200 s of execution time per 5 minutes; every
request takes 50 ms and 2 ms of server time per record written (--limit, --latency, --per-record).
The engine writes --request-size records per CreateMultiple request, so one user's limit binds
well below what the machine can send.

For each number of workers W the benchmark builds a fresh SQLite ERP of --customers customers
(the CUSTOMER-WEB mapping to Dataverse accounts), a fresh PostgreSQL store database on
127.0.0.1:5432 and a fresh double, writes an inventory of W local hosts whose host vars give each
its own client id, and times ``ansible-playbook playbooks/distributed_sync.yml -f W`` with
``tablesync_mode=full``. Then it checks the double holds every customer exactly once with the
ERP's values and the store's jobs inserted every customer, none failed. The table shows the
playbook's wall time, the jobs' span in the store (first start to last end), records/s over the
wall time, the speed-up against the first row, the 429 answers, the peak requests in flight of
each user, and the records/s the per-user limits allow (W times one user's bound); then the speed-up
of the last row against the target of 3.2x at 4 workers, over the wall time and over the jobs' span
(the playbook's start-up and tasks before the sync take the same seconds whatever W).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "collections"), ROOT]
importlib.import_module("tests.conftest")  # links the checkout under collections/
from tests.support import ODataService  # noqa: E402
from tests.support.databases import ServerDatabase, server_database  # noqa: E402
from tests.support.service_time import ServiceTime  # noqa: E402
from tests.support.web_load import NAME, WebLoad  # noqa: E402
from tests.support.workers import application_users, client_id, write_inventory  # noqa: E402

PLAYBOOK = os.path.join(ROOT, "playbooks", "distributed_sync.yml")
TARGET = 3.2  # the speed-up 4 workers should reach when the per-user limit binds


def playbook(inventory_path: str, workers: int, variables: dict[str, Any]) -> float:
    """Wall seconds of the distributed sync playbook run with ``workers`` forks."""
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "collections")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK, "-i", inventory_path, "-f", str(workers),
           "-e", json.dumps(variables)]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-2000:]))
    return wall


def jobs(db: ServerDatabase) -> dict[str, Any]:
    """What the store's job log says of the run: jobs, records inserted and failed, seconds from first start to last end."""
    count, inserted, failed, started, ended = db.rows(
        "SELECT count(*), sum(inserted), sum(failed), min(started_at), max(ended_at) FROM tablesync_jobs WHERE mapping = :m", m=NAME)[0]
    return {"jobs": count, "inserted": inserted or 0, "failed": failed or 0, "span": (ended - started).total_seconds()}


def timed_run(workers: int, args: argparse.Namespace) -> dict[str, Any]:
    with server_database("postgresql") as db, ODataService("dataverse") as svc, tempfile.TemporaryDirectory() as tmp:
        load = WebLoad(svc, tmp, customers=args.customers, store_path=db.url_text, batch_size=args.request_size)
        path = os.path.join(tmp, "workers.yml")
        write_inventory(path, workers, application_users(svc, load.options, workers))
        # why: from here on; the mapping's declaration above read the double's metadata without limits
        svc.service_time = model = ServiceTime(latency=args.latency, per_record=args.per_record, max_concurrent=args.limit,
                                               dop_hint=args.limit, window_requests=6000, window_execution=1200.0, per_user=True)
        variables: dict[str, Any] = {"tablesync_local": {"type": "sqlite", "path": load.source}, "tablesync_store": db.url_text,
                                     "tablesync_mode": "full", "tablesync_mappings": [NAME]}
        if args.batch_size:
            variables["tablesync_batch_size"] = args.batch_size
        wall = playbook(path, workers, variables)
        log = jobs(db)
        problems = load.problems()
        held = len(svc.rows("accounts"))
        if any(problems.values()) or held != args.customers or log["inserted"] != args.customers or log["failed"]:
            raise SystemExit("%d workers: %d of %d customers held, job log %s, problems %s" % (
                workers, held, args.customers, log, {k: v[:5] for k, v in problems.items() if v}))
        peaks = [model.users[client_id(w)].peak if client_id(w) in model.users else 0 for w in range(workers)]
        return {"wall": wall, "span": log["span"], "rate": args.customers / wall, "throttled": model.refused, "peaks": peaks,
                "requests": model.requests, "bound": workers * model.bound(args.request_size)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20000, help="customers synchronised (default 20000)")
    parser.add_argument("--workers", default="1,2,4", help="numbers of hosts, comma-separated (default 1,2,4)")
    parser.add_argument("--limit", type=int, default=4, help="requests in flight per user, also the dop hint (default 4)")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (default 0.05)")
    parser.add_argument("--per-record", type=float, default=0.002, help="server seconds per record written (default 0.002)")
    parser.add_argument("--request-size", type=int, default=100, help="records per write request (default 100)")
    parser.add_argument("--batch-size", type=int, default=0, help="the sync's batch_size (default: the module's)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    print("%7s %8s %8s %8s %9s %10s %8s %5s %12s %10s" % (
        "workers", "records", "wall s", "sync s", "requests", "records/s", "speed-up", "429", "peak/user", "bound/s"))
    runs: list[dict[str, Any]] = []
    for workers in counts:
        runs.append(timed_run(workers, args))
        run = runs[-1]
        print("%7d %8d %8.1f %8.1f %9d %10.0f %7.2fx %5d %12s %10.0f" % (
            workers, args.customers, run["wall"], run["span"], run["requests"], run["rate"], run["rate"] / runs[0]["rate"],
            run["throttled"], "/".join(str(p) for p in run["peaks"]), run["bound"]))
        sys.stdout.flush()
    if len(runs) > 1:
        speed_up = runs[0]["span"] / runs[-1]["span"]
        # why: the records/s of the sync are those of its jobs (first start to last end); the playbook's start-up and its
        # tasks before the sync take the same few seconds whatever W, so the wall-time ratio nears this one as N grows
        print("\n%d workers: %.2fx the records/s of %d over the jobs' span (target %.1fx at 4 workers): %s; %.2fx over the "
              "playbook's wall time" % (counts[-1], speed_up, counts[0], TARGET, "met" if speed_up >= TARGET else "below target",
                                        runs[-1]["rate"] / runs[0]["rate"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
