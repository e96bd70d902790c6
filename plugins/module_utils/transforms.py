# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field value rules of a mapping: named transforms and value maps.

A transform list is declared as data, for example ``[trim, upper, {truncate: 40}]``; each
entry is a name or a one-key dict of a name and its argument. Unknown names and bad
arguments raise ``ValueError`` when the mapping is loaded (the mapping turns it into a
MappingError); a value a rule cannot handle raises ConversionError, which fails only
its record.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, converter, id_text

# why: annotated so the text-only wrapper sees str -> str (a bare dict of methods infers as plain functions)
TEXT_RULES: dict[str, Callable[[str], str]] = {"trim": str.strip, "upper": str.upper, "lower": str.lower}
TRANSFORMS = ("trim", "upper", "lower", "truncate", "regex_replace", "date_format", "number_format")

_to_datetime = converter("datetime")
_to_decimal = converter("decimal")


def _text_only(func: Callable[[str], str]) -> Callable[[Any], Any]:
    """String rules leave non-text values (numbers, dates, nulls) as they are."""

    def run(value: Any) -> Any:
        return func(value) if isinstance(value, str) else value

    return run


def _truncate(arg: Any, max_length: int | None) -> Callable[[Any], Any]:
    if arg is None:
        length = max_length
    elif isinstance(arg, int) and not isinstance(arg, bool) and arg > 0:
        length = arg
    else:
        raise ValueError("truncate takes a positive length or nothing (the destination field's length), got %r" % (arg,))
    if length is None:
        return lambda value: value  # why: a destination without a length limit needs no cut
    return _text_only(lambda s: s[:length])


def _regex_replace(arg: Any) -> Callable[[Any], Any]:
    if isinstance(arg, Mapping):
        pattern, replacement = arg.get("pattern"), arg.get("replacement", "")
    elif isinstance(arg, Sequence) and not isinstance(arg, str) and len(arg) == 2:
        pattern, replacement = arg
    else:
        raise ValueError("regex_replace takes {pattern: ..., replacement: ...}, got %r" % (arg,))
    if not isinstance(pattern, str) or not isinstance(replacement, str):
        raise ValueError("regex_replace needs a text pattern and a text replacement")
    try:
        compiled = re.compile(pattern)
        compiled.sub(replacement, "")
    except (re.error, IndexError) as exc:
        raise ValueError("regex_replace: invalid pattern or replacement: %s" % exc) from None
    return _text_only(lambda s: compiled.sub(replacement, s))


def _date_format(arg: Any) -> Callable[[Any], Any]:
    if not isinstance(arg, str) or not arg:
        raise ValueError("date_format takes a strftime format such as '%%Y-%%m-%%d', got %r" % (arg,))

    def run(value: Any) -> Any:
        if value is None or value == "":
            return None
        if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
            return value.strftime(arg)
        return _to_datetime(value).strftime(arg)

    return run


def _number_format(arg: Any) -> Callable[[Any], Any]:
    if not isinstance(arg, str) or not arg:
        raise ValueError("number_format takes a format specification such as ',.2f', got %r" % (arg,))
    try:
        format(decimal.Decimal("1.5"), arg)
    except (ValueError, TypeError) as exc:
        raise ValueError("number_format: invalid format specification %r: %s" % (arg, exc)) from None

    def run(value: Any) -> Any:
        if value is None or value == "":
            return None
        return format(_to_decimal(value), arg)

    return run


def build_transforms(spec: Sequence[Any] | None, max_length: int | None) -> Callable[[Any], Any] | None:
    """One function applying the declared transforms in order; None when there are none."""
    if not spec:
        return None
    steps: list[Callable[[Any], Any]] = []
    for entry in spec:
        if isinstance(entry, str):
            name, arg = entry, None
        elif isinstance(entry, Mapping) and len(entry) == 1:
            name, arg = next(iter(entry.items()))
        else:
            raise ValueError("a transform is a name or a one-key dict {name: argument}, got %r" % (entry,))
        if name not in TRANSFORMS:
            raise ValueError("unknown transform %r (known: %s)" % (name, ", ".join(TRANSFORMS)))
        if name in TEXT_RULES:
            if arg is not None:
                raise ValueError("transform %s takes no argument" % name)
            steps.append(_text_only(TEXT_RULES[name]))
        elif name == "truncate":
            steps.append(_truncate(arg, max_length))
        elif name == "regex_replace":
            steps.append(_regex_replace(arg))
        elif name == "date_format":
            steps.append(_date_format(arg))
        else:
            steps.append(_number_format(arg))

    def run(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return run


class ValueMap:
    """Option values translated between the sides: ``values`` maps local values to integration values.

    Values are compared as text of their canonical form, so 1, 1.0, True and '1' are one key.
    A null stays null. An unmapped value takes the declared default of the destination side,
    or fails its record.
    """

    _MISSING = object()

    def __init__(self, spec: Mapping[str, Any]):
        values = spec.get("values")
        if not isinstance(values, Mapping) or not values:
            raise ValueError("value_map needs 'values', a non-empty dict of local value: integration value")
        self.forward = {id_text(k): v for k, v in values.items()}
        self.defaults = {
            "integration": spec["default"] if "default" in spec else self._MISSING,
            "local": spec["local_default"] if "local_default" in spec else self._MISSING,
        }
        reverse: dict[str, Any] = {}
        self.ambiguous: list[str] = []
        for k, v in values.items():
            key = id_text(v) if v is not None else None
            if key is None:
                continue
            if key in reverse:
                self.ambiguous.append(key)
            reverse[key] = k
        self.reverse = reverse

    def translate(self, value: Any, dst: str) -> Any:
        """Translate a value written to side ``dst``."""
        if value is None:
            return None
        table = self.forward if dst == "integration" else self.reverse
        key = id_text(value)
        if key in table:
            return table[key]
        default = self.defaults[dst]
        if default is self._MISSING:
            raise ConversionError("value %r has no entry in the value map%s" % (value, "" if dst == "integration" else " (read in reverse)"))
        return default
