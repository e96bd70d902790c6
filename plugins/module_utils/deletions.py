# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deletions: what a sync job does when one or both records of a coupling are gone.

Full syncs compare couplings with the records that still exist; change-tracking reads report
deletions; an update can find its destination record gone. The mapping's
deletion_conflict_resolution and propagate_deletions decide. The sync job (job.py) finds the
deletions and writes what is decided here: a record to restore is returned to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE, Table, WriteResult
from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import stamp_or_none
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import RecordValues
from ansible_collections.tablesync.integration.plugins.module_utils.store import BatchCommit, Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, id_text

# by side, the records a job has handled: a record written (or failed) once is not handled again by the same job
Handled = dict[str, set[str]]


@dataclass
class Restore:
    """A deleted record to create again from its partner (deletion_conflict_resolution restore_records)."""

    flow: Flow
    change: Change
    positions: dict[str, int]


@dataclass(frozen=True)
class Propagate:
    """The partner of a deleted record to delete too (propagate_deletions): ``side`` record ``record_id``."""

    coupling: Coupling
    side: str
    record_id: str
    gone: str  # the side whose record was deleted


def dst_deleted(values: RecordValues, result: JobResult, handled: Handled, flow: Flow, ch: Change, cp: Coupling,
                positions: dict[str, int], batch: BatchCommit) -> Change | None:
    """The destination record of a changed, coupled source record (``ch``, coupled by ``cp``) is gone: a deletion
    conflict. Returns the record to restore, if the mapping restores it."""
    policy = values.mapping.deletion_conflict_resolution
    dst_id = cp.side_id(flow.dst)
    handled[flow.src].add(ch.src_id)  # why: a change-tracking read reporting the deletion later must not handle it twice
    if policy == "remove_coupling":
        uncouple(result, batch, cp, flow.src, ch.src_id)
    elif policy == "restore_records":
        if ch.row is None:
            raise AssertionError("a coupled record is planned with its source row")  # why: _plan_records keeps it
        try:
            restored = values.values(flow, ch.row, positions, False)
        except (ConversionError, RecordError) as exc:
            result.fail(batch, flow.src, ch.src_id, str(exc))
            return None
        return Change(ch.src_id, ch.src_fp, restored, ch.src_modified, row=ch.row, replaces=cp)
    else:
        result.fail(batch, flow.src, ch.src_id, "coupled %s record %s no longer exists (deletion_conflict_resolution none)" % (flow.dst, dst_id))
    return None


def missing_sides(values: RecordValues, tables: dict[str, Table], page: Sequence[Coupling]) -> list[tuple[Coupling, list[str]]]:
    """The couplings of ``page`` one or both of whose records no longer exist, with the sides they are gone from."""
    mapping = values.mapping
    present = {}
    for side in ("local", "integration"):
        ids = [cp.side_id(side) for cp in page]
        present[side] = {id_text(r[0]) for r in tables[side].read_by_ids(ids, [mapping.key(side)])}
    gone = [(cp, [s for s in ("local", "integration") if cp.side_id(s) not in present[s]]) for cp in page]
    return [(cp, sides) for cp, sides in gone if sides]


def source_deleted(values: RecordValues, tables: dict[str, Table], flows: dict[tuple[str, str], Flow], result: JobResult,
                   handled: Handled, cp: Coupling, gone: str, batch: BatchCommit) -> Restore | Propagate | None:
    """One record of a coupling was deleted on side ``gone``; its partner still exists (``tables`` are only read).

    Returns what the job writes: the partner to delete too (Propagate), or the record to create again (Restore).
    """
    mapping = values.mapping
    keep = OTHER_SIDE[gone]
    keep_id, gone_id = cp.side_id(keep), cp.side_id(gone)
    handled[keep].add(keep_id)
    fields = mapping.read_fields(keep)
    rows = tables[keep].read_by_ids([keep_id], fields)
    if not rows:
        uncouple(result, batch, cp, None, None)  # both records are gone
        return None
    row = rows[0]
    positions = {f: i for i, f in enumerate(fields)}
    try:
        keep_fp = values.fingerprint(keep, values.side_values(keep, row, positions))
    except ConversionError as exc:  # why: a value with no canonical form (text that is not valid UTF-8) fails its record alone
        result.fail(batch, keep, keep_id, "mapping %s, %s record %s (its %s record %s was deleted): %s" % (mapping.name, keep, keep_id, gone, gone_id, exc))
        return None
    unchanged = keep_fp == (cp.local_fp if keep == "local" else cp.integration_fp)
    if mapping.propagate_deletions and unchanged and (gone, keep) in flows:
        return Propagate(cp, keep, keep_id, gone)
    policy = mapping.deletion_conflict_resolution
    if policy == "remove_coupling":
        uncouple(result, batch, cp, keep, keep_id)
    elif policy == "restore_records":
        flow = mapping.restore_flows[(keep, gone)]
        try:
            restored = values.values(flow, row, positions, False)
        except (ConversionError, RecordError) as exc:
            result.fail(batch, keep, keep_id, "restoring deleted %s record %s: %s" % (gone, gone_id, exc))
            return None
        modified_field = mapping.modified_field(keep)
        stamp = stamp_or_none(row[positions[modified_field]], mapping.modified_format(keep)) if modified_field else None
        return Restore(flow, Change(keep_id, keep_fp, restored, stamp, row=row, replaces=cp), positions)
    else:
        result.fail(batch, keep, keep_id, "coupled %s record %s was deleted (deletion_conflict_resolution none; set remove_coupling, "
                                          "restore_records or propagate_deletions)" % (gone, gone_id))
    return None


def propagated(result: JobResult, batch: BatchCommit, decision: Propagate, outcome: WriteResult | None) -> None:
    """Count a propagated deletion, ``outcome`` the delete's result (None in check mode, which writes nothing)."""
    cp, keep, keep_id = decision.coupling, decision.side, decision.record_id
    if outcome is not None and not outcome.ok and not outcome.missing:
        result.fail(batch, keep, keep_id, "deleting it after %s record %s was deleted: %s" % (decision.gone, cp.side_id(decision.gone), outcome.error))
        return
    batch.removed_couplings.append((cp.local_id, cp.integration_id))
    batch.succeeded.append((keep, keep_id))
    result.counts["deleted"] += 1
    result.log("deleted", cp.local_id, cp.integration_id)


def uncouple(result: JobResult, batch: BatchCommit, cp: Coupling, side: str | None, record_id: str | None) -> None:
    """Remove a coupling with the batch; ``side`` and ``record_id``: the record still there, done with for this run."""
    batch.removed_couplings.append((cp.local_id, cp.integration_id))
    if side is not None and record_id is not None:
        batch.succeeded.append((side, record_id))
    result.counts["uncoupled"] += 1
    result.log("uncoupled", cp.local_id, cp.integration_id)
