# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deletions: what a sync job does when one or both records of a coupling are gone.

Full syncs compare couplings with the records that still exist; change-tracking reads report
deletions; an update can find its destination record gone. The mapping's
deletion_conflict_resolution and propagate_deletions decide. Functions of a sync job
(job.SyncJob), kept apart from the per-page flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE
from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import stamp_or_none
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change
from ansible_collections.tablesync.integration.plugins.module_utils.store import BatchCommit, Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, id_text

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.job import SyncJob


def changes_deleted(job: SyncJob, side: str, ids: list[str]) -> None:
    """Coupled records the change-tracking read reports deleted are handled as a full sync's deletion check would."""
    couplings = job.store.couplings_for(job.mapping.name, side, ids)
    if not couplings:
        return  # uncoupled records: nothing was synchronised from them
    keep = OTHER_SIDE[side]
    batch = BatchCommit()
    for cp in couplings.values():
        if cp.side_id(keep) not in job.handled[keep]:
            source_deleted(job, cp, side, batch)
    if not job.opts.dry_run:
        batch.counts = job.job_row()
        job.commit(batch)


def dst_deleted(job: SyncJob, flow: Flow, ch: Change, positions: dict[str, int], batch: BatchCommit, restores: list[Change]) -> None:
    """The destination record of a changed, coupled source record is gone: a deletion conflict."""
    cp = ch.coupling
    policy = job.mapping.deletion_conflict_resolution
    dst_id = cp.side_id(flow.dst)  # type: ignore[union-attr]
    job.handled[flow.src].add(ch.src_id)  # why: a change-tracking read reporting the deletion later must not handle it twice
    if policy == "remove_coupling":
        uncouple(job, batch, cp, flow.src, ch.src_id)  # type: ignore[arg-type]
    elif policy == "restore_records":
        try:
            values = job._values(flow, ch.row, positions, False)  # type: ignore[arg-type]
        except (ConversionError, RecordError) as exc:
            job._fail(batch, flow.src, ch.src_id, str(exc))
            return
        restores.append(Change(ch.src_id, ch.src_fp, values, ch.src_modified, row=ch.row, replaces=cp))
    else:
        job._fail(batch, flow.src, ch.src_id, "coupled %s record %s no longer exists (deletion_conflict_resolution none)" % (flow.dst, dst_id))


def detect_deletions(job: SyncJob) -> None:
    """Full syncs compare couplings with the records that still exist on both sides."""
    mapping = job.mapping
    for page in job.store.iter_couplings(mapping.name, batch=job.opts.batch_size):
        if job.handled["local"] or job.handled["integration"]:
            # why: run after a flow (convergence.py), a coupling that flow handled is not handled twice
            page = [cp for cp in page if cp.local_id not in job.handled["local"] and cp.integration_id not in job.handled["integration"]]
        present = {}
        for side in ("local", "integration"):
            ids = [cp.side_id(side) for cp in page]
            present[side] = {id_text(r[0]) for r in job.tables[side].read_by_ids(ids, [mapping.key(side)])}
        gone = [(cp, [s for s in ("local", "integration") if cp.side_id(s) not in present[s]]) for cp in page]
        gone = [(cp, sides) for cp, sides in gone if sides]
        if not gone:
            continue
        batch = BatchCommit()
        for cp, sides in gone:
            if len(sides) == 2:
                uncouple(job, batch, cp, None, None)
            else:
                source_deleted(job, cp, sides[0], batch)
        if not job.opts.dry_run:
            batch.counts = job.job_row()
            job.commit(batch)


def source_deleted(job: SyncJob, cp: Coupling, gone: str, batch: BatchCommit) -> None:
    """One record of a coupling was deleted on side ``gone``; its partner still exists."""
    mapping = job.mapping
    keep = OTHER_SIDE[gone]
    keep_id, gone_id = cp.side_id(keep), cp.side_id(gone)
    job.handled[keep].add(keep_id)
    fields = mapping.read_fields(keep)
    rows = job.tables[keep].read_by_ids([keep_id], fields)
    if not rows:
        uncouple(job, batch, cp, None, None)  # both records are gone
        return
    row = rows[0]
    positions = {f: i for i, f in enumerate(fields)}
    try:
        keep_fp = job._fp_of(keep, job._side_values(keep, row, positions))
    except ConversionError as exc:  # why: a value with no canonical form (text that is not valid UTF-8) fails its record alone
        job._fail(batch, keep, keep_id, "mapping %s, %s record %s (its %s record %s was deleted): %s" % (mapping.name, keep, keep_id, gone, gone_id, exc))
        return
    unchanged = keep_fp == (cp.local_fp if keep == "local" else cp.integration_fp)
    if mapping.propagate_deletions and unchanged and (gone, keep) in job.flows:
        if not job.opts.dry_run:
            res = job.tables[keep].delete([keep_id])[0]
            if not res.ok and not res.missing:
                job._fail(batch, keep, keep_id, "deleting it after %s record %s was deleted: %s" % (gone, gone_id, res.error))
                return
        batch.removed_couplings.append((cp.local_id, cp.integration_id))
        batch.succeeded.append((keep, keep_id))
        job.result.counts["deleted"] += 1
        job._log("deleted", cp.local_id, cp.integration_id)
        return
    policy = mapping.deletion_conflict_resolution
    if policy == "remove_coupling":
        uncouple(job, batch, cp, keep, keep_id)
    elif policy == "restore_records":
        flow = mapping.restore_flows[(keep, gone)]
        try:
            values = job._values(flow, row, positions, False)
        except (ConversionError, RecordError) as exc:
            job._fail(batch, keep, keep_id, "restoring deleted %s record %s: %s" % (gone, gone_id, exc))
            return
        modified_field = mapping.modified_field(keep)
        stamp = stamp_or_none(row[positions[modified_field]], mapping.modified_format(keep)) if modified_field else None
        restore = Change(keep_id, keep_fp, values, stamp, row=row, replaces=cp)
        job._apply_inserts(flow, [restore], batch, positions)
    else:
        job._fail(batch, keep, keep_id, "coupled %s record %s was deleted (deletion_conflict_resolution none; set remove_coupling, "
                                        "restore_records or propagate_deletions)" % (gone, gone_id))


def uncouple(job: SyncJob, batch: BatchCommit, cp: Coupling, side: str | None, record_id: str | None) -> None:
    batch.removed_couplings.append((cp.local_id, cp.integration_id))
    if side is not None:
        batch.succeeded.append((side, record_id))  # type: ignore[arg-type]
    job.result.counts["uncoupled"] += 1
    job._log("uncoupled", cp.local_id, cp.integration_id)
