"""Data model of the OData test double: errors, column types, entity-set schemas and the row store.

Nothing here speaks HTTP. The store keeps every row as the JSON-ready values the service would
return, a monotonically increasing row version (Dataverse ``versionnumber`` / the Business
Central ETag source) and tombstones for deleted rows, which change tracking needs.

Every mutation goes through :class:`Store` so that change sets, ``CreateMultiple`` and
Business Central ``Isolation: snapshot`` batches can be rolled back with an undo journal.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

DATAVERSE = "dataverse"
BUSINESS_CENTRAL = "business_central"
FLAVOURS = (DATAVERSE, BUSINESS_CENTRAL)

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


class ODataError(Exception):
    """An error the service answers with ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


# --------------------------------------------------------------------------------------------
# Column types
# --------------------------------------------------------------------------------------------

_TYPE_ALIASES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "memo": "string",
    "int": "int",
    "integer": "int",
    "bigint": "int",
    "choice": "int",
    "optionset": "int",
    "picklist": "int",
    "decimal": "decimal",
    "money": "decimal",
    "float": "decimal",
    "double": "decimal",
    "number": "decimal",
    "bool": "bool",
    "boolean": "bool",
    "datetime": "datetime",
    "date": "date",
    "guid": "guid",
    "uuid": "guid",
    "uniqueidentifier": "guid",
}

_STRING_LEN = re.compile(r"^(string|str|text|memo)\((\d+)\)$")
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class ColumnType:
    """A declared column type. ``name`` is one of string/int/decimal/bool/datetime/date/guid."""

    name: str
    max_length: int | None = None

    @property
    def edm(self) -> str:
        return {
            "string": "Edm.String",
            "int": "Edm.Int32",
            "decimal": "Edm.Decimal",
            "bool": "Edm.Boolean",
            "datetime": "Edm.DateTimeOffset",
            "date": "Edm.Date",
            "guid": "Edm.Guid",
        }[self.name]


def parse_column_type(spec: str | ColumnType | type) -> ColumnType:
    if isinstance(spec, ColumnType):
        return spec
    if isinstance(spec, type):
        spec = {str: "string", int: "int", float: "decimal", bool: "bool"}.get(spec, "")
    text = str(spec).strip().lower()
    match = _STRING_LEN.match(text)
    if match:
        return ColumnType("string", int(match.group(2)))
    if text not in _TYPE_ALIASES:
        raise ValueError(f"unknown column type {spec!r}; use one of {sorted(set(_TYPE_ALIASES))}")
    return ColumnType(_TYPE_ALIASES[text])


def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID_RE.match(value.strip("{}")))


def normalize_guid(value: str) -> str:
    return str(uuid.UUID(value.strip("{}")))


