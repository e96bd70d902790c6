# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create and couple the uncoupled records of a mapping, as one logged sync job (the coupling module's unmatched: create)."""

from __future__ import annotations

from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.job import SyncJob
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import JobOptions
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping


def create_unmatched(mapping: Mapping, tables: dict[str, Any], flows: dict[tuple[str, str], Flow], store: Any,
                     hold: dict[str, dict[str, str]], dry_run: bool = False, batch_size: int = 1000, max_records: int = 100) -> JobResult:
    """Create and couple the uncoupled records in the mapping's direction, as one logged job.

    Only creates: coupled records are left to the next sync. Ambiguous records (``hold``: side -> id -> why, as
    matching.MatchResult.held) are not created: they fail with their reason, so later syncs retry them.
    Returns the sync job's JobResult.
    """
    opts = JobOptions(mode="full", create_uncoupled=True, dry_run=dry_run, batch_size=batch_size, max_records=max_records)
    opts.hold = hold
    opts.matched = True
    opts.create_only = True
    run_id = None if dry_run else store.start_run("full", [mapping.name])
    status = "failed"
    try:
        job = SyncJob(mapping, tables, flows, store, run_id, opts).run()
        status = "partial" if job.counts["failed"] else "success"
        return job
    finally:
        if run_id is not None:
            store.end_run(run_id, status)
