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
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Table
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.store import COUNTERS, BatchCommit, Coupling, PendingCreate, Store
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, converter, fingerprint, id_text, utcnow


@dataclass
class JobOptions:
    mode: str = "modified"  # full | modified
    create_uncoupled: bool = False
    dry_run: bool = False
    batch_size: int = 1000
    max_records: int = 100
    watermark_overlap: float = 60.0


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

    @property
    def changed(self) -> bool:
        return any(self.counts[c] for c in ("inserted", "modified", "deleted", "coupled"))

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
        }


@dataclass
class _Change:
    """A planned write of one record."""

    src_id: str
    src_fp: str
    values: dict[str, Any]
    src_modified: Any
    coupling: Coupling | None = None
    dst_id: str | None = None
    dst_fp: str | None = None


class MappingSync:
    """One job: synchronise the records of one mapping."""

    def __init__(self, mapping: Mapping, tables: dict[str, Table], flows: dict[tuple[str, str], Flow], store: Store,
                 run_id: str | None, options: JobOptions):
        self.mapping = mapping
        self.tables = tables
        self.flows = flows
        self.store = store
        self.run_id = run_id
        self.opts = options
        self.result = JobResult(mapping.name, mapping.direction, options.mode)
        # why: asked per record otherwise; the mapping does not change during a job
        self._side_fields = {side: mapping.side_fields(side) for side in ("local", "integration")}

    # -- the job ----------------------------------------------------------------------------------
    def run(self) -> JobResult:
        dry = self.opts.dry_run
        if not dry:
            self.result.job_id = self.store.start_job(self.run_id or "", self.mapping.name, self.opts.mode, self.mapping.direction)
        try:
            for flow in self.flows.values():
                if not dry:
                    self._recover_pending(flow)
                self._run_flow(flow)
            self.result.status = "partial" if self.result.counts["failed"] else "success"
        except Exception as exc:
            self.result.status = "failed"
            self.result.message = "%s: %s" % (type(exc).__name__, exc)
            raise
        finally:
            self.result.ended_at = utcnow()
            if not dry and self.result.job_id is not None:
                self.store.end_job(self.result.job_id, self.result.status, self.result.counts, self.result.message)
        return self.result

    def _run_flow(self, flow: Flow) -> None:
        src = flow.src
        table = self.tables[src]
        fields = self.mapping.read_fields(src)
        modified_field = self.mapping.modified_field(src)
        where = self.mapping.filters.get(src)
        retry = set(self.store.failed_ids(self.mapping.name, src)) if self.store.exists else set()
        read_started = utcnow()
        max_seen = None
        if retry:
            # why: records that failed last time are retried even when they did not change
            retried = [r for r in table.read_by_ids(sorted(retry), fields) if where is None or where.matches(dict(zip(fields, r)))]
            self._process_page(flow, fields, retried, retry)
        since = None
        if self.opts.mode == "modified" and modified_field:
            since = self.store.watermark(self.mapping.name, src) if self.store.exists else None
        mod_pos = fields.index(modified_field) if modified_field else None
        for page in table.scan(fields, where=where, modified_field=modified_field, modified_since=since, page_size=self.opts.batch_size):
            if mod_pos is not None:
                page_max = max((r[mod_pos] for r in page if r[mod_pos] is not None), default=None)
                if page_max is not None and (max_seen is None or page_max > max_seen):
                    max_seen = page_max
            if retry:
                page = [r for r in page if id_text(r[0]) not in retry]
            self._process_page(flow, fields, page, retry)
        if modified_field and max_seen is not None and not self.opts.dry_run:
            self._advance_watermark(src, max_seen, read_started, since)

    def _advance_watermark(self, side: str, max_seen: Any, read_started: datetime.datetime, previous: Any) -> None:
        """Keep the latest modified-on seen, but never closer to now than the safety overlap.

        Why: a transaction that stamped a record before our read but committed after it
        would be missed if the watermark jumped past its timestamp.
        """
        if not isinstance(max_seen, datetime.datetime):
            max_seen = datetime.datetime(max_seen.year, max_seen.month, max_seen.day)
        value = min(max_seen, read_started - datetime.timedelta(seconds=self.opts.watermark_overlap))
        if previous is not None and previous >= value:
            return
        self.store.set_watermark(self.mapping.name, side, value)

    # -- one page -------------------------------------------------------------------------------------
    def _process_page(self, flow: Flow, fields: Sequence[str], rows: Sequence[tuple], retry: set[str]) -> None:
        if not rows:
            return
        src = flow.src
        counts = self.result.counts
        counts["read"] += len(rows)
        mapping = self.mapping
        positions = {f: i for i, f in enumerate(fields)}
        fp_pos = [positions[f] for f in mapping.side_fields(src)]
        mod_field = mapping.modified_field(src)
        mod_pos = positions[mod_field] if mod_field else None
        ids = [id_text(r[0]) for r in rows]
        couplings = self.store.couplings_for(mapping.name, src, ids) if self.store.exists else {}
        create = self.opts.create_uncoupled or not mapping.synch_only_coupled_records
        plans = {False: self._value_plan(flow, positions, False), True: self._value_plan(flow, positions, True)}
        batch = BatchCommit()
        updates: list[_Change] = []
        inserts: list[_Change] = []
        for row, sid in zip(rows, ids):
            fp = fingerprint([row[i] for i in fp_pos])
            cp = couplings.get(sid)
            if cp is not None and (cp.local_fp if src == "local" else cp.integration_fp) == fp and sid not in retry:
                counts["unchanged"] += 1
                continue
            if cp is None and not create and sid not in retry:
                # why: a record whose create failed is retried even where scheduled runs create nothing
                counts["skipped"] += 1
                continue
            try:
                values = self._values(flow, row, plans[cp is not None])
            except ConversionError as exc:
                self._fail(batch, src, sid, str(exc))
                continue
            change = _Change(sid, fp, values, row[mod_pos] if mod_pos is not None else None, cp)
            (updates if cp is not None else inserts).append(change)
        self._apply_updates(flow, updates, batch)
        self._apply_inserts(flow, inserts, batch)
        if not self.opts.dry_run:
            batch.counts = dict(counts)
            self.store.commit_batch(mapping.name, self.run_id or "", self.result.job_id or 0, batch)

    def _value_plan(self, flow: Flow, positions: dict[str, int], for_update: bool) -> list[tuple[str, int | None, Any, Any]]:
        """Per destination field: its name, the source position (None for a constant), the constant, the converter."""
        plan = []
        dst_key = self.mapping.key(flow.dst)
        for fm, conv in zip(flow.fields, flow.converters):
            name = fm.field_on(flow.dst)
            if for_update and name == dst_key:
                continue  # why: a coupled record keeps its key; renaming it would orphan the coupling
            plan.append((name, None if fm.is_constant else positions[fm.field_on(flow.src)], fm.constant, conv))
        return plan

    @staticmethod
    def _values(flow: Flow, row: tuple, plan: list[tuple[str, int | None, Any, Any]]) -> dict[str, Any]:
        """Destination values of one record, converted to the destination's types."""
        values: dict[str, Any] = {}
        name = None
        try:
            for name, pos, constant, conv in plan:
                values[name] = conv(constant if pos is None else row[pos])
        except ConversionError as exc:
            raise ConversionError("%s field %s: %s" % (flow.dst, name, exc)) from None
        return values

    def _dst_fp(self, flow: Flow, values: dict[str, Any]) -> str:
        return fingerprint([values.get(f) for f in self._side_fields[flow.dst]])

    def _apply_updates(self, flow: Flow, updates: list[_Change], batch: BatchCommit) -> None:
        if not updates:
            return
        src, dst = flow.src, flow.dst
        if self.opts.dry_run:
            results = [None] * len(updates)
        else:
            results = self.tables[dst].update([(ch.coupling.side_id(dst), ch.values) for ch in updates])  # type: ignore[union-attr]
        for ch, res in zip(updates, results):
            cp = ch.coupling
            dst_id = cp.side_id(dst)  # type: ignore[union-attr]
            if res is not None and not res.ok:
                reason = res.error or "refused"
                if res.missing:
                    reason = "coupled %s record %s no longer exists" % (dst, dst_id)
                self._fail(batch, src, ch.src_id, reason)
                continue
            self._set_fps(cp, flow, ch)  # type: ignore[arg-type]
            batch.changed_couplings.append(cp)  # type: ignore[arg-type]
            batch.succeeded.append((src, ch.src_id))
            self.result.counts["modified"] += 1
            self._log("modified", cp.local_id, cp.integration_id)  # type: ignore[union-attr]

    def _set_fps(self, cp: Coupling, flow: Flow, ch: _Change) -> None:
        dst_fp = ch.dst_fp if ch.dst_fp is not None else self._dst_fp(flow, ch.values)
        if flow.src == "local":
            cp.local_fp, cp.integration_fp, cp.local_modified_on = ch.src_fp, dst_fp, _as_datetime(ch.src_modified)
        else:
            cp.integration_fp, cp.local_fp, cp.integration_modified_on = ch.src_fp, dst_fp, _as_datetime(ch.src_modified)

    def _apply_inserts(self, flow: Flow, inserts: list[_Change], batch: BatchCommit) -> None:
        if not inserts:
            return
        src, dst = flow.src, flow.dst
        table = self.tables[dst]
        dst_key = self.mapping.key(dst)
        for ch in inserts:
            if dst_key not in ch.values:
                new_id = table.new_id()
                if new_id is not None:
                    ch.values[dst_key] = new_id
            ch.dst_id = id_text(ch.values[dst_key]) if dst_key in ch.values else None
            ch.dst_fp = self._dst_fp(flow, ch.values)
        if self.opts.dry_run:
            for ch in inserts:
                self.result.counts["inserted"] += 1
                self._log_pair("inserted", flow, ch.src_id, ch.dst_id)
            return
        self.store.add_pending([
            PendingCreate(self.mapping.name, src, ch.src_id, ch.dst_id, ch.values, {"src": ch.src_fp, "dst": ch.dst_fp})
            for ch in inserts
        ])
        results = table.insert([ch.values for ch in inserts])
        for ch, res in zip(inserts, results):
            batch.cleared_pending.append((src, ch.src_id))
            if not res.ok:
                self._fail(batch, src, ch.src_id, res.error or "refused")
                continue
            cp = _new_coupling(self.mapping.name, src, ch.src_id, res.record_id)  # type: ignore[arg-type]
            self._set_fps(cp, flow, ch)
            batch.new_couplings.append(cp)
            batch.succeeded.append((src, ch.src_id))
            self.result.counts["inserted"] += 1
            self._log_pair("inserted", flow, ch.src_id, res.record_id)

    # -- crash repair -------------------------------------------------------------------------------------
    def _recover_pending(self, flow: Flow) -> None:
        """Couple records a killed run created but had not coupled yet."""
        pending = [p for p in self.store.pending(self.mapping.name) if p.source_side == flow.src]
        if not pending:
            return
        dst = flow.dst
        table = self.tables[dst]
        key = self.mapping.key(dst)
        columns = table.info.columns
        batch = BatchCommit()
        known = self.store.couplings_for(self.mapping.name, flow.src, [p.source_id for p in pending])
        taken: set[str] = set()
        for p in pending:
            batch.cleared_pending.append((p.source_side, p.source_id))
            if p.source_id in known:
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
            cp = _new_coupling(self.mapping.name, flow.src, p.source_id, free[0])
            if flow.src == "local":
                cp.local_fp, cp.integration_fp = p.fingerprints.get("src"), p.fingerprints.get("dst")
            else:
                cp.integration_fp, cp.local_fp = p.fingerprints.get("src"), p.fingerprints.get("dst")
            batch.new_couplings.append(cp)
            self.result.counts["coupled"] += 1
            self._log("coupled", cp.local_id, cp.integration_id)
        batch.counts = dict(self.result.counts)
        self.store.commit_batch(self.mapping.name, self.run_id or "", self.result.job_id or 0, batch)

    # -- bookkeeping --------------------------------------------------------------------------------------------
    def _fail(self, batch: BatchCommit, side: str, record_id: str, message: str) -> None:
        self.result.counts["failed"] += 1
        batch.failed.append((side, record_id, message))
        if len(self.result.errors) < self.opts.max_records:
            self.result.errors.append({"mapping": self.mapping.name, "side": side, "record_id": record_id, "message": message})

    def _log_pair(self, action: str, flow: Flow, src_id: str, dst_id: str | None) -> None:
        if flow.src == "local":
            self._log(action, src_id, dst_id)
        else:
            self._log(action, dst_id, src_id)

    def _log(self, action: str, local_id: str | None, integration_id: str | None) -> None:
        if len(self.result.records) >= self.opts.max_records:
            self.result.records_truncated = True
            return
        self.result.records.append({"mapping": self.mapping.name, "action": action, "local_id": local_id, "integration_id": integration_id})


def _new_coupling(mapping: str, src: str, src_id: str, dst_id: str) -> Coupling:
    if src == "local":
        return Coupling(mapping, local_id=src_id, integration_id=dst_id)
    return Coupling(mapping, local_id=dst_id, integration_id=src_id)


def _as_datetime(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    return None

