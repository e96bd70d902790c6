# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bidirectional decisions: what a changed, coupled record writes where when both sides may have changed.

Functions of a sync job (job.SyncJob), kept apart from the per-page flow.

Only fields mapped both ways can conflict. A one-way field inside a bidirectional mapping flows
its own way: its change on the side it does not flow from goes nowhere and does not make the pair
look changed there (Mapping.fingerprint_parts leaves it out of that side's fingerprint), and where
the two sides differ on it, the side it flows from is written over the other. Such mappings
fingerprint a side in two parts, the fields mapped both ways and those flowing from it only, so
that a change to the second alone is not taken for a change to the first.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change
from ansible_collections.tablesync.integration.plugins.module_utils.values import Undecodable, canonical, fingerprint, fingerprints

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.job import SyncJob

_MISSING = object()
PART_SEPARATOR = "+"  # between the parts of a fingerprint made in parts (Mapping.fingerprint_parts)


def side_fingerprint(mapping: Mapping, side: str, values: dict[str, Any]) -> str:
    """Fingerprint of one record's values on one side (a dict by field name)."""
    parts = mapping.fingerprint_parts(side)
    if len(parts) == 1:
        return fingerprint([values.get(f) for f in parts[0]])
    return PART_SEPARATOR.join(fingerprint([values.get(f) for f in part]) for part in parts)


def side_fingerprints(mapping: Mapping, side: str, columns: Sequence[Sequence[Any]], positions: dict[str, int]) -> list[str]:
    """Fingerprints of a page's records on one side, given as columns (``positions``: of each field)."""
    parts = mapping.fingerprint_parts(side)
    if len(parts) == 1:
        return fingerprints([columns[positions[f]] for f in parts[0]])
    count = len(columns[0]) if columns else 0
    digests = [fingerprints([columns[positions[f]] for f in part]) if part else [fingerprint(())] * count for part in parts]
    return [PART_SEPARATOR.join(record) for record in zip(*digests)]


def changed_parts(mapping: Mapping, side: str, values: dict[str, Any], stored: str | None) -> tuple[bool, bool]:
    """Whether a side changed since ``stored`` (its fingerprint when last synchronised): in its fields mapped both ways,
    and in those flowing from it only. A fingerprint in one part says only whether anything changed: (changed, changed)."""
    now = side_fingerprint(mapping, side, values)
    if now == stored:
        return False, False
    if stored is None or PART_SEPARATOR not in now or PART_SEPARATOR not in stored:
        # why: a pair last synchronised before its one-way fields were fingerprinted apart is unchanged if it matches the old form
        legacy = PART_SEPARATOR in now and stored is not None and fingerprint([values.get(f) for f in mapping.side_fields(side)]) == stored
        return (False, False) if legacy else (True, True)
    now_both, now_out = now.split(PART_SEPARATOR)
    was_both, was_out = stored.split(PART_SEPARATOR)
    return now_both != was_both, now_out != was_out


def _refuse_undecodable(job: SyncJob, side: str, record_id: str, values: dict[str, Any]) -> None:
    """Fail the pair, naming the field, when the other side's record holds text that is not valid UTF-8."""
    for name, value in values.items():
        if value.__class__ is Undecodable:
            raise RecordError("mapping %s, %s record %s: %s field %s: %s" % (job.mapping.name, side, record_id, side, name, value.describe()))


def _stored_fp(ch: Change, side: str) -> str | None:
    return ch.coupling.local_fp if side == "local" else ch.coupling.integration_fp  # type: ignore[union-attr]


def plan_coupled(job: SyncJob, flow: Flow, ch: Change, positions: dict[str, int], partner: tuple) -> None:
    """Decide what a changed, coupled record writes where; raises RecordError for a conflict left unresolved."""
    src, dst = flow.src, flow.dst
    mapping = job.mapping
    cp = ch.coupling
    dst_fields = mapping.read_fields(dst)
    dst_positions = {f: i for i, f in enumerate(dst_fields)}
    src_now = job._side_values(src, ch.row, positions)
    dst_now = job._side_values(dst, partner, dst_positions)
    never_synced = cp.local_fp is None and cp.integration_fp is None  # type: ignore[union-attr]
    _refuse_undecodable(job, dst, cp.side_id(dst), dst_now)  # type: ignore[union-attr]
    # why: a newly coupled pair follows its initial direction (coupling.held skips the other side)
    if never_synced or changed_parts(mapping, dst, dst_now, _stored_fp(ch, dst)) == (False, False):
        values = job._values(flow, ch.row, positions, True)  # type: ignore[arg-type]
        # why: a change to a field that does not flow this way writes nothing and counts as unchanged
        ch.values = {k: v for k, v in values.items() if canonical(v) != canonical(dst_now.get(k))}
    else:
        ch.values, ch.back = resolve_conflict(job, flow, ch, positions, partner, dst_positions, src_now, dst_now)
    src_after = dict(src_now, **{k: v for k, v in (ch.back or {}).items() if k in src_now})
    dst_after = dict(dst_now, **{k: v for k, v in ch.values.items() if k in dst_now})
    ch.src_fp, ch.dst_fp = job._fp_of(src, src_after), job._fp_of(dst, dst_after)
    local, integration = (src_after, dst_after) if src == "local" else (dst_after, src_after)
    ch.last_values = job._last_values(local, integration)


def resolve_conflict(job: SyncJob, flow: Flow, ch: Change, positions: dict[str, int], partner: tuple, dst_positions: dict[str, int],
                     src_now: dict[str, Any], dst_now: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both records changed since the last sync: field by field, what goes which way."""
    src, dst = flow.src, flow.dst
    mapping = job.mapping
    policy = mapping.update_conflict_resolution
    reverse = job.flows[(dst, src)]
    forward = job._values(flow, ch.row, positions, True)  # type: ignore[arg-type]
    backward = job._values(reverse, partner, dst_positions, True)
    last: dict[str, dict[str, Any]] = {}
    if policy == "merge" and ch.coupling.last_values:  # type: ignore[union-attr]
        last = json.loads(ch.coupling.last_values)  # type: ignore[union-attr]
    winner = {"local_wins": "local", "integration_wins": "integration"}.get(policy if policy != "merge" else mapping.merge_fallback)
    # why: without the values last synchronised, a side changed its fields mapped both ways or it did not, as a whole
    src_both = changed_parts(mapping, src, src_now, _stored_fp(ch, src))[0]
    dst_both = changed_parts(mapping, dst, dst_now, _stored_fp(ch, dst))[0]
    to_dst: dict[str, Any] = {}
    to_src: dict[str, Any] = {}
    conflicts: list[str] = []
    for fm in mapping.fields:
        fs, fd = fm.field_on(src), fm.field_on(dst)
        if fm.is_constant or fs is None or fd is None:
            continue
        if (fd in forward and canonical(forward[fd]) == canonical(dst_now[fd])) or (
                fd not in forward and fs in backward and canonical(backward[fs]) == canonical(src_now[fs])):
            continue  # the two sides agree on this field
        if fm.direction != "bidirectional":  # a one-way field never conflicts: the side it flows from is written over the other
            if fd in forward:
                to_dst[fd] = forward[fd]
            elif fs in backward:
                to_src[fs] = backward[fs]
            continue
        if last:
            src_changed = canonical(src_now[fs]) != last.get(src, {}).get(fs, _MISSING)
            dst_changed = canonical(dst_now[fd]) != last.get(dst, {}).get(fd, _MISSING)
        else:
            src_changed, dst_changed = src_both, dst_both
        if src_changed and not dst_changed:
            if fd in forward:
                to_dst[fd] = forward[fd]
        elif dst_changed and not src_changed:
            if fs in backward:
                to_src[fs] = backward[fs]
        elif winner is None:
            conflicts.append(fm.describe())
        elif winner == src:
            if fd in forward:
                to_dst[fd] = forward[fd]
            elif fs in backward:
                to_src[fs] = backward[fs]
        else:
            if fs in backward:
                to_src[fs] = backward[fs]
            elif fd in forward:
                to_dst[fd] = forward[fd]
    if conflicts:
        cp = ch.coupling
        raise RecordError("conflict: local record %s and integration record %s both changed since the last synchronisation; "
                          "fields that differ: %s (update_conflict_resolution %s%s): nothing was overwritten"
                          % (cp.local_id, cp.integration_id, ", ".join(conflicts), policy,  # type: ignore[union-attr]
                             ", merge_fallback none" if policy == "merge" else ""))
    return to_dst, to_src
