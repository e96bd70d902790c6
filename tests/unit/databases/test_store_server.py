"""The store on PostgreSQL (and SQLite): created on first use, migrated, newer schema refused, endpoint binding."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError
from ansible_collections.tablesync.integration.plugins.module_utils.store import SCHEMA_VERSION, BatchCommit, Store
from tests.support.databases import load_demo
from tests.support.fixtures import Demo, build_demo


def _store_location(kind, request, tmp_path):
    if kind == "postgresql":
        return request.getfixturevalue("pg_db").url_text
    return str(tmp_path / "store.sqlite")


def _query(location, sql):
    url = location if "://" in location else "sqlite:///" + location
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql))
            return result.fetchall() if result.returns_rows else None
    finally:
        engine.dispose()


def _has_table(location, name):
    engine = sa.create_engine(location if "://" in location else "sqlite:///" + location)
    try:
        return sa.inspect(engine).has_table(name)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_store_is_created_then_an_older_schema_is_migrated(kind, request, tmp_path):
    location = _store_location(kind, request, tmp_path)
    store = Store(location)
    run_id = store.start_run("full", ["CUSTOMER"])
    store.close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    # make it a version-1 store: the runs table without the process columns
    for column in ("pid", "host"):
        _query(location, "alter table tablesync_runs drop column %s" % column)
    _query(location, "update tablesync_schema_info set value = '1' where key = 'schema_version'")
    # a read-only open (check mode, job log) neither migrates nor fails
    Store(location, read_only=True).close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [("1",)]
    store = Store(location)
    try:
        assert store.run_info(run_id)["mode"] == "full", "the migration lost the existing runs"
        second = store.start_run("modified", ["CUSTOMER"])
        assert store.run_info(second)["pid"] is not None
    finally:
        store.close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_per_record_intents_of_a_version_2_store_become_pages(kind, request, tmp_path):
    """A run killed under version 2 left per-record intents; after the upgrade they are still repaired."""
    location = _store_location(kind, request, tmp_path)
    Store(location).close()
    _query(location, "drop table tablesync_pending_pages")
    for side in ("local", "integration"):
        _query(location, "drop index ix_tablesync_couplings_%s_unsynced" % side)
    _query(location, "create table tablesync_pending_creates (mapping varchar(255) not null, source_side varchar(16) not null, "
                     "source_id varchar(255) not null, dest_id varchar(255), dest_values text not null, fingerprints text not null, "
                     "created_at timestamp not null, primary key (mapping, source_side, source_id))")
    _query(location, "insert into tablesync_pending_creates values "
                     "('CUSTOMER', 'local', 'C1', 'a-1', '{}', '{\"dst\": \"d1\", \"src\": \"s1\"}', '2026-01-01 00:00:00'), "
                     "('CUSTOMER', 'local', 'C2', null, '{\"name\": \"Two\"}', '{\"dst\": \"d2\", \"src\": \"s2\"}', '2026-01-01 00:00:00')")
    _query(location, "update tablesync_schema_info set value = '2' where key = 'schema_version'")
    store = Store(location)
    try:
        pending = sorted(store.pending("CUSTOMER"), key=lambda p: p.source_id)
        assert [(p.source_side, p.source_id, p.dest_id, p.dest_values, p.fingerprints) for p in pending] == [
            ("local", "C1", "a-1", {}, {"src": "s1", "dst": "d1"}),
            ("local", "C2", None, {"name": "Two"}, {"src": "s2", "dst": "d2"}),
        ]
        assert len({p.page for p in pending}) == 1
    finally:
        store.close()
    assert not _has_table(location, "tablesync_pending_creates")
    engine = sa.create_engine(location if "://" in location else "sqlite:///" + location)
    try:
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("tablesync_couplings")}
    finally:
        engine.dispose()
    assert {"ix_tablesync_couplings_local_unsynced", "ix_tablesync_couplings_integration_unsynced"} <= indexes
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_version_3_store_is_read_as_it_is_then_migrated_with_its_failed_records(kind, request, tmp_path):
    """Version 4 counts the attempts of failed records (skipping) and the uncouplings of jobs."""
    location = _store_location(kind, request, tmp_path)
    store = Store(location)
    run_id = store.start_run("full", ["CUSTOMER"])
    job_id = store.start_job(run_id, "CUSTOMER", "full", "to_integration")
    store.commit_batch("CUSTOMER", run_id, job_id, BatchCommit(failed=[("local", "C1", "lookup failed")]), skip_after=2)
    store.close()
    _query(location, "alter table tablesync_failed_records drop column attempts")
    _query(location, "alter table tablesync_failed_records drop column skipped")
    _query(location, "alter table tablesync_jobs drop column uncoupled")
    _query(location, "update tablesync_schema_info set value = '3' where key = 'schema_version'")
    old = Store(location, read_only=True)  # check mode and sync_job_info read it as it is
    try:
        assert old.failed_ids("CUSTOMER", "local") == ["C1"] and old.failed_ids("CUSTOMER", "local", skipped=True) == []
        assert old.skipped_records() == [] and old.jobs(run_id=run_id)[0]["uncoupled"] == 0
    finally:
        old.close()
    store = Store(location)
    try:
        second = store.start_job(run_id, "CUSTOMER", "modified", "to_integration")
        store.commit_batch("CUSTOMER", run_id, second, BatchCommit(failed=[("local", "C1", "lookup failed")]), skip_after=2)
        assert store.failed_ids("CUSTOMER", "local", skipped=True) == ["C1"], "its failure before the upgrade counted"
        assert [(r["record_id"], r["attempts"]) for r in store.skipped_records(["CUSTOMER"])] == [("C1", 2)]
        assert store.jobs(run_id=run_id)[0]["uncoupled"] == 0
    finally:
        store.close()
    assert _query(location, "select value from tablesync_schema_info where key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_a_store_with_a_newer_schema_is_refused(kind, request, tmp_path):
    location = _store_location(kind, request, tmp_path)
    Store(location).close()
    _query(location, "update tablesync_schema_info set value = '%d' where key = 'schema_version'" % (SCHEMA_VERSION + 1))
    with pytest.raises(ConfigurationError, match="schema version %d, newer than this collection supports" % (SCHEMA_VERSION + 1)):
        Store(location)


def test_an_unreachable_store_fails_with_a_clear_message():
    # the password is shown as *** (never the password itself), so a reader sees the URL holds one
    with pytest.raises(ConfigurationError, match=r"store postgresql\+psycopg://nobody:\*\*\*@127.0.0.1:1/x cannot be opened") as failed:
        Store("postgresql://nobody:secret-pw@127.0.0.1:1/x")
    assert "secret-pw" not in str(failed.value)


def test_store_refuses_a_different_crm_database_unless_rebound(tmp_path, pg_db, my_db, my_db2, pg_db2):
    base = build_demo(str(tmp_path / "demo"), customers=20, items=5, resources=2)
    load_demo(base.erp, pg_db)
    load_demo(base.crm, my_db)
    load_demo(base.crm, my_db2)

    class Pair(Demo):
        crm_db = my_db

        @property
        def local(self):
            return pg_db.options(password="s3cret-pw", sslmode="disable")

        @property
        def integration(self):
            return self.crm_db.options()

    demo = Pair(base.directory, base.erp, base.crm, pg_db2.url_text)
    try:
        demo.declare()
        demo.run("full")
        recorded = dict(pg_db2.rows("select key, value from tablesync_schema_info where key like 'endpoint.%'"))
        assert json.loads(recorded["endpoint.integration"]) == {"type": "mysql", "address": "127.0.0.1:3306/%s" % my_db.name}
        assert json.loads(recorded["endpoint.local"]) == {"type": "postgresql", "address": "127.0.0.1:5432/%s" % pg_db.name}
        runs = pg_db2.scalar("select count(*) from tablesync_runs")
        demo.crm_db = my_db2
        with pytest.raises(ConfigurationError) as info:
            demo.run("full")
        message = str(info.value)
        assert my_db.name in message and my_db2.name in message and "rebind" in message
        assert "s3cret-pw" not in message
        # refused before anything was written
        assert my_db2.scalar("select count(*) from account") == 0
        assert pg_db2.scalar("select count(*) from tablesync_runs") == runs
        with pytest.raises(ConfigurationError):
            demo.run("full", dry_run=True)
        # the CRM database moved to the new address (rebind is for the same databases, elsewhere)
        for (table,) in my_db.rows("show tables"):
            my_db2.execute("delete from `%s`" % table)
            my_db2.execute("insert into `%s` select * from `%s`.`%s`" % (table, my_db.name, table))
        # told to rebind: the new pair is recorded and used
        run = demo.run("full", rebind=True)
        assert run.status == "success"
        assert json.loads(pg_db2.scalar("select value from tablesync_schema_info where key = 'endpoint.integration'"))["address"].endswith(my_db2.name)
        everything = " ".join(str(r) for t in ("tablesync_schema_info", "tablesync_runs", "tablesync_jobs") for r in pg_db2.rows("select * from %s" % t))
        assert "s3cret-pw" not in everything
    finally:
        demo.close()


def test_store_password_stays_out_of_the_address_and_other_backends_are_refused(pg_db):
    store = Store(pg_db.url_text, password="s3cret-pw")
    try:
        assert store.url.password == "s3cret-pw"
        assert "s3cret-pw" not in store.address and pg_db.name in store.address
        assert store.exists
    finally:
        store.close()
    with pytest.raises(ConfigurationError, match="a store is a SQLite file or a postgresql:// URL, not mysql"):
        Store("mysql://root@127.0.0.1:3306/test")
