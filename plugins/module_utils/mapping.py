# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration table mappings: the model, its schema, and validation against the endpoints.

A mapping declaration is plain data (what ``table_mapping`` receives and the store
keeps). ``Mapping.from_definition`` checks its shape with JSON Schema;
``Mapping.bind`` checks it against the real tables (tables, columns, key types, filter
fields, constant types, transforms, value maps). Both raise MappingError naming the
mapping and the field, before anything is written.

A field value flows through, in order: its value map or lookup, its transforms, and
the conversion to the destination field's type.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Mapping as TMapping
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import (
    GUARDS,
    OPTIONS,
    declaration_defaults,
    declaration_schema,
)
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE, SIDES
from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError, MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.filters import FilterError, parse_filter
from ansible_collections.tablesync.integration.plugins.module_utils.match_key import MatchKey
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import format_problem
from ansible_collections.tablesync.integration.plugins.module_utils.transforms import ValueMap, build_transforms
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, converter

try:
    import jsonschema

    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the modules
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR = traceback.format_exc()

KEY_KINDS = ("text", "integer", "uuid")
FLOW_DIRECTION = {("local", "integration"): "to_integration", ("integration", "local"): "from_integration"}

# both built from the options table (declaration_spec.OPTIONS)
SCHEMA = declaration_schema()
DEFAULTS: dict[str, Any] = declaration_defaults()

_NO_CONSTANT = object()


@dataclass
class FieldMapping:
    """One field pair (or a constant written to one side)."""

    local_field: str | None
    integration_field: str | None
    direction: str
    constant: Any = _NO_CONSTANT
    transform: list[Any] = field(default_factory=list)
    value_map: ValueMap | None = None
    lookup: str | None = None
    clear_value_on_failed_lookup: bool = False

    @property
    def is_constant(self) -> bool:
        return self.constant is not _NO_CONSTANT

    def field_on(self, side: str) -> str | None:
        return self.local_field if side == "local" else self.integration_field

    def flows(self, src: str, dst: str) -> bool:
        """Whether this field is written when records flow from ``src`` to ``dst``."""
        if self.field_on(dst) is None:
            return False
        if self.is_constant:
            return self.field_on(src) is None or self.direction in (FLOW_DIRECTION[(src, dst)], "bidirectional")
        return self.field_on(src) is not None and self.direction in (FLOW_DIRECTION[(src, dst)], "bidirectional")

    def describe(self) -> str:
        return "%s <-> %s" % (self.local_field or "(constant)", self.integration_field or "(constant)")


@dataclass
class Flow:
    """Records of one mapping moving from ``src`` to ``dst``: which fields, converted how."""

    src: str
    dst: str
    fields: list[FieldMapping]
    converters: list[Callable[[Any], Any]] = field(default_factory=list)
    transforms: list[Callable[[Any], Any] | None] = field(default_factory=list)


