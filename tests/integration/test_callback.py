"""The sync_summary callback: a table of every sync job at the end of the play, when enabled."""

from __future__ import annotations

import json

from tests.integration.conftest import ansible_playbook, extra_vars
from tests.support.fixtures import execute, rows

ENABLED = {"ANSIBLE_CALLBACKS_ENABLED": "tablesync.integration.sync_summary"}


def _playbook_vars(demo, **values):
    return extra_vars(store_path=demo.store_path, erp=demo.erp, crm=demo.crm, **values)


def test_summary_lists_every_job_and_the_failed_records(demo):
    demo.declare()
    execute(demo.crm, "create trigger short_names before insert on account when length(new.name) > 40 "
                      "begin select raise(abort, 'name too long'); end")
    execute(demo.erp, "update customer set name = 'A very long customer name that the CRM refuses' where no = (select min(no) from customer)")
    bad = rows(demo.erp, "select min(no) from customer")[0][0]
    proc = ansible_playbook("sync.yml", *_playbook_vars(demo, sync_mode="full"), check=False, env=ENABLED)
    assert proc.returncode != 0, "a failed record fails the task"
    summary = proc.stdout[proc.stdout.index("SYNC SUMMARY"):]
    table = {line.split()[0]: line.split() for line in summary.splitlines() if line.startswith("  ") and line.split()}
    for mapping in ("CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"):
        assert mapping in table, summary
    # mapping direction inserted modified deleted unchanged skipped failed coupled uncoupled seconds
    customer = table["CUSTOMER"]
    assert customer[1] == "to_integration"
    assert customer[2:8] == ["199", "0", "0", "0", "0", "1"]
    assert table["SALESPEOPLE"][1] == "from_integration"
    assert "FAILED CUSTOMER local %s: " % bad in summary and "name too long" in summary
    assert "mode full" in summary


def test_summary_marks_check_mode_and_stays_off_unless_enabled(demo):
    demo.declare()
    planned = ansible_playbook("sync.yml", "--check", *_playbook_vars(demo, sync_mode="full"), env=ENABLED)
    summary = planned.stdout[planned.stdout.index("SYNC SUMMARY"):]
    assert "check mode: planned, nothing written" in summary
    assert [line.split()[2] for line in summary.splitlines() if line.startswith("  CUSTOMER")] == ["200"]
    plain = ansible_playbook("sync.yml", *_playbook_vars(demo, sync_mode="full"), env={"ANSIBLE_CALLBACKS_ENABLED": None})
    assert "SYNC SUMMARY" not in plain.stdout


JSON_STDOUT = '''
from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Stands in for ansible.posix.json: one JSON document on stdout."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json"

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps({"stats": {h: stats.summarize(h) for h in sorted(stats.processed)}}))
'''


def test_summary_keeps_json_stdout_parseable(demo, tmp_path):
    demo.declare()
    plugins = tmp_path / "callback_plugins"
    plugins.mkdir()
    (plugins / "json.py").write_text(JSON_STDOUT)
    env = dict(ENABLED, ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_STDOUT_CALLBACK="json")
    proc = ansible_playbook("sync.yml", *_playbook_vars(demo, sync_mode="full"), env=env)
    assert json.loads(proc.stdout)["stats"]["localhost"]["failures"] == 0
    assert "SYNC SUMMARY" in proc.stderr and "CUSTOMER" in proc.stderr
