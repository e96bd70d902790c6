# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Modified-on values in every form they are stored in, and the watermark kept from them.

A modified-on column may hold native date-times (with or without a time zone), ISO-8601
text (``T`` or a space between date and time, 0 to 9 fractional digits, ``Z``, an offset
or none), or the Unix epoch in seconds or milliseconds (integers or numeric text); SQLite
has no date type, so all of these are common there. The engine compares instants: every
value is parsed to a naive UTC ``datetime`` (naive values are taken as UTC), and the lower
bound of a modified-records read is rendered back in the column's own form, so the database
compares like with like (text with text, numbers with numbers).

The watermark is the newest value read, never one later than the run's start (see
``watermark_cutoff``); the next read starts ``watermark_overlap`` seconds before it with
``>=``, so a record committed late with a stamp at or a little below the newest value read
is still read.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError

FORMATS = ("auto", "iso", "epoch_seconds", "epoch_milliseconds", "native")
# Column kinds (values.py) that can hold a modified-on value, and the declared formats each agrees with.
FORMATS_BY_KIND = {
    "datetime": ("auto", "native", "iso"),
    "date": ("auto", "native", "iso"),
    "text": ("auto", "iso", "epoch_seconds", "epoch_milliseconds"),
    "integer": ("auto", "epoch_seconds", "epoch_milliseconds"),
    "decimal": ("auto", "epoch_seconds", "epoch_milliseconds"),
    "float": ("auto", "epoch_seconds", "epoch_milliseconds"),
}
# why: 10**12 milliseconds is September 2001 and 10**12 seconds the year 33658: a 9999-12-31 sentinel in seconds
# (253402300799) stays seconds, and milliseconds stamped since 2001 are milliseconds
EPOCH_MILLISECONDS_FROM = 10 ** 12
# why: local times with an offset sort as text by their local time, which is at most 14 hours from UTC
_LARGEST_OFFSET = datetime.timedelta(hours=14)
# why: NTP-synchronised clocks differ by far less; a value further ahead of the run's start is a wrong clock or a
# far-future sentinel, and a watermark moved past the run's start by more than the overlap would skip changes made
# after the read (see watermark_cutoff)
FUTURE_TOLERANCE = datetime.timedelta(seconds=5)
SAMPLE_SIZE = 50
# why: seconds read as milliseconds fall in January 1970 and a 9999 sentinel in seconds read as milliseconds in 1978, both
# more than 40 years ago; milliseconds read as seconds fall after the year 50000
_PLAUSIBLE_SECONDS = decimal.Decimal(40 * 366 * 86400)

_EPOCH = datetime.datetime(1970, 1, 1)
_ISO = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{0,9}))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?\s*$"
)
_NUMBER = re.compile(r"^\s*[+-]?\d+(?:\.\d*)?\s*$")
_NAIVE_CLASSES = frozenset((datetime.datetime, type(None)))
_UTC_SUFFIXES = ("Z", "z", "+00:00", "+0000", "-00:00", "-0000", "+00", "-00")


class ModifiedOnError(ConversionError):
    """A modified-on value that is not a date-time in any form this column may hold."""


@dataclass(frozen=True)
class StampForm:
    """How a column stores its modified-on values, as far as a query bound needs to know."""

    form: str  # iso | epoch_seconds | epoch_milliseconds | native
    separator: str = " "  # iso: between date and time
    date_only: bool = False  # iso or native: dates without a time
    offsets: bool = False  # iso: text with offsets other than UTC (sorts by local time)
    as_text: bool = False  # epoch: numeric text
    aware: bool = False  # native: a column with a time zone


# -- declaration ----------------------------------------------------------------------------------------


def format_problem(kind: str, declared: str) -> str | None:
    """Why a column of ``kind`` cannot be a modified-on field declared with ``declared``; None when it can."""
    allowed = FORMATS_BY_KIND.get(kind)
    if allowed is None:
        return "is of type %s, which cannot hold a date-time (expected a date-time, ISO-8601 text or epoch number column)" % kind
    if declared not in allowed:
        return "is of type %s, which cannot hold %s values (formats for it: %s)" % (kind, declared, ", ".join(allowed))
    return None


# -- parsing --------------------------------------------------------------------------------------------


