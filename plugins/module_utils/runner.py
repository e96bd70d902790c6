# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs: the mappings of one sync, validated first, then synchronised in dependency order.

The three ways of the reference page: ``full`` (every mapping, uncoupled records
created whatever synch_only_coupled_records says, then the after-full-sync choice),
``modified`` for every mapping, and ``modified`` for named mappings only.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.chosen import source_ids
from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import order_mappings, with_dependencies
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.job import SyncJob
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions, job_options
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store


@dataclass
class RunResult:
    run_id: str | None
    mode: str
    jobs: list[JobResult] = field(default_factory=list)
    synch_only_coupled_records: dict[str, bool] = field(default_factory=dict)
    settings_changed: bool = False
    status: str = "running"

    @property
    def changed(self) -> bool:
        return self.settings_changed or any(j.changed for j in self.jobs)

    @property
    def failed_records(self) -> int:
        return sum(j.counts["failed"] for j in self.jobs)

    def records(self, cap: int) -> tuple[list[dict[str, Any]], bool]:
        out: list[dict[str, Any]] = []
        truncated = False
        for job in self.jobs:
            truncated = truncated or job.records_truncated
            for rec in job.records:
                if len(out) >= cap:
                    return out, True
                out.append(rec)
        return out, truncated

    def errors(self, cap: int) -> list[dict[str, Any]]:
        return [e for job in self.jobs for e in job.errors][:cap]


