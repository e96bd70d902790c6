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
from tests.support.odata_service import ODataService
from tests.support.service_time import ServiceTime
from tests.support.web_load import NAME, WebLoad
from tests.support.workers import application_users, write_inventory

PLAYBOOK = os.path.join(ROOT, "playbooks", "distributed_sync.yml")
WORKERS = 4
# why: the figures (100,000 and 20,000) take minutes; CI runs these, the same code at any size
CUSTOMERS = int(os.environ.get("TABLESYNC_DISTRIBUTED_CUSTOMERS", "3000"))
WEB_CUSTOMERS = int(os.environ.get("TABLESYNC_DISTRIBUTED_WEB_CUSTOMERS", "2000"))
BATCH = max(100, CUSTOMERS // 100)  # why: about a hundred pages per partition and mapping at any size


class SqliteToPostgres(Demo):
    """The demo ERP as a SQLite file, its CRM on a PostgreSQL server, the store on another."""

    crm_db = None

    @property
    def integration(self):
        return self.crm_db.options()


@pytest.fixture
def cluster(tmp_path, pg_db, pg_db2):
    base = build_demo(str(tmp_path / "demo"), customers=CUSTOMERS, items=200)
    load_demo(base.crm, pg_db)
    demo = SqliteToPostgres(base.directory, base.erp, base.crm, pg_db2.url_text)
    demo.crm_db = pg_db
    demo.declare()
    inventory = tmp_path / "workers.yml"
    write_inventory(str(inventory), WORKERS, lambda w: {"tablesync_partition": w}, tablesync_partition_count=WORKERS)
    connections = tmp_path / "connections.yml"
    connections.write_text(yaml.safe_dump({"tablesync_store": demo.store_path, "tablesync_local": demo.local,
                                           "tablesync_integration": demo.integration, "tablesync_batch_size": BATCH}))
    demo.play_args = ["-i", str(inventory), "-f", str(WORKERS), "-e", "@%s" % connections]
    yield demo
    demo.close()


def play(play_args, *args, check=True, **variables):
    """ansible-playbook distributed_sync.yml with ``play_args`` (inventory, forks, vars files), ``args`` and ``variables``."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK, *play_args, "-e", json.dumps(variables), *args]
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


def group_jobs(store_path, group, mapping="CUSTOMER"):
    """The job rows of one mapping in one run group."""
    store = Store(store_path)
    try:
        return store.jobs(group_id=group, mappings=[mapping], limit=1000)
    finally:
        store.close()


def marks(store_path, mapping="CUSTOMER"):
    """Each partition's watermark of the mapping's local side."""
    store = Store(store_path)
    try:
        return {i: store.watermark(mapping, "local", partition=Partition(i, WORKERS)) for i in range(WORKERS)}
    finally:
        store.close()


def test_four_workers_synchronise_every_record_once_full_then_modified(cluster):
    full = play(cluster.play_args, tablesync_mode="full", tablesync_run_group="full-1")
    assert "w3" in full.stdout
    assert_in_step(cluster)
    jobs = group_jobs(cluster.store_path, "full-1")
    assert sorted(j["partition"] for j in jobs) == ["%d/%d" % (i, WORKERS) for i in range(WORKERS)]
    assert sum(j["inserted"] for j in jobs) == CUSTOMERS and all(CUSTOMERS / 5 < j["read"] < CUSTOMERS / 3 for j in jobs)
    first = marks(cluster.store_path)
    assert all(first.values())

    changed = [no for (no,) in rows(cluster.erp, "select no from customer order by no")][::37]
    for no in changed:
        execute(cluster.erp, "update customer set name = name || ' (moved)' where no = ?", no)
    # one partition alone first: it writes its own share and moves only its own watermark
    alone = play(cluster.play_args, "--limit", "w1", tablesync_mode="modified", tablesync_run_group="modified-w1")
    assert "w0" not in alone.stdout
    second = marks(cluster.store_path)
    assert second[1] > first[1] and all(second[i] == first[i] for i in (0, 2, 3))
    names = dict(cluster.crm_db.rows("select accountnumber, name from account"))
    assert {no for no in changed if names[no].endswith("(moved)")} == {no for no in changed if partition_of(no, WORKERS) == 1}

    play(cluster.play_args, tablesync_mode="modified", tablesync_run_group="modified-all")
    assert_in_step(cluster)
    jobs = group_jobs(cluster.store_path, "modified-all")
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
           "-e", json.dumps({"tablesync_mode": "full", "tablesync_level_wait": 20, "tablesync_batch_size": BATCH // 5})]
    proc = subprocess.Popen(cmd, env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    killed = None
    try:
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            made = len(accounts(cluster))
            workers = module_processes(proc.pid)
            if CUSTOMERS / 10 < made < CUSTOMERS * 0.8 and workers:
                killed = workers[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.05)
        output = proc.communicate(timeout=600)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "no worker was caught in the middle of the customers"
    assert proc.returncode != 0, output[-3000:]  # the killed worker failed its task, the others waited for it, then failed
    assert len(accounts(cluster)) < CUSTOMERS
    play(cluster.play_args, tablesync_mode="full")
    assert_in_step(cluster)


def test_four_workers_into_the_dataverse_double_one_application_user_each(tmp_path, pg_db2):
    with ODataService("dataverse") as svc:
        load = WebLoad(svc, str(tmp_path), customers=WEB_CUSTOMERS, store_path=pg_db2.url_text, batch_size=100)
        inventory = str(tmp_path / "workers.yml")
        write_inventory(inventory, WORKERS, application_users(svc, load.options, WORKERS))
        svc.service_time = model = ServiceTime(latency=0.01, per_user=True, max_concurrent=4, dop_hint=4)
        args = ["-i", inventory, "-f", str(WORKERS)]
        variables = {"tablesync_local": {"type": "sqlite", "path": load.source}, "tablesync_store": pg_db2.url_text,
                     "tablesync_mappings": [NAME], "tablesync_batch_size": 250}
        play(args, tablesync_mode="full", **variables)
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}
        assert len(model.users) == WORKERS and model.refused == 0  # one application user per worker, each within its limit
        store = Store(pg_db2.url_text)
        try:
            assert store.count_couplings(NAME) == WEB_CUSTOMERS
        finally:
            store.close()
        first = marks(pg_db2.url_text, NAME)
        assert all(first.values())
        load.change_all()
        play(args, tablesync_mode="modified", tablesync_run_group="web-modified", **variables)
        assert load.problems() == {"duplicates": [], "missing": [], "unexpected": [], "wrong": []}
        jobs = group_jobs(pg_db2.url_text, "web-modified", NAME)
        second = marks(pg_db2.url_text, NAME)
        assert sum(j["modified"] for j in jobs) == WEB_CUSTOMERS and sum(j["inserted"] for j in jobs) == 0
        assert all(second[i] > first[i] for i in range(WORKERS))


def test_the_full_sync_role_runs_one_partition(demo, play):
    demo.declare()
    result = play("partitions_role.yml", mappings=["CURRENCY", "UNITOFMEASURE"])
    assert sorted((j["mapping"], j["partition"]) for j in result["jobs"]) == [
        ("CURRENCY", "0/2"), ("CURRENCY", "1/2"), ("UNITOFMEASURE", "0/2"), ("UNITOFMEASURE", "1/2")]
    totals = {t["mapping"]: t for t in result["totals"]}
    assert totals["CURRENCY"]["complete"] and totals["CURRENCY"]["partitions"] == ["0/2", "1/2"]
    currencies = collections.Counter(r[0] for r in rows(demo.crm, "select isocurrencycode from transactioncurrency"))
    assert sorted(currencies) == sorted(r[0] for r in rows(demo.erp, "select code from currency")) and max(currencies.values()) == 1
    assert totals["CURRENCY"]["counts"]["inserted"] + totals["CURRENCY"]["counts"]["coupled"] == len(currencies)


def sliced_jobs(cluster):
    store = Store(cluster.store_path)
    try:
        return store.jobs(group_id="sliced", limit=1000) if store.exists else []
    finally:
        store.close()


def test_job_slices_keep_the_levels_in_order_across_slices(cluster, tmp_path):
    # Two slices of the workers, as AWX/AAP job slicing runs them: two plays at once, each on half the hosts, with the
    # partitions set in the inventory and one run group; each level waits for every partition, in either slice.
    # The second slice starts only once the first has ended its first level: the first must wait for it there.
    slices = []
    for number, hosts in enumerate((["w0", "w1"], ["w2", "w3"])):
        if number:
            deadline = time.monotonic() + 300
            while len([j for j in sliced_jobs(cluster) if j["mapping"] == "CURRENCY" and j["status"] != "running"]) < 2:
                assert time.monotonic() < deadline, "the first slice never ended its first level"
                time.sleep(0.2)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK, *cluster.play_args, "--limit", ",".join(hosts),
               "-e", json.dumps({"tablesync_mode": "full", "tablesync_run_group": "sliced", "tablesync_sliced": True})]
        log = open(tmp_path / ("slice%d.log" % number), "w")
        slices.append((subprocess.Popen(cmd, env=playbook_env(), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT), log))
    for proc, log in slices:
        assert proc.wait(timeout=900) == 0, open(log.name).read()[-4000:]
        log.close()
    assert_in_step(cluster)
    jobs = sliced_jobs(cluster)
    level = {"CURRENCY": 0, "SALESPEOPLE": 0, "UNITOFMEASURE": 0, "CUSTOMER": 1, "RESOURCE-PRODUCT": 1, "ITEM-PRODUCT": 1, "CONTACTS": 2}
    assert sorted({j["partition"] for j in jobs}) == ["%d/%d" % (i, WORKERS) for i in range(WORKERS)]
    for earlier in jobs:
        for later in jobs:
            if level[later["mapping"]] > level[earlier["mapping"]]:
                assert later["started_at"] >= earlier["ended_at"], "%s %s started before %s %s ended" % (
                    later["mapping"], later["partition"], earlier["mapping"], earlier["partition"])
