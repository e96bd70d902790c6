# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How far running sync jobs are, read from the job log of a store.

Shared by the sync_job_info module and the sync_summary callback (which prints a line per
running mapping while Ansible polls an async sync), so both report the same figures.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.job_result import progress
from ansible_collections.tablesync.integration.plugins.module_utils.values import utcnow


def running_progress(store: Any, rows: Sequence[Mapping[str, Any]], now: datetime.datetime | None = None) -> dict[int, dict[str, Any]]:
    """By job id, the progress of each running job of ``rows`` (rows of ``Store.jobs``): records read of
    the total expected, percentage, rate, ETA, and the mappings of its run that have not started yet."""
    running = [r for r in rows if r["status"] == "running"]
    if not running:
        return {}
    now = now or utcnow()
    waiting = store.waiting_mappings(sorted({r["run_id"] for r in running}))
    return {r["id"]: dict(progress(r["read"], r["total"], r["started_at"], now), waiting_mappings=waiting.get(r["run_id"], []))
            for r in running}


def run_progress(store: Any, run_ids: Sequence[str], now: datetime.datetime | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(mapping, progress) of each job of these runs that is running, oldest first."""
    rows = [r for run_id in run_ids for r in store.jobs(run_id=run_id, status=["running"])]
    found = running_progress(store, rows, now)
    return [(r["mapping"], found[r["id"]]) for r in sorted(rows, key=lambda r: r["id"])]


def running_runs(store: Any, since: datetime.datetime, mappings: Sequence[str] | None = None, limit: int = 100) -> list[str]:
    """Ids of the runs with a job running that started at or after ``since`` (naive UTC), oldest first."""
    rows = store.jobs(status=["running"], since=since, mappings=mappings or None, limit=limit)
    return list(dict.fromkeys(r["run_id"] for r in rows))


def progress_line(mapping: str, figures: Mapping[str, Any]) -> str:
    """``CUSTOMER: 155000/200000 (77.5%), 5200 rec/s, ETA 9s; waiting: CONTACT, ITEM``; the figures that need
    the total are left out when it is unknown."""
    read, total = figures.get("read") or 0, figures.get("total")
    text = "%s: %d/%d (%s%%)" % (mapping, read, total, _number(figures.get("percentage"))) if total is not None else "%s: %d read" % (mapping, read)
    rate = figures.get("rate")
    if rate is not None:
        text += ", %s rec/s" % _number(round(rate) if rate >= 100 else rate)  # why: 5200 rec/s, not 5200.3
    if figures.get("eta_seconds") is not None:
        text += ", ETA %ds" % figures["eta_seconds"]
    waiting = figures.get("waiting_mappings") or []
    if waiting:
        text += "; waiting: %s" % ", ".join(waiting)
    return text


def _number(value: Any) -> str:
    """``77.5``, ``5200`` (no ``.0``), ``?`` when unknown."""
    if value is None:
        return "?"
    return ("%.1f" % value).removesuffix(".0")
