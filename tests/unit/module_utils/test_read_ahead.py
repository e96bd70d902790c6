# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-ahead: pages planned by a second process give exactly what one process gives.

The first half checks read_ahead itself (order, errors, a parent that stops early or a
child that dies, how far ahead the child may run); the second runs real syncs on SQLite
with small batches, so that every flow of the demo is planned ahead, and compares them
with the same syncs in one process.
"""

from __future__ import annotations

import datetime
import os
import signal
import sqlite3
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import sql_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.read_ahead import ReadAheadError, read_ahead
from ansible_collections.tablesync.integration.plugins.module_utils.values import fingerprint
from tests.support.fixtures import build_demo, customer_account_mapping, rows


def _yes() -> bool:
    return True


def _nothing() -> None:
    return None


def _made_by(count: int, log: str | None = None):
    """Items (index, pid of the process that made it); each one noted in ``log`` when made."""
    for index in range(count):
        if log:
            with open(log, "a") as fh:
                fh.write("%d\n" % index)
        yield index, os.getpid()


# --------------------------------------------------------------------------- read_ahead itself


def test_items_arrive_in_order_made_by_another_process():
    got = list(read_ahead(_made_by(50), _yes, _nothing))
    assert [i for i, _pid in got] == list(range(50))
    assert {pid for _i, pid in got} != {os.getpid()} and len({pid for _i, pid in got}) == 1


def test_when_release_refuses_the_items_are_made_here():
    got = list(read_ahead(_made_by(5), lambda: False, _nothing))
    assert got == [(i, os.getpid()) for i in range(5)]


@pytest.mark.parametrize("window", [1, 2])
def test_the_child_runs_at_most_window_items_ahead(tmp_path, window):
    log = str(tmp_path / "made.log")
    for index, _pid in read_ahead(_made_by(12, log), _yes, _nothing, window=window):
        time.sleep(0.02)  # why: give the child every chance to run further than it may
        with open(log) as fh:
            made = [int(line) for line in fh]
        assert max(made) <= index + window, "item %d in use, the child already made %s" % (index, made)


def _failing(at: int, exc: BaseException):
    for index in range(10):
        if index == at:
            raise exc
        yield index


def test_an_error_in_the_child_is_raised_here_with_its_type_and_message():
    got = []
    with pytest.raises(EndpointError, match="customer table is gone"):
        for item in read_ahead(_failing(3, EndpointError("customer table is gone")), _yes, _nothing):
            got.append(item)
    assert got == [0, 1, 2]


class _Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("not picklable")


def test_an_error_that_cannot_cross_processes_is_described():
    with pytest.raises(ReadAheadError, match="_Unpicklable: the reason"):
        list(read_ahead(_failing(1, _Unpicklable("the reason")), _yes, _nothing))


def _child_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_stopping_early_stops_the_child():
    items = read_ahead(_made_by(1000), _yes, _nothing)
    _index, pid = next(items)
    items.close()
    assert _child_gone(pid), "the read-ahead process outlived the generator"


def test_a_child_that_dies_is_an_error_not_a_short_result():
    items = read_ahead(_made_by(1000), _yes, _nothing)
    _index, pid = next(items)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ReadAheadError, match="ended unexpectedly.*signal 9"):
        for _item in items:
            pass


# --------------------------------------------------------------------------- real syncs


def _tables(path: str) -> dict[str, list[tuple]]:
    """Every table of a database, rows sorted; generated ids and modified-on stamps left out (they differ between runs)."""
    conn = sqlite3.connect(path)
    try:
        out = {}
        for (name,) in conn.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"):
            cols = [c[1] for c in conn.execute("pragma table_info(%s)" % name) if not c[1].endswith("id") and c[1] not in ("modifiedon", "modified_on")]
            out[name] = sorted(conn.execute("select %s from %s" % (", ".join(cols), name)).fetchall(), key=repr)
        return out
    finally:
        conn.close()


def _demo_runs(directory: str, read_ahead_on: bool) -> tuple[list, dict]:
    demo = build_demo(directory, customers=120, items=25, resources=5)
    try:
        demo.declare()
        runs = [demo.run("full", batch_size=7, read_ahead=read_ahead_on)]
        demo.change_customers(30)
        runs.append(demo.run("modified", batch_size=7, read_ahead=read_ahead_on))
        runs.append(demo.run("full", batch_size=7, read_ahead=read_ahead_on))
        summary = [[(j.mapping, j.counts, j.errors) for j in run.jobs] for run in runs]
        return summary, {"erp": _tables(demo.erp), "crm": _tables(demo.crm)}
    finally:
        demo.close()


def test_the_demo_planned_ahead_ends_as_in_one_process(tmp_path, forks):
    ahead, ahead_data = _demo_runs(str(tmp_path / "ahead"), True)
    assert len(forks) >= 3, "the demo's flows of more than one page are planned ahead"
    started = len(forks)
    alone, alone_data = _demo_runs(str(tmp_path / "alone"), False)
    assert len(forks) == started
    assert ahead == alone
    assert ahead_data == alone_data
    full = dict((m, c) for m, c, _e in ahead[0])
    assert full["CUSTOMER"]["inserted"] == 120 and full["CUSTOMER"]["failed"] == 0
    modified = dict((m, c) for m, c, _e in ahead[1])
    assert modified["CUSTOMER"]["modified"] == 30


def _customers(directory, count: int, bad: set[int]) -> dict[str, str]:
    paths = {name: str(directory / ("%s.sqlite" % name)) for name in ("erp", "crm", "store")}
    base = datetime.datetime(2025, 1, 1)
    erp = sqlite3.connect(paths["erp"])
    erp.execute("CREATE TABLE customer (no TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT, email TEXT, credit_limit NUMERIC, modified_on DATETIME)")
    erp.executemany("INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?)", (
        ("C%05d" % i, "Customer %d" % i, "City", "c%d@example.com" % i, "not a number" if i in bad else "%d.50" % i,
         (base + datetime.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S.%f")) for i in range(count)))
    erp.commit()
    erp.close()
    crm = sqlite3.connect(paths["crm"])
    crm.execute("CREATE TABLE account (accountid TEXT PRIMARY KEY, accountnumber TEXT, name TEXT, address1_city TEXT, emailaddress1 TEXT, "
                "creditlimit NUMERIC, modifiedon DATETIME)")
    crm.close()
    return paths


def _sync(paths: dict[str, str], mode: str, **options):
    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
    from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
    from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

    store = Store(paths["store"])
    endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": paths["erp"]}),
                 "integration": open_endpoint("integration", {"type": "sqlite", "path": paths["crm"]})}
    try:
        if not store.exists or not store.list_mappings():
            definition = customer_account_mapping(fields=[{"field": a, "integration_field": b} for a, b in (
                ("no", "accountnumber"), ("name", "name"), ("city", "address1_city"), ("email", "emailaddress1"), ("credit_limit", "creditlimit"))])
            clean = normalize(definition)
            Mapping.from_definition(clean).bind(open_tables(Mapping.from_definition(clean), endpoints))
            store.put_mapping(clean)
        return SyncRunner(store, endpoints, RunOptions(**options)).run(mode).jobs[0]
    finally:
        for e in endpoints.values():
            e.close()
        store.close()


def test_records_failed_in_pages_planned_ahead_are_reported_and_the_others_written(tmp_path, forks):
    paths = _customers(tmp_path, 2000, bad={150, 1550})
    job = _sync(paths, "full", batch_size=100)
    assert forks, "pages after the first are planned ahead"
    assert job.counts["inserted"] == 1998 and job.counts["failed"] == 2
    assert sorted(e["record_id"] for e in job.errors) == ["C00150", "C01550"]
    assert all("creditlimit" in e["message"] for e in job.errors)
    assert rows(paths["crm"], "select count(*), count(distinct accountnumber) from account")[0] == (1998, 1998)
    assert rows(paths["store"], "select count(*) from tablesync_couplings")[0][0] == 1998
    assert rows(paths["store"], "select count(*) from tablesync_pending_pages")[0][0] == 0
    # the destination fingerprints stored (taken over from the source where values pass through) are those of the rows written
    stored = dict(rows(paths["store"], "select integration_id, integration_fp from tablesync_couplings"))
    for account_id, *values in rows(paths["crm"], "select accountid, accountnumber, name, address1_city, emailaddress1, creditlimit from account"):
        assert stored[account_id] == fingerprint(values), account_id


def test_a_record_read_again_in_the_next_page_is_not_created_twice(tmp_path, monkeypatch, forks):
    """A record changed while a modified-on read runs comes again in a later page; planned ahead, before its
    first occurrence is coupled, it would be created a second time."""
    paths = _customers(tmp_path, 300, bad=set())
    original_scan = sql_endpoint.SqlTable.scan

    def scan(self, fields, *args, **kwargs):
        for number, page in enumerate(original_scan(self, fields, *args, **kwargs)):
            if number == 1:  # the second page brings the first page's last record again, changed
                again = list(page[0])
                again[0], again[list(fields).index("city")] = "C00049", "Moved meanwhile"
                page = page + [tuple(again)]
            yield page

    monkeypatch.setattr(sql_endpoint.SqlTable, "scan", scan)
    job = _sync(paths, "full", batch_size=50)
    assert forks
    assert job.counts["failed"] == 0 and job.counts["inserted"] == 300 and job.counts["modified"] == 1
    assert rows(paths["crm"], "select count(*), count(distinct accountnumber) from account")[0] == (300, 300)
    assert rows(paths["crm"], "select address1_city from account where accountnumber = 'C00049'") == [("Moved meanwhile",)]


def test_a_sql_table_planned_ahead_into_a_web_service(tmp_path, forks):
    """The pages of a SQL source are planned ahead while this process writes them to Dataverse (the test double)."""
    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
    from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
    from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
    from tests.support import ODataService
    from tests.support.web_schemas import declare_dataverse, endpoint_options

    paths = _customers(tmp_path, 260, bad={130})
    definition = customer_account_mapping(integration_table="accounts", fields=[{"field": a, "integration_field": b} for a, b in (
        ("no", "accountnumber"), ("name", "name"), ("city", "address1_city"), ("email", "emailaddress1"), ("credit_limit", "creditlimit"))])
    with ODataService("dataverse") as svc:
        declare_dataverse(svc, change_tracking=False)

        def sync(mode: str):
            store = Store(paths["store"])
            endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": paths["erp"]}),
                         "integration": open_endpoint("integration", endpoint_options(svc))}
            try:
                if not store.exists or not store.list_mappings():
                    clean = normalize(definition)
                    Mapping.from_definition(clean).bind(open_tables(Mapping.from_definition(clean), endpoints))
                    store.put_mapping(clean)
                return SyncRunner(store, endpoints, RunOptions(batch_size=40)).run(mode).jobs[0]
            finally:
                for item in (store, *endpoints.values()):
                    item.close()

        job = sync("full")
        assert forks, "pages after the first are planned ahead"
        assert job.counts["inserted"] == 259 and job.counts["failed"] == 1
        assert [e["record_id"] for e in job.errors] == ["C00130"]
        accounts = svc.rows("accounts")
        assert sorted(a["accountnumber"] for a in accounts) == ["C%05d" % i for i in range(260) if i != 130]
        assert rows(paths["store"], "select count(*) from tablesync_couplings")[0][0] == 259
        again = sync("full")
        assert again.counts["unchanged"] == 259 and again.counts["inserted"] == 0 and again.counts["failed"] == 1
        assert len(svc.rows("accounts")) == 259
