"""A SQLite customer table synchronised into the Dataverse or Business Central test double.

Used by the tests of lost answers and request counts and by ``benchmarks/web_parallel.py``::

    load = WebLoad(svc, tmp_dir, customers=2000)
    load.run("full"); load.change_all(); load.run("modified")
    load.problems()  # duplicates, missing and wrong records on the service
"""

from __future__ import annotations

import datetime
import os
import sqlite3
from collections import Counter
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

from .odata_service import ODataService
from .web_schemas import declare_business_central, declare_dataverse, endpoint_options

# (entity set, key, modified-on, {local column: service property})
TARGETS = {
    "dataverse": ("accounts", "accountid", "modifiedon",
                  {"no": "accountnumber", "name": "name", "city": "address1_city", "credit_limit": "creditlimit"}),
    "business_central": ("customers", "id", "lastModifiedDateTime",
                         {"no": "number", "name": "displayName", "city": "city", "credit_limit": "creditLimit"}),
}
NAME = "CUSTOMER-WEB"


def mapping(flavour: str) -> dict[str, Any]:
    table, key, modified, columns = TARGETS[flavour]
    return {"name": NAME, "local_table": "customer", "local_key": "no", "local_modified_field": "modified_on",
            "integration_table": table, "integration_key": key, "integration_modified_field": modified,
            "direction": "to_integration", "fields": [{"field": f, "integration_field": p} for f, p in columns.items()]}


class WebLoad:
    """``customers`` rows in a SQLite file, the mapping declared, the engine one call away."""

    def __init__(self, svc: ODataService, directory: str, customers: int, declare: bool = True, store_path: str | None = None,
                 **options: Any):
        self.svc = svc
        self.source = os.path.join(directory, "erp.sqlite")
        self.store_path = store_path or os.path.join(directory, "store.sqlite")  # a path or a database URL
        self.options = endpoint_options(svc, **options)
        self.version = 0
        if declare:
            (declare_dataverse if svc.flavour == "dataverse" else declare_business_central)(svc)
        with sqlite3.connect(self.source) as conn:
            conn.execute("DROP TABLE IF EXISTS customer")
            conn.execute("CREATE TABLE customer (no TEXT PRIMARY KEY, name TEXT, city TEXT, credit_limit NUMERIC, modified_on TEXT)")
            stamp = _stamp()
            conn.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?)",
                             [("C%06d" % i, "Customer %d" % i, "City %d" % (i % 50), 1000 + i, stamp) for i in range(customers)])
        store, endpoints = self._open()
        try:
            clean = normalize(mapping(svc.flavour))
            parsed = Mapping.from_definition(clean)
            parsed.bind(open_tables(parsed, endpoints))
            store.put_mapping(clean)
        finally:
            self._close(store, endpoints)

    def _open(self) -> tuple[Store, dict[str, Any]]:
        return Store(self.store_path), {"local": open_endpoint("local", {"type": "sqlite", "path": self.source}),
                                        "integration": open_endpoint("integration", self.options)}

    @staticmethod
    def _close(store: Store, endpoints: dict[str, Any]) -> None:
        for item in (store, *endpoints.values()):
            item.close()

    def run(self, mode: str, **options: Any) -> Any:
        """The job result of one sync run of the mapping."""
        store, endpoints = self._open()
        try:
            return SyncRunner(store, endpoints, RunOptions(**options)).run(mode, [NAME]).jobs[0]
        finally:
            self._close(store, endpoints)

    def change_all(self) -> None:
        """Every customer renamed and stamped later, so that a modified run updates them all."""
        self.version += 1
        with sqlite3.connect(self.source) as conn:
            conn.execute("UPDATE customer SET name = name || ' v%d', modified_on = ?" % self.version, (_stamp(),))

    def expected(self) -> dict[str, str]:
        with sqlite3.connect(self.source) as conn:
            return dict(conn.execute("SELECT no, name FROM customer").fetchall())

    def problems(self) -> dict[str, list[str]]:
        """Records the service holds twice, lacks, or holds with another name than the source."""
        table, key, modified, columns = TARGETS[self.svc.flavour]
        rows = self.svc.rows(table)
        held = Counter(r[columns["no"]] for r in rows)
        names = {r[columns["no"]]: r[columns["name"]] for r in rows}
        expected = self.expected()
        return {
            "duplicates": sorted(n for n, c in held.items() if c > 1),
            "missing": sorted(set(expected) - set(held)),
            "unexpected": sorted(set(held) - set(expected)),
            "wrong": sorted(n for n in expected if n in names and names[n] != expected[n]),
        }


def _stamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
