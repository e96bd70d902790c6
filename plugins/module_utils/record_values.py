# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record values: what a source record becomes on its destination, and the fingerprints of a side's values.

A flow's field plan (which fields only need their type conversion, which go through a value
map, a lookup, a transform or are constants) is made once per flow and reused for every
record. Lookups translate a reference through the couplings of another mapping, one store
query per lookup field and page (prefetch), or, in check mode, through the couplings the
run would make (``foreseen``).

Bidirectional mappings with one-way fields fingerprint a side in two parts, the fields mapped
both ways and those flowing from it only (Mapping.fingerprint_parts), joined by PART_SEPARATOR.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.values import (
    ConversionError,
    canonical,
    convert_column,
    fingerprint,
    fingerprints,
    id_text,
)

PART_SEPARATOR = "+"  # between the parts of a fingerprint made in parts (Mapping.fingerprint_parts)

# check mode: the couplings the run would make, {mapping: {side: {id: other id}}} (JobOptions.foreseen)
Foreseen = dict[str, dict[str, dict[str, "str | None"]]]
# a flow's field plan: (fields that only need their type conversion, the others); see RecordValues.field_plan
FieldPlan = tuple[list[tuple], list[tuple]]


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


def checked(values: dict[str, Any] | ConversionError | RecordError) -> dict[str, Any]:
    """Values of RecordValues.page_values, or the error it put in their place raised."""
    if isinstance(values, Exception):
        raise values
    return values


