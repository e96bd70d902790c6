"""playbooks/distributed_sync.yml on four local-connection workers sharing a PostgreSQL store: a SQLite ERP into a
PostgreSQL CRM, full then modified, each worker one partition; and a worker killed in the middle, then the play again."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition, partition_of
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.integration.conftest import ROOT, descendants, playbook_env
from tests.support.databases import load_demo
from tests.support.fixtures import Demo, build_demo, execute, rows

PLAYBOOK = os.path.join(ROOT, "playbooks", "distributed_sync.yml")
WORKERS = 4


class SqliteToPostgres(Demo):
    """The demo ERP as a SQLite file, its CRM on a PostgreSQL server, the store on another."""

    crm_db = None

    @property
    def integration(self):
        return self.crm_db.options()


@pytest.fixture
def cluster(tmp_path, pg_db, pg_db2):
    base = build_demo(str(tmp_path / "demo"), customers=3000, items=200)
    load_demo(base.crm, pg_db)
    demo = SqliteToPostgres(base.directory, base.erp, base.crm, pg_db2.url_text)
    demo.crm_db = pg_db
    demo.declare()
    inventory = tmp_path / "workers.yml"
    hosts = {"w%d" % i: {"tablesync_partition": i} for i in range(WORKERS)}
    inventory.write_text(yaml.safe_dump({"tablesync_workers": {"hosts": hosts, "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "tablesync_partition_count": WORKERS}}}))
    connections = tmp_path / "connections.yml"
    connections.write_text(yaml.safe_dump({"tablesync_store": demo.store_path, "tablesync_local": demo.local,
                                           "tablesync_integration": demo.integration, "tablesync_batch_size": 100}))
    demo.play_args = ["-i", str(inventory), "-f", str(WORKERS), "-e", "@%s" % connections]
    yield demo
    demo.close()


def play(demo, *args, check=True, **variables):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK, *demo.play_args, "-e", json.dumps(variables), *args]
    proc = subprocess.run(cmd, env=playbook_env(), capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)
    if check:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    return proc


def accounts(demo):
    return collections.Counter(r[0] for r in demo.crm_db.rows("select accountnumber from account"))


def assert_in_step(demo):
    customers = dict(rows(demo.erp, "select no, name from customer"))
    held = accounts(demo)
    assert set(held) == set(customers), "missing %s, unexpected %s" % (sorted(set(customers) - set(held))[:5], sorted(set(held) - set(customers))[:5])
    assert max(held.values()) == 1, "duplicated: %s" % [n for n, c in held.items() if c > 1][:5]
    assert dict(demo.crm_db.rows("select accountnumber, name from account")) == customers
    store = Store(demo.store_path)
    try:
        assert store.count_couplings("CUSTOMER") == len(customers)
    finally:
        store.close()
    contacts = demo.crm_db.rows("select count(*), count(distinct lastname || firstname || coalesce(emailaddress1, '')) from contact")[0]
    assert contacts[0] == len(rows(demo.erp, "select no from contact"))


def marks(demo):
    store = Store(demo.store_path)
    try:
        return {i: store.watermark("CUSTOMER", "local", partition=Partition(i, WORKERS)) for i in range(WORKERS)}
    finally:
        store.close()


def test_four_workers_synchronise_every_record_once_full_then_modified(cluster):
    full = play(cluster, tablesync_mode="full", tablesync_run_group="full-1")
    assert "w3" in full.stdout
    assert_in_step(cluster)
    store = Store(cluster.store_path)
    try:
        jobs = store.jobs(group_id="full-1", mappings=["CUSTOMER"], limit=1000)
    finally:
        store.close()
    assert sorted(j["partition"] for j in jobs) == ["%d/%d" % (i, WORKERS) for i in range(WORKERS)]
    assert sum(j["inserted"] for j in jobs) == 3000 and all(600 < j["read"] < 900 for j in jobs)
    first = marks(cluster)
    assert all(first.values())

    changed = [no for (no,) in rows(cluster.erp, "select no from customer order by no")][::37]
    for no in changed:
        execute(cluster.erp, "update customer set name = name || ' (moved)' where no = ?", no)
    # one partition alone first: it writes its own share and moves only its own watermark
    alone = play(cluster, "--limit", "w1", tablesync_mode="modified", tablesync_run_group="modified-w1")
    assert "w0" not in alone.stdout
    second = marks(cluster)
    assert second[1] > first[1] and all(second[i] == first[i] for i in (0, 2, 3))
    names = dict(cluster.crm_db.rows("select accountnumber, name from account"))
    assert {no for no in changed if names[no].endswith("(moved)")} == {no for no in changed if partition_of(no, WORKERS) == 1}

    play(cluster, tablesync_mode="modified", tablesync_run_group="modified-all")
    assert_in_step(cluster)
    store = Store(cluster.store_path)
    try:
        jobs = store.jobs(group_id="modified-all", mappings=["CUSTOMER"], limit=1000)
    finally:
        store.close()
    assert sum(j["modified"] for j in jobs) == len(changed) - sum(1 for no in changed if partition_of(no, WORKERS) == 1)


def module_processes(play_pid):
    """The Python processes of the sync module's tasks (not the shells that start them, nor sync_job_info's)."""
    found = []
    for pid in descendants(play_pid):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and os.path.basename(argv[0]).startswith(b"python") and argv[1].endswith(b"AnsiballZ_sync.py"):
            found.append(pid)
    return found


def test_a_worker_killed_in_the_middle_is_completed_by_the_next_play(cluster):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK, *cluster.play_args,
           "-e", json.dumps({"tablesync_mode": "full", "tablesync_level_wait": 20, "tablesync_batch_size": 20})]
    proc = subprocess.Popen(cmd, env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            made = len(accounts(cluster))
            workers = module_processes(proc.pid)
            if 300 < made < 2400 and workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        output = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no worker was caught in the middle of the customers"
    assert proc.returncode != 0, output[-3000:]  # the killed worker failed its task, the others waited for it, then failed
    assert len(accounts(cluster)) < 3000
    play(cluster, tablesync_mode="full")
    assert_in_step(cluster)
