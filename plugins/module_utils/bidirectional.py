# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bidirectional decisions: what a changed, coupled record writes where when both sides may have changed.

Functions of a sync job (synchronizer.MappingSync), kept apart from the per-page flow.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import Change
from ansible_collections.tablesync.integration.plugins.module_utils.values import canonical

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.synchronizer import MappingSync

_MISSING = object()


def plan_coupled(job: MappingSync, flow: Flow, ch: Change, positions: dict[str, int], partner: tuple) -> None:
    """Decide what a changed, coupled record writes where; raises RecordError for a conflict left unresolved."""
    src, dst = flow.src, flow.dst
    mapping = job.mapping
    cp = ch.coupling
    dst_fields = mapping.read_fields(dst)
    dst_positions = {f: i for i, f in enumerate(dst_fields)}
    src_now = job._side_values(src, ch.row, positions)
    dst_now = job._side_values(dst, partner, dst_positions)
    never_synced = cp.local_fp is None and cp.integration_fp is None  # type: ignore[union-attr]
    # why: a newly coupled pair follows its initial direction (coupling.held skips the other side)
    if never_synced or job._fp_of(dst, dst_now) == (cp.local_fp if dst == "local" else cp.integration_fp):  # type: ignore[union-attr]
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


def resolve_conflict(job: MappingSync, flow: Flow, ch: Change, positions: dict[str, int], partner: tuple, dst_positions: dict[str, int],
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
        src_changed = canonical(src_now[fs]) != last.get(src, {}).get(fs, _MISSING)
        dst_changed = canonical(dst_now[fd]) != last.get(dst, {}).get(fd, _MISSING)
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
