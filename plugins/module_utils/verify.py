# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only reconciliation of a mapping: do the coupled records still exist and agree?

A modified-records sync never sees a deleted record (nothing carries a newer
modified-on), nor a record whose edit kept its modified-on. Verify walks every coupling
and compares both records' mapped values as a sync would write them, then lists the
uncoupled records of each side. It writes nothing, so it can run as a scheduled drift
report. Couplings and records are read in pages: memory does not grow with the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import SIDES
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import RecordValues
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical, converter, id_text

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping

KINDS = ("differing", "missing_local", "missing_integration", "orphaned", "uncoupled_local", "uncoupled_integration")


@dataclass
class _Compare:
    """Destination fields one flow keeps equal to what a sync would write from its source."""

    flow: Flow
    fields: list[str]
    read_back: dict[str, Any]  # destination value as read -> its own kind (drivers return loose types)


@dataclass
class VerifyResult:
    mapping: str
    couplings: int = 0
    in_agreement: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in KINDS})
    items: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    truncated: bool = False

    @property
    def discrepancies(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, item: dict[str, Any], cap: int) -> None:
        self.counts[kind] += 1
        if len(self.items[kind]) < cap:
            self.items[kind].append(item)
        else:
            self.truncated = True

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mapping": self.mapping, "couplings": self.couplings, "in_agreement": self.in_agreement,
                               "discrepancies": self.discrepancies, "counts": dict(self.counts), "truncated": self.truncated}
        out.update({k: list(v) for k, v in self.items.items()})
        return out


def _compares(mapping: Mapping, flows: dict[tuple[str, str], Flow], tables: dict[str, Any]) -> list[_Compare]:
    """Each destination field once (a bidirectional pair in one flow only), keys of coupled records excepted."""
    out: list[_Compare] = []
    seen: set[int] = set()
    seen_dst: set[tuple[str, str]] = set()
    for (_src, dst), flow in flows.items():
        names = []
        for fm in flow.fields:
            name = fm.field_on(dst)
            if name is None:
                raise AssertionError("a flow's field has a destination field")  # why: FieldMapping.flows says so
            if name == mapping.key(dst) or id(fm) in seen or (dst, name) in seen_dst:
                continue  # why: a sync never renames a coupled record's key, so verify does not ask for it
            seen.add(id(fm))
            seen_dst.add((dst, name))
            names.append(name)
        columns = tables[dst].info.columns
        out.append(_Compare(flow, names, {n: converter(columns[n].kind) for n in names}))
    return out


def verify_mapping(mapping: Mapping, tables: dict[str, Any], flows: dict[tuple[str, str], Flow], store: Any,
                   batch_size: int = 1000, max_reported: int = 100) -> VerifyResult:
    """Compare every coupling's records and list uncoupled records; reads only."""
    result = VerifyResult(mapping.name)
    compares = _compares(mapping, flows, tables)
    # why: expected values come from what a sync job writes with, so verify agrees with what a sync writes
    writer = RecordValues(mapping, store, {})
    fields = {side: mapping.read_fields(side) for side in SIDES}
    positions = {side: {f: i for i, f in enumerate(fields[side])} for side in SIDES}
    couplings_pages: Any = store.iter_couplings(mapping.name, batch=batch_size) if store.exists else []
    for page in couplings_pages:
        result.couplings += len(page)
        found: dict[str, dict[str, tuple]] = {}
        for side in SIDES:
            ids = [cp.side_id(side) for cp in page]
            found[side] = {id_text(r[0]): tuple(r) for r in tables[side].read_by_ids(ids, fields[side])}
        for cp in page:
            pair = {"local_id": cp.local_id, "integration_id": cp.integration_id}
            local, remote = found["local"].get(cp.local_id), found["integration"].get(cp.integration_id)
            if local is None and remote is None:
                result.add("orphaned", pair, max_reported)
                continue
            if local is None or remote is None:
                result.add("missing_local" if local is None else "missing_integration", pair, max_reported)
                continue
            rows = {"local": local, "integration": remote}
            differences = []
            for cmp in compares:
                src, dst = cmp.flow.src, cmp.flow.dst
                try:
                    values = writer.values(cmp.flow, rows[src], positions[src], True)
                except ConversionError as exc:
                    differences.append({"field": None, "side": dst, "expected": None, "actual": None, "error": str(exc)})
                    continue
                for name in cmp.fields:
                    expected, actual = values.get(name), rows[dst][positions[dst][name]]
                    try:
                        same = canonical(expected) == canonical(cmp.read_back[name](actual))
                    except ConversionError:
                        same = False
                    if not same:
                        differences.append({"field": name, "side": dst, "expected": canonical(expected), "actual": canonical(actual)})
            if differences:
                result.add("differing", dict(pair, fields=differences), max_reported)
            else:
                result.in_agreement += 1
    for side in SIDES:
        _uncoupled(mapping, tables[side], side, store, batch_size, max_reported, result)
    return result


def _uncoupled(mapping: Mapping, table: Any, side: str, store: Any, batch_size: int, cap: int, result: VerifyResult) -> None:
    key = mapping.key(side)
    for page in table.scan([key], where=mapping.filters.get(side), page_size=batch_size):
        ids = [id_text(r[0]) for r in page]
        coupled = store.couplings_for(mapping.name, side, ids) if store.exists else {}
        for rid in ids:
            if rid not in coupled:
                result.add("uncoupled_" + side, {"id": rid}, cap)
