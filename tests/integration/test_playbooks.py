"""The collection through real ansible-playbook runs: the demo, idempotence, check mode."""

from __future__ import annotations

import hashlib
import json
import os

from tests.integration.conftest import ROOT, ansible_playbook, extra_vars
from tests.support.fixtures import rows


def test_demo_playbook_end_to_end(tmp_path):
    demo_dir = str(tmp_path / "demo")
    proc = ansible_playbook(os.path.join(ROOT, "playbooks", "demo.yml"), *extra_vars(demo_dir=demo_dir, demo_customers=300))
    assert "CUSTOMER" in proc.stdout and "inserted" in proc.stdout
    erp, crm, store = (os.path.join(demo_dir, n) for n in ("erp.sqlite", "crm.sqlite", "store.sqlite"))
    customers = {r[0] for r in rows(erp, "select no from customer")}
    accounts = rows(crm, "select accountnumber, accountid from account")
    assert sorted(a[0] for a in accounts) == sorted(customers)
    coupled = dict(rows(store, "select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'"))
    assert coupled == dict(accounts)
    # a second demo run re-syncs only the handful of changed customers
    again = ansible_playbook(os.path.join(ROOT, "playbooks", "demo.yml"), *extra_vars(demo_dir=demo_dir, demo_customers=300))
    assert "failed=0" in again.stdout


def test_full_sync_task_is_idempotent(demo, run_sync):
    demo.declare()
    first = run_sync(sync_mode="full")
    assert first["changed"] is True
    assert first["totals"]["inserted"] > 0
    assert len(first["run_id"]) == 36
    second = run_sync(sync_mode="full")
    assert second["changed"] is False
    for job in second["jobs"]:
        assert job["counts"]["unchanged"] == job["counts"]["read"]


def test_modified_sync_task_reports_exactly_the_changed_customers(demo, run_sync):
    demo.declare()
    run_sync(sync_mode="full")
    changed = demo.change_customers(5)
    result = run_sync(sync_mode="modified")
    customer = next(j for j in result["jobs"] if j["mapping"] == "CUSTOMER")
    assert customer["counts"]["modified"] == 5
    assert customer["counts"]["read"] == 5
    numbers = {r[0]: r[1] for r in rows(demo.erp, "select no, no from customer")}
    reported = {rec["local_id"] for rec in result["records"] if rec["mapping"] == "CUSTOMER"}
    assert reported == {numbers[n] for n in changed}


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_check_mode_full_sync_plans_and_writes_nothing(demo, run_sync):
    demo.declare()
    demo.close()
    files = [demo.erp, demo.crm, demo.store_path]
    before = {p: _digest(p) for p in files}
    plan = run_sync("--check", sync_mode="full")
    assert {p: _digest(p) for p in files} == before
    assert plan["run_id"] is None
    real = run_sync(sync_mode="full")
    assert [(j["mapping"], j["counts"]) for j in plan["jobs"]] == [(j["mapping"], j["counts"]) for j in real["jobs"]]


def test_sync_job_info_lists_jobs_and_errors(demo, run_sync, tmp_path):
    demo.declare()
    result = run_sync(sync_mode="full")
    out = str(tmp_path / "info.json")
    playbook = tmp_path / "info.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - tablesync.integration.sync_job_info:\n        store: %s\n        run_id: %s\n      register: info\n"
        "    - ansible.builtin.copy: {content: '{{ info | to_json }}', dest: %s, mode: '0644'}\n" % (demo.store_path, result["run_id"], out)
    )
    ansible_playbook(str(playbook))
    with open(out) as handle:
        info = json.load(handle)
    assert info["changed"] is False
    assert [j["mapping"] for j in info["jobs"]] == [j["mapping"] for j in result["jobs"]]
    assert all(j["status"] == "success" and j["errors"] == [] for j in info["jobs"])
    assert info["jobs"][3]["counts"]["inserted"] == 200