@dataclass
class Mapping:
    """A validated integration table mapping.

    One field per option of the declaration (declaration_spec.OPTIONS, with the same
    defaults: a unit test compares them), besides the name and what binding prepares.
    """

    name: str
    local_table: str
    local_key: str
    integration_table: str
    integration_key: str
    direction: str
    fields: list[FieldMapping]
    local_modified_field: str | None = None
    integration_modified_field: str | None = None
    local_modified_format: str = "auto"
    integration_modified_format: str = "auto"
    table_filter: str | None = None
    integration_table_filter: str | None = None
    synch_only_coupled_records: bool = True
    dependencies: list[str] = field(default_factory=list)
    update_conflict_resolution: str = "none"
    merge_fallback: str = "none"
    deletion_conflict_resolution: str = "none"
    propagate_deletions: bool = False
    max_deletes: int | None = None
    max_deletes_percent: float | None = None
    max_changes: int | None = None
    max_changes_percent: float | None = None
    match_on: list[Any] | None = None
    initial_direction: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    restore_flows: dict[tuple[str, str], Flow] = field(default_factory=dict)
    _side_fields: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)
    _fingerprint_parts: dict[str, list[list[str]]] = field(default_factory=dict, repr=False, compare=False)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_definition(cls, definition: TMapping[str, Any]) -> Mapping:
        """Check the declaration's shape and build the model (no endpoint access)."""
        name = definition.get("name") if isinstance(definition, dict) else None
        if not HAS_JSONSCHEMA:
            raise MappingError(name, "the python library jsonschema is required: %s" % JSONSCHEMA_IMPORT_ERROR)
        clean = normalize(definition)
        errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(clean), key=lambda e: list(e.absolute_path))
        if errors:
            err = errors[0]
            path = ".".join(str(p) for p in err.absolute_path) or None
            raise MappingError(name if isinstance(name, str) else None, err.message, field=path)
        fields = []
        for index, raw in enumerate(clean["fields"]):
            where = "fields[%d]" % index
            fm = FieldMapping(
                local_field=raw.get("field"),
                integration_field=raw.get("integration_field"),
                direction=raw.get("direction") or clean["direction"],
                constant=raw["constant"] if "constant" in raw else _NO_CONSTANT,
                transform=list(raw.get("transform") or []),
                lookup=raw.get("lookup"),
                clear_value_on_failed_lookup=bool(raw.get("clear_value_on_failed_lookup")),
            )
            try:
                build_transforms(fm.transform, None)
                fm.value_map = ValueMap(raw["value_map"]) if "value_map" in raw else None
            except ValueError as exc:
                raise MappingError(clean["name"], str(exc), field=fm.describe()) from None
            if fm.is_constant and (fm.value_map or fm.lookup):
                raise MappingError(clean["name"], "a constant takes no value_map or lookup", field=fm.describe())
            if fm.value_map and fm.lookup:
                raise MappingError(clean["name"], "a field has a value_map or a lookup, not both", field=fm.describe())
            if fm.clear_value_on_failed_lookup and not fm.lookup:
                raise MappingError(clean["name"], "clear_value_on_failed_lookup applies to a field with a lookup", field=fm.describe())
            if fm.local_field is None and fm.integration_field is None:
                raise MappingError(clean["name"], "a field mapping needs 'field', 'integration_field' or both", field=where)
            if not fm.is_constant and (fm.local_field is None or fm.integration_field is None):
                raise MappingError(clean["name"], "'field' and 'integration_field' are both required unless 'constant' is set", field=where)
            if fm.is_constant and fm.local_field and fm.integration_field:
                raise MappingError(clean["name"], "a constant is written to one side: give 'field' or 'integration_field', not both", field=where)
            if clean["direction"] != "bidirectional" and fm.direction not in (clean["direction"],):
                raise MappingError(
                    clean["name"], "direction %s is outside the mapping's direction %s" % (fm.direction, clean["direction"]), field=fm.describe()
                )
            fields.append(fm)
        for fm in fields:
            if fm.value_map and fm.value_map.ambiguous and fm.direction in ("from_integration", "bidirectional"):
                raise MappingError(clean["name"], "value_map is not one-to-one (integration values %s appear twice), so it cannot be "
                                   "read in reverse; set the field's direction to to_integration" % ", ".join(fm.value_map.ambiguous),
                                   field=fm.describe())
        _check_directions_have_fields(clean["name"], clean["direction"], fields)
        if clean["initial_direction"] and clean["direction"] != "bidirectional":
            raise MappingError(clean["name"], "initial_direction applies to bidirectional mappings only", field="initial_direction")
        if clean["name"] in clean["dependencies"]:
            raise MappingError(clean["name"], "a mapping cannot depend on itself", field="dependencies")
        # why: copies, so the model never shares a list with its stored definition
        options = {o.name: copy.deepcopy(clean[o.name]) for o in OPTIONS if o.name != "fields"}
        options["fields"] = fields
        mapping = cls(name=clean["name"], definition=clean, **options)
        for side in ("local", "integration"):
            seen: set[str] = set()
            for fm in fields:
                dst = fm.field_on(side)
                if dst is None:
                    continue
                for src in ("local", "integration"):
                    if src != side and fm.flows(src, side):
                        if dst in seen:
                            raise MappingError(mapping.name, "%s field %s is written by two field mappings" % (side, dst), field=dst)
                        seen.add(dst)
        return mapping

    # -- accessors --------------------------------------------------------------------------
    @property
    def guards(self) -> dict[str, Any]:
        """The job limits set (job.py stops a job that would exceed one before it writes)."""
        return {k: getattr(self, k) for k in GUARDS if getattr(self, k) is not None}

    def table_name(self, side: str) -> str:
        return self.local_table if side == "local" else self.integration_table

    def key(self, side: str) -> str:
        return self.local_key if side == "local" else self.integration_key

    def modified_field(self, side: str) -> str | None:
        return self.local_modified_field if side == "local" else self.integration_modified_field

    def modified_format(self, side: str) -> str:
        """How the side's modified-on values are stored, as declared (auto: detected from the column)."""
        return self.local_modified_format if side == "local" else self.integration_modified_format

    def filter_text(self, side: str) -> str | None:
        return self.table_filter if side == "local" else self.integration_table_filter

    def flow_pairs(self) -> list[tuple[str, str]]:
        """(source side, destination side) pairs, in the order a job runs them."""
        if self.direction == "to_integration":
            return [("local", "integration")]
        if self.direction == "from_integration":
            return [("integration", "local")]
        return [("local", "integration"), ("integration", "local")]

    def lookups(self) -> list[str]:
        """Mappings whose couplings translate references of this one (implied dependencies)."""
        out: list[str] = []
        for fm in self.fields:
            if fm.lookup and fm.lookup != self.name and fm.lookup not in out:
                out.append(fm.lookup)
        return out

    @property
    def bidirectional(self) -> bool:
        return self.direction == "bidirectional"

    @property
    def keeps_last_values(self) -> bool:
        """A field-level merge needs the values last synchronised, per coupling."""
        return self.bidirectional and self.update_conflict_resolution == "merge"

    def side_fields(self, side: str) -> list[str]:
        """Fields of one side that take part in the mapping: its fingerprint covers them."""
        cached = self._side_fields.get(side)
        if cached is not None:  # why: asked for every record; the mapping does not change during a run
            return cached
        out: list[str] = []
        for fm in self.fields:
            name = fm.field_on(side)
            if name is not None and name not in out:
                out.append(name)
        self._side_fields[side] = out
        return out

    @property
    def has_one_way_fields(self) -> bool:
        """A bidirectional mapping with fields (not constants) that flow one way only."""
        return self.bidirectional and any(fm.direction != "bidirectional" and not fm.is_constant for fm in self.fields)

    def fingerprint_parts(self, side: str) -> list[list[str]]:
        """The fields a side's fingerprint covers, in parts (bidirectional.side_fingerprint).

        One part, every field of the side, except in a bidirectional mapping with one-way fields:
        there the fields mapped both ways, then those flowing from this side only. Fields that only
        flow into this side (and constants) are left out: a change to them goes nowhere, so it must
        not make the record look changed, nor a pair look conflicting.
        """
        cached = self._fingerprint_parts.get(side)
        if cached is not None:
            return cached
        if not self.has_one_way_fields:
            parts = [self.side_fields(side)]
        else:
            outward = FLOW_DIRECTION[(side, OTHER_SIDE[side])]
            both = [fm.field_on(side) for fm in self.fields if not fm.is_constant and fm.direction == "bidirectional"]
            out = [fm.field_on(side) for fm in self.fields if not fm.is_constant and fm.direction == outward]
            # why: field_on is typed optional for constants, which are left out above
            parts = [list(dict.fromkeys(both)), list(dict.fromkeys(out))]  # type: ignore[arg-type]
        self._fingerprint_parts[side] = parts
        return parts

    def read_fields(self, side: str) -> list[str]:
        """What a read of one side fetches: key, modified-on, then the mapped fields."""
        out = [self.key(side)]
        modified = self.modified_field(side)
        if modified and modified not in out:
            out.append(modified)
        for name in self.side_fields(side):
            if name not in out:
                out.append(name)
        return out

    def match_keys(self, tables: TMapping[str, Any] | None = None, match_on: Sequence[Any] | None = None) -> list[MatchKey]:
        """The mapping's match fields (or ``match_on`` given instead), checked against the tables.

        A plain string names a field of one of the mapping's field mappings (either side);
        the pair is that field mapping's two fields. Raises MappingError naming the entry.
        """
        entries = match_on if match_on is not None else self.match_on
        keys: list[MatchKey] = []
        for index, entry in enumerate(entries or ()):
            where = "match_on[%d]" % index
            if isinstance(entry, str):
                pair = next(((fm.local_field, fm.integration_field) for fm in self.fields
                             if not fm.is_constant and entry in (fm.local_field, fm.integration_field)), None)
                if pair is None:
                    raise MappingError(self.name, "%s is not a field of any field mapping; give {field: ..., integration_field: ...}" % entry, field=where)
                # why: the fields of a field mapping that is not a constant are set on both sides (validated above)
                key = MatchKey(pair[0], pair[1])  # type: ignore[arg-type]
            elif isinstance(entry, dict) and entry.get("field") and entry.get("integration_field"):
                key = MatchKey(entry["field"], entry["integration_field"], ignore_case=entry.get("ignore_case") is True, trim=entry.get("trim") is True)
            else:
                raise MappingError(self.name, "a match entry is a field name or {field: ..., integration_field: ...}, not %r" % (entry,), field=where)
            if tables is not None:
                for side in SIDES:
                    columns = tables[side].info.columns
                    name = key.field_on(side)
                    if name not in columns:
                        raise MappingError(self.name, "%s table %s has no column %s" % (side, tables[side].info.name, name), field=where)
            keys.append(key)
        return keys

    # -- validation against endpoints ----------------------------------------------------------
    def bind(self, tables: TMapping[str, Any]) -> dict[tuple[str, str], Flow]:
        """Check the mapping against the real tables and prepare its flows.

        ``tables`` maps each side to its endpoint Table. Returns the flows keyed by
        (src, dst). Raises MappingError naming the mapping and the field.
        """
        for side in ("local", "integration"):
            info = tables[side].info
            columns = info.columns
            key = self.key(side)
            if columns[key].kind not in KEY_KINDS:
                raise MappingError(self.name, "key %s of %s table %s is of type %s; keys must be text, integer or uuid"
                                   % (key, side, info.name, columns[key].kind), field=key)
            modified = self.modified_field(side)
            if modified:
                if modified not in columns:
                    raise MappingError(self.name, "%s table %s has no column %s" % (side, info.name, modified), field=modified)
                problem = format_problem(columns[modified].kind, self.modified_format(side))
                if problem is not None:
                    raise MappingError(self.name, "modified-on field %s %s" % (modified, problem), field=modified)
            for name in self.side_fields(side):
                if name not in columns:
                    known = ", ".join(sorted(columns))
                    raise MappingError(self.name, "%s table %s has no column %s (columns: %s)" % (side, info.name, name, known), field=name)
            text = self.filter_text(side)
            option = "table_filter" if side == "local" else "integration_table_filter"
            try:
                parsed = self.filters[side] = parse_filter(text, allowed_fields=columns.keys(), context="mapping %s, %s" % (self.name, option))
                if parsed is not None:
                    tables[side].check_filter(parsed)  # why: a value that does not fit its column would fail every read
            except FilterError as exc:
                raise MappingError(self.name, str(exc), field=option) from None
        self.match_keys(tables)  # raises MappingError for a match field the tables lack
        flows = {}
        for src, dst in self.flow_pairs():
            flows[(src, dst)] = self._flow(tables, src, dst, [fm for fm in self.fields if fm.flows(src, dst)])
            for fm in flows[(src, dst)].fields:
                if fm.clear_value_on_failed_lookup and not tables[dst].info.columns[fm.field_on(dst)].nullable:
                    raise MappingError(self.name, "clear_value_on_failed_lookup: %s field %s cannot be cleared, it is not nullable"
                                       % (dst, fm.field_on(dst)), field=fm.describe())
        # why: restoring a record deleted on a side that only sends needs the fields read the other way
        self.restore_flows = {
            (src, dst): self._flow(tables, src, dst, [fm for fm in self.fields if fm.field_on(dst) is not None
                                                      and (fm.field_on(src) is not None or fm.is_constant)])
            for src, dst in (("local", "integration"), ("integration", "local"))
        }
        return flows

    def _flow(self, tables: TMapping[str, Any], src: str, dst: str, flow_fields: list[FieldMapping]) -> Flow:
        columns = tables[dst].info.columns
        convs = []
        transforms = []
        for fm in flow_fields:
            col = columns[fm.field_on(dst)]
            length = col.max_length if col.kind == "text" else None
            conv = converter(col.kind, length)
            transform = build_transforms(fm.transform, length)
            if fm.is_constant:
                try:
                    conv(transform(fm.constant) if transform else fm.constant)
                except ConversionError as exc:
                    raise MappingError(self.name, "constant %r: %s" % (fm.constant, exc), field=fm.field_on(dst)) from None
            convs.append(conv)
            transforms.append(transform)
        return Flow(src, dst, flow_fields, convs, transforms)


