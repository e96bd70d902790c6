"""A real sync process killed with SIGKILL at several points; the rerun repairs everything."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import PLAYBOOKS, extra_vars, kill_tree, playbook_env
from tests.support.fixtures import build_demo, rows


def _count(path: str, sql: str) -> int:
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def _start(demo, batch_size: int, output: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(PLAYBOOKS, "sync.yml"),
           *extra_vars(store_path=demo.store_path, erp=demo.erp, crm=demo.crm, sync_mode="full", batch_size=batch_size)]
    return subprocess.Popen(cmd, env=playbook_env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True, text=True)


def _kill_when(proc: subprocess.Popen, demo, table: str, at_least: int, limit: float = 120.0) -> bool:
    """SIGKILL the sync once the CRM table holds ``at_least`` rows."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        if _count(demo.crm, "select count(*) from %s" % table) >= at_least:
            kill_tree(proc)
            return True
        time.sleep(0.01)
    if proc.poll() is None:
        kill_tree(proc)
    return False


@pytest.mark.slow
def test_sigkill_at_several_points_then_rerun_has_no_duplicates_and_no_losses(tmp_path):
    demo = build_demo(str(tmp_path / "demo"), customers=3000, items=200, resources=20)
    demo.declare()
    demo.close()
    kills = 0
    # points across the run: early customers, mid customers, late customers, contacts
    for table, threshold in (("account", 100), ("account", 1200), ("account", 2600), ("contact", 1500)):
        proc = _start(demo, batch_size=40)
        kills += _kill_when(proc, demo, table, threshold)
    assert kills >= 3, "the sync finished before it could be killed; the test proves nothing"
    # the rerun completes what the killed runs left
    proc = _start(demo, batch_size=500, output=subprocess.PIPE)
    out, _ignored = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-5000:]
    for mapping, local, integration, number in (("CUSTOMER", "customer", "account", "accountnumber"),):
        source = {r[0] for r in rows(demo.erp, "select no from %s" % local)}
        created = rows(demo.crm, "select %s, count(*) from %s group by %s" % (number, integration, number))
        assert {r[0] for r in created} == source
        assert all(r[1] == 1 for r in created), "duplicate %s records" % integration
        couplings = rows(demo.store_path, "select local_id, integration_id from tablesync_couplings where mapping = ?", mapping)
        assert len(couplings) == len(source) and {c[0] for c in couplings} == source
        assert len({c[1] for c in couplings}) == len(source)
        ids = {r[0] for r in rows(demo.crm, "select %sid from %s" % (integration, integration))}
        assert {c[1] for c in couplings} == ids
    contacts = rows(demo.erp, "select count(*) from contact")[0][0]
    assert rows(demo.crm, "select count(*) from contact")[0][0] == contacts
    assert rows(demo.store_path, "select count(*), count(distinct integration_id) from tablesync_couplings where mapping = 'CONTACTS'")[0] == (
        contacts, contacts)
    assert rows(demo.store_path, "select count(*) from tablesync_pending_pages")[0][0] == 0
