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
  - >-
    While Ansible polls a sync task run with C(async) and C(poll), prints at each poll a line per running mapping
    with its progress as M(tablesync.integration.sync_job_info) reports it (records read of the total, percentage,
    rate, time left and the mappings still waiting), for example
    C(SYNC PROGRESS localhost | CUSTOMER: 155000/200000 (77.5%\), 5200 rec/s, ETA 9s; waiting: CONTACTS).
  - A sync task started in the background (C(async) with C(poll) 0) gets the same lines at each retry of an
    M(ansible.builtin.async_status) task that waits for its job with C(until).
  - The controller reads that progress from the task's store, so a line appears only when the controller can open
    it (a SQLite file on the controller, as with a local connection, or a PostgreSQL store it can reach).
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

import datetime
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.tablesync.integration.plugins.module_utils.report import summary_lines

SYNC_ACTIONS = frozenset(("tablesync.integration.sync",))
# Stdout callbacks whose output is parsed by programs: the table must not go there.
MACHINE_READABLE_STDOUT = frozenset(("ansible.posix.json", "ansible.posix.jsonl", "json", "jsonl"))
# A sync started with poll 0 reports through the async_status task that waits for it.
ASYNC_STATUS_ACTIONS = frozenset(("ansible.builtin.async_status", "ansible.legacy.async_status"))
# why: the store's clock is the module host's; a run found this long before its task started is still taken as its own
CLOCK_SKEW = datetime.timedelta(seconds=5)
STORE_CONNECT_TIMEOUT = 5  # seconds a PostgreSQL store may take to answer a poll's connection


@dataclass
class Watch:
    """A sync task running on a host, whose progress the polls of its async job print."""

    task: Any
    host: Any
    started_at: datetime.datetime  # naive UTC, as the store writes times
    location: str | None = None  # the task's store, password and mappings, resolved at its first poll
    password: str | None = None
    mappings: list[str] | None = None
    store: Any = None  # opened read-only at the first poll that finds it
    run_ids: list[str] = field(default_factory=list)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def _close(watch: Watch | None) -> None:
    if watch is not None:
        try:
            watch.close()
        except Exception:  # why: closing a read-only store must not fail the play either
            pass


