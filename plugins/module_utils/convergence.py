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
every coupling (a source record deleted, or filtered out, since it was coupled); the sync
job (job.py) runs that check. A page's plan is amended here; the job writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.deletions import Handled, dst_deleted
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Table
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import ModifiedOnError, parse_column
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change, PagePlan
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import RecordValues
from ansible_collections.tablesync.integration.plugins.module_utils.source_checks import source_fingerprints
from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical, converter, fingerprints, id_text
from ansible_collections.tablesync.integration.plugins.module_utils.write_policy import WritePolicy


def converges(mapping: Mapping, mode: str, store_exists: bool, policy: WritePolicy) -> bool:
    """Whether a job reads the coupled destination records of every page to repair drift.

    Bidirectional mappings already see a changed side as a change; a create-only job leaves
    coupled records alone; modified runs keep their cost to the changes.
    """
    return mode == "full" and store_exists and not mapping.bidirectional and policy.updates


def deletions_in_flow(converging: bool, tables: dict[str, Table], flows: dict[tuple[str, str], Flow]) -> bool:
    """Whether a job's flow finds its deleted records itself, instead of a deletion check of every coupling first
    (``converging``: the job converges).

    Only over a scan: a keyset scan reads each source record once, so the couplings its pages
    find are distinct and can be counted against the mapping's couplings.
    """
    return converging and all(not tables[f.src].supports_change_tracking for f in flows.values())


def converge_page(values: RecordValues, tables: dict[str, Table], store: Any, result: JobResult, handled: Handled,
                  flow: Flow, plan: PagePlan) -> None:
    """Read the destination records coupled to a planned page's source records, in the writing process, and amend the plan.

    Deleted destinations are handled as deletions.dst_deleted does (a planned update of one is
    dropped). A destination of an unchanged source record (``plan.kept``) whose fingerprint is
    not the one last written is compared with what the source says: a drifted one is
    rewritten, and where only the form of the values read differs the stored fingerprint is
    renewed. Counts and failures go to ``result`` (the plan's outcome).

    Why here and not while planning: planning runs in the read-ahead process, which reading the
    source, the couplings and the fingerprints keeps busy, while this one waits for plans. Kept
    records travel as ids and fingerprints; the few whose destination is gone or differs are
    read again from the source here.
    """
    updates = [(ch, ch.coupling) for ch in plan.updates if ch.coupling is not None]
    if not updates and not plan.kept:
        return
    result.couplings_checked += len(updates) + len(plan.kept)
    mapping = values.mapping
    dst = flow.dst
    fields = list(dict.fromkeys([mapping.key(dst), *mapping.side_fields(dst)]))  # why: no modified-on to convert
    ids = [cp.side_id(dst) for _ch, cp in updates] + [dst_id for _sid, dst_id, _fp in plan.kept]
    found = {id_text(r[0]): r for r in tables[dst].read_by_ids(ids, fields)}
    gone = [(ch, cp) for ch, cp in updates if cp.side_id(dst) not in found]
    if gone:
        dropped = {id(ch) for ch, _cp in gone}
        plan.updates = [ch for ch in plan.updates if id(ch) not in dropped]
        for change, cp in gone:
            _restore(plan, dst_deleted(values, result, handled, flow, change, cp, plan.positions, plan.batch))
    present = [(sid, found[dst_id]) for sid, dst_id, _fp in plan.kept if dst_id in found]
    at = [fields.index(f) for f in mapping.side_fields(dst)]
    current = dict(zip([sid for sid, _row in present], fingerprints([[row[i] for _sid, row in present] for i in at]))) if present else {}
    # why: a lookup's value follows the couplings of another mapping, which may have changed while the record did not
    looks_up = any(fm.lookup is not None for fm in flow.fields)
    suspect = [sid for sid, _dst_id, stored in plan.kept if current.get(sid) != stored or looks_up]
    if suspect:
        _settle(values, tables, store, result, handled, flow, plan, suspect,
                {sid: found.get(dst_id) for sid, dst_id, _fp in plan.kept}, current, fields)


def _restore(plan: PagePlan, restore: Change | None) -> None:
    if restore is not None:
        plan.restores.append(restore)


def _settle(values: RecordValues, tables: dict[str, Table], store: Any, result: JobResult, handled: Handled, flow: Flow,
            plan: PagePlan, suspect: list[str], dst_rows: dict[str, tuple | None], current: dict[str, str], fields: list[str]) -> None:
    """The kept records whose destination is gone or no longer as last written, read again from the source:
    a deletion, a rewrite, or a renewed fingerprint."""
    counts = result.counts
    again = reread_source(values.mapping, tables[flow.src], store, flow, list(plan.positions), suspect)  # why: only ids and fingerprints came with the plan
    wanted_rows = []
    for sid in suspect:
        entry = again.get(sid)
        if entry is None:
            continue  # why: changed or gone from the source since it was planned: the next run sees it as it is then
        row, fp, stamp, cp = entry
        dst_row = dst_rows[sid]
        if dst_row is None:
            counts["unchanged"] -= 1
            _restore(plan, dst_deleted(values, result, handled, flow, Change(sid, fp, {}, stamp, cp, row=row), cp, plan.positions, plan.batch))
        else:
            wanted_rows.append((row, sid, fp, stamp, cp, dst_row))
    if not wanted_rows:
        return
    values.prefetch_lookups(flow, [entry[0] for entry in wanted_rows], plan.positions)
    wanted, _unconverted = values.page_values(flow, [entry[0] for entry in wanted_rows], plan.positions, True)
    dst = flow.dst
    positions = {f: i for i, f in enumerate(fields)}
    columns = tables[dst].info.columns
    for (row, sid, src_fp, stamp, cp, dst_row), record in zip(wanted_rows, wanted):
        if isinstance(record, Exception):
            counts["unchanged"] -= 1
            result.fail(plan.batch, flow.src, sid, str(record))
            continue
        if not _agrees(record, dst_row, positions, columns):
            counts["unchanged"] -= 1  # why: drifted: written again, and counted as the update it is
            plan.updates.append(Change(sid, src_fp, record, stamp, cp, row=row))
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


def reread_source(mapping: Mapping, table: Table, store: Any, flow: Flow, fields: Sequence[str],
                  ids: list[str]) -> dict[str, tuple[tuple, str, Any, Coupling]]:
    """Source records planned unchanged, read again where the writing process needs them whole:
    by id, (row, fingerprint, modified-on, coupling) of those still as planned (same fingerprint, still coupled)."""
    src = flow.src
    where = mapping.filters.get(src)
    fields = list(fields)
    rows = [r for r in table.read_by_ids(ids, fields) if where is None or where.matches(dict(zip(fields, r)))]
    if not rows:
        return {}
    positions = {f: i for i, f in enumerate(fields)}
    columns = list(zip(*rows))
    fps, _unreadable = source_fingerprints(mapping, src, columns, positions)
    mod_field = mapping.modified_field(src)
    stamps = parse_column(columns[positions[mod_field]], mapping.modified_format(src)) if mod_field else [None] * len(rows)
    couplings = store.couplings_for(mapping.name, src, [id_text(r[0]) for r in rows])
    out = {}
    for row, fp, stamp in zip(rows, fps, stamps):
        sid = id_text(row[0])
        cp = couplings.get(sid)
        if cp is not None and fp == (cp.local_fp if src == "local" else cp.integration_fp) and not isinstance(stamp, ModifiedOnError):
            out[sid] = (row, fp, stamp, cp)
    return out


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
