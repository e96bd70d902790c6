# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run and each of its sync jobs are asked to do.

``RunOptions`` holds what a run is given (``sync``'s options, built once by
``RunOptions.from_params``); ``job_options`` turns it into the ``JobOptions`` of one job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.locking import DEFAULT_LOCK_TIMEOUT
from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition

MODES = ("full", "modified")
AFTER_FULL_SYNC = ("restore", "create_new_records", "only_coupled_records")


@dataclass
class JobOptions:
    mode: str = "modified"  # full | modified
    create_uncoupled: bool = False
    dry_run: bool = False
    batch_size: int = 1000
    max_records: int = 100
    watermark_overlap: float = 60.0
    # check mode: couplings earlier jobs of the run would create, {mapping: {side: {id: other id}}}
    foreseen: dict[str, dict[str, dict[str, str | None]]] | None = None
    hold: dict[str, dict[str, str]] = field(default_factory=dict)  # side -> id -> why it is not created (ambiguous match)
    matched: bool = False  # a full sync's matching saw every uncoupled record: no look-up page by page (page_matching.py)
    create_only: bool = False  # create uncoupled records only; leave coupled ones to the next sync
    read_ahead: bool = True  # plan the next page in a second process while this one is written (read_ahead.py)
    skip_after_failures: int = 2  # a record failing with the same error this many runs in a row is skipped (0: never)
    records: dict[str, list[str]] | None = None  # chosen records only, by source side (chosen.py): read by id, written even unchanged
    field_diff: bool = False  # --diff: the reported records carry the values they change, before and after
    partition: Partition | None = None  # the source records of one partition only (partition.py); None: all


@dataclass(frozen=True)
class RunOptions:
    """How a run (runner.SyncRunner) works: the same for every job of it."""

    dry_run: bool = False  # check mode: plan, write nothing
    batch_size: int = 1000
    max_records: int = 100  # records (and errors) each job reports
    watermark_overlap: float = 60.0
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    rebind: bool = False  # accept endpoints other than those the store was first used with
    read_ahead: bool = True
    skip_after_failures: int = 2
    field_diff: bool = False
    partition: Partition | None = None  # this run's share of each mapping: one partition of its source records
    run_group: str | None = None  # the id the partitions of one distributed sync share (sync_job_info sums by it)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], check_mode: bool = False, diff: bool = False) -> RunOptions:
        """The options of a run from a module's parameters; check mode and --diff come from the module.

        A field takes the module option of its name (``max_records``: ``max_reported_records``);
        options a module does not take, or leaves unset, keep the defaults above.
        """
        given = {_PARAM_FIELDS.get(key, key): value for key, value in params.items() if value is not None}
        if isinstance(given.get("partition"), Mapping):
            given["partition"] = Partition(int(given["partition"]["index"]), int(given["partition"]["count"]))
        taken = {f.name for f in dataclasses.fields(cls)} - {"dry_run", "field_diff"}
        return cls(dry_run=check_mode, field_diff=diff, **{k: v for k, v in given.items() if k in taken})


_PARAM_FIELDS = {"max_reported_records": "max_records"}  # module option -> RunOptions field, where the names differ
# why: what a job reads of its run's options is whatever both dataclasses hold, so a new run option the jobs read needs no relay
_RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunOptions) if f.name in {g.name for g in dataclasses.fields(JobOptions)})


def job_options(run: RunOptions, **job: Any) -> JobOptions:
    """The options of one job of a run: the run's, and what differs per job (mode, create_uncoupled, records, foreseen)."""
    return JobOptions(**{name: getattr(run, name) for name in _RUN_FIELDS}, **job)
