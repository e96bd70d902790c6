# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine streams: a sync of a table larger than one batch never handles more than a batch at once.

Every read, write and store call is instrumented on real SQLite databases and must stay
within batch_size records; and the peak memory a sync allocates does not follow the
table's size (tracemalloc, a ratio between two sizes, not a timing).
"""

from __future__ import annotations

import datetime
import gc
import os
import sqlite3
import tracemalloc

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import sql_endpoint, store
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from tests.support.fixtures import customer_account_mapping

BATCH = 500
COLUMNS = (("no", "accountnumber"), ("name", "name"), ("city", "address1_city"), ("email", "emailaddress1"), ("credit_limit", "creditlimit"))
# the streaming test's account table has no modified-on column
MAPPING = customer_account_mapping(integration_modified_field=None, fields=[{"field": local, "integration_field": crm} for local, crm in COLUMNS])
BASE = datetime.datetime(2025, 1, 1)


def build(directory, rows: int) -> dict[str, str]:
    paths = {name: str(directory / ("%s.sqlite" % name)) for name in ("erp", "crm", "store")}
    erp = sqlite3.connect(paths["erp"])
    erp.execute("CREATE TABLE customer (no TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT, email TEXT, credit_limit NUMERIC, modified_on DATETIME)")
    erp.executemany(
        "INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?)",
        (("C%06d" % i, "Customer %d Ltd" % i, "City %d" % (i % 97), "c%d@example.com" % i, "%d.50" % (i % 1000),
          (BASE + datetime.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")) for i in range(rows)),
    )
    erp.commit()
    erp.close()
    crm = sqlite3.connect(paths["crm"])
    crm.execute("CREATE TABLE account (accountid TEXT PRIMARY KEY, accountnumber TEXT, name TEXT, address1_city TEXT, emailaddress1 TEXT, creditlimit NUMERIC)")
    crm.close()
    return paths


def engine(paths: dict[str, str]):
    st = store.Store(paths["store"])
    endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": paths["erp"]}),
                 "integration": open_endpoint("integration", {"type": "sqlite", "path": paths["crm"]})}
    return st, endpoints


def declare(paths: dict[str, str]) -> None:
    st, endpoints = engine(paths)
    clean = normalize(MAPPING)
    mapping = Mapping.from_definition(clean)
    mapping.bind(open_tables(mapping, endpoints))
    st.put_mapping(clean)
    close(st, endpoints)


def close(st, endpoints) -> None:
    for e in endpoints.values():
        e.close()
    st.close()


def run(paths: dict[str, str], mode: str, read_ahead: bool = True):
    st, endpoints = engine(paths)
    try:
        return SyncRunner(st, endpoints, RunOptions(batch_size=BATCH, read_ahead=read_ahead)).run(mode).jobs[0].counts
    finally:
        close(st, endpoints)


def change(paths: dict[str, str], count: int) -> None:
    conn = sqlite3.connect(paths["erp"])
    stamp = (BASE + datetime.timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S.%f")
    conn.execute("UPDATE customer SET city = 'Moved', modified_on = ? WHERE rowid IN (SELECT rowid FROM customer ORDER BY no LIMIT ?)", (stamp, count))
    conn.commit()
    conn.close()


class Sizes:
    """The number of records each instrumented call handled, in call order, from every process of the sync.

    Why a file: with read-ahead a second process reads and plans pages; its calls are counted too.
    """

    def __init__(self, path):
        self.path = path

    def record(self, name: str, count: int) -> None:
        with open(self.path, "a") as fh:  # one short append per call: lines of two processes do not mix
            fh.write("%s %d %d\n" % (name, count, os.getpid()))

    def _lines(self) -> list[tuple[str, int, int]]:
        if not os.path.exists(self.path):
            return []
        with open(self.path) as fh:
            return [(n, int(c), int(p)) for n, c, p in (line.split() for line in fh)]

    def __getitem__(self, name: str) -> list[int]:
        return [c for n, c, _pid in self._lines() if n == name]

    def __contains__(self, name: str) -> bool:
        return bool(self[name])

    def processes(self, name: str) -> set[int]:
        return {p for n, _c, p in self._lines() if n == name}

    def clear(self) -> None:
        if os.path.exists(self.path):
            os.remove(self.path)


@pytest.fixture
def sizes(monkeypatch, tmp_path):
    """Record the number of records every endpoint and store call handles."""
    seen = Sizes(str(tmp_path / "sizes.log"))

    def wrap(cls, name, measure, label=None):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            seen.record(label or name, measure(args, kwargs, result))
            return result

        monkeypatch.setattr(cls, name, wrapper)

    original_scan = sql_endpoint.SqlTable.scan

    def scan(self, *args, **kwargs):
        for page in original_scan(self, *args, **kwargs):
            seen.record("scan", len(page))
            yield page

    monkeypatch.setattr(sql_endpoint.SqlTable, "scan", scan)
    wrap(sql_endpoint.SqlTable, "insert_prepared", lambda a, k, r: len(a[1]), label="insert")  # rows made ready while planning
    wrap(sql_endpoint.SqlTable, "update", lambda a, k, r: len(r))
    wrap(sql_endpoint.SqlTable, "read_by_ids", lambda a, k, r: len(r))
    wrap(store.Store, "couplings_for", lambda a, k, r: max(len(a[2]), len(r)))
    wrap(store.Store, "add_pending", lambda a, k, r: a[0].size)
    wrap(store.Store, "commit_batch",
         lambda a, k, r: max(len(a[3].new_couplings) + len(a[3].changed_couplings), len(a[3].cleared_pending), len(a[3].succeeded)))
    return seen


@pytest.mark.parametrize("read_ahead", [True, False], ids=["read-ahead", "one-process"])
def test_sync_of_a_table_larger_than_a_batch_never_handles_more_than_a_batch(tmp_path, sizes, read_ahead):
    paths = build(tmp_path, 5000)
    declare(paths)

    counts = run(paths, "full", read_ahead)
    assert counts["inserted"] == 5000 and counts["failed"] == 0
    assert sizes["scan"] == [BATCH] * 10, "the source is read in pages of batch_size"
    # the first page is read here; with read-ahead a second process reads the others while this one writes
    assert len(sizes.processes("scan")) == (2 if read_ahead else 1)
    assert sizes.processes("insert") == {os.getpid()}, "only this process writes"
    assert sum(sizes["insert"]) == 5000 and max(sizes["insert"]) <= BATCH
    assert sum(sizes["commit_batch"]) == 5000 and max(sizes["commit_batch"]) <= BATCH
    assert "couplings_for" not in sizes, "a first full sync has no couplings to look up"
    assert sizes["add_pending"] == [BATCH] * 10
    conn = sqlite3.connect(paths["crm"])
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT accountnumber) FROM account").fetchone() == (5000, 5000)
    conn.close()

    # a full re-run fetches every coupling, still a page at a time
    sizes.clear()
    counts = run(paths, "full", read_ahead)
    assert counts["unchanged"] == 5000 and counts["inserted"] == counts["modified"] == 0
    assert sizes["couplings_for"] == [BATCH] * 10
    assert "insert" not in sizes and "update" not in sizes

    # a modified run over more changes than a batch updates them a batch at a time
    change(paths, 1200)
    sizes.clear()
    counts = run(paths, "modified", read_ahead)
    assert counts["modified"] == 1200 and counts["read"] == 1200
    # the read starts watermark_overlap (60 s) before the newest stamp the full sync read: the 61 records stamped in
    # that minute are read again (in the first page), found unchanged, neither rewritten nor counted
    assert sizes["scan"] == [500, 500, 261]
    assert sizes["update"] == [439, 500, 261]
    assert max(sizes["couplings_for"]) <= BATCH and max(sizes["commit_batch"]) <= BATCH
    conn = sqlite3.connect(paths["crm"])
    assert conn.execute("SELECT COUNT(*) FROM account WHERE address1_city = 'Moved'").fetchone()[0] == 1200
    conn.close()


def _peak_of_full_sync(directory, rows: int) -> int:
    paths = build(directory, rows)
    declare(paths)
    gc.collect()
    tracemalloc.start()
    try:
        counts = run(paths, "full")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts["inserted"] == rows
    return peak


def test_peak_memory_of_a_sync_does_not_follow_the_table_size(tmp_path):
    for name in ("warm", "small", "large"):
        (tmp_path / name).mkdir()
    _peak_of_full_sync(tmp_path / "warm", 600)  # why: module-level caches (compiled SQL) fill on the first sync
    small = _peak_of_full_sync(tmp_path / "small", 2500)
    large = _peak_of_full_sync(tmp_path / "large", 10000)
    # holding every record would make the larger sync's peak about four times the smaller one's
    assert large < 1.5 * small, "peak traced memory %d bytes for 10,000 rows vs %d for 2,500" % (large, small)
