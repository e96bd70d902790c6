"""Long syncs: async/poll works, and the job log shows progress while a sync runs."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

from tests.integration.conftest import PLAYBOOKS, ansible_playbook, extra_vars, playbook_env
from tests.support.fixtures import build_demo, rows


def test_sync_runs_as_an_async_task(demo, tmp_path):
    demo.declare()
    demo.close()
    result_file = str(tmp_path / "async.json")
    proc = ansible_playbook("sync_async.yml", *extra_vars(store_path=demo.store_path, erp=demo.erp, crm=demo.crm, result_file=result_file),
                            env={"ANSIBLE_CALLBACKS_ENABLED": "tablesync.integration.sync_summary"})
    with open(result_file) as handle:
        result = json.load(handle)
    polled, background = result["polled"], result["background"]
    assert polled["finished"] == 1 and polled["changed"] is True and polled["ansible_job_id"]
    customer = next(j for j in polled["jobs"] if j["mapping"] == "CUSTOMER")
    assert customer["counts"]["inserted"] == 200 and customer["status"] == "success"
    assert background["finished"] == 1 and background["changed"] is False
    assert [j["mapping"] for j in background["jobs"]] == [j["mapping"] for j in polled["jobs"]]
    assert rows(demo.crm, "select count(*) from account")[0][0] == 200
    # the summary callback reports both: the polled task, and the background one through async_status
    summary = proc.stdout[proc.stdout.index("SYNC SUMMARY"):]
    titles = [line for line in summary.splitlines() if " | localhost | " in line]
    assert [t.split(" | ")[0] for t in titles] == ["Full synchronisation, polled every 2 seconds", "Wait for the background synchronisation"]
    assert "run %s" % polled["run_id"] in titles[0] and "run %s" % background["run_id"] in titles[1]


def _running_customer_job(store: str) -> tuple | None:
    """(id, read) of a running CUSTOMER job, read straight from the store (WAL: never blocks the sync)."""
    if not os.path.exists(store):
        return None
    conn = sqlite3.connect(store, timeout=30)
    try:
        return conn.execute("select id, read from tablesync_jobs where mapping = 'CUSTOMER' and status = 'running'").fetchone()
    except sqlite3.OperationalError:  # schema not created yet
        return None
    finally:
        conn.close()


def test_job_log_shows_progress_while_a_sync_runs(tmp_path):
    customers = 600
    demo = build_demo(str(tmp_path / "demo"), customers=customers)
    demo.declare()
    demo.close()
    values = {"store_path": demo.store_path, "erp": demo.erp, "crm": demo.crm, "sync_mode": "full", "batch_size": 2,
              "result_file": str(tmp_path / "result.json")}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(PLAYBOOKS, "sync.yml"), *extra_vars(**values)]
    sync = subprocess.Popen(cmd, env=playbook_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    gate = None
    try:
        # Wait until the CUSTOMER job has committed some batches but not all, then hold the store's write
        # lock: the sync waits at its next commit, so the job log stays exactly where it is.
        seen = None
        while sync.poll() is None:
            seen = _running_customer_job(demo.store_path)
            if seen and 0 < seen[1] < customers:
                gate = sqlite3.connect(demo.store_path, timeout=30, isolation_level=None)
                gate.execute("begin immediate")
                break
        assert gate is not None, "never saw the CUSTOMER job part-way:\n%s" % sync.communicate()[0][-3000:]
        job_id, processed = _running_customer_job(demo.store_path)
        assert 0 < processed < customers

        # What an operator sees from another terminal.
        info_file = tmp_path / "info.json"
        info_playbook = tmp_path / "info.yml"
        info_playbook.write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - tablesync.integration.sync_job_info: {store: %s, status: [running]}\n      register: info\n"
            "    - ansible.builtin.copy: {content: '{{ info | to_json }}', dest: %s, mode: '0644'}\n" % (demo.store_path, info_file)
        )
        ansible_playbook(str(info_playbook))
        running = json.loads(info_file.read_text())["jobs"]
        assert [(j["id"], j["mapping"], j["status"]) for j in running] == [(job_id, "CUSTOMER", "running")]
        assert running[0]["counts"]["read"] == processed
        assert running[0]["counts"]["inserted"] == processed
        progress = running[0]["progress"]
        assert running[0]["total"] == progress["total"] == customers, "counted by the source when the job started"
        assert progress["read"] == processed and progress["percentage"] == round(100.0 * processed / customers, 1)
        assert progress["rate"] > 0 and progress["eta_seconds"] is not None and progress["eta_seconds"] >= 0
        assert "CONTACTS" in progress["waiting_mappings"] and not {"CURRENCY", "CUSTOMER"} & set(progress["waiting_mappings"])
    finally:
        if gate is not None:
            gate.execute("rollback")
            gate.close()
        output = sync.communicate(timeout=600)[0]
    assert sync.returncode == 0, output[-3000:]
    final = rows(demo.store_path, "select status, read, inserted from tablesync_jobs where id = ?", job_id)[0]
    assert final == ("success", customers, customers) and final[1] > processed


# A play on the demo databases given as extra vars; its name and tasks follow.
PLAY = """
- name: %s
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/tablesync.integration.integration:
      store: "{{ store_path }}"
      local: {type: sqlite, path: "{{ erp }}"}
      integration: {type: sqlite, path: "{{ crm }}"}
  tasks:
