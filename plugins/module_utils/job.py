# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-record synchronisation of one mapping: one sync job.

Source records are streamed page by page. For each page the job fetches the couplings
of its records, decides per record (unchanged, modified, inserted, skipped, failed) by
comparing fingerprints with what was last synchronised, writes the destination in
batches, and commits the page's couplings, retries, errors and progress to the store
in one transaction. Creates are preceded by a pending-create intent so that a process
killed between creating a record and storing its coupling is repaired on the next run
without a duplicate.

A page is first planned (read, converted, fingerprinted, decided: reads only) and then
applied (every write). From the second page on, planning may run in a second process one
or two pages ahead of the writes (read_ahead.py; _ahead says when), and a web destination
takes the writes of several pages at once while the job stores the ones before
(pages_in_flight.py): a page is started (its intents stored), sent, then finished (its results
and couplings stored), in order. A record's values,
lookups and fingerprints come from record_values.RecordValues; what a changed pair of a
bidirectional mapping writes where is decided in bidirectional.py, what a deleted record of
a coupling leads to in deletions.py, drift of a one-way mapping in convergence.py and
matching before a create in page_matching.py: each decides, with the job's values and the
page's result (JobResult) passed to it, and the job writes what they decide.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import functools
import itertools
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from ansible_collections.tablesync.integration.plugins.module_utils.bidirectional import plan_coupled
from ansible_collections.tablesync.integration.plugins.module_utils.convergence import converge_page, converges, deletions_in_flow
from ansible_collections.tablesync.integration.plugins.module_utils.coupling import held
from ansible_collections.tablesync.integration.plugins.module_utils.deletions import (
    Propagate,
    Restore,
    dst_deleted,
    missing_sides,
    propagated,
    source_deleted,
    uncouple,
)
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import MAX_PAGES_IN_FLIGHT, OTHER_SIDE, SIDES, Table, WriteResult
from ansible_collections.tablesync.integration.plugins.module_utils.errors import GuardError, RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import JobOptions
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import FLOW_DIRECTION, Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.matching import (
    ForeseenCouplings,
    claim_matches,
    couple_matches,
    foresee_lookups,
    lost_claim_message,
    match_mapping,
)
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import (
    ModifiedOnError,
    newest,
    parse_column,
    read_from,
    record_error,
    reread,
    watermark_cutoff,
)
from ansible_collections.tablesync.integration.plugins.module_utils.page_matching import MatchScope, match_before_create, plans_read_destination
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change, PagePlan
from ansible_collections.tablesync.integration.plugins.module_utils.pages_in_flight import PagesInFlight
from ansible_collections.tablesync.integration.plugins.module_utils.read_ahead import read_ahead
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import Foreseen, RecordValues, checked
from ansible_collections.tablesync.integration.plugins.module_utils.source_checks import refused_records, source_fingerprints
from ansible_collections.tablesync.integration.plugins.module_utils.store import (
    BatchCommit,
    Coupling,
    PendingCreate,
    PendingPage,
    Store,
    pending_page,
)
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, converter, id_text, utcnow
from ansible_collections.tablesync.integration.plugins.module_utils.write_policy import WritePolicy

# pages a second process plans ahead of the one being written (read_ahead.py)
READ_AHEAD_PAGES = 2


class SideWrites(NamedTuple):
    """The updates written to one side and their results, in order."""

    side: str
    todo: list[Change]
    results: list[WriteResult]


class SentPage(NamedTuple):
    """What a page's writes did: updates per side written, and the creates' results (None in check mode)."""

    updates: list[SideWrites]
    inserts: list[WriteResult] | None


