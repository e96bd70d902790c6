# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a sync job is asked to do."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class JobOptions:
    mode: str = "modified"  # full | modified
    create_uncoupled: bool = False
    dry_run: bool = False
    batch_size: int = 1000
    max_records: int = 100
    watermark_overlap: float = 60.0
    # check mode: couplings earlier jobs of the run would create, {mapping: {side: {id: other id}}}
    planned: dict[str, dict[str, dict[str, str | None]]] | None = None
    hold: dict[str, dict[str, str]] = field(default_factory=dict)  # side -> id -> why it is not created (ambiguous match)
    matched: bool = False  # a full sync's matching saw every uncoupled record: no look-up page by page (page_matching.py)
    create_only: bool = False  # create uncoupled records only; leave coupled ones to the next sync
    read_ahead: bool = True  # plan the next page in a second process while this one is written (read_ahead.py)
    skip_after_failures: int = 2  # a record failing with the same error this many runs in a row is skipped (0: never)
    records: dict[str, list[str]] | None = None  # chosen records only, by source side (chosen.py): read by id, written even unchanged
    field_diff: bool = False  # --diff: the reported records carry the values they change, before and after
