"""ansible-playbook against PostgreSQL and MariaDB: the demo flow, concurrent runs, SIGKILL, endpoint binding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.integration.conftest import PLAYBOOKS, ROOT, extra_vars, playbook_env
from tests.support.databases import load_demo, server_demo, touch_customers

HOLDER_RUN = "99999999-8888-7777-6666-555555555555"


class Runner:
    """Starts sync_servers.yml processes on one demo; each in a session of its own."""

    def __init__(self, demo, tmp_path):
        self.demo = demo
        self.tmp_path = tmp_path
        self.count = 0

    def start(self, **variables) -> tuple[subprocess.Popen, str]:
        self.count += 1
        result_file = str(self.tmp_path / ("result-%d.json" % self.count))
        values = {"store": self.demo.store_path, "local_endpoint": self.demo.local, "integration_endpoint": self.demo.integration,
                  "result_file": result_file}
        values.update(variables)
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(PLAYBOOKS, "sync_servers.yml"),
               *extra_vars(**values)]
        proc = subprocess.Popen(cmd, env=playbook_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        return proc, result_file

    def run(self, **variables) -> tuple[int, dict, str]:
        proc, result_file = self.start(**variables)
        return self.finish(proc, result_file)

    @staticmethod
    def finish(proc: subprocess.Popen, result_file: str, timeout: float = 900) -> tuple[int, dict, str]:
        output, _ignored = proc.communicate(timeout=timeout)
        result = {}
        if os.path.exists(result_file):
            with open(result_file) as handle:
                result = json.load(handle)
        return proc.returncode, result, output


def _store_for(kind, request, tmp_path) -> str:
    if kind == "postgresql":
        return request.getfixturevalue("pg_db2").url_text
    return str(tmp_path / "store.sqlite")


@pytest.fixture
def big(request, tmp_path, pg_db, my_db):
    """5,000 customers: ERP in PostgreSQL, CRM in MariaDB; the store per the test's parameter."""
    demo = server_demo(str(tmp_path / "demo"), pg_db, my_db, _store_for(request.param, request, tmp_path), customers=5000, items=300,
                       resources=10)
    demo.declare()
    # why: customers and items refer to salespeople, currencies and units; their lookups need those couplings
    assert demo.run("full", ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE"]).status == "success"
    demo.close()
    return demo


def assert_customers_synchronised_once(demo, pg_db, my_db):
    customers = {r[0] for r in pg_db.rows("select no from customer")}
    accounts = my_db.rows("select accountnumber, accountid from account")
    assert len(accounts) == len(customers) == len({a[0] for a in accounts}), "duplicate or missing accounts"
    assert {a[0] for a in accounts} == customers
    store = Store(demo.store_path, read_only=True)
    try:
        couplings = {c.local_id: c.integration_id for page in store.iter_couplings("CUSTOMER") for c in page}
        assert store.count_couplings("CUSTOMER") == len(customers)
    finally:
        store.close()
    assert couplings == dict(accounts)


def test_demo_flow_through_playbooks_erp_postgresql_crm_mariadb_store_postgresql(tmp_path, pg_db, my_db, pg_db2):
    demo = server_demo(str(tmp_path / "demo"), pg_db, my_db, pg_db2.url_text, customers=300)
    runner = Runner(demo, tmp_path)
    rc, full, output = runner.run(declare=True, sync_mode="full")
    assert rc == 0, output[-4000:]
    order = ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"]
    assert [j["mapping"] for j in full["jobs"]] == order
    assert full["totals"]["inserted"] > 300 and full["totals"]["failed"] == 0
    assert_customers_synchronised_once(demo, pg_db, my_db)
    changed = touch_customers(pg_db, 5)
    rc, modified, output = runner.run(sync_mode="modified")
    assert rc == 0, output[-4000:]
    assert modified["totals"]["modified"] == 5 and modified["changed"]
    phones = dict(pg_db.rows("select no, phone from customer"))
    assert {n: my_db.rows("select telephone1 from account where accountnumber = :n", n=n)[0][0] for n in changed} == {n: phones[n] for n in changed}
    rc, again, output = runner.run(sync_mode="modified")
    assert rc == 0 and not again["changed"], output[-4000:]


@pytest.mark.parametrize("big", ["postgresql", "sqlite"], indirect=True)
def test_two_playbooks_on_the_same_mapping_never_interleave(big, tmp_path, pg_db, my_db):
    runner = Runner(big, tmp_path)
    started = [runner.start(sync_mode="full", sync_mappings=["CUSTOMER"], batch_size=250, lock_timeout=600) for _ignored in range(2)]
    finished = [runner.finish(proc, result_file) for proc, result_file in started]
    for rc, _ignored, output in finished:
        assert rc == 0, output[-4000:]
    # one run created the 5,000 accounts, the other waited and found them all coupled
    inserted = sorted(result["jobs"][0]["counts"]["inserted"] for _ignored, result, _ignored in finished)
    assert inserted == [0, 5000]
    assert_customers_synchronised_once(big, pg_db, my_db)
    # the job log shows the two CUSTOMER jobs one after the other
    store = Store(big.store_path, read_only=True)
    try:
        jobs = sorted(store.jobs(mappings=["CUSTOMER"]), key=lambda j: j["started_at"])
    finally:
        store.close()
    assert len(jobs) == 2 and jobs[0]["ended_at"] <= jobs[1]["started_at"]


@pytest.mark.parametrize("big", ["postgresql", "sqlite"], indirect=True)
def test_lock_timeout_names_the_mapping_and_the_holder_and_disjoint_runs_proceed(big, tmp_path, pg_db, my_db):
    runner = Runner(big, tmp_path)
    store = Store(big.store_path)
    try:
        with mapping_locks(store, ["CUSTOMER"], HOLDER_RUN, timeout=5):
            rc, result, output = runner.run(sync_mode="full", sync_mappings=["CUSTOMER"], lock_timeout=1)
            assert rc != 0
            assert "mapping CUSTOMER is locked by run %s" % HOLDER_RUN in result["msg"], result
            assert my_db.scalar("select count(*) from account") == 0
            # disjoint mappings are not held up, and two of them run side by side
            others = [runner.start(sync_mode="full", sync_mappings=m, lock_timeout=1) for m in (["CURRENCY", "UNITOFMEASURE"], ["SALESPEOPLE"])]
            for proc, result_file in others:
                rc, result, output = runner.finish(proc, result_file)
                assert rc == 0 and result["totals"]["failed"] == 0, output[-4000:]
        assert my_db.scalar("select count(*) from transactioncurrency") == pg_db.scalar("select count(*) from currency")
        assert pg_db.scalar("select count(*) from salesperson") == my_db.scalar("select count(*) from systemuser")
    finally:
        store.close()


@pytest.mark.parametrize("big", ["postgresql", "sqlite"], indirect=True)
def test_two_playbooks_on_disjoint_mappings_both_finish(big, tmp_path, pg_db, my_db):
    runner = Runner(big, tmp_path)
    started = [runner.start(sync_mode="full", sync_mappings=[m], batch_size=250, lock_timeout=5) for m in ("CUSTOMER", "ITEM-PRODUCT")]
    for proc, result_file in started:
        rc, result, output = runner.finish(proc, result_file)
        assert rc == 0 and result["totals"]["failed"] == 0, output[-4000:]
    assert_customers_synchronised_once(big, pg_db, my_db)
    assert my_db.scalar("select count(*) from product where producttypecode = 1") == pg_db.scalar("select count(*) from item")


@pytest.mark.parametrize("big", ["postgresql", "sqlite"], indirect=True)
def test_a_run_killed_holding_the_lock_does_not_block_the_next(big, tmp_path, pg_db, my_db):
    runner = Runner(big, tmp_path)
    proc, _ignored = runner.start(sync_mode="full", sync_mappings=["CUSTOMER"], batch_size=50)
    deadline = time.monotonic() + 300
    while my_db.scalar("select count(*) from account") < 500:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run created no accounts"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: ansible-playbook and its module
    proc.wait(timeout=30)
    assert my_db.scalar("select count(*) from account") < 5000, "the run finished before the kill; the test proves nothing"
    rc, result, output = runner.run(sync_mode="full", sync_mappings=["CUSTOMER"], lock_timeout=30)
    assert rc == 0, output[-4000:]
    assert_customers_synchronised_once(big, pg_db, my_db)


def test_pointing_the_store_at_another_crm_database_is_refused(tmp_path, pg_db, my_db, my_db2, pg_db2):
    demo = server_demo(str(tmp_path / "demo"), pg_db, my_db, pg_db2.url_text, customers=20)
    load_demo(demo.crm, my_db2)  # another CRM database: same tables, none of the synchronised records
    runner = Runner(demo, tmp_path)
    rc, _ignored, output = runner.run(declare=True, sync_mode="full")
    assert rc == 0, output[-4000:]
    runs = pg_db2.scalar("select count(*) from tablesync_runs")
    other = my_db2.options()
    rc, result, output = runner.run(sync_mode="full", integration_endpoint=other)
    assert rc != 0
    assert "127.0.0.1:3306/%s" % my_db.name in result["msg"] and "127.0.0.1:3306/%s" % my_db2.name in result["msg"], result["msg"]
    assert "rebind" in result["msg"]
    assert my_db2.scalar("select count(*) from account") == 0
    assert pg_db2.scalar("select count(*) from tablesync_runs") == runs
    # the same CRM moved to a new address: with rebind the store accepts it and finds everything in step
    for table in ("systemuser", "transactioncurrency", "uomschedule", "account", "contact", "product"):
        my_db2.execute("delete from %s" % table)
        my_db2.execute("insert into %s select * from `%s`.%s" % (table, my_db.name, table))
    rc, result, output = runner.run(sync_mode="full", integration_endpoint=other, rebind=True)
    assert rc == 0, output[-4000:]
    assert not result["changed"] and result["totals"]["unchanged"] == result["totals"]["read"]
    rc, result, output = runner.run(sync_mode="modified", integration_endpoint=other)
    assert rc == 0, output[-4000:]
