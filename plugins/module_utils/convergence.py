# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Convergence: a full sync of a one-way mapping repairs coupled destination records edited since they were written.

For each page of source records, the coupled destination records are read in one read
before the page is written. A destination record whose fingerprint is still the one
stored when it was last written is left alone; one that differs is written again when
its values differ from what the source says they should be (drift); one that is gone
is the deletion it is (deletions.dst_deleted). Modified runs do not read the
destination: their cost follows the changes.

The read also tells which coupled destination records still exist, so such a full sync
checks every coupling for deletions only when the scan did not read the source record of
every coupling (a source record deleted, or filtered out, since it was coupled).
Functions of a sync job (job.SyncJob), kept apart from the per-page flow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ansible_collections.tablesync.integration.plugins.module_utils.deletions import detect_deletions, dst_deleted
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change, PagePlan
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical, converter, fingerprints, id_text

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.job import SyncJob
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow


def converges(job: SyncJob) -> bool:
    """Whether this job reads the coupled destination records of every page to repair drift.

    Bidirectional mappings already see a changed side as a change; a create-only job leaves
    coupled records alone; modified runs keep their cost to the changes.
    """
    return (job.opts.mode == "full" and job.store.exists and not job.mapping.bidirectional
            and not getattr(job.opts, "create_only", False))


def deletions_in_flow(job: SyncJob) -> bool:
    """Whether the job's flow finds its deleted records itself, instead of a deletion check of every coupling first.

    Only over a scan: a keyset scan reads each source record once, so the couplings its pages
    find are distinct and can be counted against the mapping's couplings.
    """
    return converges(job) and all(not job.tables[f.src].supports_change_tracking for f in job.flows.values())


@contextlib.contextmanager
def unread_couplings_checked(job: SyncJob) -> Iterator[None]:
    """Around a flow whose pages check their coupled destination records: when the flow found fewer
    couplings than the mapping has (their source record was deleted or filtered out), every coupling
    gets the deletion check afterwards (couplings the flow already handled are left to it)."""
    if not deletions_in_flow(job):
        yield
        return
    before = job.store.count_couplings(job.mapping.name)
    checked = job.result.couplings_checked
    yield
    if job.result.couplings_checked - checked != before:
        detect_deletions(job)


def converge_page(job: SyncJob, flow: Flow, plan: PagePlan) -> None:
    """Read the destination records coupled to a planned page's source records, in the writing process, and amend the plan.

    Deleted destinations are handled as deletions.dst_deleted does (a planned update of one is
    dropped). A destination of an unchanged source record (``plan.kept``) whose fingerprint is
    not the one last written is compared with what the source says: a drifted one is
    rewritten, and where only the form of the values read differs the stored fingerprint is
    renewed. Runs with ``job.result`` counting into the plan's outcome.

    Why here and not while planning: planning runs in the read-ahead process, which reading the
    source, the couplings and the fingerprints keeps busy, while this one waits for plans. Kept
    records travel as ids and fingerprints; the few whose destination is gone or differs are
    read again from the source here.
    """
    updates = [ch for ch in plan.updates if ch.coupling is not None]
    if not updates and not plan.kept:
        return
    job.result.couplings_checked += len(updates) + len(plan.kept)
    dst = flow.dst
    fields = list(dict.fromkeys([job.mapping.key(dst), *job.mapping.side_fields(dst)]))  # why: no modified-on to convert
    ids = [ch.coupling.side_id(dst) for ch in updates] + [dst_id for _sid, dst_id, _fp in plan.kept]  # type: ignore[union-attr]
    found = {id_text(r[0]): r for r in job.tables[dst].read_by_ids(ids, fields)}
    gone = [ch for ch in updates if ch.coupling.side_id(dst) not in found]  # type: ignore[union-attr]
    if gone:
        dropped = {id(ch) for ch in gone}
        plan.updates = [ch for ch in plan.updates if id(ch) not in dropped]
        for change in gone:
            dst_deleted(job, flow, change, plan.positions, plan.batch, plan.restores)
    present = [(sid, found[dst_id]) for sid, dst_id, _fp in plan.kept if dst_id in found]
    at = [fields.index(f) for f in job.mapping.side_fields(dst)]
    current = dict(zip([sid for sid, _row in present], fingerprints([[row[i] for _sid, row in present] for i in at]))) if present else {}
    # why: a lookup's value follows the couplings of another mapping, which may have changed while the record did not
    looks_up = any(fm.lookup is not None for fm in flow.fields)
    suspect = [sid for sid, _dst_id, stored in plan.kept if current.get(sid) != stored or looks_up]
    if suspect:
        _settle(job, flow, plan, suspect, {sid: found.get(dst_id) for sid, dst_id, _fp in plan.kept}, current, fields)


def _settle(job: SyncJob, flow: Flow, plan: PagePlan, suspect: list[str], dst_rows: dict[str, tuple | None],
            current: dict[str, str], fields: list[str]) -> None:
    """The kept records whose destination is gone or no longer as last written, read again from the source:
    a deletion, a rewrite, or a renewed fingerprint."""
    counts = job.result.counts
    again = job.reread_source(flow, list(plan.positions), suspect)  # why: only ids and fingerprints came with the plan
    wanted_rows = []
    for sid in suspect:
        entry = again.get(sid)
        if entry is None:
            continue  # why: changed or gone from the source since it was planned: the next run sees it as it is then
        row, fp, stamp, cp = entry
        if dst_rows[sid] is None:
            counts["unchanged"] -= 1
            dst_deleted(job, flow, Change(sid, fp, {}, stamp, cp, row=row), plan.positions, plan.batch, plan.restores)
        else:
            wanted_rows.append((row, sid, fp, stamp, cp))
    if not wanted_rows:
        return
    job._prefetch_lookups(flow, [entry[0] for entry in wanted_rows], plan.positions)
    wanted, _unconverted = job._page_values(flow, [entry[0] for entry in wanted_rows], plan.positions, True)
    dst = flow.dst
    positions = {f: i for i, f in enumerate(fields)}
    columns = job.tables[dst].info.columns
    for (row, sid, src_fp, stamp, cp), values in zip(wanted_rows, wanted):
        if isinstance(values, Exception):
            counts["unchanged"] -= 1
            job._fail(plan.batch, flow.src, sid, str(values))
            continue
        if not _agrees(values, dst_rows[sid], positions, columns):  # type: ignore[arg-type]
            counts["unchanged"] -= 1  # why: drifted: written again, and counted as the update it is
            plan.updates.append(Change(sid, src_fp, values, stamp, cp, row=row))
            continue
        fp = current[sid]
        if fp == (cp.integration_fp if dst == "integration" else cp.local_fp):
            continue
        # why: equal values read back in another form (a trigger's or the driver's): keep them, know them next time
        if dst == "integration":
            cp.integration_fp = fp
        else:
            cp.local_fp = fp
        plan.batch.changed_couplings.append(cp)


def _agrees(values: dict[str, Any], dst_row: tuple, positions: dict[str, int], columns: dict[str, Any]) -> bool:
    """Whether a destination record holds ``values`` (as verify compares them: read back in the field's own kind)."""
    for name, expected in values.items():
        actual = dst_row[positions[name]]
        try:
            if canonical(expected) != canonical(converter(columns[name].kind)(actual)):
                return False
        except ConversionError:
            return False
    return True
