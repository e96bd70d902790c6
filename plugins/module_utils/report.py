# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readable summaries of sync jobs, shared by the filter and callback plugins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.counters import SUMMARY_COLUMNS as COLUMNS


def summary_lines(jobs: Sequence[Mapping[str, Any]], errors: Sequence[Mapping[str, Any]] = (), max_errors: int = 20) -> list[str]:
    """A table: one line per job with its counts and duration, then the failed records."""
    header = ["mapping", "direction", *COLUMNS, "seconds"]
    rows = [header]
    for job in jobs:
        counts = job.get("counts") or {}
        duration = job.get("duration")
        rows.append(
            [str(job.get("mapping", "")), str(job.get("direction", ""))]
            + [str(counts.get(c, 0)) for c in COLUMNS]
            + ["" if duration is None else "%.2f" % duration]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    for err in list(errors)[:max_errors]:
        lines.append("FAILED %s %s %s: %s" % (err.get("mapping"), err.get("side"), err.get("record_id"), err.get("message")))
    if len(errors) > max_errors:
        lines.append("... and %d more failed records" % (len(errors) - max_errors))
    return lines
