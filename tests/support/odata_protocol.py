"""Protocol-level values and parsers shared by the dispatcher, the batch executor and the
HTTP handler: request/response records, case-insensitive headers, ``Prefer`` parsing, ETag
matching, resource-path and key-predicate parsing, and the opaque ``$skiptoken`` encoding.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .odata_model import ODataError, is_guid, normalize_guid
from .query_eval import QueryError

JSON_TYPE = "application/json; odata.metadata=minimal"


# --------------------------------------------------------------------------------------------
# Request / response values
# --------------------------------------------------------------------------------------------


class Headers:
    """Case-insensitive, multi-valued request headers."""

    def __init__(self, items: list[tuple[str, str]] | dict[str, str] | None = None):
        if isinstance(items, dict):
            items = list(items.items())
        self._items: list[tuple[str, str]] = list(items or [])

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else default

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self._items if k.lower() == name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_all(name))

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


@dataclass
class ApiRequest:
    method: str
    path: str  # percent-decoded path, no query
    query: list[tuple[str, str]]
    headers: Headers
    body: bytes = b""
    in_batch: bool = False

    def param(self, name: str) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return None

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ODataError(400, "", f"The request body is not valid JSON: {exc}") from None


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Route:
    kind: str  # collection, entity, count, batch, bulk, companies, company, service, whoami, unknown
    entity_set: str | None = None
    key_text: str | None = None
    company: str | None = None
    action: str | None = None
    segment: str | None = None  # the offending segment for "Resource not found"


def parse_prefer(headers: Headers) -> dict[str, str | None]:
    """``Prefer: odata.maxpagesize=2, return=representation`` -> {name: value}."""
    prefs: dict[str, str | None] = {}
    for raw in headers.get_all("Prefer"):
        for item in _split_outside_quotes(raw, ","):
            item = item.split(";")[0].strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            prefs[name.strip().lower()] = value.strip().strip('"') if sep else None
    return prefs


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, current, quote_char = [], [], None
    for char in text:
        if quote_char:
            current.append(char)
            if char == quote_char:
                quote_char = None
        elif char in "\"'":
            quote_char = char
            current.append(char)
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _opaque(tag: str) -> str:
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    return tag


def etag_matches(header_value: str, current: str) -> bool:
    if header_value.strip() == "*":
        return True
    return any(_opaque(tag) == _opaque(current) for tag in _split_outside_quotes(header_value, ",") if tag.strip())


def split_segments(path: str) -> list[tuple[str, str | None]]:
    """``companies(x)/customers(y)`` -> [("companies", "x"), ("customers", "y")]."""
    segments: list[tuple[str, str | None]] = []
    i, n = 0, len(path)
    while i < n:
        start = i
        while i < n and path[i] not in "(/":
            i += 1
        name = path[start:i]
        key = None
        if i < n and path[i] == "(":
            depth, j, in_quote = 0, i, False
            while j < n:
                char = path[j]
                if char == "'":
                    in_quote = not in_quote
                elif not in_quote and char == "(":
                    depth += 1
                elif not in_quote and char == ")":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise QueryError(f"Unbalanced parentheses in '{path}'.")
            key = path[i + 1 : j]
            i = j + 1
        segments.append((name, key))
        if i < n and path[i] == "/":
            i += 1
        elif i < n:
            raise QueryError(f"Bad Request - Error in query syntax near '{path[i:]}'.")
    return segments


def parse_key_text(text: str) -> dict[str, Any]:
    """``<guid>`` -> {"": guid}; ``accountnumber='A1',name='x'`` -> {"accountnumber": "A1", ...}."""
    text = text.strip()
    if is_guid(text):
        return {"": normalize_guid(text)}
    if text.startswith("'"):
        return {"": _parse_key_value(text)}
    result: dict[str, Any] = {}
    for piece in _split_outside_quotes(text, ","):
        name, sep, value = piece.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"Bad Request - Error in query syntax: invalid key '{text}'.")
        result[name.strip()] = _parse_key_value(value.strip())
    return result


def _parse_key_value(value: str) -> Any:
    if len(value) >= 2 and value[0] == "'" and value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if is_guid(value):
        return normalize_guid(value)
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return float(value)
    raise QueryError(f"Bad Request - Error in query syntax: unrecognized key value {value}.")


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    padded = token + "=" * (-len(token) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode()))
