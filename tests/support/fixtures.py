"""Fixtures: demo databases, a store, and the engine wired to them."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "playbooks", "files", "build_demo_databases.py")
CHANGE = os.path.join(ROOT, "playbooks", "files", "change_demo_records.py")
DEFAULTS = os.path.join(ROOT, "roles", "default_mappings", "defaults", "main.yml")


def default_mapping_set() -> list[dict[str, Any]]:
    with open(DEFAULTS) as handle:
        return yaml.safe_load(handle)["default_mappings_set"]


def customer_account_mapping(**options: Any) -> dict[str, Any]:
    """The demo's customer <-> account mapping (to_integration); options set any key, such as fields or direction."""
    mapping = {
        "name": "CUSTOMER",
        "local_table": "customer",
        "local_key": "no",
        "local_modified_field": "modified_on",
        "integration_table": "account",
        "integration_key": "accountid",
        "integration_modified_field": "modifiedon",
        "direction": "to_integration",
        "fields": [],
    }
    mapping.update(options)
    return mapping


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes: what a test compares to show that nothing was written."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def rows(path: str, sql: str, *params: Any) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def execute(path: str, sql: str, *params: Any) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@dataclass
class Demo:
    """Two demo databases and a store path, and the engine opened on them."""

    directory: str
    erp: str
    crm: str
    store_path: str
    opened: list = field(default_factory=list)

    @property
    def local(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": self.erp}

    @property
    def integration(self) -> dict[str, Any]:
        return {"type": "sqlite", "path": self.crm}

    def engine(self, read_only: bool = False):
        from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
        from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

        store = Store(self.store_path, read_only=read_only)
        endpoints = {"local": open_endpoint("local", self.local), "integration": open_endpoint("integration", self.integration)}
        self.opened.extend([store, *endpoints.values()])
        return store, endpoints

    def declare(self, definitions: list[dict[str, Any]] | None = None) -> None:
        from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables

        store, endpoints = self.engine()
        for definition in definitions if definitions is not None else default_mapping_set():
            clean = normalize(definition)
            mapping = Mapping.from_definition(clean)
            mapping.bind(open_tables(mapping, endpoints))
            store.put_mapping(clean)

    def run(self, mode: str = "full", names: list[str] | None = None, dry_run: bool = False, **options: Any):
        from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
        from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner

        after = options.pop("after_full_sync", "restore")
        records = options.pop("records", None)
        store, endpoints = self.engine(read_only=dry_run)
        return SyncRunner(store, endpoints, RunOptions(dry_run=dry_run, **options)).run(mode, names, after, records=records)

    def change_customers(self, count: int, seed: int = 1) -> list[str]:
        out = subprocess.run([sys.executable, CHANGE, "--erp", self.erp, "--count", str(count), "--seed", str(seed)],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout)["customers"]

    def close(self) -> None:
        for item in self.opened:
            item.close()


def build_demo(directory: str, customers: int = 200, items: int = 30, resources: int = 5) -> Demo:
    os.makedirs(directory, exist_ok=True)
    demo = Demo(directory, os.path.join(directory, "erp.sqlite"), os.path.join(directory, "crm.sqlite"), os.path.join(directory, "store.sqlite"))
    subprocess.run(
        [sys.executable, BUILD, "--erp", demo.erp, "--crm", demo.crm, "--customers", str(customers), "--items", str(items),
         "--resources", str(resources), "--force"],
        check=True, capture_output=True,
    )
    return demo


@pytest.fixture
def forks(monkeypatch):
    """The number of read-ahead processes started."""
    from ansible_collections.tablesync.integration.plugins.module_utils import read_ahead as read_ahead_module

    started = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            started.append(pid)
        return pid

    monkeypatch.setattr(read_ahead_module.os, "fork", fork)
    return started


@pytest.fixture
def demo(tmp_path):
    """Small demo databases (200 customers) with the default mappings not yet declared."""
    d = build_demo(str(tmp_path / "demo"))
    yield d
    d.close()
