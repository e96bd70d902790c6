# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bidirectional decisions: what a changed, coupled record writes where when both sides may have changed.

Decided from the records' values (record_values.RecordValues); the sync job (job.py) writes what is decided.

Only fields mapped both ways can conflict. A one-way field inside a bidirectional mapping flows
its own way: its change on the side it does not flow from goes nowhere and does not make the pair
look changed there (Mapping.fingerprint_parts leaves it out of that side's fingerprint), and where
the two sides differ on it, the side it flows from is written over the other. Such mappings
fingerprint a side in two parts, the fields mapped both ways and those flowing from it only, so
that a change to the second alone is not taken for a change to the first.
"""

from __future__ import annotations

import json
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import PART_SEPARATOR, RecordValues, side_fingerprint
from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import Undecodable, canonical, fingerprint

_MISSING = object()


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


def _refuse_undecodable(mapping: Mapping, side: str, record_id: str, values: dict[str, Any]) -> None:
    """Fail the pair, naming the field, when the other side's record holds text that is not valid UTF-8."""
    for name, value in values.items():
        if value.__class__ is Undecodable:
            raise RecordError("mapping %s, %s record %s: %s field %s: %s" % (mapping.name, side, record_id, side, name, value.describe()))


def _stored_fp(cp: Coupling, side: str) -> str | None:
    return cp.local_fp if side == "local" else cp.integration_fp


def plan_coupled(values: RecordValues, flows: dict[tuple[str, str], Flow], flow: Flow, ch: Change, cp: Coupling,
                 positions: dict[str, int], partner: tuple) -> None:
    """Decide what a changed, coupled record (``ch``, coupled by ``cp``) writes where, into ``ch``: its values, its
    values written back, the fingerprints and last values after the writes; raises RecordError for a conflict left unresolved."""
    src, dst = flow.src, flow.dst
    mapping = values.mapping
    dst_fields = mapping.read_fields(dst)
    dst_positions = {f: i for i, f in enumerate(dst_fields)}
    src_now = values.side_values(src, ch.row, positions)
    dst_now = values.side_values(dst, partner, dst_positions)
    never_synced = cp.local_fp is None and cp.integration_fp is None
    _refuse_undecodable(mapping, dst, cp.side_id(dst), dst_now)
    # why: a newly coupled pair follows its initial direction (coupling.held skips the other side)
    if never_synced or changed_parts(mapping, dst, dst_now, _stored_fp(cp, dst)) == (False, False):
        forward = values.values(flow, _source_row(ch), positions, True)
        # why: a change to a field that does not flow this way writes nothing and counts as unchanged
        ch.values = {k: v for k, v in forward.items() if canonical(v) != canonical(dst_now.get(k))}
    else:
        ch.values, ch.back = resolve_conflict(values, flows[(dst, src)], flow, ch, cp, positions, partner, dst_positions, src_now, dst_now)
    src_after = dict(src_now, **{k: v for k, v in (ch.back or {}).items() if k in src_now})
    dst_after = dict(dst_now, **{k: v for k, v in ch.values.items() if k in dst_now})
    ch.src_fp, ch.dst_fp = values.fingerprint(src, src_after), values.fingerprint(dst, dst_after)
    local, integration = (src_after, dst_after) if src == "local" else (dst_after, src_after)
    ch.last_values = values.last_values(local, integration)


def _source_row(ch: Change) -> tuple:
    """The source row a change was planned from."""
    if ch.row is None:
        raise AssertionError("a coupled record is planned with its source row")  # why: _plan_records keeps it
    return ch.row


def resolve_conflict(values: RecordValues, reverse: Flow, flow: Flow, ch: Change, cp: Coupling, positions: dict[str, int], partner: tuple,
                     dst_positions: dict[str, int], src_now: dict[str, Any], dst_now: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both records changed since the last sync: field by field, what goes which way (``reverse``: the flow back)."""
    src, dst = flow.src, flow.dst
    mapping = values.mapping
    policy = mapping.update_conflict_resolution
    forward = values.values(flow, _source_row(ch), positions, True)
    backward = values.values(reverse, partner, dst_positions, True)
    last: dict[str, dict[str, Any]] = {}
    if policy == "merge" and cp.last_values:
        last = json.loads(cp.last_values)
    winner = {"local_wins": "local", "integration_wins": "integration"}.get(policy if policy != "merge" else mapping.merge_fallback)
    # why: without the values last synchronised, a side changed its fields mapped both ways or it did not, as a whole
    src_both = changed_parts(mapping, src, src_now, _stored_fp(cp, src))[0]
    dst_both = changed_parts(mapping, dst, dst_now, _stored_fp(cp, dst))[0]
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
        raise RecordError("conflict: local record %s and integration record %s both changed since the last synchronisation; "
                          "fields that differ: %s (update_conflict_resolution %s%s): nothing was overwritten"
                          % (cp.local_id, cp.integration_id, ", ".join(conflicts), policy,
                             ", merge_fallback none" if policy == "merge" else ""))
    return to_dst, to_src
