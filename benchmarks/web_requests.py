"""Requests per 1,000 changed records on the protocol test doubles.

    .venv/bin/python -m benchmarks.web_requests [--records 2000]

Business Central -> Dataverse: the CUSTOMER mapping of the business_central_dataverse default set,
a full sync (creates), then a modified sync after every customer changed (updates), each with bulk
writes (CreateMultiple/UpdateMultiple, the default), with $batch only, with one request per record
(batch_size 1, no bulk), and with bulk writes from 250-record Business Central pages. Prints the
write requests the Dataverse double counted per 1,000 records.

SQLite -> Business Central: the same creates and updates of a customer table; prints every API
request per 1,000 records (the $batch writes and the reads of the records' ETags).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "collections"), ROOT]
importlib.import_module("tests.conftest")  # links the checkout under collections/
from tests.support import ODataService  # noqa: E402
from tests.support.web_load import WebLoad  # noqa: E402
from tests.support.web_schemas import declare_business_central, declare_dataverse  # noqa: E402
from tests.unit.module_utils.test_odata_endpoint import Pair, alone, bc_dataverse_set  # noqa: E402

MODES = {"bulk (CreateMultiple/UpdateMultiple)": ({}, {}), "$batch": ({"bulk_operations": False}, {}),
         "one request per record": ({"bulk_operations": False, "batch_size": 1}, {}),
         "bulk, 250-record source pages": ({}, {"page_size": 250})}


def write_requests(svc: ODataService) -> int:
    return sum(n for (method, kind), n in svc.request_counts().items() if method in ("POST", "PATCH", "DELETE") and kind != "token")


def api_requests(svc: ODataService) -> int:
    """Every request but the token, $metadata and the company list (made once per run)."""
    return sum(1 for r in svc.request_log if r.kind not in ("token", "other") and not r.path.endswith("/companies"))


def measure(records: int, options: dict, source: dict) -> tuple[float, float]:
    with ODataService("business_central") as bc, ODataService("dataverse") as dv, tempfile.TemporaryDirectory() as tmp:
        declare_business_central(bc)
        declare_dataverse(dv)
        bc.insert("customers", [{"number": "C%06d" % i, "displayName": "Customer %d" % i} for i in range(records)])
        pair = Pair(bc, dv, os.path.join(tmp, "store.sqlite"), integration=options, local=source)
        pair.declare([alone(m) for m in bc_dataverse_set() if m["name"] == "CUSTOMER"])
        dv.reset_counters()
        pair.run("full")
        creates = write_requests(dv) * 1000 / records
        for row in bc.rows("customers"):
            bc.update("customers", row["id"], {"displayName": row["displayName"] + " v2"})
        dv.reset_counters()
        pair.run("modified")
        updates = write_requests(dv) * 1000 / records
        assert len(dv.rows("accounts")) == records
        pair.close()
        return creates, updates


def measure_business_central(records: int) -> tuple[float, float]:
    with ODataService("business_central") as bc, tempfile.TemporaryDirectory() as tmp:
        load = WebLoad(bc, tmp, customers=records)
        bc.reset_counters()
        load.run("full")
        creates = api_requests(bc) * 1000 / records
        load.change_all()
        bc.reset_counters()
        load.run("modified")
        updates = api_requests(bc) * 1000 / records
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}
        return creates, updates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    print("%-40s %22s %22s" % ("Dataverse writes", "requests/1000 creates", "requests/1000 updates"))
    for name, (options, source) in MODES.items():
        creates, updates = measure(args.records, options, source)
        print("%-40s %22.1f %22.1f" % (name, creates, updates))
    creates, updates = measure_business_central(args.records)
    print("%-40s %22.1f %22.1f" % ("Business Central, all API requests", creates, updates))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