class SyncJob:
    """One job: synchronise the records of one mapping."""

    def __init__(self, mapping: Mapping, tables: dict[str, Table], flows: dict[tuple[str, str], Flow], store: Store,
                 run_id: str | None, options: JobOptions):
        self.mapping = mapping
        self.tables = tables
        self.flows = flows
        self.run_id = run_id
        self.opts = options
        self.policy = WritePolicy.of(mapping, options)
        self.result = JobResult(mapping.name, mapping.direction, options.mode, cap=options.max_records)
        # why: a bidirectional record written (or failed as a conflict) by the first flow is not read again by the second
        self.handled: dict[str, set[str]] = {"local": set(), "integration": set()}
        # records skipped after failing the same way run after run (Store.commit_batch): left alone until restored
        self.skipped: dict[str, set[str]] = {side: set(store.failed_ids(mapping.name, side, skipped=True)) if store.exists else set()
                                             for side in ("local", "integration")}
        # check mode: the couplings earlier jobs of the run, and this one, would make (JobOptions.foreseen)
        self.foreseen: Foreseen = options.foreseen if options.foreseen is not None else {}
        self.values = RecordValues(mapping, store, self.foreseen)
        self._direction, self._counted = "", dict(self.result.counts)  # the direction counting and its counts when it began
        self._total: int | None = None  # the records the current direction expects to read, when its source can count them
        self._watermark: datetime.datetime | None = None  # the flow's watermark when this run read (records up to it are re-reads)
        self._not_after: datetime.datetime | None = None  # the latest modified-on that may become the watermark

    @property
    def store(self) -> Any:
        """The store: couplings, retries, progress (check mode's matching may put a view of it in its place before the job runs)."""
        return self.values.store

    @store.setter
    def store(self, store: Any) -> None:
        self.values.store = store  # why: lookups read the couplings through the same store as the job

    def couple_matches_first(self) -> None:
        """Before a full sync job creates anything: couple its mapping's matching records (matching.py).

        Matched pairs are committed (in check mode, foreseen), ambiguous records are held (the job
        fails them with their ``ambiguous match`` message instead of creating them), and the job's
        counts and records report the couplings. The job then looks up no matches page by page:
        this saw every uncoupled record. Nothing to do for a mapping without ``match_on``.
        """
        mapping = self.mapping
        if not mapping.match_on:
            return
        found = match_mapping(mapping, self.tables, self.store, batch_size=self.opts.batch_size, max_reported=self.opts.max_records)
        part = self.opts.partition
        if part is not None:
            src = SIDES.index(next(iter(self.flows.values())).src)  # why: partitioned mappings are one-way (runner)
            found.pairs = [pair for pair in found.pairs if part.holds(pair[src])]
        if self.opts.dry_run:
            self.store = ForeseenCouplings(self.store, mapping.name, found.pairs)
            foresee_lookups(self.foreseen, mapping.name, found.pairs)
        elif part is None:
            couple_matches(self.store, mapping.name, found.pairs, self.opts.batch_size)
        else:
            self._claim(next(iter(self.flows.values())), [Coupling(mapping.name, local_id=lid, integration_id=iid) for lid, iid in found.pairs],
                        found.held)
            found.pairs = [pair for pair in found.pairs if pair[src] not in found.held[SIDES[src]]]
        self.opts.hold = found.held
        self.opts.matched = True
        self.result.counts["coupled"] += len(found.pairs)
        self.result.matching = found.report(self.opts.max_records)
        for lid, iid in found.pairs:
            self.result.log("coupled", lid, iid)

    def _claim(self, flow: Flow, couplings: list[Coupling], held: dict[str, dict[str, str]]) -> list[Coupling]:
        """Store matched couplings of a partition, each only if neither record is coupled yet (claim_matches); the source
        record of one another partition coupled first is held as an ambiguous match. Returns those lost."""
        lost = claim_matches(self.store, self.mapping.name, couplings, self.opts.batch_size)
        for cp in lost:
            sid = cp.side_id(flow.src)
            held.setdefault(flow.src, {})[sid] = lost_claim_message(self.mapping.name, flow.src, sid, flow.dst, cp.side_id(flow.dst))
        return lost

    # -- the job ----------------------------------------------------------------------------------
    def run(self) -> JobResult:
        """Run the job: one job row in the store per direction (a bidirectional mapping writes two, as the seed system does)."""
        dry = self.opts.dry_run
        flows = list(self.flows.values())
        try:
            self._open_direction(flows[0])  # why: deletions found before the first flow belong to its direction's job
            coupled = self.store.count_couplings(self.mapping.name) if self.mapping.guards else 0
            if self.mapping.guards and not dry:
                # why: the guard must stop the job before its first write, so a check-mode run of it comes first
                preview = dataclasses.replace(self.opts, dry_run=True, foreseen={})
                SyncJob(self.mapping, self.tables, self.flows, self.store, self.run_id, preview).run()
            if self.opts.mode == "full" and self.store.exists and not self._deletions_in_flow() and self.opts.records is None:
                self._detect_deletions()
            for index, flow in enumerate(flows):
                if index:
                    self._close_direction()
                    self._open_direction(flow)
                if not dry:
                    self._recover_pending(flow)
                if self.opts.records is not None:
                    self._run_chosen(flow, self.opts.records[flow.src])
                    continue
                self._run_flow_checked(flow)
            if self.mapping.guards and dry:
                self._check_guard(coupled)
            self.result.status = "partial" if self.result.counts["failed"] else "success"
        except Exception as exc:
            self.result.status = "failed"
            self.result.message = "%s: %s" % (type(exc).__name__, exc)
            raise
        finally:
            self.result.ended_at = utcnow()
            self._close_direction()
        return self.result

    def _converges(self) -> bool:
        return converges(self.mapping, self.opts.mode, self.store.exists, self.policy)

    def _deletions_in_flow(self) -> bool:
        return deletions_in_flow(self._converges(), self.tables, self.flows)

    def _run_flow_checked(self, flow: Flow) -> None:
        """Run a flow; when its pages check their coupled destination records (convergence.deletions_in_flow) and it found
        fewer couplings than the mapping has (their source record was deleted or filtered out), every coupling gets the
        deletion check afterwards (couplings the flow already handled are left to it)."""
        if not self._deletions_in_flow():
            self._run_flow(flow)
            return
        before = self.store.count_couplings(self.mapping.name)
        checked_before = self.result.couplings_checked
        self._run_flow(flow)
        if self.result.couplings_checked - checked_before != before:
            self._detect_deletions()

    def _detect_deletions(self) -> None:
        """Full syncs compare couplings with the records that still exist on both sides."""
        src = next(iter(self.flows.values())).src
        for page in self.store.iter_couplings(self.mapping.name, batch=self.opts.batch_size):
            if self.opts.partition is not None:
                page = [cp for cp in page if self.opts.partition.holds(cp.side_id(src))]
            if self.handled["local"] or self.handled["integration"]:
                # why: run after a flow (_run_flow_checked), a coupling that flow handled is not handled twice
                page = [cp for cp in page if cp.local_id not in self.handled["local"] and cp.integration_id not in self.handled["integration"]]
            gone = missing_sides(self.values, self.tables, page)
            if not gone:
                continue
            batch = BatchCommit()
            for cp, sides in gone:
                if len(sides) == 2:
                    uncouple(self.result, batch, cp, None, None)
                else:
                    self._source_deleted(cp, sides[0], batch)
            if not self.opts.dry_run:
                batch.counts = self.job_row()
                self.commit(batch)

    def _changes_deleted(self, side: str, ids: list[str]) -> None:
        """Coupled records the change-tracking read reports deleted are handled as a full sync's deletion check would."""
        couplings = self.store.couplings_for(self.mapping.name, side, ids)
        if not couplings:
            return  # uncoupled records: nothing was synchronised from them
        keep = OTHER_SIDE[side]
        batch = BatchCommit()
        for cp in couplings.values():
            if cp.side_id(keep) not in self.handled[keep]:
                self._source_deleted(cp, side, batch)
        if not self.opts.dry_run:
            batch.counts = self.job_row()
            self.commit(batch)

    def _source_deleted(self, cp: Coupling, gone: str, batch: BatchCommit) -> None:
        """One record of a coupling was deleted on side ``gone``: what deletions.source_deleted decides, written."""
        decision = source_deleted(self.values, self.tables, self.flows, self.result, self.handled, cp, gone, batch)
        if isinstance(decision, Restore):
            self._apply_inserts(decision.flow, [decision.change], batch, decision.positions)
        elif isinstance(decision, Propagate):
            outcome = None if self.opts.dry_run else self.tables[decision.side].delete([decision.record_id])[0]
            propagated(self.result, batch, decision, outcome)

    def _open_direction(self, flow: Flow) -> None:
        """Start counting one flow's direction, in a job row of its own."""
        direction = FLOW_DIRECTION[(flow.src, flow.dst)]
        self._direction, self._counted, self._total = direction, dict(self.result.counts), None
        if not self.opts.dry_run:
            self.result.job_id = self.store.start_job(self.run_id or "", self.mapping.name, self.opts.mode, direction, partition=self.opts.partition)
        self.result.directions[direction] = {"job_id": self.result.job_id, "counts": self.progress()}

    def _close_direction(self) -> None:
        """End the current direction's job row with what it counted."""
        counts = self.progress()
        entry = self.result.directions[self._direction]
        entry["counts"] = counts
        if self.opts.dry_run or entry["job_id"] is None:
            return
        status = "failed" if self.result.status == "failed" else "partial" if counts["failed"] else "success"
        self.store.end_job(entry["job_id"], status, self.job_row(), self.result.message if status == "failed" else None)

    def progress(self) -> dict[str, int]:
        """What the current direction counted so far."""
        return {name: value - self._counted.get(name, 0) for name, value in self.result.counts.items()}

    def job_row(self) -> dict[str, Any]:
        """What a batch commits as the current direction's job row: its counts so far and the records it expects to read."""
        row: dict[str, Any] = self.progress()
        if self._total is not None:
            row["total"] = self._total  # why: written with the progress, not in a transaction of its own
        return row

    def _check_guard(self, coupled: int) -> None:
        """Fail when the plan deletes or overwrites more of the mapping's records than it allows."""
        counts = self.result.counts
        deletes = counts["deleted"]
        changes = counts["modified"] + counts["deleted"]
        base = max(coupled, 1)
        figures = {"max_deletes": deletes, "max_deletes_percent": 100.0 * deletes / base,
                   "max_changes": changes, "max_changes_percent": 100.0 * changes / base}
        exceeded = [k for k, limit in self.mapping.guards.items() if figures[k] > limit]
        if exceeded:
            limits = ", ".join("%s %s" % (k, self.mapping.guards[k]) for k in exceeded)
            raise GuardError(
                "mapping %s: the run would delete %d and overwrite %d of %d coupled records (%.1f%% changed), more than %s allows; "
                "nothing was written" % (self.mapping.name, deletes, counts["modified"], coupled, figures["max_changes_percent"], limits),
                plan=dict(counts, coupled_records=coupled),
            )

    def _run_flow(self, flow: Flow) -> None:
        src = flow.src
        table = self.tables[src]
        fields = self.mapping.read_fields(src)
        modified_field = self.mapping.modified_field(src)
        where = self.mapping.filters.get(src)
        retry = set(self._mine(self.store.failed_ids(self.mapping.name, src))) if self.store.exists else set()
        if self.opts.mode == "modified" and self.store.exists:
            # why: a pair coupled but never synchronised may be older than the watermark
            retry.update(self._mine(self.store.unsynced_ids(self.mapping.name, src)))
        read_started = utcnow()
        self._watermark, self._not_after = None, watermark_cutoff(read_started, self.opts.watermark_overlap)
        max_seen = None
        ordered = sorted(retry)
        for start in range(0, len(ordered), self.opts.batch_size):  # pages: newly coupled pairs can be many
            # why: records that failed last time are retried even when they did not change
            chunk = ordered[start:start + self.opts.batch_size]
            retried = [r for r in table.read_by_ids(chunk, fields) if where is None or where.matches(dict(zip(fields, r)))]
            self._process_page(flow, fields, retried, retry)
        since = None
        if self.opts.mode == "modified" and modified_field:
            since = self._watermark = self.store.watermark(self.mapping.name, src, partition=self.opts.partition) if self.store.exists else None
        changes = self._read_changes(src, table, fields, where)
        if changes is None:
            self._expect(len(ordered), table.count(where, modified_field, read_from(since, self.opts.watermark_overlap),
                                                   self.mapping.modified_format(src)))
        elif changes[1].full:
            # why: a change-tracking read without a delta link reads every record the filter keeps; a delta read is not counted
            self._expect(len(ordered), table.count(where))
        pages = changes[0] if changes is not None else table.scan(
            fields, where=where, modified_field=modified_field, modified_since=read_from(since, self.opts.watermark_overlap),
            page_size=self.opts.batch_size, modified_format=self.mapping.modified_format(src))
        # why: a keyset scan reads each record once, so when the mapping has no couplings yet (a first full sync)
        # no page can find one and the per-page coupling query is skipped
        uncoupled = (changes is None and not self.opts.dry_run and self.store.exists  # check mode plans couplings it does not store
                     and not self.store.has_couplings(self.mapping.name))
        independent = self._independent_pages(changes is None)
        # why: a page sent while others are on the wire is planned before they are stored (pages_in_flight.py); --diff
        # reads the records it changes just before writing them, one page after another
        overlap = independent and not self.opts.field_diff and self.tables[flow.dst].pages_in_flight(self.opts.batch_size) > 1
        plans = self._page_plans(flow, fields, pages, retry, coupled=not uncoupled,
                                 window=READ_AHEAD_PAGES + (MAX_PAGES_IN_FLIGHT if overlap else 0))
        room = functools.partial(self.tables[flow.dst].pages_in_flight, self.opts.batch_size) if overlap else (lambda: 1)
        with contextlib.closing(self._ahead(plans, flow, independent)) as ahead, PagesInFlight[PagePlan, Any](room) as flight:
            for plan in ahead:
                if plan.page_max is not None and (max_seen is None or plan.page_max > max_seen):
                    max_seen = plan.page_max
                for written in flight.send(plan, self._start_page(flow, plan)):
                    self._page_written(flow, fields, retry, *written)
            for written in flight.drain():
                self._page_written(flow, fields, retry, *written)
        if modified_field and max_seen is not None and not self.opts.dry_run:
            self._advance_watermark(src, max_seen, since)
        if changes is not None and changes[1].delta_link and not self.opts.dry_run:
            # why: saved only after every page of the job is committed, so a failed run reads the same changes again
            self.store.set_setting(self._delta_key(src), changes[1].delta_link)

    def _run_chosen(self, flow: Flow, ids: list[str]) -> None:
        """Synchronise chosen source records now: read by id, written even when unchanged (as retried records are);
        no watermark moves and no other record is read."""
        table = self.tables[flow.src]
        fields = self.mapping.read_fields(flow.src)
        where = self.mapping.filters.get(flow.src)
        ids = self._mine(ids)
        self._expect(len(ids), 0)
        for start in range(0, len(ids), self.opts.batch_size):
            chunk = ids[start:start + self.opts.batch_size]
            rows = table.read_by_ids(chunk, fields)
            kept = [r for r in rows if where is None or where.matches(dict(zip(fields, r)))]
            self.result.counts["skipped"] += len(rows) - len(kept)  # why: outside the mapping's filter, as a scan would leave them
            self._process_page(flow, fields, kept, set(chunk))

    def _expect(self, retried: int, scanned: int | None) -> None:
        """Keep how many records the current direction's job will read, for progress reports (sync_job_info)."""
        if scanned is not None:
            # why: a partition reads every record and keeps its share, about one in count (partition.py)
            self._total = retried + (scanned if self.opts.partition is None else -(-scanned // self.opts.partition.count))

    def _mine(self, ids: Iterable[str]) -> list[str]:
        """Of source record ids, those of this job's partition (all without one)."""
        part = self.opts.partition
        return list(ids) if part is None else [i for i in ids if part.holds(i)]

    def _delta_key(self, side: str) -> str:
        # why: each partition follows its own delta link; one partition's link would skip another's changes
        suffix = "" if self.opts.partition is None else "#" + self.opts.partition.label
        return "delta.%s.%s%s" % (self.mapping.name, side, suffix)

    def _read_changes(self, src: str, table: Table, fields: list[str], where: Any) -> tuple[Iterator[list[tuple]], Any] | None:
        """Pages of a change-tracking read and the read itself, or None when the table has no change tracking.

        A modified run reads what changed since the saved delta link; without one, when the
        service says it expired, and in full syncs, this is a full read (the mapping filter then
        applies on the client) that ends with a fresh delta link.
        """
        if not table.supports_change_tracking:
            return None
        link = self.store.get_setting(self._delta_key(src)) if self.opts.mode == "modified" and self.store.exists else None
        read = table.track_changes(fields, link, where=where, page_size=self.opts.batch_size)
        pages = self._change_pages(src, read)
        first = next(pages, None)
        if not read.enabled:
            return None
        return itertools.chain([] if first is None else [first], pages), read

    def _change_pages(self, src: str, read: Any) -> Iterator[list[tuple]]:
        for rows, deleted in read.pages():
            deleted = self._mine(deleted)
            if deleted and self.store.exists:
                self._changes_deleted(src, deleted)
            yield rows

    def _advance_watermark(self, side: str, max_seen: datetime.datetime, previous: Any) -> None:
        """Keep the newest modified-on read (naive UTC; values after the run's start do not count, see _not_after).

        The next run reads from watermark_overlap seconds before it, with >=: a transaction that
        stamped a record before our read but committed after it is read then (modified_on.py).
        """
        if previous is not None and previous >= max_seen:
            return
        self.store.set_watermark(self.mapping.name, side, max_seen, partition=self.opts.partition)

    # -- one page -------------------------------------------------------------------------------------
    def _page_plans(self, flow: Flow, fields: Sequence[str], pages: Iterator[list[tuple]], retry: set[str],
                    coupled: bool, window: int) -> Iterator[PagePlan]:
        """Plan each page read; a record also read in one of the last ``window`` pages (those planned or sent but maybe
        not yet stored) is left to be planned once the page it came with is written (PagePlan.deferred)."""
        mod_field = self.mapping.modified_field(flow.src)
        mod_pos = list(fields).index(mod_field) if mod_field else None
        recent: collections.deque[set[str]] = collections.deque(maxlen=window)
        part = self.opts.partition
        for page in pages:
            full = len(page) >= self.opts.batch_size
            page_max = None
            if mod_pos is not None:
                page_max = newest((r[mod_pos] for r in page), self.mapping.modified_format(flow.src), self._not_after)
            if part is not None:
                page = [r for r in page if part.holds(id_text(r[0]))]
            if retry:
                page = [r for r in page if id_text(r[0]) not in retry]
            ids = [id_text(r[0]) for r in page]
            # why: a record changed during a read by modified-on comes again; planned ahead, it would miss the coupling
            # a page not yet written is about to store (pages further back are written, see read_ahead)
            deferred = [r for r, i in zip(page, ids) if any(i in seen for seen in recent)] if recent else []
            if deferred:
                later = {id(r) for r in deferred}
                page = [r for r in page if id(r) not in later]
            plan = self._plan_page(flow, fields, page, retry, coupled)
            plan.full, plan.page_max, plan.deferred = full, page_max, deferred
            recent.append(set(ids))
            yield plan

    def _independent_pages(self, scanned: bool) -> bool:
        """Whether a page may be planned, and written, before the pages ahead of it are written and stored.

        True when planning a page reads nothing the pages before it write: a one-way mapping whose
        lookups name other mappings, in a real run over a table scan.
        """
        mapping = self.mapping
        return (scanned and not self.opts.dry_run and not mapping.bidirectional and self.store.exists
                and all(fm.lookup != mapping.name for fm in mapping.fields) and not plans_read_destination(mapping, self.opts, self.policy))

    def _ahead(self, plans: Iterator[PagePlan], flow: Flow, independent: bool) -> Generator[PagePlan, None, None]:
        """The plans, from the second page on planned by a second process up to READ_AHEAD_PAGES pages ahead of their
        use when the pages are independent (read_ahead.py says why a process and how the two stay in step)."""
        first = next(plans, None)
        if first is None:
            return
        yield first
        if first.full and independent and self.opts.read_ahead and self.tables[flow.src].supports_read_ahead:
            yield from read_ahead(plans, self._release_before_fork, self._renew_after_fork, window=READ_AHEAD_PAGES)
        else:
            yield from plans

    def _release_before_fork(self) -> bool:
        return all(t.endpoint.release_before_fork() for t in self.tables.values()) and self.store.release_before_fork()

    def _renew_after_fork(self) -> None:
        for t in self.tables.values():
            t.endpoint.renew_after_fork()
        self.store.renew_after_fork()

    def _process_page(self, flow: Flow, fields: Sequence[str], rows: Sequence[tuple], retry: set[str]) -> None:
        self._apply_page(flow, self._plan_page(flow, fields, rows, retry, True))

    def _plan_page(self, flow: Flow, fields: Sequence[str], rows: Sequence[tuple], retry: set[str], coupled: bool) -> PagePlan:
        """Decide what each record of a page writes; ``coupled`` False: none of them can be coupled (no lookup).

        Planning only reads (it may run in another process, see _ahead): what it counts and
        the records it fails go to the plan's own outcome, added to the job's when applied.
        """
        outer = self.result
        # why: a pair logged while planning takes the --diff values noted for it, as it would from the job's result
        outcome = JobResult(outer.mapping, outer.direction, outer.mode, counts=dict.fromkeys(outer.counts, 0), cap=outer.cap,
                            diffs=outer.diffs)
        plan = PagePlan({f: i for i, f in enumerate(fields)}, outcome)
        self._plan_records(flow, plan, rows, retry, coupled)
        return plan

    def _plan_records(self, flow: Flow, plan: PagePlan, rows: Sequence[tuple], retry: set[str], coupled: bool) -> None:
        """Plan a page's records into ``plan``; what it counts and fails goes to the plan's outcome."""
        src, dst = flow.src, flow.dst
        result, values = plan.outcome, self.values
        values.forget_lookups()
        handled = self.handled[src]
        if handled:
            rows = [r for r in rows if id_text(r[0]) not in handled]
        if not rows:
            return
        counts = result.counts
        counts["read"] += len(rows)
        mapping = self.mapping
        positions, batch = plan.positions, plan.batch
        columns = list(zip(*rows))
        fps, unreadable = source_fingerprints(mapping, src, columns, positions)
        mod_field = mapping.modified_field(src)
        mod_pos = positions[mod_field] if mod_field else None
        stamps = parse_column(columns[mod_pos], mapping.modified_format(src)) if mod_pos is not None else [None] * len(rows)
        ids = [id_text(r[0]) for r in rows]
        refused = refused_records(mapping, src, self.tables[src], ids, unreadable)  # duplicated keys, undecodable text
        couplings = self.store.couplings_for(mapping.name, src, ids) if self.store.exists and coupled else {}
        kept = plan.kept if self._converges() else None  # why: their destinations are checked when the page is applied
        todo: list[tuple[tuple, str, str, Coupling | None, Any]] = []
        skipped_src, skipped_dst = self.skipped[src], self.skipped[dst]
        for row, sid, fp, stamp in zip(rows, ids, fps, stamps):
            cp = couplings.get(sid)
            if sid in skipped_src or (cp is not None and cp.side_id(dst) in skipped_dst):
                counts["skipped"] += 1  # why: failed the same way run after run; restored by the skipped_records module
                continue
            if sid in refused:
                result.fail(batch, src, sid, refused[sid])
                continue
            if held(mapping, self.policy, src, cp):
                counts["skipped"] += 1
                continue
            if isinstance(stamp, ModifiedOnError):
                # why: only a modified-on column (mod_field) parses to ModifiedOnError
                result.fail(batch, src, sid, str(record_error(stamp, mapping.name, src, sid, mod_field or "")))
                continue
            if cp is not None and (cp.local_fp if src == "local" else cp.integration_fp) == fp and sid not in retry:
                if reread(stamp, self._watermark):
                    counts["read"] -= 1  # why: read again only for the watermark's overlap, and unchanged: not news
                else:
                    counts["unchanged"] += 1
                if kept is not None:
                    kept.append((sid, cp.side_id(dst), cp.integration_fp if dst == "integration" else cp.local_fp))
                continue
            if cp is None and not self.policy.creates and sid not in retry:
                # why: a record whose create failed is retried even where scheduled runs create nothing
                if reread(stamp, self._watermark):
                    counts["read"] -= 1  # why: skipped already when it was read before the overlap
                else:
                    counts["skipped"] += 1
                continue
            todo.append((row, sid, fp, cp, stamp))
        scope = MatchScope(mapping, self.tables, self.store, self.opts, self.foreseen)
        todo = match_before_create(scope, result, flow, plan, todo)  # couple or hold what would be created
        values.prefetch_lookups(flow, [t[0] for t in todo], positions)
        partners: dict[str, tuple] = {}
        if mapping.bidirectional:
            coupled_ids = [t[3].side_id(dst) for t in todo if t[3] is not None]
            if coupled_ids:
                partners = {id_text(r[0]): r for r in self.tables[dst].read_by_ids(coupled_ids, mapping.read_fields(dst))}
        new_values, unconverted = values.page_values(flow, [t[0] for t in todo if t[3] is None], positions, False)
        # why: records whose values all passed through unconverted have the source's fingerprint on the destination
        # too, when the two sides' fingerprints cover the same fields in the same order
        mirrored = unconverted and values.mirrored(flow, positions)
        created = iter(new_values)
        updated = iter([] if mapping.bidirectional else values.page_values(flow, [t[0] for t in todo if t[3] is not None], positions, True)[0])
        for row, sid, fp, cp, stamp in todo:
            try:
                if cp is None:
                    # why: a one-way record's source row is not needed once its values are known
                    plan.inserts.append(Change(sid, fp, checked(next(created)), stamp,
                                               row=row if mapping.bidirectional else None, dst_fp=fp if mirrored else None))
                    continue
                change = Change(sid, fp, {}, stamp, cp, row=row)
                if mapping.bidirectional:
                    partner = partners.get(cp.side_id(dst))
                    if partner is None:
                        restore = dst_deleted(values, result, self.handled, flow, change, cp, positions, batch)
                        if restore is not None:
                            plan.restores.append(restore)
                        continue
                    self.handled[dst].add(cp.side_id(dst))
                    plan_coupled(values, self.flows, flow, change, cp, positions, partner)
                else:
                    change.values = checked(next(updated))
                plan.updates.append(change)
            except (ConversionError, RecordError) as exc:
                result.fail(batch, src, sid, str(exc))
        self._prepare_inserts(flow, plan.inserts)
        if plan.inserts and not self.opts.dry_run and not mapping.bidirectional:
            plan.prepared = self.tables[dst].prepare_insert([ch.values for ch in plan.inserts])

    def _apply_page(self, flow: Flow, plan: PagePlan) -> None:
        """Write a planned page: destination updates and creates, then the store in one transaction."""
        self._finish_page(flow, plan, self._start_page(flow, plan)())

    def _page_written(self, flow: Flow, fields: Sequence[str], retry: set[str], plan: PagePlan, sent: SentPage | None) -> None:
        """A page sent and written: store it, then plan and write the records read again that waited for it."""
        self._finish_page(flow, plan, sent)
        if plan.deferred:
            self._process_page(flow, fields, plan.deferred, retry)

    def _start_page(self, flow: Flow, plan: PagePlan) -> Callable[[], SentPage | None]:
        """Make a planned page ready to write, its intents stored; returns its writes, to be sent here or on another thread."""
        if self._converges():
            # why: --diff values noted for a pair whose update failed stay with the job until the pair is logged
            plan.outcome.diffs = self.result.diffs
            converge_page(self.values, self.tables, self.store, plan.outcome, self.handled, flow, plan)
        if self.opts.partition is not None and plan.batch.new_couplings and not self.opts.dry_run:
            self._claim_page(flow, plan)
        self.result.absorb(plan.outcome, self.opts.max_records)
        if not plan.outcome.counts["read"]:
            return lambda: None
        self._prepare_inserts(flow, [ch for ch in plan.inserts if ch.dst_fp is None])
        if not self.opts.dry_run:
            if plan.updates and self.mapping.bidirectional:
                # why: a run killed after these writes and before its commit would leave the stored fingerprints of the
                # records it wrote behind them, and the next run would see its own writes as changes made there (a conflict)
                plan.batch.cleared_pending.append(self.store.add_pending(self._update_intents(flow, plan.updates)))
            self._insert_intents(flow, plan.inserts, plan.batch)
        return functools.partial(self._send_page, flow, plan)

    def _claim_page(self, flow: Flow, plan: PagePlan) -> None:
        """Before a partition writes records it matched on a page, store their couplings (_claim): a record another
        partition coupled first is not written but failed as held. Planning put only matched couplings in the batch yet."""
        held: dict[str, dict[str, str]] = {}
        lost = {id(cp) for cp in self._claim(flow, plan.batch.new_couplings, held)}
        if lost:
            # why: planning logged each match as coupled; a lost claim coupled nothing
            unmade = {(cp.local_id, cp.integration_id) for cp in plan.batch.new_couplings if id(cp) in lost}
            plan.outcome.records = [r for r in plan.outcome.records
                                    if r["action"] != "coupled" or (r["local_id"], r["integration_id"]) not in unmade]
        # why: stored now, the claimed couplings get their fingerprints at the commit like any coupled pair
        plan.batch.changed_couplings.extend(cp for cp in plan.batch.new_couplings if id(cp) not in lost)
        plan.batch.new_couplings = []
        plan.updates = [ch for ch in plan.updates if id(ch.coupling) not in lost]
        for sid, why in held.get(flow.src, {}).items():
            plan.outcome.counts["coupled"] -= 1
            plan.outcome.fail(plan.batch, flow.src, sid, why)

    def _send_page(self, flow: Flow, plan: PagePlan) -> SentPage:
        """A page's destination writes: only the tables are used, so that it may run on another thread (PagesInFlight)."""
        return SentPage(self._send_updates(flow, plan.updates), self._send_inserts(flow, plan.inserts, plan.prepared))

    def _finish_page(self, flow: Flow, plan: PagePlan, sent: SentPage | None) -> None:
        """What a page's writes did, and anything they lead to, in the store in one transaction."""
        if sent is None:
            return
        batch = plan.batch
        self._settle_updates(flow, plan.updates, sent.updates, batch, plan.positions, plan.restores)
        self._settle_inserts(flow, plan.inserts, sent.inserts, batch, plan.positions)
        self._apply_inserts(flow, plan.restores, batch, plan.positions)
        if not self.opts.dry_run:
            batch.counts = self.job_row()
            self.commit(batch)

    # -- writes ---------------------------------------------------------------------------------------
    def _send_updates(self, flow: Flow, updates: list[Change]) -> list[SideWrites]:
        """Write updates, the source side's write-backs first; a pair whose write-back failed is not written on."""
        sent: list[SideWrites] = []
        failed: set[int] = set()
        for side, attr in ((flow.src, "back"), (flow.dst, "values")):
            todo = [ch for ch in updates if getattr(ch, attr) and id(ch) not in failed]
            if not todo:
                continue
            ids = [_coupling(ch).side_id(side) for ch in todo]
            if self.opts.field_diff:
                self._note_changes(side, attr, todo, ids)  # why: on the job's thread: --diff sends one page at a time
            if self.opts.dry_run:
                # why: check mode plans a deleted destination the way the real run handles it
                found = {id_text(r[0]) for r in self.tables[side].read_by_ids(ids, [self.mapping.key(side)])}
                results = [WriteResult(True, record_id=i) if i in found else WriteResult(False, record_id=i, missing=True) for i in ids]
            else:
                results = self.tables[side].update([(i, getattr(ch, attr)) for i, ch in zip(ids, todo)])
            failed.update(id(ch) for ch, res in zip(todo, results) if not res.ok)
            sent.append(SideWrites(side, todo, results))
        return sent

    def _settle_updates(self, flow: Flow, updates: list[Change], sent: list[SideWrites], batch: BatchCommit, positions: dict[str, int],
                        restores: list[Change]) -> None:
        src, dst = flow.src, flow.dst
        failed: set[int] = set()
        for side, todo, results in sent:
            for ch, res in zip(todo, results):
                if res.ok:
                    continue
                failed.add(id(ch))
                if res.missing and side == dst:
                    restore = dst_deleted(self.values, self.result, self.handled, flow, ch, _coupling(ch), positions, batch)
                    if restore is not None:
                        restores.append(restore)
                else:
                    reason = res.error or "refused"
                    if res.missing:
                        reason = "%s record %s no longer exists" % (side, _coupling(ch).side_id(side))
                    self.result.fail(batch, src, ch.src_id, reason)
        for ch in updates:
            if id(ch) in failed:
                continue
            cp = _coupling(ch)
            self._set_fps(cp, flow, ch)
            cp.last_values = ch.last_values
            batch.changed_couplings.append(cp)
            batch.succeeded.append((src, ch.src_id))
            if ch.values or ch.back:
                self.result.counts["modified"] += 1
                self.result.log("modified", cp.local_id, cp.integration_id)
            else:
                self.result.counts["unchanged"] += 1  # both sides changed to the same values

    def _update_intents(self, flow: Flow, updates: list[Change]) -> PendingPage:
        """The fingerprints each pair will have once its update is written, and the sides it writes (_recover_updates)."""
        entries: list[tuple[str, str | None, dict[str, Any], dict[str, Any]]] = []
        for ch in updates:
            wrote = [side for side, attr in ((flow.src, "back"), (flow.dst, "values")) if getattr(ch, attr)]
            fps = dict(zip((flow.src, flow.dst), (ch.src_fp, self._written_fp(flow, ch))), update=wrote)
            entries.append((ch.src_id, _coupling(ch).side_id(flow.dst), {}, fps))
        return pending_page(self.mapping.name, flow.src, entries)

    def _written_fp(self, flow: Flow, ch: Change) -> str:
        """The destination's fingerprint once ``ch`` is written."""
        return ch.dst_fp if ch.dst_fp is not None else self.values.fingerprint(flow.dst, ch.values)

    def _set_fps(self, cp: Coupling, flow: Flow, ch: Change) -> None:
        dst_fp = self._written_fp(flow, ch)
        if flow.src == "local":
            cp.local_fp, cp.integration_fp, cp.local_modified_on = ch.src_fp, dst_fp, _as_datetime(ch.src_modified)
        else:
            cp.integration_fp, cp.local_fp, cp.integration_modified_on = ch.src_fp, dst_fp, _as_datetime(ch.src_modified)

    def _prepare_inserts(self, flow: Flow, inserts: list[Change]) -> None:
        """Choose the ids of records to create (where the client does) and their destination fingerprints."""
        table = self.tables[flow.dst]
        dst_key = self.mapping.key(flow.dst)
        for ch in inserts:
            if dst_key not in ch.values:
                new_id = table.new_id()
                if new_id is not None:
                    ch.values[dst_key] = new_id
            ch.dst_id = id_text(ch.values[dst_key]) if dst_key in ch.values else None
            if ch.dst_fp is None:
                ch.dst_fp = self.values.fingerprint(flow.dst, ch.values)

    def _intents(self, flow: Flow, inserts: list[Change]) -> PendingPage:
        return pending_page(self.mapping.name, flow.src, [(ch.src_id, ch.dst_id, ch.values, {"src": ch.src_fp, "dst": ch.dst_fp}) for ch in inserts])

    def _insert_intents(self, flow: Flow, inserts: list[Change], batch: BatchCommit) -> None:
        """Store what the creates will be before they are sent (_recover_pending).

        Encoded here rather than while planning: planning is the busier of the two processes with read-ahead.
        """
        if inserts:
            batch.cleared_pending.append(self.store.add_pending(self._intents(flow, inserts)))

    def _apply_inserts(self, flow: Flow, inserts: list[Change], batch: BatchCommit, positions: dict[str, int]) -> None:
        """Create records planned while writing (restores), here and now."""
        if not inserts:
            return
        self._prepare_inserts(flow, [ch for ch in inserts if ch.dst_fp is None])
        if not self.opts.dry_run:
            self._insert_intents(flow, inserts, batch)
        self._settle_inserts(flow, inserts, self._send_inserts(flow, inserts, None), batch, positions)

    def _send_inserts(self, flow: Flow, inserts: list[Change], prepared: Any) -> list[WriteResult] | None:
        """Create records; ``prepared``: their rows when made ready while planning (Table.prepare_insert)."""
        if not inserts or self.opts.dry_run:
            return None
        table = self.tables[flow.dst]
        if prepared is not None:
            # why: a table prepares only rows whose keys the client chose (Table.prepare_insert), so each has its id
            return table.insert_prepared(prepared, [ch.dst_id or "" for ch in inserts])
        return table.insert([ch.values for ch in inserts])

    def _settle_inserts(self, flow: Flow, inserts: list[Change], results: list[WriteResult] | None, batch: BatchCommit,
                        positions: dict[str, int]) -> None:
        if not inserts:
            return
        src, dst = flow.src, flow.dst
        table = self.tables[dst]
        if results is None:  # check mode
            foreseen = self.foreseen.setdefault(self.mapping.name, {"local": {}, "integration": {}})
            for ch in inserts:
                foreseen[src][ch.src_id] = ch.dst_id
                if ch.dst_id is not None:
                    foreseen[dst][ch.dst_id] = ch.src_id
                    if self.mapping.bidirectional:
                        self.handled[dst].add(ch.dst_id)
                self.result.counts["inserted"] += 1
                if self.opts.field_diff:
                    self.result.note_created(src, dst, ch.src_id, ch.dst_id, ch.values)
                self.result.log_pair("inserted", src, ch.src_id, ch.dst_id)
            return
        written = {}
        if self.mapping.bidirectional:
            # why: the new record's defaults and triggers are part of what the next run compares
            fields = self.mapping.read_fields(dst)
            new_ids = [res.record_id for res in results if res.ok and res.record_id is not None]
            written = {id_text(r[0]): r for r in table.read_by_ids(new_ids, fields)} if new_ids else {}
            dst_positions = {f: i for i, f in enumerate(fields)}
        for ch, res in zip(inserts, results):
            if not res.ok:
                self.result.fail(batch, src, ch.src_id, res.error or "refused")
                continue
            if ch.replaces is not None:
                batch.removed_couplings.append((ch.replaces.local_id, ch.replaces.integration_id))
            # why: an insert that succeeded reports the id of the record it created (Table.insert)
            new_id: str = res.record_id  # type: ignore[assignment]
            cp = Coupling.of_flow(self.mapping.name, src, ch.src_id, new_id)
            if new_id in written:
                dst_values = self.values.side_values(dst, written[new_id], dst_positions)
                ch.dst_fp = self.values.fingerprint(dst, dst_values)
                src_values = self.values.side_values(src, ch.row, positions)
                local, integration = (src_values, dst_values) if src == "local" else (dst_values, src_values)
                cp.last_values = self.values.last_values(local, integration)
            self._set_fps(cp, flow, ch)
            batch.new_couplings.append(cp)
            batch.succeeded.append((src, ch.src_id))
            if self.mapping.bidirectional:
                self.handled[dst].add(new_id)
            self.result.counts["inserted"] += 1
            if self.opts.field_diff:
                self.result.note_created(src, dst, ch.src_id, new_id, ch.values)
            self.result.log_pair("inserted", src, ch.src_id, new_id)

    # -- crash repair -------------------------------------------------------------------------------------
    def _recover_pending(self, flow: Flow) -> None:
        """Couple records a killed run created but had not coupled yet."""
        part = self.opts.partition
        # why: another partition's pages may be on the wire right now: each partition repairs only its own
        pending = [p for p in self.store.pending(self.mapping.name) if p.source_side == flow.src and (part is None or part.holds(p.source_id))]
        if not pending:
            return
        dst = flow.dst
        table = self.tables[dst]
        key = self.mapping.key(dst)
        columns = table.info.columns
        batch = BatchCommit()
        known = self.store.couplings_for(self.mapping.name, flow.src, [p.source_id for p in pending])
        taken: set[str] = set()
        batch.cleared_pending.extend({p.page for p in pending if p.page is not None})  # every stored intent has its page
        self._recover_updates(flow, [p for p in pending if "update" in p.fingerprints], known, batch)
        for p in pending:
            if p.source_id in known or "update" in p.fingerprints:
                continue
            if p.dest_id is not None:
                candidates = [id_text(r[0]) for r in table.read_by_ids([p.dest_id], [key])]
            else:
                values = {k: converter(columns[k].kind)(v) for k, v in p.dest_values.items() if k in columns}
                candidates = [id_text(r[0]) for r in table.find(values, [key])]
            coupled = self.store.couplings_for(self.mapping.name, dst, candidates) if candidates else {}
            free = [c for c in candidates if c not in coupled and c not in taken]
            if not free:
                continue  # never created: the source record is created normally in this run
            taken.add(free[0])
            cp = Coupling.of_flow(self.mapping.name, flow.src, p.source_id, free[0])
            if flow.src == "local":
                cp.local_fp, cp.integration_fp = p.fingerprints.get("src"), p.fingerprints.get("dst")
            else:
                cp.integration_fp, cp.local_fp = p.fingerprints.get("src"), p.fingerprints.get("dst")
            batch.new_couplings.append(cp)
            self.result.counts["coupled"] += 1
            self.result.log("coupled", cp.local_id, cp.integration_id)
        batch.counts = self.job_row()
        self.commit(batch)

    def _recover_updates(self, flow: Flow, intents: list[PendingCreate], known: dict[str, Coupling], batch: BatchCommit) -> None:
        """Keep the fingerprints of updates a killed run wrote but had not committed, where the records hold them.

        Both sides as intended: the update landed and nothing changed since, so both fingerprints are
        kept. Only the written destination as intended (the source changed since it was read): the
        destination's is kept, so that the next run sees the change on the source side alone instead of
        a conflict with the run's own write. Anything else is left as it was stored: it is planned again.
        """
        entries = [(p, known[p.source_id]) for p in intents if p.source_id in known and known[p.source_id].side_id(flow.dst) == p.dest_id]
        if not entries:
            return
        current: dict[str, dict[str, str]] = {}
        for side in ("local", "integration"):
            fields = self.mapping.read_fields(side)
            positions = {f: i for i, f in enumerate(fields)}
            rows = self.tables[side].read_by_ids([cp.side_id(side) for _p, cp in entries], fields)
            current[side] = {id_text(r[0]): self.values.fingerprint(side, self.values.side_values(side, r, positions)) for r in rows}
        for p, cp in entries:
            intent = p.fingerprints
            holds = {side for side in ("local", "integration") if current[side].get(cp.side_id(side)) == intent[side]}
            if len(holds) == 2:
                kept = holds
            elif intent["update"] == [flow.dst] and flow.dst in holds:
                kept = {flow.dst}
            else:
                continue
            for side in kept:
                setattr(cp, side + "_fp", intent[side])
            batch.changed_couplings.append(cp)

    # -- bookkeeping --------------------------------------------------------------------------------------------
    def commit(self, batch: BatchCommit) -> None:
        """Store what a batch of the job did (Store.commit_batch), in the job's row."""
        self.store.commit_batch(self.mapping.name, self.run_id or "", self.result.job_id or 0, batch, self.opts.skip_after_failures)

    def _note_changes(self, side: str, attr: str, todo: list[Change], ids: list[str]) -> None:
        """For --diff: the values each of the first reported updates changes on ``side``, as they are before and after."""
        room = self.result.diff_room()
        if room <= 0:
            return
        shown = todo[:room]
        names = list(dict.fromkeys(name for ch in shown for name in getattr(ch, attr)))
        fields = [self.mapping.key(side)] + [n for n in names if n != self.mapping.key(side)]
        now = {id_text(r[0]): dict(zip(fields, r)) for r in self.tables[side].read_by_ids(ids[:room], fields)}
        self.result.note_changes(side, [((_coupling(ch).local_id, _coupling(ch).integration_id), getattr(ch, attr), now.get(rid, {}))
                                        for ch, rid in zip(shown, ids)])


def _coupling(ch: Change) -> Coupling:
    """The coupling of a planned update (every update is of a coupled pair)."""
    if ch.coupling is None:
        raise AssertionError("an update is of a coupled pair")  # why: planning makes updates only of coupled records
    return ch.coupling


def _as_datetime(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    return None
