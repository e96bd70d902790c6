#!/usr/bin/env python
"""How long match-based coupling takes on two SQLite databases that share 60 % of their customers.

Usage (from the repository root, with the venv): python benchmarks/match_coupling.py --customers 100000

Matching streams each side's uncoupled records once and indexes them on the normalised key, so
its cost should grow linearly with the table size. Prints one JSON line; writes only to --dir.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "collections"), ROOT]
importlib.import_module("tests.conftest")  # links the checkout as the collection

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint  # noqa: E402
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables  # noqa: E402
from ansible_collections.tablesync.integration.plugins.module_utils.matching import match_mapping  # noqa: E402
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store  # noqa: E402
from tests.support.shared_customers import build_shared_customers, customer_mapping  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100000, help="distinct customers (60 %% shared, 20 %% on each side only)")
    parser.add_argument("--dir", default=None, help="where the databases go (default: a temporary directory)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="tablesync-match-")
    data = build_shared_customers(directory, distinct=args.customers)
    store = Store(os.path.join(directory, "store.sqlite"))
    endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": data.erp}),
                 "integration": open_endpoint("integration", {"type": "sqlite", "path": data.crm})}
    # the CRM copies of shared e-mails differ in case or spaces: fold both, as a user would declare it
    folded = {"field": "email", "integration_field": "emailaddress1", "ignore_case": True, "trim": True}
    mapping = Mapping.from_definition(customer_mapping("bidirectional", match_on=[folded]))
    tables = open_tables(mapping, endpoints)
    mapping.bind(tables)
    started = time.perf_counter()
    result = match_mapping(mapping, tables, store)
    seconds = time.perf_counter() - started
    records = len(data.shared) * 2 + len(data.erp_only) + len(data.crm_only) + data.ambiguous_records
    print(json.dumps({"customers": args.customers, "records": records, "seconds": round(seconds, 3),
                      "records_per_second": round(records / seconds), "counts": result.counts}))


if __name__ == "__main__":
    main()
