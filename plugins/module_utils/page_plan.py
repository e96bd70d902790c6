# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A page's plan: what each record of a page of source records writes, decided before anything is written.

Plans are what the read-ahead process sends to the writing one, so they travel as plain
tuples (see _pack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.store import BatchCommit, Coupling


@dataclass
class Change:
    """A planned write of one record: ``values`` to its destination, ``back`` to its source."""

    src_id: str
    src_fp: str
    values: dict[str, Any]
    src_modified: Any
    coupling: Coupling | None = None
    dst_id: str | None = None
    back: dict[str, Any] | None = None  # why: a conflict resolved for the destination writes the source record
    dst_fp: str | None = None  # the destination's fingerprint after the write, when known from its full record
    last_values: str | None = None
    row: tuple | None = None
    replaces: Coupling | None = None  # a restored record replaces the coupling of the deleted one


def _pack(changes: list[Change], with_values: bool = True) -> Any:
    """Changes as plain tuples, their values' names once: what a read-ahead page is sent as.

    Why: loading a thousand dataclass instances with their value dicts took the writing
    process a sixth of its time; tuples load in a third of that. ``with_values`` False leaves
    the values behind (inserts travel as prepared rows). Changes that carry more than values
    and fingerprints (rare: conflicts, restores) are sent as they are.
    """
    if not changes:
        return changes
    names = tuple(changes[0].values)
    if any(ch.back is not None or ch.last_values is not None or ch.replaces is not None or tuple(ch.values) != names for ch in changes):
        return changes
    if not with_values:
        names = ()
    return (names, [tuple(ch.values.values()) if names else () for ch in changes],
            [(ch.src_id, ch.src_fp, ch.src_modified, ch.coupling, ch.dst_id, ch.dst_fp, ch.row) for ch in changes])


def _unpack(packed: Any) -> list[Change]:
    if isinstance(packed, list):
        return packed
    names, values, rest = packed
    return [Change(src_id, src_fp, dict(zip(names, v)), modified, coupling, dst_id, None, dst_fp, None, row)
            for v, (src_id, src_fp, modified, coupling, dst_id, dst_fp, row) in zip(values, rest)]


@dataclass
class PagePlan:
    """What a page of source records writes, decided before anything is written."""

    positions: dict[str, int]
    outcome: JobResult  # what planning counted (read, unchanged, skipped) and the records it failed
    batch: BatchCommit = field(default_factory=BatchCommit)
    updates: list[Change] = field(default_factory=list)
    inserts: list[Change] = field(default_factory=list)
    restores: list[Change] = field(default_factory=list)
    full: bool = False  # the page read was a whole batch: more may follow
    page_max: Any = None  # the latest modified-on among the records read
    deferred: list[tuple] = field(default_factory=list)  # records read again: planned once the page before is written
    prepared: Any = None  # the inserts made ready for the destination while planning (Table.prepare_insert)
    # coupled records whose source is unchanged, as (source id, destination id, destination fingerprint
    # last written): their destinations are read when the page is applied (convergence.converge_page)
    kept: list[tuple] = field(default_factory=list)

    def __getstate__(self) -> dict[str, Any]:
        # why: prepared inserts travel once, as the prepared rows; their value dicts are not needed to write them
        return dict(self.__dict__, updates=_pack(self.updates), inserts=_pack(self.inserts, with_values=self.prepared is None))

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, updates=_unpack(state["updates"]), inserts=_unpack(state["inserts"]))
