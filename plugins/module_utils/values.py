# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field values: type kinds, explicit conversion between sides, and fingerprints.

Endpoints describe each column with a *kind* (text, integer, decimal, ...). A value
read on one side is converted to the kind of the field it is written to, and a value
that cannot convert fails only its record. Fingerprints are computed on a canonical
form, so a value written and read back (Decimal('10.50') vs 10.5, True vs 1) gives the
same fingerprint and a written record never looks changed on the next run.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any, Callable, Protocol, cast

KINDS = ("text", "integer", "decimal", "float", "boolean", "date", "datetime", "uuid", "binary")

_TRUE = frozenset(("1", "true", "yes", "y", "on", "t"))
_FALSE = frozenset(("0", "false", "no", "n", "off", "f", ""))


class ConversionError(ValueError):
    """A value cannot be converted to the kind of its destination field."""


class Undecodable:
    """Text a source holds that is not valid UTF-8 (read by a lenient re-read, see sql_endpoint.Select).

    Every conversion and ``canonical`` refuse it, so the record holding one fails alone.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: bytes):
        self.raw = raw

    def __repr__(self) -> str:
        return "<not valid UTF-8: %s>" % self.raw.decode("utf-8", "backslashreplace")

    def describe(self) -> str:
        """What the value is, for messages: the bytes that do not decode shown as escapes."""
        return "not valid UTF-8 (%s)" % self.raw.decode("utf-8", "backslashreplace")


def lenient_text(raw: bytes) -> str | Undecodable:
    """A text value decoded as UTF-8, or its marker when it is not valid UTF-8 (a sqlite3 text_factory)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return Undecodable(raw)


def _to_text(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _to_integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (float, decimal.Decimal)):
        if value != int(value):
            raise ConversionError("%r has a fractional part" % (value,))
        return int(value)
    return int(str(value).strip())


def _to_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    try:
        return decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise ConversionError("%r is not a number" % (value,)) from None


def _to_float(value: Any) -> float:
    return float(value)


def _to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        if value in (0, 1):
            return bool(value)
        raise ConversionError("%r is not a boolean (0 or 1)" % (value,))
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConversionError("%r is not a boolean" % (value,))