def to_utc(value: Any, declared: str = "auto") -> datetime.datetime | None:
    """A stored modified-on value as a naive UTC datetime (None stays None); raises ModifiedOnError."""
    if value is None:
        return None
    cls = value.__class__
    if cls is datetime.datetime:
        return value if value.tzinfo is None else _utc(value)
    if isinstance(value, datetime.datetime):
        return _utc(value)
    if isinstance(value, datetime.date):
        return datetime.datetime(value.year, value.month, value.day)
    if isinstance(value, bool):
        raise ModifiedOnError("%r is not a date-time" % (value,))
    if isinstance(value, (int, float, decimal.Decimal)):
        if declared in ("iso", "native"):
            raise ModifiedOnError("%r is a number, not a date-time (the mapping declares the %s format)" % (value, declared))
        return _from_epoch(value, declared)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise ModifiedOnError("%r is not a date-time" % (bytes(value)[:40],)) from None
    if isinstance(value, str):
        if declared in ("epoch_seconds", "epoch_milliseconds") or (declared == "auto" and _NUMBER.match(value)):
            if not _NUMBER.match(value):
                raise ModifiedOnError("%r is not an epoch number (the mapping declares the %s format)" % (value[:40], declared))
            return _from_epoch(decimal.Decimal(value.strip()), declared)
        return _from_iso(value)
    raise ModifiedOnError("%r is not a date-time" % (value,))


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _from_iso(text: str) -> datetime.datetime:
    match = _ISO.match(text)
    if match is None:
        raise ModifiedOnError("%r is not an ISO-8601 date-time" % (text[:40],))
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    micro = int((fraction or "").ljust(6, "0")[:6])  # why: digits past microseconds are dropped (floor), never rounded up
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
        if sign:
            if int(off_h) > 23 or int(off_m or 0) > 59:
                raise ValueError("offset %s%s:%s out of range" % (sign, off_h, off_m or "00"))
            offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m or 0))
            moment = moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError) as exc:
        raise ModifiedOnError("%r is not a valid date-time: %s" % (text[:40], exc)) from None
    return moment


def _from_epoch(number: Any, declared: str) -> datetime.datetime:
    try:
        if declared == "auto":
            declared = "epoch_milliseconds" if abs(number) >= EPOCH_MILLISECONDS_FROM else "epoch_seconds"
        micro_per_unit = 1000 if declared == "epoch_milliseconds" else 1000000
        if isinstance(number, int):
            micro = number * micro_per_unit
        else:
            micro = int(decimal.Decimal(repr(number) if isinstance(number, float) else number) * micro_per_unit)
        return _EPOCH + datetime.timedelta(microseconds=micro)
    except (OverflowError, ValueError, decimal.InvalidOperation):
        raise ModifiedOnError("%r is out of the range of date-times as %s" % (number, declared.replace("_", " "))) from None


def stamp_or_none(value: Any, declared: str = "auto") -> datetime.datetime | None:
    """``to_utc`` for bookkeeping (a coupling's modified-on): None where the value cannot be parsed."""
    try:
        return to_utc(value, declared)
    except ModifiedOnError:
        return None


def parse_column(values: Sequence[Any], declared: str = "auto") -> list[datetime.datetime | None | ModifiedOnError]:
    """``to_utc`` of each value of a page's modified-on column; a value that cannot be parsed gets its error in its place."""
    if _naive(values):
        return list(values)
    out: list[datetime.datetime | None | ModifiedOnError] = []
    for value in values:
        try:
            out.append(to_utc(value, declared))
        except ModifiedOnError as exc:
            out.append(exc)
    return out


def _naive(values: Sequence[Any]) -> bool:
    """Whether every value is a naive datetime or None: what SQL date-time columns mostly give, taken as they are.

    Why: one scan of the classes (in C) spares a call per value, as values.convert_column does.
    """
    return set(map(type, values)) <= _NAIVE_CLASSES and not any(v.tzinfo for v in values if v is not None)


def record_error(exc: ModifiedOnError, mapping: str, side: str, record_id: str, field: str) -> ModifiedOnError:
    """The error of one record's modified-on value, naming mapping, record and field."""
    return ModifiedOnError("mapping %s, %s record %s, modified-on field %s: %s" % (mapping, side, record_id, field, exc))


# -- the watermark --------------------------------------------------------------------------------------


def watermark_cutoff(read_started: datetime.datetime, overlap: float) -> datetime.datetime:
    """The latest value that may become the watermark: the run's start plus a tolerance no larger than the overlap.

    Why: a value later than that (a far-future sentinel such as 9999-12-31, or a wrong clock)
    would move the watermark past changes made after this read; such records are read again
    on the next run instead (and found unchanged).
    """
    return read_started + min(FUTURE_TOLERANCE, datetime.timedelta(seconds=max(overlap, 0)))


def newest(values: Iterable[Any], declared: str, not_after: datetime.datetime | None) -> datetime.datetime | None:
    """The newest of a page's modified-on values (naive UTC) not later than ``not_after``; None and unparseable values are skipped."""
    values = list(values)
    if _naive(values):
        return max((v for v in values if v is not None and (not_after is None or v <= not_after)), default=None)
    best = None
    for value in values:
        if value is None:
            continue
        try:
            moment = to_utc(value, declared)
        except ModifiedOnError:
            continue  # the record fails when it is planned
        if moment is not None and (not_after is None or moment <= not_after) and (best is None or moment > best):
            best = moment
    return best


def read_from(watermark: Any, overlap: float) -> datetime.datetime | None:
    """Where a modified-records read starts: ``overlap`` seconds before the watermark (naive UTC), read with ``>=``."""
    if watermark is None:
        return None
    moment = to_utc(watermark)
    return moment - datetime.timedelta(seconds=max(overlap, 0)) if moment is not None else None


def reread(moment: datetime.datetime | None, watermark: datetime.datetime | None) -> bool:
    """Whether a record was read again only because of the overlap: its modified-on is not after the watermark."""
    return moment is not None and watermark is not None and moment <= watermark


