# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The counters of a sync job: the one list behind the job log's columns, the task result and the summary table.

A new counter is a name here (plus the store migration that adds its column, and the code that counts it).
"""

from __future__ import annotations

COUNTERS = ("read", "inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled")
# the counters that make a task changed
CHANGES = ("inserted", "modified", "deleted", "coupled", "uncoupled")
# the summary table's columns: what happened to the records read (read itself is in the progress figures)
SUMMARY_COLUMNS = COUNTERS[1:]