def _with_connect_timeout(location: str) -> str:
    """A PostgreSQL store URL that gives up connecting after STORE_CONNECT_TIMEOUT seconds (why: the callback runs in
    the controller's result loop, which must not hang on an unreachable server)."""
    parts = urlsplit(location)
    if not parts.scheme.startswith("postgresql") or "connect_timeout" in parts.query:
        return location
    return location + ("&" if parts.query else "?") + "connect_timeout=%d" % STORE_CONNECT_TIMEOUT


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
        # host name -> the sync task running there, for the progress lines of its async polls
        self._watches: dict[str, Watch] = {}
        # (host name, async job id) -> a sync task started with poll 0, for the retries of the async_status waiting for it
        self._background: dict[tuple[str, str], Watch] = {}

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

    def _to_stderr(self) -> bool:
        output = self.get_option("output")
        if output == "auto":
            output = "stderr" if C.DEFAULT_STDOUT_CALLBACK in MACHINE_READABLE_STDOUT else "stdout"
        return output == "stderr"

    # -- progress of async syncs -------------------------------------------------------------------
    def v2_runner_on_start(self, host, task) -> None:
        try:
            if task.resolved_action in SYNC_ACTIONS:
                from ansible_collections.tablesync.integration.plugins.module_utils.values import utcnow

                self._end_watch(host.get_name())
                self._watches[host.get_name()] = Watch(task, host, utcnow())
        except Exception as exc:  # why: progress lines are a convenience; nothing here may fail the play
            self._display.vvvv("sync_summary: not watching the sync task (%s)" % type(exc).__name__)

    def v2_runner_on_async_poll(self, result) -> None:
        # why: the polled result is async_status's, whose task is a stand-in holding only the job id: the sync task
        # is the one that started on this host, and its progress is in its store's job log (as sync_job_info reads it)
        host_name = result.host.get_name()
        self._show_progress(self._watches.get(host_name), lambda: self._end_watch(host_name))

    def v2_runner_retry(self, result) -> None:
        # why: an async_status task waiting with until for a sync started with poll 0 retries instead of polling
        key = self._background_key(result)
        if key is not None:
            self._show_progress(self._background.get(key), lambda: self._end_background(key))

    def _show_progress(self, watch: Watch | None, end: Any) -> None:
        """Print the progress lines of a watched sync task; a watch whose progress cannot be read is ended."""
        if watch is None:
            return
        try:
            lines = self._progress_lines(watch)
        except Exception as exc:  # why: an unreachable store or an unexpected task shape: no line, never a failure
            # only the exception's type: its text may hold the store's URL and password
            self._display.vvvv("sync_summary: no progress for the sync task (%s)" % type(exc).__name__)
            end()  # why: not tried again at each poll (a connection may take seconds)
            return
        for line in lines:
            self._display.display("SYNC PROGRESS %s | %s" % (watch.host.get_name(), line), stderr=self._to_stderr())

    @staticmethod
    def _background_key(result) -> tuple[str, str] | None:
        """(host, job id) of an async_status result, the key of the background sync it waits for."""
        if result.task.resolved_action not in ASYNC_STATUS_ACTIONS:
            return None
        jid = result.result.get("ansible_job_id") if isinstance(result.result, dict) else None
        return (result.host.get_name(), str(jid)) if jid else None

    def _progress_lines(self, watch: Watch) -> list[str]:
        from ansible_collections.tablesync.integration.plugins.module_utils.progress import progress_line, run_progress, running_runs

        if watch.location is None:
            self._resolve(watch)
        if watch.store is None:
            from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

            store = Store(_with_connect_timeout(watch.location or ""), read_only=True, password=watch.password)
            if not store.exists:  # why: a first run creates its store after the first poll; look again at the next
                store.close()
                return []
            watch.store = store
        if not watch.run_ids:
            # why: other hosts may run syncs of other mappings into the same store; each watch keeps the run it found first
            watching = [*self._watches.values(), *self._background.values()]
            taken = {run_id for other in watching if other is not watch for run_id in other.run_ids}
            found = [r for r in running_runs(watch.store, watch.started_at - CLOCK_SKEW, watch.mappings) if r not in taken]
            watch.run_ids = found[:1]
        lines = [progress_line(mapping, figures) for mapping, figures in run_progress(watch.store, watch.run_ids)]
        if not lines:
            watch.run_ids = []  # why: between two jobs, or the run of a loop's previous item ended: look again next poll
        return lines

    def _resolve(self, watch: Watch) -> None:
        """Where the sync task's store is and which mappings it runs, from its arguments as the module gets them."""
        from ansible_collections.tablesync.integration.plugins.module_utils.store import DEFAULT_STORE

        args = self._module_args(watch)
        location, password, mappings = args.get("store") or DEFAULT_STORE, args.get("store_password"), args.get("mappings")
        if not isinstance(location, str) or not isinstance(password, (str, type(None))):
            raise TypeError("unexpected store arguments")
        watch.location, watch.password = location, password or None
        watch.mappings = [str(m) for m in mappings] if isinstance(mappings, list) else None

    @staticmethod
    def _module_args(watch: Watch) -> dict:
        """The task's arguments templated with the host's variables, over the module_defaults that apply to it
        (the play's group/tablesync.integration.integration defaults usually hold the store)."""
        from ansible.executor.module_common import _get_action_arg_defaults
        from ansible.template import Templar

        task = watch.task
        variables = task.get_variable_manager().get_vars(play=task.get_play(), host=watch.host, task=task)
        templar = Templar(loader=task.get_loader(), variables=variables)
        args = dict(templar.template(task.args))
        defaults = _get_action_arg_defaults(task.resolved_action, task, templar._engine)
        args.update({k: templar.template(v) for k, v in defaults.items() if k not in args})
        return args

    def _end_watch(self, host_name: str) -> None:
        _close(self._watches.pop(host_name, None))

    def _end_background(self, key: tuple[str, str] | None) -> None:
        if key is not None:
            _close(self._background.pop(key, None))

    def _ended(self, result) -> None:
        """A task ended on a host: a sync task's watch ends, or moves to the background when it only started its job."""
        host_name = result.host.get_name()
        data = result.result if isinstance(result.result, dict) else {}
        started = data.get("ansible_job_id") if data.get("started") and not data.get("finished") else None
        if result.task.resolved_action in SYNC_ACTIONS and started and host_name in self._watches:
            self._end_background((host_name, str(started)))
            self._background[(host_name, str(started))] = self._watches.pop(host_name)
            return
        self._end_watch(host_name)
        self._end_background(self._background_key(result))

    # -- results -----------------------------------------------------------------------------------
    def v2_runner_on_ok(self, result) -> None:
        self._ended(result)
        self._collect(result)

    def v2_runner_on_failed(self, result, ignore_errors: bool = False) -> None:
        self._ended(result)
        self._collect(result, failed=True)

    def v2_runner_on_unreachable(self, result) -> None:
        self._end_watch(result.host.get_name())

    def v2_runner_on_skipped(self, result) -> None:
        self._end_watch(result.host.get_name())

    def v2_playbook_on_stats(self, stats) -> None:
        for host_name in list(self._watches):
            self._end_watch(host_name)
        for key in list(self._background):
            self._end_background(key)
        if not self._runs:
            return
        max_failures = self.get_option("max_failures")
        to_stderr = self._to_stderr()
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
