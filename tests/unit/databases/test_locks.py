"""Mapping locks on a PostgreSQL store and on a SQLite store: wait, time out, disjoint runs, killed holders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import LockTimeout
from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import ROOT, Demo, build_demo, rows

HOLDER_RUN = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(params=["postgresql", "sqlite"])
def locked_demo(request, tmp_path):
    """Demo databases (SQLite) with the default mappings declared in a PostgreSQL or SQLite store."""
    base = build_demo(str(tmp_path / "demo"), customers=50, items=10, resources=3)
    if request.param == "postgresql":
        db = request.getfixturevalue("pg_db")
        store = db.url_text
    else:
        store = base.store_path
    demo = Demo(base.directory, base.erp, base.crm, store)
    demo.declare()
    # why: customers refer to salespeople and currencies; their lookups need those couplings first
    assert demo.run("full", ["SALESPEOPLE", "CURRENCY"]).status == "success"
    yield demo
    demo.close()


def test_a_locked_mapping_makes_the_run_fail_naming_mapping_and_holder(locked_demo):
    store = Store(locked_demo.store_path)
    try:
        with mapping_locks(store, ["CUSTOMER"], HOLDER_RUN, timeout=1):
            with pytest.raises(LockTimeout) as info:
                locked_demo.run("modified", ["CUSTOMER"], lock_timeout=0.5)
            message = str(info.value)
            assert "CUSTOMER" in message and HOLDER_RUN in message and "pid %d" % os.getpid() in message
            # check mode waits for the lock too: its plan must not read half a run
            with pytest.raises(LockTimeout):
                locked_demo.run("full", ["CUSTOMER"], dry_run=True, lock_timeout=0.3)
            # a run of other mappings proceeds in parallel
            other = locked_demo.run("full", ["CURRENCY", "UNITOFMEASURE"], lock_timeout=0.5)
            assert other.status == "success" and {j.mapping: j.counts["inserted"] for j in other.jobs}["UNITOFMEASURE"] > 0
        assert rows(locked_demo.crm, "select count(*) from account")[0][0] == 0, "the refused run wrote records"
        # released at the end of the block: the next run proceeds
        done = locked_demo.run("full", ["CUSTOMER"], lock_timeout=0.5)
        assert done.jobs[0].counts["inserted"] == 50
    finally:
        store.close()


def test_a_run_waits_for_the_lock_within_lock_timeout(locked_demo):
    code = textwrap.dedent(
        """
        import sys, time
        sys.path[:0] = [%r, %r]
        from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
        from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
        store = Store(%r)
        import sqlite3
        with mapping_locks(store, ["CUSTOMER"], %r, timeout=10):
            print("locked", flush=True)
            time.sleep(1.5)
            # what the waiting run wrote while the lock was held: nothing
            print(sqlite3.connect(%r).execute("select count(*) from account").fetchone()[0], flush=True)
        """
    ) % (os.path.join(ROOT, "collections"), ROOT, locked_demo.store_path, HOLDER_RUN, locked_demo.crm)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        run = locked_demo.run("full", ["CUSTOMER"], lock_timeout=60)
        assert holder.stdout.readline().strip() == "0", "the run wrote while another held the mapping's lock"
        assert holder.wait(timeout=30) == 0
        assert run.jobs[0].counts["inserted"] == 50
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_does_not_leave_the_lock_held(locked_demo):
    code = textwrap.dedent(
        """
        import sys, time
        sys.path[:0] = [%r, %r]
        from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
        from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
        store = Store(%r)
        with mapping_locks(store, ["CUSTOMER", "CONTACTS"], %r, timeout=10):
            print("locked", flush=True)
            time.sleep(600)
        """
    ) % (os.path.join(ROOT, "collections"), ROOT, locked_demo.store_path, HOLDER_RUN)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockTimeout):
            locked_demo.run("full", ["CUSTOMER"], lock_timeout=0.2)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 30
        while True:  # the server notices the dead session when its socket closes
            try:
                run = locked_demo.run("full", ["CUSTOMER", "CONTACTS"], lock_timeout=5)
                break
            except LockTimeout:
                if time.monotonic() > deadline:
                    raise
        assert run.status == "success" and run.jobs[0].counts["inserted"] == 50
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
