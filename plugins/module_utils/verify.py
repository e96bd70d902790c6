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

from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical, converter, id_text

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping

SIDES = ("local", "integration")
KINDS = ("differing", "missing_local", "missing_integration", "orphaned", "uncoupled_local", "uncoupled_integration")


@dataclass
class _Check:
    """One value to compare: ``dst_field`` should hold ``src_field`` (or the constant) converted."""

    src: str
    dst: str
    src_field: str | None
    dst_field: str
    convert: Any  # source value -> destination kind, as a sync writes it
    read_back: Any  # destination value as read -> its own kind (drivers return loose types)
    constant: Any = None
    is_constant: bool = False


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


def _checks(mapping: Mapping, flows: dict[tuple[str, str], Flow], tables: dict[str, Any]) -> list[_Check]:
    """The values a sync keeps equal: each destination field once, keys of coupled records excepted."""
    checks: list[_Check] = []
    seen: set[tuple[str, str]] = set()
    for (src, dst), flow in flows.items():
        for fm, conv in zip(flow.fields, flow.converters):
            dst_field = fm.field_on(dst)
            if dst_field == mapping.key(dst) or (dst, dst_field) in seen:
                continue  # why: a sync never renames a coupled record's key, so verify does not ask for it
            if not fm.is_constant and (src, fm.field_on(src)) in seen:
                continue  # bidirectional field pair: compared once
            seen.add((dst, dst_field))  # type: ignore[arg-type]
            if not fm.is_constant:
                seen.add((src, fm.field_on(src)))  # type: ignore[arg-type]
            read_back = converter(tables[dst].info.columns[dst_field].kind)
            checks.append(_Check(src, dst, None if fm.is_constant else fm.field_on(src), dst_field, conv, read_back,  # type: ignore[arg-type]
                                 fm.constant if fm.is_constant else None, fm.is_constant))
    return checks


def _same(check: _Check, rows: dict[str, dict[str, Any]]) -> tuple[bool, Any, Any]:
    """Whether the destination value equals what a sync would write there; (equal, expected, actual)."""
    actual = rows[check.dst][check.dst_field]
    raw = check.constant if check.is_constant else rows[check.src][check.src_field]
    try:
        expected = check.convert(raw)
    except ConversionError:
        return False, raw, actual
    try:
        actual_value = check.read_back(actual)
    except ConversionError:
        actual_value = actual
    return canonical(expected) == canonical(actual_value), expected, actual


def verify_mapping(mapping: Mapping, tables: dict[str, Any], flows: dict[tuple[str, str], Flow], store: Any,
                   batch_size: int = 1000, max_reported: int = 100) -> VerifyResult:
    """Compare every coupling's records and list uncoupled records; reads only."""
    result = VerifyResult(mapping.name)
    checks = _checks(mapping, flows, tables)
    fields = {side: mapping.read_fields(side) for side in SIDES}
    if not store.exists:
        couplings_pages: Any = []
    else:
        couplings_pages = store.iter_couplings(mapping.name, batch=batch_size)
    for page in couplings_pages:
        result.couplings += len(page)
        found: dict[str, dict[str, dict[str, Any]]] = {}
        for side in SIDES:
            ids = [cp.side_id(side) for cp in page]
            found[side] = {id_text(r[0]): dict(zip(fields[side], r)) for r in tables[side].read_by_ids(ids, fields[side])}
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
            for check in checks:
                equal, expected, actual = _same(check, rows)
                if not equal:
                    differences.append({"field": check.dst_field, "side": check.dst, "expected": _show(expected), "actual": _show(actual)})
            if differences:
                result.add("differing", dict(pair, fields=differences), max_reported)
            else:
                result.in_agreement += 1
    for side in SIDES:
        _uncoupled(mapping, tables[side], side, store, batch_size, max_reported, result)
    return result


def _show(value: Any) -> Any:
    """A JSON-friendly form of a value for the report."""
    return canonical(value)


def _uncoupled(mapping: Mapping, table: Any, side: str, store: Any, batch_size: int, cap: int, result: VerifyResult) -> None:
    key = mapping.key(side)
    for page in table.scan([key], where=mapping.filters.get(side), page_size=batch_size):
        ids = [id_text(r[0]) for r in page]
        coupled = store.couplings_for(mapping.name, side, ids) if store.exists else {}
        for rid in ids:
            if rid not in coupled:
                result.add("uncoupled_" + side, {"id": rid}, cap)
