"""The store of a sync split into partitions, on PostgreSQL and SQLite: the migration to per-partition
watermarks, jobs naming their partition and group, and couplings claimed by runs racing in other processes."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import sqlalchemy as sa

from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition
from ansible_collections.tablesync.integration.plugins.module_utils.store import SCHEMA_VERSION, Coupling, Store, _upsert
from tests.support.fixtures import ROOT

KINDS = ["postgresql", "sqlite"]
EARLY = datetime.datetime(2026, 1, 5, 8, 0)
LATE = datetime.datetime(2026, 2, 1, 9, 30)


@pytest.fixture(params=KINDS)
def location(request, tmp_path):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_db").url_text
    return str(tmp_path / "store.sqlite")


def _query(location, sql, **params):
    engine = sa.create_engine(location if "://" in location else "sqlite:///" + location)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return [tuple(r) for r in result] if result.returns_rows else None
    finally:
        engine.dispose()


def _make_version_4(location):
    """Turn a new store into one as version 4 left it: watermarks keyed by mapping and side, no partitions, no groups."""
    _query(location, "drop table tablesync_watermarks")
    _query(location, "create table tablesync_watermarks (mapping varchar(255) not null, side varchar(16) not null, value timestamp not null, "
                     "primary key (mapping, side))")
    _query(location, "drop index ix_tablesync_runs_group_id")
    _query(location, "alter table tablesync_runs drop column group_id")
    _query(location, "alter table tablesync_jobs drop column partition")
    _query(location, "update tablesync_schema_info set value = '4' where key = 'schema_version'")


KILLED_MIGRATION = textwrap.dedent(
    """
    import os, sys
    sys.path[:0] = [%r, %r]
    from ansible_collections.tablesync.integration.plugins.module_utils import store

    def migrate_then_die(conn, tables):
        store._migrate_5(conn, tables)  # the watermarks table rebuilt, its rows copied: then killed before the commit
        os._exit(9)

    store.MIGRATIONS[5] = migrate_then_die
    store.Store(sys.argv[1])
    """
) % (os.path.join(ROOT, "collections"), ROOT)


def test_a_migration_killed_midway_leaves_the_store_as_it_was_and_the_next_completes_it(location):
    Store(location).close()
    _make_version_4(location)
    _query(location, "insert into tablesync_watermarks values ('CUSTOMER', 'local', :early), ('CUSTOMER', 'integration', :late)",
           early=EARLY, late=LATE)
    killed = subprocess.run([sys.executable, "-c", KILLED_MIGRATION, location], capture_output=True, text=True, timeout=120, check=False)
    assert killed.returncode == 9, killed.stderr
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [("4",)]
    assert sorted(_query(location, "select mapping, side from tablesync_watermarks")) == [("CUSTOMER", "integration"), ("CUSTOMER", "local")]
    store = Store(location)
    try:
        assert store.version == SCHEMA_VERSION
        assert store.watermark("CUSTOMER", "local") == EARLY and store.watermark("CUSTOMER", "integration") == LATE
    finally:
        store.close()


def test_a_version_4_store_is_read_as_it_is_then_migrated_keeping_its_watermarks(location):
    store = Store(location)
    run_id = store.start_run("modified", ["CUSTOMER"])
    store.start_job(run_id, "CUSTOMER", "modified", "to_integration")
    store.close()
    _make_version_4(location)
    _query(location, "insert into tablesync_watermarks values ('CUSTOMER', 'local', :early), ('CUSTOMER', 'integration', :late)",
           early=EARLY, late=LATE)

    old = Store(location, read_only=True)  # check mode and sync_job_info read it before any migration
    try:
        assert old.watermark("CUSTOMER", "local") == EARLY and old.watermark("CUSTOMER", "local", Partition(1, 2)) == EARLY
        [job] = old.jobs(run_id=run_id)
        assert job["partition"] is None and job["group_id"] is None
        assert old.jobs(group_id="nightly") == []
        assert old.run_info(run_id)["mode"] == "modified"
    finally:
        old.close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [("4",)]

    store = Store(location)
    try:
        assert store.watermark("CUSTOMER", "local") == EARLY and store.watermark("CUSTOMER", "integration") == LATE
        assert store.watermark("CUSTOMER", "local", Partition(0, 2)) == EARLY, "a partition starts from the whole mapping's watermark"
        store.set_watermark("CUSTOMER", "local", LATE, Partition(0, 2))
        assert store.watermark("CUSTOMER", "local", Partition(0, 2)) == LATE and store.watermark("CUSTOMER", "local", Partition(1, 2)) == EARLY
        second = store.start_run("modified", ["CUSTOMER"], group_id="nightly")
        store.start_job(second, "CUSTOMER", "modified", "to_integration", Partition(0, 2))
        assert [(j["run_id"], j["partition"], j["group_id"]) for j in store.jobs()] == [(run_id, None, None), (second, "0/2", "nightly")]
    finally:
        store.close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert sorted(_query(location, "select mapping, side, partition from tablesync_watermarks")) == [
        ("CUSTOMER", "integration", ""), ("CUSTOMER", "local", ""), ("CUSTOMER", "local", "0/2")]
    engine = sa.create_engine(location if "://" in location else "sqlite:///" + location)
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("tablesync_watermarks")["constrained_columns"] == ["mapping", "side", "partition"]
        assert "ix_tablesync_runs_group_id" in {i["name"] for i in inspector.get_indexes("tablesync_runs")}
    finally:
        engine.dispose()


def test_jobs_name_their_partition_and_the_group_of_their_run(location):
    store = Store(location)
    try:
        workers = [store.start_run("full", ["CUSTOMER"], group_id="sync-42") for _worker in range(2)]
        jobs = [store.start_job(run_id, "CUSTOMER", "full", "to_integration", Partition(n, 2)) for n, run_id in enumerate(workers)]
        alone = store.start_run("full", ["CUSTOMER"])
        store.start_job(alone, "CUSTOMER", "full", "to_integration")
        store.record_job("ITEM", "full", "match", {"coupled": 3}, [])
        rows = store.jobs()
        assert [(r["mapping"], r["partition"], r["group_id"]) for r in rows] == [
            ("CUSTOMER", "0/2", "sync-42"), ("CUSTOMER", "1/2", "sync-42"), ("CUSTOMER", None, None), ("ITEM", None, None)]
        grouped = store.jobs(group_id="sync-42", status=["running"])
        assert [(r["id"], r["run_id"]) for r in grouped] == list(zip(jobs, workers))
        assert store.jobs(group_id="another") == []
        assert store.run_info(workers[0])["group_id"] == "sync-42"
    finally:
        store.close()


def test_claims_leave_out_pairs_whose_records_are_coupled_already(location):
    store = Store(location)
    try:
        store.change_couplings("CUSTOMER", add=[("C1", "a-1"), ("C2", "a-2")])
        store.change_couplings("ITEM", add=[("C3", "a-3")])  # another mapping's couplings do not count
        claims = [Coupling("CUSTOMER", "C1", "a-9"), Coupling("CUSTOMER", "C9", "a-2"), Coupling("CUSTOMER", "C3", "a-3"),
                  Coupling("CUSTOMER", "C4", "a-4"), Coupling("CUSTOMER", "C5", "a-4")]
        lost = store.claim_couplings("CUSTOMER", claims)
        assert [(c.local_id, c.integration_id) for c in lost] == [("C1", "a-9"), ("C9", "a-2"), ("C5", "a-4")]
        assert store.lookup_ids("CUSTOMER", "local", ["C1", "C2", "C3", "C4", "C5", "C9"]) == {"C1": "a-1", "C2": "a-2", "C3": "a-3", "C4": "a-4"}
        assert store.claim_couplings("CUSTOMER", []) == []
    finally:
        store.close()


CLAIMER = textwrap.dedent(
    """
    import json, random, sys
    sys.path[:0] = [%r, %r]
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling, Store
    store, worker, ids = Store(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    random.Random(worker).shuffle(ids)  # why: each claimer meets the others' rows in its own order
    claims = [Coupling("CUSTOMER", "%%s-%%s" %% (worker, i), i) for i in ids]
    store.has_couplings("CUSTOMER")  # connected before the start
    print("ready", flush=True)
    sys.stdin.readline()
    lost = [store.claim_couplings("CUSTOMER", claims[n:n + 100]) for n in range(0, len(claims), 100)]
    print(json.dumps([[c.local_id, c.integration_id] for page in lost for c in page]), flush=True)
    """
) % (os.path.join(ROOT, "collections"), ROOT)


def test_of_runs_claiming_the_same_records_at_once_exactly_one_couples_each(location):
    """Three processes claim the same 1000 integration records for records of their own, in pages, each in its own order
    (on PostgreSQL, claims not taking turns deadlock here most of the time)."""
    store = Store(location)
    store.change_couplings("CUSTOMER", add=[("earlier", "a-0007")])
    store.close()
    ids = ["a-%04d" % n for n in range(1000)]
    workers = ["w%d" % n for n in range(3)]
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, location, w, json.dumps(ids)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for w in workers]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        lost = {w: {tuple(pair) for pair in json.loads(proc.stdout.readline())} for w, proc in zip(workers, procs)}
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    coupled = dict((i, lid) for lid, i in _query(location, "select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'"))
    assert sorted(coupled) == ids and coupled["a-0007"] == "earlier"
    for w in workers:
        mine = {("%s-%s" % (w, i), i) for i in ids}
        assert lost[w] == {(lid, i) for lid, i in mine if coupled[i] != lid}, "%s was not told exactly which of its claims it lost" % w


def test_runs_recording_a_setting_at_the_same_moment_all_succeed(location):
    # the partitions of a distributed sync, started together on a new store, each record the endpoints
    store = Store(location)
    errors: list[Exception] = []

    def second() -> None:
        try:
            store.set_setting("endpoint.local", "b")
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    try:
        first = store.engine.connect()
        first.begin()
        _upsert(first, store.tables["schema_info"], {"key": "endpoint.local"}, {"value": "a"})  # not committed yet
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)  # why: the second writer now waits for the first's row
        first.commit()
        first.close()
        thread.join(60)
        assert not thread.is_alive() and errors == []
        assert store.get_setting("endpoint.local") == "b"
    finally:
        store.close()