# -- the column's form ----------------------------------------------------------------------------------


def needs_sample(kind: str, native_dates: bool) -> bool:
    """Whether the column's kind leaves its form open: text, numbers, or date-times a database may store as text (SQLite)."""
    return not (native_dates and kind in ("datetime", "date"))


def detect_form(kind: str, sample: Sequence[Any], declared: str = "auto", native_dates: bool = True, aware: bool = False) -> StampForm:
    """The form of a modified-on column, from its kind, the declared format and a sample of its non-null values as stored.

    ``native_dates``: the database returns date-time columns as date-times (not SQLite);
    ``aware``: the column has a time zone.
    """
    if native_dates and kind in ("datetime", "date"):
        return StampForm("native", date_only=kind == "date", aware=aware)
    values = [v for v in sample if v is not None]
    texts = [v for v in values if isinstance(v, str)]
    numbers = [v for v in values if isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool)]
    dates = [v for v in values if isinstance(v, datetime.date)]
    if declared in ("epoch_seconds", "epoch_milliseconds"):
        return StampForm(declared, as_text=kind == "text" or (bool(texts) and not numbers))
    iso_texts = [t for t in texts if not _NUMBER.match(t)]
    if declared == "iso" or iso_texts or (not values and kind in ("datetime", "date", "text")):
        return _iso_form(iso_texts, kind)
    if dates and not texts and not numbers:
        return StampForm("native", date_only=all(not isinstance(v, datetime.datetime) for v in dates),
                         aware=aware or any(getattr(v, "tzinfo", None) is not None for v in dates))
    magnitudes = sorted(abs(decimal.Decimal(str(v).strip())) for v in numbers + texts)
    if declared == "auto":
        declared = _epoch_unit(magnitudes)
    return StampForm(declared, as_text=kind == "text" or (bool(texts) and not numbers))


def _epoch_unit(magnitudes: Sequence[decimal.Decimal]) -> str:
    """Seconds or milliseconds: the unit in which more of the sampled values fall within 40 years of now.

    Why: a far-future sentinel such as 9999-12-31 in seconds (253402300799) is also a 1978 instant in
    milliseconds; with few rows, a median could take one for the other. The median of the magnitudes
    decides only where the values say nothing (none, or as many, near now in either unit).
    """
    now = decimal.Decimal(datetime.datetime.now(datetime.timezone.utc).timestamp())
    low, high = now - _PLAUSIBLE_SECONDS, now + _PLAUSIBLE_SECONDS
    seconds = sum(1 for m in magnitudes if low <= m <= high)
    milliseconds = sum(1 for m in magnitudes if low * 1000 <= m <= high * 1000)
    if seconds != milliseconds:
        return "epoch_seconds" if seconds > milliseconds else "epoch_milliseconds"
    median = magnitudes[(len(magnitudes) - 1) // 2] if magnitudes else 0
    return "epoch_milliseconds" if median >= EPOCH_MILLISECONDS_FROM else "epoch_seconds"


def _iso_form(texts: Sequence[str], kind: str) -> StampForm:
    if not texts:
        # why: SQLAlchemy stores SQLite date-times as 'YYYY-MM-DD HH:MM:SS.ffffff'; text columns usually hold the 'T' form
        return StampForm("iso", separator=" " if kind in ("datetime", "date") else "T", date_only=kind == "date")
    stripped = [t.strip() for t in texts]
    return StampForm(
        "iso",
        # why: ' ' sorts before 'T', so with both in a column the bound with ' ' is the one that misses nothing
        separator=" " if any(len(t) > 10 and t[10] == " " for t in stripped) else "T",
        date_only=any(len(t) == 10 for t in stripped),
        offsets=any(_has_local_offset(t) for t in stripped),
    )


def _has_local_offset(text: str) -> bool:
    match = _ISO.match(text)
    return bool(match and match.group(9)) and not text.endswith(_UTC_SUFFIXES)


def render(moment: datetime.datetime, form: StampForm) -> Any:
    """A naive UTC instant as a lower bound in the column's form: never after any stored value of the same instant or later.

    Text is compared as text by the database, so the bound is the shortest text of the
    instant (seconds, no fraction, no zone: a prefix of every longer form of it); text with
    local offsets is bound 14 hours earlier. Numbers are floored to the column's unit.
    """
    if form.form == "native":
        if form.date_only:
            return moment.date()
        return moment.replace(tzinfo=datetime.timezone.utc) if form.aware else moment
    if form.form in ("epoch_seconds", "epoch_milliseconds"):
        unit = datetime.timedelta(milliseconds=1) if form.form == "epoch_milliseconds" else datetime.timedelta(seconds=1)
        number = (moment - _EPOCH) // unit
        return str(number) if form.as_text else number
    if form.offsets:
        moment -= _LARGEST_OFFSET
    if form.date_only:
        return "%04d-%02d-%02d" % (moment.year, moment.month, moment.day)
    return "%04d-%02d-%02d%s%02d:%02d:%02d" % (moment.year, moment.month, moment.day, form.separator, moment.hour, moment.minute, moment.second)