class RecordValues:
    """The destination values of a mapping's records, their lookups, and the fingerprints and last values of a side.

    ``store``: where lookups find the couplings of other mappings (it may be replaced, e.g. by check
    mode's matching, before the job runs); ``foreseen``: check mode's couplings the run would make.
    """

    def __init__(self, mapping: Mapping, store: Any, foreseen: Foreseen) -> None:
        self.mapping = mapping
        self.store = store
        self.foreseen = foreseen
        self._lookups: dict[tuple[str, str, str], str | None] = {}
        self._field_plans: dict[tuple, FieldPlan] = {}  # why: the field plan of a flow is the same for every record

    # -- values ---------------------------------------------------------------------------------------------
    def field_plan(self, flow: Flow, positions: dict[str, int], for_update: bool) -> FieldPlan:
        """The field plan of a flow: fields that only need their type conversion, as (name, source position,
        converter), and the others, as (name, source position or None for a constant, field mapping, source field,
        converter, transform)."""
        key = (id(flow), for_update, tuple(positions))
        plan = self._field_plans.get(key)
        if plan is None:
            simple: list[tuple] = []
            other: list[tuple] = []
            dst_key = self.mapping.key(flow.dst)
            for fm, conv, transform in zip(flow.fields, flow.converters, flow.transforms):
                name = fm.field_on(flow.dst)
                if for_update and name == dst_key:
                    continue  # why: a coupled record keeps its key; renaming it would orphan the coupling
                src_field = None if fm.is_constant else fm.field_on(flow.src)
                if src_field is not None and fm.value_map is None and fm.lookup is None and transform is None:
                    simple.append((name, positions[src_field], conv))
                else:
                    other.append((name, None if src_field is None else positions[src_field], fm, src_field, conv, transform))
            plan = self._field_plans[key] = (simple, other)
        return plan

    def mirrored(self, flow: Flow, positions: dict[str, int]) -> bool:
        """Whether the destination values of a created record, unconverted, are its source's fingerprinted values in order."""
        simple, other = self.field_plan(flow, positions, False)
        mapping = self.mapping
        return (not other and not mapping.has_one_way_fields and [e[0] for e in simple] == mapping.side_fields(flow.dst)
                and [fm.field_on(flow.src) for fm in flow.fields] == mapping.side_fields(flow.src))

    def values(self, flow: Flow, row: tuple, positions: dict[str, int], for_update: bool) -> dict[str, Any]:
        """Destination values of one record (see page_values); raises its ConversionError or RecordError."""
        return checked(self.page_values(flow, [row], positions, for_update)[0][0])

    def page_values(self, flow: Flow, rows: Sequence[tuple], positions: dict[str, int],
                    for_update: bool) -> tuple[list[dict[str, Any] | ConversionError | RecordError], bool]:
        """Destination values of a page of records: value map or lookup, transforms, then type conversion;
        and whether every value is its source value, unconverted.

        A record that cannot be converted gets its error, naming the field, in place of its values.
        Fields that only need their type conversion are converted a column at a time (convert_column).
        """
        simple, other = self.field_plan(flow, positions, for_update)
        if not rows:
            return [], False
        columns = list(zip(*rows))
        failed: dict[int, ConversionError | RecordError] = {}
        converted = []
        unconverted = not other
        for name, pos, conv in simple:
            column, refused = convert_column(conv, columns[pos])
            unconverted = unconverted and column is columns[pos]
            for index, exc in refused.items():
                failed.setdefault(index, ConversionError("%s field %s: %s" % (flow.dst, name, exc)))
            converted.append(column)
        names = [entry[0] for entry in simple]
        out = [dict(zip(names, values)) for values in zip(*converted)] if converted else [{} for _row in rows]
        if other:
            for index, (row, values) in enumerate(zip(rows, out)):
                if index not in failed:
                    try:
                        self._other_values(flow, row, values, other)
                    except (ConversionError, RecordError) as exc:
                        failed[index] = exc
        return [failed.get(index, values) for index, values in enumerate(out)], unconverted

    def _other_values(self, flow: Flow, row: tuple, values: dict[str, Any], other: list[tuple]) -> None:
        """Add the values of constants, value maps, lookups and transforms to one record's values."""
        for name, pos, fm, src_field, conv, transform in other:
            raw = fm.constant if pos is None else row[pos]
            try:
                if fm.value_map is not None:
                    raw = fm.value_map.translate(raw, flow.dst)
                elif fm.lookup is not None:
                    raw = self.lookup(fm.lookup, flow.src, src_field, raw, fm.clear_value_on_failed_lookup)
                if transform is not None:
                    raw = transform(raw)
                values[name] = conv(raw)
            except ConversionError as exc:
                raise ConversionError("%s field %s: %s" % (flow.dst, name, exc)) from None

    # -- lookups --------------------------------------------------------------------------------------------
    def forget_lookups(self) -> None:
        """Forget what lookups found: each page asks the store again (another mapping's couplings may have changed)."""
        self._lookups.clear()

    def prefetch_lookups(self, flow: Flow, rows: Sequence[tuple], positions: dict[str, int]) -> None:
        """One store query per lookup field and page instead of one per record."""
        if not rows or not self.store.exists:
            return
        for fm in flow.fields:
            if fm.lookup is None:
                continue
            src_field = fm.field_on(flow.src)
            if src_field is None:
                raise AssertionError("a lookup reads a source field")  # why: the declaration refuses a constant with a lookup
            pos = positions[src_field]
            wanted = sorted({id_text(r[pos]) for r in rows if r[pos] is not None and r[pos] != ""})
            found = self.store.lookup_ids(fm.lookup, flow.src, wanted) if wanted else {}
            for value in wanted:
                self._lookups[(fm.lookup, flow.src, value)] = found.get(value)

    def lookup(self, mapping: str, side: str, field_name: str | None, value: Any, clear: bool = False) -> Any:
        """The other side's id of the record ``value`` refers to, through ``mapping``'s couplings (None if not coupled and ``clear``)."""
        if value is None or value == "":
            return None
        key = id_text(value)
        cache_key = (mapping, side, key)
        if cache_key not in self._lookups:
            found = self.store.lookup_ids(mapping, side, [key]) if self.store.exists else {}
            self._lookups[cache_key] = found.get(key)
        target = self._lookups[cache_key]
        if target is None:
            foreseen = self.foreseen.get(mapping, {}).get(side, {})
            if key in foreseen:
                return foreseen[key]  # why: check mode counts a reference to a record the same run would create
            if clear:
                return None  # why: clear_value_on_failed_lookup writes the record with the reference emptied
            raise RecordError("%s field %s: %r refers to a record that is not coupled in mapping %s yet "
                              "(it is retried once that record is synchronised)" % (side, field_name, value, mapping))
        return target

    # -- one side of a pair ---------------------------------------------------------------------------------
    def side_values(self, side: str, row: tuple | None, positions: dict[str, int], written: dict[str, Any] | None = None) -> dict[str, Any]:
        """A record's mapped values on one side as they are after ``written`` is applied."""
        out = {f: (row[positions[f]] if row is not None else None) for f in self.mapping.side_fields(side)}
        if written:
            out.update((k, v) for k, v in written.items() if k in out)
        return out

    def fingerprint(self, side: str, values: dict[str, Any]) -> str:
        """The fingerprint of a record's values on ``side`` (side_fingerprint)."""
        return side_fingerprint(self.mapping, side, values)

    def last_values(self, local: dict[str, Any], integration: dict[str, Any]) -> str | None:
        """What a pair's coupling keeps of the values last synchronised (for merge), or None when the mapping keeps none."""
        if not self.mapping.keeps_last_values:
            return None
        return json.dumps({"local": {k: canonical(v) for k, v in local.items()},
                           "integration": {k: canonical(v) for k, v in integration.items()}}, sort_keys=True)