"""

PROGRESS_PLAY = PLAY % "A long sync polled by Ansible" + """
    - name: Full synchronisation, polled every second
      tablesync.integration.sync:
        mode: full
        batch_size: "{{ batch_size }}"
        read_ahead: false
      async: 600
      poll: 1
"""


def _progress_output(play: str, tmp_path, customers: int = 5000) -> str:
    """The output of a play that runs a full sync of demo databases with the summary callback, whose progress lines
    have been checked (_check_progress_lines)."""
    demo = build_demo(str(tmp_path / "demo"), customers=customers)
    demo.declare()
    demo.close()
    playbook = tmp_path / "progress.yml"
    playbook.write_text(play)
    # the store is given by module_defaults, templated from extra vars: the callback resolves it as the module gets it
    proc = ansible_playbook(str(playbook), *extra_vars(store_path=demo.store_path, erp=demo.erp, crm=demo.crm, batch_size=5),
                            env={"ANSIBLE_CALLBACKS_ENABLED": "tablesync.integration.sync_summary"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SYNC PROGRESS ")]
    assert lines, "no progress line:\n%s" % proc.stdout[-3000:]
    _check_progress_lines(lines, customers)
    return proc.stdout


def _check_progress_lines(lines: list[str], customers: int) -> None:
    order = ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"]
    pattern = re.compile(r"^SYNC PROGRESS localhost \| ([A-Z-]+): (\d+)/(\d+) \((\d+(?:\.\d)?)%\), \d+(?:\.\d)? rec/s, ETA \d+s(?:; waiting: (.+))?$")
    # why: a job polled between its start and its first commit has no total yet (its source is counted, then written
    # with the first page), and says so
    starting = re.compile(r"^SYNC PROGRESS localhost \| ([A-Z-]+): 0 read, 0 rec/s(?:; waiting: (.+))?$")
    counted = [line for line in lines if not starting.match(line)]
    assert counted, "no progress line with a total:\n%s" % "\n".join(lines)
    for line in counted:
        match = pattern.match(line)
        assert match, line
        mapping, read, total = match.group(1), int(match.group(2)), int(match.group(3))
        assert 0 <= read <= total and float(match.group(4)) == round(100.0 * read / total, 1), line
        if mapping == "CUSTOMER":
            assert total == customers
        waiting = match.group(5).split(", ") if match.group(5) else []
        assert waiting == order[order.index(mapping) + 1:], line


def test_callback_prints_the_progress_of_an_async_sync_at_each_poll(tmp_path):
    output = _progress_output(PROGRESS_PLAY, tmp_path)
    assert output.index("SYNC PROGRESS") < output.index("ASYNC OK on localhost") < output.index("SYNC SUMMARY")


UNTIL_PLAY = PLAY % "A long sync started in the background, waited for with until" + """
    - name: Full synchronisation in the background
      tablesync.integration.sync:
        mode: full
        batch_size: "{{ batch_size }}"
        read_ahead: false
      async: 600
      poll: 0
      register: started

    - name: Something else meanwhile
      ansible.builtin.debug:
        msg: the sync runs

    - name: Wait for the synchronisation
      ansible.builtin.async_status:
        jid: "{{ started.ansible_job_id }}"
      register: waited
      until: waited.finished
      retries: 600
      delay: 1
"""


def test_callback_prints_the_progress_of_a_background_sync_at_each_retry_of_its_async_status(tmp_path):
    output = _progress_output(UNTIL_PLAY, tmp_path)
    assert output.index("TASK [Wait for the synchronisation]") < output.index("SYNC PROGRESS") < output.index("SYNC SUMMARY")
    summary = output[output.index("SYNC SUMMARY"):]
    assert "Wait for the synchronisation | localhost | mode full" in summary