class SyncRunner:
    """Validates and runs a set of mappings against a pair of endpoints."""

    def __init__(self, store: Store, endpoints: dict[str, Endpoint], options: RunOptions | None = None):
        self.store = store
        self.endpoints = endpoints
        self.options = options if options is not None else RunOptions()
        self._whole: set[str] = set()  # mappings a partitioned run synchronises whole (_bind)

    def declared(self) -> list[Mapping]:
        return [Mapping.from_definition(d) for d in self.store.list_mappings()]

    def select(self, names: Sequence[str] | None) -> list[Mapping]:
        """The mappings to run, in dependency order; all declared ones when ``names`` is empty.

        Named mappings are ordered with what they depend on only: a broken mapping they do
        not need (an undeclared dependency, a cycle, a bad declaration) never stops them.
        """
        if not names:
            ordered = order_mappings(self.declared())
            if not ordered:
                raise MappingError(None, "no mappings are declared in the store %s" % self.store.address)
            return ordered
        definitions = {d["name"]: d for d in self.store.list_mappings()}
        unknown = [n for n in names if n not in definitions]
        if unknown:
            raise MappingError(", ".join(unknown), "not declared (declared: %s)" % (", ".join(sorted(definitions)) or "none"))
        needed = with_dependencies(names, list(definitions), lambda name: Mapping.from_definition(definitions[name]))
        return [m for m in order_mappings(needed) if m.name in set(names)]

    def run(self, mode: str, names: Sequence[str] | None = None, after_full_sync: str = "restore",
            records: Sequence[str] | None = None) -> RunResult:
        # Validate every mapping against the real tables, and the endpoint pair against the
        # store, before waiting for locks and before the first job writes anything.
        if records is not None and len(names or ()) != 1:
            raise MappingError(None, "records are the records of one mapping: name it alone in mappings")
        locked = [entry[0].name for entry in self._bind(names)]
        self.store.check_binding(self.endpoints, rebind=self.options.rebind, record=False)
        run_id = str(uuid.uuid4())
        # why: check mode locks too, so its plan never reads a mapping halfway through another run
        with self._locks(locked, None if self.options.dry_run else run_id):
            # why: a run we waited for may have changed the definitions (after_full_sync): read them again
            bound = self._bind(names)
            if [entry[0].name for entry in bound] != locked:
                raise MappingError(", ".join(sorted(set(locked) ^ {entry[0].name for entry in bound})),
                                   "declared or removed while this run waited for its locks; run it again")
            chosen = None if records is None else source_ids(bound[0][0], bound[0][1], self.store, [str(r) for r in records])
            if not self.options.dry_run:
                self.store.check_binding(self.endpoints, rebind=self.options.rebind, record=True)
                # why: a run killed earlier stays "running" in the log otherwise; another partition's may be alive elsewhere
                whole, split = self._split(locked)
                self.store.mark_interrupted(whole, split, self.options.partition)
                self.store.start_run(mode, locked, run_id=run_id, group_id=self.options.run_group)
            return self._run_jobs(mode, bound, [entry[0] for entry in bound], after_full_sync, None if self.options.dry_run else run_id, chosen)

    @contextlib.contextmanager
    def _locks(self, names: list[str], run_id: str | None) -> Iterator[None]:
        """The run's mapping locks: a partition's of each mapping it splits (locking.py), whole ones of the rest."""
        whole, split = self._split(names)
        with contextlib.ExitStack() as stack:
            if split:
                stack.enter_context(mapping_locks(self.store, split, run_id, self.options.lock_timeout, partition=self.options.partition))
            if whole:
                stack.enter_context(mapping_locks(self.store, whole, run_id, self.options.lock_timeout))
            yield

    def _split(self, names: Sequence[str]) -> tuple[list[str], list[str]]:
        """The mappings the run synchronises whole, and those it synchronises one partition of."""
        if self.options.partition is None:
            return list(names), []
        return [n for n in names if n in self._whole], [n for n in names if n not in self._whole]

    def _bind(self, names: Sequence[str] | None) -> list[tuple[Mapping, dict, dict]]:
        """The mappings this run synchronises, each with its tables and flows. A partitioned run leaves out the
        bidirectional mappings (each pair has two source records, in two partitions maybe) except in partition 0,
        which synchronises them whole (``_whole``)."""
        bound = []
        part = self.options.partition
        self._whole = set()
        for m in self.select(names):
            if part is not None and m.bidirectional:
                if part.index:
                    continue
                self._whole.add(m.name)
            tables = open_tables(m, self.endpoints)
            bound.append((m, tables, m.bind(tables)))
        return bound

    def _run_jobs(self, mode: str, bound: list, selected: list[Mapping], after_full_sync: str, run_id: str | None,
                  chosen: dict[str, list[str]] | None = None) -> RunResult:
        """The jobs of a run in order; ``chosen``: the records of its one mapping to synchronise now (chosen.py)."""
        result = RunResult(run_id, mode)
        foreseen: dict = {}  # check mode: couplings the run would create, for the lookups of later mappings
        try:
            for mapping, tables, flows in bound:
                opts = job_options(self.options, mode=mode, create_uncoupled=(mode == "full" or chosen is not None), records=chosen,
                                   foreseen=foreseen if self.options.dry_run else None)
                if mapping.name in self._whole:
                    opts.partition = None
                job = SyncJob(mapping, tables, flows, self.store, run_id, opts)
                before = [e.throttling() for e in self.endpoints.values()]
                if mode == "full" and chosen is None:
                    job.couple_matches_first()  # couple matching records before anything is created
                done = job.run()
                after = [e.throttling() for e in self.endpoints.values()]
                done.throttled = sum(a[0] - b[0] for a, b in zip(after, before))
                done.throttle_wait = sum(a[1] - b[1] for a, b in zip(after, before))
                result.jobs.append(done)
            if mode == "full" and chosen is None:
                self._after_full_sync(selected, after_full_sync, result)
            else:
                result.synch_only_coupled_records = {m.name: m.synch_only_coupled_records for m in selected}
            result.status = "partial" if result.failed_records else "success"
        except Exception:
            result.status = "failed"
            raise
        finally:
            if run_id is not None:
                self.store.end_run(run_id, result.status)
        return result

    def _after_full_sync(self, mappings: Sequence[Mapping], choice: str, result: RunResult) -> None:
        """The reference page's closing question: should scheduled runs keep creating records?"""
        for m in mappings:
            wanted = m.synch_only_coupled_records
            if choice == "create_new_records":
                wanted = False
            elif choice == "only_coupled_records":
                wanted = True
            if wanted != m.synch_only_coupled_records:
                result.settings_changed = True
                if not self.options.dry_run:
                    self.store.set_synch_only(m.name, wanted)
            result.synch_only_coupled_records[m.name] = wanted