def parse_datetime(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp; naive values are taken as UTC."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


def format_datetime(value: dt.datetime, flavour: str) -> str:
    value = value.astimezone(dt.timezone.utc)
    if flavour == DATAVERSE:
        # Dataverse returns whole seconds: "2016-09-28T22:57:53Z" (create-entity-web-api.md).
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Business Central returns milliseconds: "2020-08-21T07:38:44.293Z" (dynamics_customer_update.md).
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class ValueProblem(ValueError):
    """A value does not fit its column; the caller turns it into a flavour-specific error."""


def coerce_value(ctype: ColumnType, value: Any, flavour: str) -> Any:
    """Validate a JSON value against a column type and return the stored (JSON-ready) value."""
    if value is None:
        return None
    name = ctype.name
    if name == "string":
        if not isinstance(value, str):
            raise ValueProblem(f"expected a string, got {type(value).__name__}")
        if ctype.max_length is not None and len(value) > ctype.max_length:
            raise ValueProblem(
                f"The length of the string is {len(value)}, but it must be less than or equal to {ctype.max_length} characters."
            )
        return value
    if name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueProblem(f"expected an integer, got {value!r}")
        return value
    if name == "decimal":
        if isinstance(value, bool):
            raise ValueProblem(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):  # OData allows IEEE754-compatible decimals as strings
            try:
                Decimal(value)
            except InvalidOperation:
                raise ValueProblem(f"expected a number, got {value!r}") from None
            number = Decimal(value)
            return int(number) if number == number.to_integral_value() else float(number)
        raise ValueProblem(f"expected a number, got {value!r}")
    if name == "bool":
        if not isinstance(value, bool):
            raise ValueProblem(f"expected true or false, got {value!r}")
        return value
    if name == "datetime":
        if not isinstance(value, str):
            raise ValueProblem(f"expected an ISO 8601 date-time string, got {value!r}")
        try:
            return format_datetime(parse_datetime(value), flavour)
        except ValueError:
            raise ValueProblem(f"cannot convert {value!r} to a date-time") from None
    if name == "date":
        if not isinstance(value, str):
            raise ValueProblem(f"expected a YYYY-MM-DD date string, got {value!r}")
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueProblem(f"cannot convert {value!r} to a date") from None
    if name == "guid":
        if not is_guid(value):
            raise ValueProblem(f"{value!r} is not a GUID")
        return normalize_guid(value)
    raise AssertionError(name)


def default_value(ctype: ColumnType) -> Any:
    """Business Central never returns null for a field; these are its blank values."""
    return {
        "string": "",
        "int": 0,
        "decimal": 0,
        "bool": False,
        "datetime": "0001-01-01T00:00:00Z",
        "date": "0001-01-01",
        "guid": EMPTY_GUID,
    }[ctype.name]


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupTarget:
    navigation_property: str  # e.g. "parentcustomerid_account"
    entity_set: str  # e.g. "accounts"


@dataclass
class EntitySetDef:
    """The declaration made by ``ODataService.add_entity_set``."""

    name: str
    key: str
    logical_name: str
    fields: dict[str, ColumnType]
    server_fields: dict[str, ColumnType]
    change_tracking: bool = False
    alternate_keys: list[tuple[str, ...]] = field(default_factory=list)
    lookups: dict[str, list[LookupTarget]] = field(default_factory=dict)
    type_name: str = ""  # EDM entity type: account (Dataverse), customer (Business Central)

    def lookup_value_name(self, attribute: str) -> str:
        return f"_{attribute}_value"

    def lookup_by_navigation(self, navigation_property: str) -> tuple[str, LookupTarget] | None:
        for attribute, targets in self.lookups.items():
            for target in targets:
                if target.navigation_property.lower() == navigation_property.lower():
                    return attribute, target
        return None

    def column_types(self) -> dict[str, ColumnType]:
        """Every readable property: key, declared fields, server fields and lookup values."""
        columns = {self.key: ColumnType("guid")}
        columns.update(self.fields)
        columns.update(self.server_fields)
        for attribute in self.lookups:
            columns[self.lookup_value_name(attribute)] = ColumnType("guid")
        return columns

    def property_order(self) -> list[str]:
        names = [self.key, *self.fields]
        names += [self.lookup_value_name(a) for a in self.lookups]
        names += [n for n in self.server_fields if n not in names]
        return names


def derive_logical_name(entity_set: str) -> str:
    """accounts -> account, transactioncurrencies -> transactioncurrency, uomschedules -> uomschedule."""
    if entity_set.endswith("ies"):
        return entity_set[:-3] + "y"
    if entity_set.endswith("sses") or entity_set.endswith("xes"):
        return entity_set[:-2]
    if entity_set.endswith("s"):
        return entity_set[:-1]
    return entity_set


# --------------------------------------------------------------------------------------------
# Store with undo journal
# --------------------------------------------------------------------------------------------


@dataclass
class Table:
    definition: EntitySetDef
    company: str | None
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> stored row
    versions: dict[str, int] = field(default_factory=dict)  # key -> row version
    tombstones: dict[str, int] = field(default_factory=dict)  # key -> version of the delete

    def find_by_alternate_key(self, values: dict[str, Any]) -> str | None:
        wanted = {k: _fold(v) for k, v in values.items()}
        for key, row in self.rows.items():
            if all(_fold(row.get(name)) == value for name, value in wanted.items()):
                return key
        return None


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


class Store:
    """All tables, the version counter and the undo journal of the open transaction(s)."""

    def __init__(self, first_version: int = 1_000_000):
        self.tables: dict[tuple[str | None, str], Table] = {}
        self._version = first_version
        self._journals: list[list[Callable[[], None]]] = []

    # -- versions ------------------------------------------------------------------------
    def next_version(self) -> int:
        self._version += 1
        return self._version

    @property
    def current_version(self) -> int:
        return self._version

    # -- transactions --------------------------------------------------------------------
    def begin(self) -> None:
        self._journals.append([])

    def commit(self) -> None:
        journal = self._journals.pop()
        if self._journals:  # nested: the outer transaction must be able to undo it too
            self._journals[-1].extend(journal)

    def rollback(self) -> None:
        journal = self._journals.pop()
        for undo in reversed(journal):
            undo()

    def _remember(self, undo: Callable[[], None]) -> None:
        if self._journals:
            self._journals[-1].append(undo)

    # -- tables --------------------------------------------------------------------------
    def table(self, company: str | None, name: str) -> Table:
        return self.tables[(company, name)]

    def has_table(self, company: str | None, name: str) -> bool:
        return (company, name) in self.tables

    def add_table(self, company: str | None, definition: EntitySetDef) -> None:
        self.tables.setdefault((company, definition.name), Table(definition, company))

    # -- row mutations -------------------------------------------------------------------
    def put_row(self, table: Table, key: str, row: dict[str, Any], version: int | None = None) -> int:
        """Create or replace a row; returns its version (a new one unless ``version`` is given)."""
        old_row = table.rows.get(key)
        old_version = table.versions.get(key)
        old_tomb = table.tombstones.get(key)
        version = self.next_version() if version is None else version
        table.rows[key] = row
        table.versions[key] = version
        table.tombstones.pop(key, None)

        def undo() -> None:
            if old_row is None:
                table.rows.pop(key, None)
                table.versions.pop(key, None)
            else:
                table.rows[key] = old_row
                table.versions[key] = old_version  # type: ignore[assignment]
            if old_tomb is not None:
                table.tombstones[key] = old_tomb

        self._remember(undo)
        return version

    def remove_row(self, table: Table, key: str) -> None:
        old_row = table.rows.pop(key)
        old_version = table.versions.pop(key)
        old_tomb = table.tombstones.get(key)
        table.tombstones[key] = self.next_version()

        def undo() -> None:
            table.rows[key] = old_row
            table.versions[key] = old_version
            if old_tomb is None:
                table.tombstones.pop(key, None)
            else:
                table.tombstones[key] = old_tomb

        self._remember(undo)


def iter_tables(store: Store, company: str | None) -> Iterable[Table]:
    return (t for (c, _ignored), t in store.tables.items() if c == company)
