# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sync_summary
type: aggregate
short_description: A summary table of every sync job at the end of the play
version_added: 0.1.0
description:
  - Collects the results of M(tablesync.integration.sync) tasks and, when the playbook ends, prints one
    table per task and host with a line per sync job (mapping, direction, inserted, modified, deleted,
    unchanged, skipped, failed, coupled and duration), followed by the failed records with their ids.
  - Works beside the stdout callback, whatever it is; enable it in C(ansible.cfg) with
    C(callbacks_enabled = tablesync.integration.sync_summary).
  - When the stdout callback writes machine-readable output (C(ansible.posix.json), C(ansible.posix.jsonl)),
    the table goes to standard error so that standard output stays parseable (see O(output)).
author:
  - tablesync developers (@tablesync)
options:
  max_failures:
    description: At most this many failed records are listed per task.
    type: int
    default: 20
    ini:
      - section: callback_sync_summary
        key: max_failures
    env:
      - name: TABLESYNC_SUMMARY_MAX_FAILURES
  output:
    description:
      - Where the table is printed. V(auto) is standard output, or standard error when the stdout callback
        writes JSON.
    type: str
    choices: [auto, stdout, stderr]
    default: auto
    ini:
      - section: callback_sync_summary
        key: output
    env:
      - name: TABLESYNC_SUMMARY_OUTPUT
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = tablesync.integration.sync_summary
#
# [callback_sync_summary]
# max_failures = 50
"""

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.tablesync.integration.plugins.module_utils.report import summary_lines

SYNC_ACTIONS = frozenset(("tablesync.integration.sync",))
# Stdout callbacks whose output is parsed by programs: the table must not go there.
MACHINE_READABLE_STDOUT = frozenset(("ansible.posix.json", "ansible.posix.jsonl", "json", "jsonl"))
# A sync started with poll 0 reports through the async_status task that waits for it.
ASYNC_STATUS_ACTIONS = frozenset(("ansible.builtin.async_status", "ansible.legacy.async_status"))


class CallbackModule(CallbackBase):
    """Keeps the sync results of the play and prints them as tables at the end."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "tablesync.integration.sync_summary"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        # (task name, host, check mode, result) in the order the results arrived
        self._runs: list[tuple[str, str, bool, dict]] = []

    def _collect(self, result, failed: bool = False) -> None:
        action = result.task.resolved_action
        if action not in SYNC_ACTIONS and action not in ASYNC_STATUS_ACTIONS:
            return
        data = result.result
        items = data.get("results") if isinstance(data.get("results"), list) else [data]
        for item in items:
            if not isinstance(item, dict) or item.get("skipped"):
                continue
            if action in ASYNC_STATUS_ACTIONS and "synch_only_coupled_records" not in item:
                continue  # the status of some other async task
            if not failed and "jobs" not in item:
                continue  # an async sync that has only been started (poll 0)
            if failed and not item.get("jobs"):
                # failed before any job ran (bad options, unreachable database): say why
                item = dict(item, errors=[{"mapping": "-", "side": "-", "record_id": "-", "message": item.get("msg", "failed")}])
            self._runs.append((result.task_name, result.host.get_name(), self._check_mode(result.task), item))

    @staticmethod
    def _check_mode(task) -> bool:
        """The task's own check_mode setting, else the command line's --check."""
        if isinstance(task.check_mode, bool):
            return task.check_mode
        return bool(context.CLIARGS.get("check"))

    def v2_runner_on_ok(self, result) -> None:
        self._collect(result)

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        self._collect(result, failed=True)

    def v2_playbook_on_stats(self, stats) -> None:
        if not self._runs:
            return
        max_failures = self.get_option("max_failures")
        output = self.get_option("output")
        if output == "auto":
            output = "stderr" if C.DEFAULT_STDOUT_CALLBACK in MACHINE_READABLE_STDOUT else "stdout"
        to_stderr = output == "stderr"
        self._display.display("\nSYNC SUMMARY " + "*" * 66, stderr=to_stderr)
        for task_name, host, check_mode, data in self._runs:
            title = ["%s | %s" % (task_name, host)]
            if data.get("mode"):
                title.append("mode %s" % data["mode"])
            if data.get("run_id"):
                title.append("run %s" % data["run_id"])
            if check_mode:
                title.append("check mode: planned, nothing written")
            self._display.display(" | ".join(title), stderr=to_stderr)
            lines = summary_lines(data.get("jobs") or [], data.get("errors") or [], max_errors=max_failures)
            self._display.display("\n".join("  " + line for line in lines) + "\n", stderr=to_stderr)