def _check_directions_have_fields(name: str, direction: str, fields: Sequence[FieldMapping]) -> None:
    """Refuse a direction no field flows in: records created that way would hold nothing but constants."""
    pairs = {"to_integration": [("local", "integration")], "from_integration": [("integration", "local")],
             "bidirectional": [("local", "integration"), ("integration", "local")]}[direction]
    for src, dst in pairs:
        if not any(fm.flows(src, dst) and not fm.is_constant for fm in fields):
            raise MappingError(name, "direction %s: no field flows from %s to %s; map at least one field that way%s"
                               % (direction, src, dst, " (its direction bidirectional or %s)" % FLOW_DIRECTION[(src, dst)]
                                  if direction == "bidirectional" else ""), field="direction")


def normalize(definition: TMapping[str, Any]) -> dict[str, Any]:
    """A declaration with defaults filled in and unset (None) options dropped, as stored."""
    clean: dict[str, Any] = dict(DEFAULTS)
    for key, value in dict(definition).items():
        if value is None and key in DEFAULTS:
            continue
        clean[key] = value
    if isinstance(clean.get("fields"), list):
        fields = []
        for raw in clean["fields"]:
            if isinstance(raw, dict):
                # why: Ansible passes unset suboptions as None; a None constant is not supported
                raw = {k: v for k, v in raw.items() if v is not None}
                if raw.get("clear_value_on_failed_lookup") is False:
                    del raw["clear_value_on_failed_lookup"]  # why: the default; setting it must not make the declaration differ
            fields.append(raw)
        clean["fields"] = fields
    return clean


def open_tables(mapping: Mapping, endpoints: TMapping[str, Any]) -> dict[str, Any]:
    """The mapping's two tables, with endpoint errors reported against the mapping."""
    tables = {}
    for side in ("local", "integration"):
        try:
            tables[side] = endpoints[side].table(mapping.table_name(side), mapping.key(side))
        except EndpointError as exc:
            raise MappingError(mapping.name, str(exc)) from None  # why: the message names the table
    return tables