def _to_datetime(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        result = value
    elif isinstance(value, datetime.date):
        result = datetime.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip().replace("Z", "+00:00")
        result = datetime.datetime.fromisoformat(text)
    if result.tzinfo is not None:
        result = result.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return result


def _to_date(value: Any) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    return datetime.date.fromisoformat(str(value).strip()[:10])


def _to_uuid(value: Any) -> str:
    return str(uuid.UUID(str(value)))


def _to_binary(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _to_text,
    "integer": _to_integer,
    "decimal": _to_decimal,
    "float": _to_float,
    "boolean": _to_boolean,
    "date": _to_date,
    "datetime": _to_datetime,
    "uuid": _to_uuid,
    "binary": _to_binary,
}

# Python types a kind already accepts as they are; conversion is skipped for them.
_NATIVE: dict[str, tuple] = {
    "text": (str,),
    "integer": (int,),
    "decimal": (decimal.Decimal, int),
    "float": (float, int),
    "boolean": (bool,),
    "date": (datetime.date,),
    "datetime": (datetime.datetime,),
    "uuid": (str,),
    "binary": (bytes,),
}


class Converter(Protocol):
    """What converter returns: a function converting a value, with what convert_column needs to know of it."""

    passthrough: frozenset[type]
    max_length: int | None

    def __call__(self, value: Any) -> Any: ...


def converter(kind: str, max_length: int | None = None) -> Callable[[Any], Any]:
    """Return a function converting any value to ``kind``; None stays None."""
    convert = _CONVERTERS[kind]
    native = _NATIVE[kind]
    exact = frozenset(native)  # why: an exact class test is the common case and excludes bool from the numbers
    exclude_bool = kind in ("integer", "decimal", "float")

    def run(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ in exact or (isinstance(value, native) and not (exclude_bool and isinstance(value, bool))):
            result = value
        elif value.__class__ is Undecodable:
            raise ConversionError(value.describe())
        else:
            try:
                result = convert(value)
            except ConversionError as exc:
                raise ConversionError("cannot convert to %s: %s" % (kind, exc)) from None
            except (TypeError, ValueError, ArithmeticError):
                raise ConversionError("cannot convert %r to %s" % (value, kind)) from None
        if max_length is not None and isinstance(result, str) and len(result) > max_length:
            raise ConversionError("value is %d characters long, the field holds %d" % (len(result), max_length))
        return result

    conv = cast(Converter, run)  # why: a closure is the fastest call; its attributes tell convert_column when to skip it
    conv.passthrough = exact | {type(None)}  # classes it returns unchanged (convert_column)
    conv.max_length = max_length
    return conv


def convert_column(convert: Callable[[Any], Any], column: Sequence[Any]) -> tuple[Sequence[Any], dict[int, ConversionError]]:
    """A converter applied to a column of values; the values it refuses, by their position.

    Why: most columns already hold the destination's types, and one scan of their classes (in C)
    spares a Python call per value (a fifth of planning a page).
    """
    passthrough = getattr(convert, "passthrough", None)
    if passthrough is not None and set(map(type, column)) <= passthrough:
        limit = getattr(convert, "max_length", None)  # a converter's (Converter), as passthrough is
        if limit is None or max(map(len, filter(None, column)), default=0) <= limit:
            return column, {}
    out: list[Any] = []
    failed: dict[int, ConversionError] = {}
    for index, value in enumerate(column):
        try:
            out.append(convert(value))
        except ConversionError as exc:
            failed[index] = exc
            out.append(None)
    return out, failed


def canonical(value: Any) -> Any:
    """A representation that is equal for equal values whatever the driver returned."""
    if value is None or value.__class__ in _PLAIN_CLASSES:  # exact types: bool is an int
        return value
    by_class = _CANONICAL_BY_CLASS.get(value.__class__)
    if by_class is None:  # why: a subclass (or another type) takes the form of the first kind it is, else its text
        by_class = next((form for cls, form in _CANONICAL_BY_CLASS.items() if isinstance(value, cls)), str)
    return by_class(value)


def _canonical_decimal(value: decimal.Decimal) -> Any:
    if value == value.to_integral_value():
        return int(value)
    return format(value.normalize(), "f")


def _canonical_float(value: float) -> Any:
    if value.is_integer():
        return int(value)
    return format(decimal.Decimal(repr(value)).normalize(), "f")


def _canonical_datetime(value: datetime.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.isoformat(sep=" ")


def _refuse_undecodable(value: Undecodable) -> Any:
    raise ConversionError(value.describe())


_PLAIN_CLASSES = frozenset((str, int))
# Canonical form by Python type; order matters for subclasses (a datetime is also a date, a bool an int).
_CANONICAL_BY_CLASS: dict[type, Callable[[Any], Any]] = {
    bool: int,
    decimal.Decimal: _canonical_decimal,
    float: _canonical_float,
    datetime.datetime: _canonical_datetime,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    uuid.UUID: str,
    bytes: bytes.hex,
    bytearray: bytearray.hex,
    memoryview: lambda value: bytes(value).hex(),
    Undecodable: _refuse_undecodable,  # why: no fingerprint, comparison or id may be made of text that is not text
}
_PLAIN = frozenset((str, int, type(None)))


def fingerprint(values: Sequence[Any]) -> str:
    """Fingerprint of a record's mapped values, in field-mapping order."""
    return _digest(tuple([v if v.__class__ in _PLAIN else canonical(v) for v in values]))


def fingerprints(columns: Sequence[Sequence[Any]]) -> list[str]:
    """Fingerprints of the records of a page given as columns of their mapped values (as ``fingerprint``)."""
    # why: most columns are already canonical (text, integers): one scan of their classes, no call per value
    canonical_columns = [column if set(map(type, column)) <= _PLAIN else [v if v.__class__ in _PLAIN else canonical(v) for v in column]
                         for column in columns]
    return [_digest(values) for values in zip(*canonical_columns)]


def _digest(values: tuple) -> str:
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def id_text(value: Any) -> str:
    """Record ids are kept as text in the store, whatever the key's type."""
    return value if value.__class__ is str else str(canonical(value))


def utcnow() -> datetime.datetime:
    """Naive UTC now: every timestamp the engine keeps is naive UTC."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


_IDS: dict[str, Any] = {"ready": [], "pid": 0, "ms": 0, "seq": 0}


def new_record_id() -> str:
    """An id for a record the engine creates: an RFC 9562 version-7 UUID in canonical text.

    Why version 7: its first 48 bits are the Unix time in milliseconds and the next 12 a
    counter, so the ids of one run sort in creation order and new rows land at the end of the
    destination's key index and of the store's coupling index, not on random pages (with
    random version-4 ids a full sync of 100,000 records spent most of its commits re-writing
    index pages). The last 62 bits are random. Ids are made 256 at a time.
    """
    ready = _IDS["ready"]
    if not ready or _IDS["pid"] != os.getpid():  # why: a forked child must not hand out the parent's ids
        ready = _IDS["ready"] = _make_ids(256)
    return ready.pop()


def _make_ids(count: int) -> list[str]:
    state = _IDS
    state["pid"] = os.getpid()
    now = time.time_ns() // 1000000
    if now > state["ms"]:
        state["ms"], state["seq"] = now, -1
    stamps = []
    for _index in range(count):
        if state["seq"] < 0xFFF:
            state["seq"] += 1
        else:  # why: 4,096 ids in one millisecond: borrow the next one rather than lose the order
            state["ms"], state["seq"] = state["ms"] + 1, 0
        stamps.append((state["ms"] << 12) | state["seq"])
    random = int.from_bytes(os.urandom(8 * count), "big")
    ids = []
    for stamp in reversed(stamps):  # why: handed out with pop(), in creation order
        # 48-bit milliseconds, version 7, 12-bit counter, RFC variant, 62 random bits
        h = "%032x" % ((stamp >> 12) << 80 | 0x7000 << 64 | (stamp & 0xFFF) << 64 | 0x8000000000000000 | (random & 0x3FFFFFFFFFFFFFFF))
        random >>= 64
        ids.append("%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:]))
    return ids
