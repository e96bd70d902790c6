# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The jobs of the job log added up per run and mapping: the partitions of a distributed sync are one job each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.counters import COUNTERS

# why: the status of a sum is its worst job's, in this order
_WORST_FIRST = ("running", "failed", "interrupted", "partial", "success")


def mapping_totals(jobs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (run, mapping, direction), a run being the group the partitions share or else the run id: how many
    jobs and partitions it took, whether every partition (or the whole mapping) has a job, its worst status, its first
    start and last end, and the counts added up."""
    totals: dict[tuple[str, str, str], dict[str, Any]] = {}
    for job in jobs:
        run = job.get("group_id") or job["run_id"]
        key = (run, job["mapping"], job["direction"])
        entry = totals.get(key)
        if entry is None:
            entry = totals[key] = {"run": run, "mapping": job["mapping"], "direction": job["direction"], "jobs": 0, "partitions": [],
                                   "status": job["status"], "started_at": job["started_at"], "ended_at": job["ended_at"],
                                   "counts": dict.fromkeys(COUNTERS, 0), "whole": False}
        entry["jobs"] += 1
        if job.get("partition"):
            entry["partitions"].append(job["partition"])
        else:
            entry["whole"] = True
        entry["status"] = min(entry["status"], job["status"], key=_rank)
        entry["started_at"] = min(entry["started_at"], job["started_at"], key=_time)
        entry["ended_at"] = None if entry["status"] == "running" else max(entry["ended_at"], job["ended_at"], key=_time)
        for name in COUNTERS:
            entry["counts"][name] += job["counts"][name] if "counts" in job else job[name]
    for entry in totals.values():
        labels = sorted(set(entry["partitions"]), key=lambda label: tuple(int(n) for n in label.split("/")))
        counts = {int(label.split("/")[1]) for label in labels}
        entry["partitions"] = labels
        # why: a level of a distributed sync has ended for a mapping when this holds and nothing runs (distributed_sync.yml)
        entry["complete"] = entry["whole"] or any(len([x for x in labels if x.endswith("/%d" % n)]) == n for n in counts)
        del entry["whole"]
    return list(totals.values())


def _rank(status: str) -> int:
    return _WORST_FIRST.index(status) if status in _WORST_FIRST else 0


def _time(value: Any) -> str:
    return "" if value is None else str(value)
