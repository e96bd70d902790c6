# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Convergence: a full sync of a one-way mapping repairs coupled destination records edited since they were written.

For each page of source records, the coupled destination records are read in one read
while the page is planned. A destination record whose fingerprint is still the one
stored when it was last written is left alone; one that differs is written again when
its values differ from what the source says they should be (drift); one that is gone
is the deletion it is (deletions.dst_deleted). Modified runs do not read the
destination: their cost follows the changes.

The read also tells which coupled destination records still exist, so such a full sync
checks every coupling for deletions only when the scan did not read the source record of
every coupling (a source record deleted, or filtered out, since it was coupled).
Functions of a sync job (synchronizer.MappingSync), kept apart from the per-page flow.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ansible_collections.tablesync.integration.plugins.module_utils.deletions import detect_deletions, dst_deleted
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change, PagePlan
from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical, converter, fingerprints, id_text

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow
    from ansible_collections.tablesync.integration.plugins.module_utils.synchronizer import MappingSync


@dataclass
class PageCheck:
    """What the convergence read of one page decided, by source record id."""

    settled: set[str] = field(default_factory=set)  # destination gone, handled as a deletion: planned no further
    rewrite: set[str] = field(default_factory=set)  # unchanged source, drifted destination: written again


def converges(job: MappingSync) -> bool:
    """Whether this job reads the coupled destination records of every page to repair drift.

    Bidirectional mappings already see a changed side as a change; a create-only job leaves
    coupled records alone; modified runs keep their cost to the changes.
    """
    return (job.opts.mode == "full" and job.store.exists and not job.mapping.bidirectional
            and not getattr(job.opts, "create_only", False))


def deletions_in_flow(job: MappingSync) -> bool:
    """Whether the job's flow finds its deleted records itself, instead of a deletion check of every coupling first.

    Only over a scan: a keyset scan reads each source record once, so the couplings its pages
    find are distinct and can be counted against the mapping's couplings.
    """
    return converges(job) and all(not job.tables[f.src].supports_change_tracking for f in job.flows.values())


@contextlib.contextmanager
def unread_couplings_checked(job: MappingSync) -> Iterator[None]:
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


def check_page(job: MappingSync, flow: Flow, plan: PagePlan, rows: Sequence[tuple], ids: Sequence[str], fps: Sequence[str],
               stamps: Sequence[Any], couplings: dict[str, Coupling], retry: set[str]) -> PageCheck:
    """Read the destination records coupled to a page's source records (reads only: this runs while planning).

    Deleted destinations are handled here, as deletions.dst_deleted does; destinations whose fingerprint is not
    the one last written are compared with what the source says: drifted ones are rewritten,
    and where only the form of the values read differs the stored fingerprint is renewed.
    """
    check = PageCheck()
    if not couplings:
        return check
    job.result.couplings_checked += len(couplings)  # why: the plan's own outcome while planning, added to the job's when applied
    src, dst = flow.src, flow.dst
    fields = list(dict.fromkeys([job.mapping.key(dst), *job.mapping.side_fields(dst)]))  # why: no modified-on to convert
    found = {id_text(r[0]): r for r in job.tables[dst].read_by_ids([cp.side_id(dst) for cp in couplings.values()], fields)}
    kept: list[tuple[tuple, str, Coupling, tuple]] = []  # unchanged source records and their destination rows
    for row, sid, fp, stamp in zip(rows, ids, fps, stamps):
        cp = couplings.get(sid)
        if cp is None:
            continue
        dst_row = found.get(cp.side_id(dst))
        if dst_row is None:
            change = Change(sid, fp, {}, stamp, cp, row=row)  # why: ``stamps``: the page's modified-on values, parsed (UTC)
            dst_deleted(job, flow, change, plan.positions, plan.batch, plan.restores)
            check.settled.add(sid)  # why: as after the deletion check, an uncoupled record is left to the next run
        elif (cp.local_fp if src == "local" else cp.integration_fp) == fp and sid not in retry:
            kept.append((row, sid, cp, dst_row))
    kept = _not_mirrored(job, flow, plan.positions, fields, kept)
    if kept:
        _compare_destinations(job, flow, plan, kept, fields, check)
    return check


def _not_mirrored(job: MappingSync, flow: Flow, positions: dict[str, int], fields: list[str],
                  kept: list[tuple[tuple, str, Coupling, tuple]]) -> list[tuple[tuple, str, Coupling, tuple]]:
    """Leave out the records whose destination holds their source's mapped values as they are, where both sides'
    stored fingerprints are one (a record created or written with the values passed through).

    Why: for those, equal values mean the destination's fingerprint is still the stored one, and a
    comparison of two tuples costs a fraction of taking a fingerprint (a third of a full re-run).
    """
    src_fields, dst_fields = job.mapping.side_fields(flow.src), job.mapping.side_fields(flow.dst)
    if len(src_fields) != len(dst_fields) or not kept:
        return kept
    src_values = _picker([positions[f] for f in src_fields])
    dst_values = _picker([fields.index(f) for f in dst_fields])
    return [entry for entry in kept
            if entry[2].local_fp != entry[2].integration_fp or src_values(entry[0]) != dst_values(entry[3])]


def _picker(positions: list[int]) -> Callable[[tuple], tuple]:
    """A function returning the values at ``positions`` of a row, as a tuple."""
    if len(positions) == 1:
        return lambda row: (row[positions[0]],)
    return operator.itemgetter(*positions)


def _compare_destinations(job: MappingSync, flow: Flow, plan: PagePlan, kept: list[tuple[tuple, str, Coupling, tuple]],
                          fields: list[str], check: PageCheck) -> None:
    """Of unchanged source records, those whose destination record is no longer as last written: rewrite or renew."""
    dst = flow.dst
    positions = {f: i for i, f in enumerate(fields)}
    side_fields = job.mapping.side_fields(dst)
    current = fingerprints([[entry[3][positions[f]] for entry in kept] for f in side_fields])
    stored = [(entry[2].integration_fp if dst == "integration" else entry[2].local_fp) for entry in kept]
    # why: a lookup's value follows the couplings of another mapping, which may have changed while the record did not
    looks_up = any(fm.lookup is not None for fm in flow.fields)
    changed = [(entry, fp, last) for entry, fp, last in zip(kept, current, stored) if fp != last or looks_up]
    if not changed:
        return
    src_rows = [entry[0] for entry, _fp, _last in changed]
    job._prefetch_lookups(flow, src_rows, plan.positions)
    wanted, _unconverted = job._page_values(flow, src_rows, plan.positions, True)
    columns = job.tables[dst].info.columns
    for ((_row, sid, cp, dst_row), fp, last), values in zip(changed, wanted):
        if isinstance(values, Exception) or not _agrees(values, dst_row, positions, columns):
            check.rewrite.add(sid)  # why: a record whose values cannot be converted fails in the update, with its message
            continue
        if fp == last:
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
