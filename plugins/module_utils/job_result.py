# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a sync job reports (JobResult), and how far a running one is (progress)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.counters import CHANGES, COUNTERS
from ansible_collections.tablesync.integration.plugins.module_utils.store import BatchCommit
from ansible_collections.tablesync.integration.plugins.module_utils.values import canonical, utcnow

# --diff: by coupled pair (local id, integration id), the values an update or create changes, as "side.field" -> before/after
Diffs = dict[tuple["str | None", "str | None"], dict[str, Any]]


@dataclass
class JobResult:
    """Outcome of one sync job, as the modules report it."""

    mapping: str
    direction: str
    mode: str
    job_id: int | None = None
    status: str = "running"
    started_at: datetime.datetime = field(default_factory=utcnow)
    ended_at: datetime.datetime | None = None
    counts: dict[str, int] = field(default_factory=lambda: {c: 0 for c in COUNTERS})
    records: list[dict[str, Any]] = field(default_factory=list)
    records_truncated: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    matching: dict[str, Any] | None = None  # match-based coupling done before a full sync
    couplings_checked: int = 0  # couplings whose destination record a full sync's pages read (convergence.py)
    # direction -> {"job_id": its job row, "counts": what it counted}: one per flow (two for a bidirectional mapping)
    directions: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttled: int = 0  # requests a web service refused with 429 during the job
    throttle_wait: float = 0.0  # seconds the job's requests waited for the services' Retry-After or a spent window
    cap: int = 100  # records and errors kept for the report (the job's max_records)
    # --diff: the values noted for a pair until its record line is logged (not reported by itself)
    diffs: Diffs = field(default_factory=dict, repr=False)

    def fail(self, batch: BatchCommit, side: str, record_id: str, message: str) -> None:
        """A record failed: counted, stored with the batch (retried next run), and reported while there is room."""
        self.counts["failed"] += 1
        batch.failed.append((side, record_id, message))
        if len(self.errors) < self.cap:
            self.errors.append({"mapping": self.mapping, "side": side, "record_id": record_id, "message": message})

    def log(self, action: str, local_id: str | None, integration_id: str | None) -> None:
        """Report what happened to a pair (with the values --diff noted for it), while there is room."""
        changes = self.diffs.pop((local_id, integration_id), None) if self.diffs else None
        if len(self.records) >= self.cap:
            self.records_truncated = True
            return
        record: dict[str, Any] = {"mapping": self.mapping, "action": action, "local_id": local_id, "integration_id": integration_id}
        if changes:
            record["changes"] = changes
        self.records.append(record)

    def log_pair(self, action: str, src: str, src_id: str | None, dst_id: str | None) -> None:
        """log, given the pair as the flow from side ``src`` has it."""
        if src == "local":
            self.log(action, src_id, dst_id)
        else:
            self.log(action, dst_id, src_id)

    def diff_room(self) -> int:
        """How many more records the report can show with their values (--diff)."""
        return self.cap - len(self.records)

    def note_created(self, src: str, dst: str, src_id: str, dst_id: str | None, values: dict[str, Any]) -> None:
        """For --diff: the values a created record gets (a flow from ``src`` to ``dst``)."""
        if self.diff_room() <= 0:
            return
        pair = (src_id, dst_id) if src == "local" else (dst_id, src_id)
        self.diffs[pair] = {"%s.%s" % (dst, name): {"before": None, "after": shown(value)} for name, value in values.items()}

    def note_changes(self, side: str, changed: list[tuple[tuple[str | None, str | None], dict[str, Any], dict[str, Any]]]) -> None:
        """For --diff: per pair, (pair, the values written on ``side``, the record's values before): those that change."""
        for pair, written, before in changed:
            changes = self.diffs.setdefault(pair, {})
            for name, value in written.items():
                if canonical(before.get(name)) != canonical(value):
                    changes["%s.%s" % (side, name)] = {"before": shown(before.get(name)), "after": shown(value)}

    def absorb(self, part: JobResult, cap: int) -> None:
        """Add what a page's planning counted and reported (at most ``cap`` records and errors are kept)."""
        for name, value in part.counts.items():
            self.counts[name] += value
        self.couplings_checked += part.couplings_checked
        self.errors.extend(part.errors[:max(0, cap - len(self.errors))])
        room = max(0, cap - len(self.records))
        self.records_truncated = self.records_truncated or part.records_truncated or len(part.records) > room
        self.records.extend(part.records[:room])

    @property
    def changed(self) -> bool:
        return any(self.counts[c] for c in CHANGES)

    def as_dict(self) -> dict[str, Any]:
        duration = (self.ended_at - self.started_at).total_seconds() if self.ended_at else None
        return {
            "mapping": self.mapping,
            "direction": self.direction,
            "mode": self.mode,
            "job_id": self.job_id,
            "status": self.status,
            "started_at": self.started_at.isoformat(sep=" "),
            "ended_at": self.ended_at.isoformat(sep=" ") if self.ended_at else None,
            "duration": round(duration, 3) if duration is not None else None,
            "counts": dict(self.counts),
            "changed": self.changed,
            "message": self.message,
            "matching": self.matching,
            "directions": {name: {"job_id": entry["job_id"], "counts": dict(entry["counts"])} for name, entry in self.directions.items()},
            "throttled": self.throttled,
            "throttle_wait": round(self.throttle_wait, 3),
        }


def shown(value: Any, limit: int = 120) -> Any:
    """A value as --diff shows it: its canonical form, long text cut."""
    out = canonical(value)
    if isinstance(out, str) and len(out) > limit:
        return out[:limit] + "..."
    return out


def progress(read: int, total: int | None, started_at: datetime.datetime, now: datetime.datetime) -> dict[str, Any]:
    """How far a running job is: records read of the total expected, percentage, rate (records a second) and ETA (seconds);
    the figures that need the total are None when its source could not count it."""
    elapsed = max((now - started_at).total_seconds(), 1e-6)
    rate = read / elapsed
    known = total if total is not None and total > 0 else None
    left = max(known - read, 0) if known is not None else None
    return {
        "read": read,
        "total": total,
        "percentage": round(min(100.0, 100.0 * read / known), 1) if known is not None else None,
        "rate": round(rate, 1),
        "eta_seconds": (round(left / rate) if rate > 0 else None) if left is not None else None,
    }
