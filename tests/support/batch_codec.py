"""Encoding and decoding of OData ``$batch`` payloads.

* ``multipart/mixed`` (OData 4.0 / Dataverse "Execute batch operations using the Web API"):
  a batch holds ``application/http`` parts and change sets (nested ``multipart/mixed``);
  change-set parts may carry ``Content-ID`` so later parts can reference ``$<id>``.
* JSON batch (OData 4.01; Business Central "Using OData transactional $batch requests"):
  ``{"requests": [{"id", "method", "url", "headers", "body", "atomicityGroup"}]}`` answered by
  ``{"responses": [{"id", "status", "headers", "body"}]}``.

Both directions are implemented for both formats so tests (and engine tests) can build
requests and read responses with the same code the double uses.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any


class BatchFormatError(ValueError):
    """The batch body is not well formed."""


@dataclass
class BatchRequestPart:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None
    atomicity_group: str | None = None  # JSON batch only
    request_id: str | None = None  # JSON batch "id"

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


@dataclass
class BatchChangeSet:
    parts: list[BatchRequestPart] = field(default_factory=list)


@dataclass
class BatchResponsePart:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None
    request_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class BatchChangeSetResponse:
    parts: list[BatchResponsePart] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# multipart helpers
# --------------------------------------------------------------------------------------------


def content_type_param(content_type: str, name: str) -> str | None:
    for piece in content_type.split(";")[1:]:
        key, _ignored, value = piece.strip().partition("=")
        if key.strip().lower() == name.lower():
            return value.strip().strip('"')
    return None


def _split_head(blob: bytes) -> tuple[bytes, bytes]:
    """Split a MIME entity (or an HTTP message) into the header block and the body."""
    match = re.search(rb"\r?\n\r?\n", blob)
    if not match:
        return blob, b""
    return blob[: match.start()], blob[match.end() :]


def _parse_headers(lines: Iterable[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in lines:
        line = raw.decode("utf-8").strip()
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BatchFormatError(f"malformed header line {line!r}")
        headers[name.strip()] = value.strip()
    return headers


def _get(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def split_multipart(body: bytes, boundary: str) -> list[bytes]:
    """Return the raw parts (headers + content) between ``--boundary`` delimiters."""
    delimiter = b"--" + boundary.encode()
    pieces = re.split(rb"(?:\r?\n)?" + re.escape(delimiter), body)
    if len(pieces) < 2:
        raise BatchFormatError(f"boundary {boundary!r} not found in the batch body")
    parts: list[bytes] = []
    closed = False
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            closed = True
            break
        parts.append(re.sub(rb"^[ \t]*\r?\n", b"", piece, count=1))
    if not closed:
        raise BatchFormatError(f"the closing delimiter --{boundary}-- is missing")
    return parts


def _parse_http_request(blob: bytes) -> tuple[str, str, dict[str, str], bytes]:
    head, body = _split_head(blob.lstrip(b"\r\n"))
    lines = re.split(rb"\r?\n", head)
    request_line = lines[0].decode("utf-8").strip()
    match = re.match(r"^([A-Z]+)\s*(\S+)(?:\s+HTTP/\d\.\d)?$", request_line)
    if not match:
        raise BatchFormatError(f"malformed request line {request_line!r}")
    return match.group(1), match.group(2), _parse_headers(lines[1:]), body.rstrip(b"\r\n")


def _parse_http_response(blob: bytes) -> tuple[int, dict[str, str], bytes]:
    head, body = _split_head(blob.lstrip(b"\r\n"))
    lines = re.split(rb"\r?\n", head)
    status_line = lines[0].decode("utf-8").strip()
    match = re.match(r"^HTTP/\d\.\d\s+(\d{3})", status_line)
    if not match:
        raise BatchFormatError(f"malformed status line {status_line!r}")
    return int(match.group(1)), _parse_headers(lines[1:]), body.rstrip(b"\r\n")


def _parse_part(raw: bytes, response: bool) -> tuple[dict[str, str], bytes]:
    head, content = _split_head(raw)
    return _parse_headers(re.split(rb"\r?\n", head)), content


# --------------------------------------------------------------------------------------------
# multipart requests
# --------------------------------------------------------------------------------------------


def parse_multipart_request(content_type: str, body: bytes) -> list[BatchRequestPart | BatchChangeSet]:
    boundary = content_type_param(content_type, "boundary")
    if not boundary:
        raise BatchFormatError("the batch Content-Type has no boundary parameter")
    items: list[BatchRequestPart | BatchChangeSet] = []
    for raw in split_multipart(body, boundary):
        headers, content = _parse_part(raw, response=False)
        part_type = (_get(headers, "Content-Type") or "").lower()
        if part_type.startswith("multipart/mixed"):
            inner_boundary = content_type_param(_get(headers, "Content-Type") or "", "boundary")
            if not inner_boundary:
                raise BatchFormatError("a change set has no boundary parameter")
            changeset = BatchChangeSet()
            for inner in split_multipart(content, inner_boundary):
                inner_headers, inner_content = _parse_part(inner, response=False)
                if not (_get(inner_headers, "Content-Type") or "").lower().startswith("application/http"):
                    raise BatchFormatError("change-set parts must have Content-Type application/http")
                method, url, req_headers, req_body = _parse_http_request(inner_content)
                changeset.parts.append(BatchRequestPart(method, url, req_headers, req_body, _get(inner_headers, "Content-ID")))
            items.append(changeset)
        elif part_type.startswith("application/http"):
            method, url, req_headers, req_body = _parse_http_request(content)
            items.append(BatchRequestPart(method, url, req_headers, req_body, _get(headers, "Content-ID")))
        else:
            raise BatchFormatError(f"unexpected batch part Content-Type {part_type!r}")
    return items


def _http_request_blob(part: BatchRequestPart) -> bytes:
    lines = [f"{part.method} {part.url} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in part.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + part.body


def encode_multipart_request(items: Iterable[BatchRequestPart | BatchChangeSet], boundary: str | None = None) -> tuple[str, bytes]:
    """Build a ``multipart/mixed`` batch body; returns (Content-Type, body)."""
    boundary = boundary or f"batch_{uuid.uuid4()}"
    out = bytearray()
    for item in items:
        out += f"--{boundary}\r\n".encode()
        if isinstance(item, BatchChangeSet):
            cs = f"changeset_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={cs}\r\n\r\n".encode()
            for part in item.parts:
                out += f"--{cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n".encode()
                if part.content_id is not None:
                    out += f"Content-ID: {part.content_id}\r\n".encode()
                out += b"\r\n" + _http_request_blob(part) + b"\r\n"
            out += f"--{cs}--\r\n".encode()
        else:
            out += b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            if item.content_id is not None:
                out += f"Content-ID: {item.content_id}\r\n".encode()
            out += b"\r\n" + _http_request_blob(item) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", bytes(out)


# --------------------------------------------------------------------------------------------
# multipart responses
# --------------------------------------------------------------------------------------------


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _http_response_blob(part: BatchResponsePart) -> bytes:
    lines = [f"HTTP/1.1 {part.status} {_reason(part.status)}"]
    lines += [f"{k}: {v}" for k, v in part.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + part.body


def encode_multipart_response(items: Iterable[BatchResponsePart | BatchChangeSetResponse]) -> tuple[str, bytes]:
    """Build a batch response body the way Dataverse shows it (batchresponse_/changesetresponse_)."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out = bytearray()
    for item in items:
        out += f"--{boundary}\r\n".encode()
        if isinstance(item, BatchChangeSetResponse):
            cs = f"changesetresponse_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={cs}\r\n\r\n".encode()
            for part in item.parts:
                out += f"--{cs}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n".encode()
                if part.content_id is not None:
                    out += f"Content-ID: {part.content_id}\r\n".encode()
                out += b"\r\n" + _http_response_blob(part) + b"\r\n"
            out += f"--{cs}--\r\n".encode()
        else:
            out += b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            if item.content_id is not None:
                out += f"Content-ID: {item.content_id}\r\n".encode()
            out += b"\r\n" + _http_response_blob(item) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", bytes(out)


def parse_multipart_response(content_type: str, body: bytes) -> list[BatchResponsePart | BatchChangeSetResponse]:
    boundary = content_type_param(content_type, "boundary")
    if not boundary:
        raise BatchFormatError("the batch response Content-Type has no boundary parameter")
    items: list[BatchResponsePart | BatchChangeSetResponse] = []
    for raw in split_multipart(body, boundary):
        headers, content = _parse_part(raw, response=True)
        part_type = _get(headers, "Content-Type") or ""
        if part_type.lower().startswith("multipart/mixed"):
            inner_boundary = content_type_param(part_type, "boundary") or ""
            changeset = BatchChangeSetResponse()
            for inner in split_multipart(content, inner_boundary):
                inner_headers, inner_content = _parse_part(inner, response=True)
                status, resp_headers, resp_body = _parse_http_response(inner_content)
                changeset.parts.append(BatchResponsePart(status, resp_headers, resp_body, _get(inner_headers, "Content-ID")))
            items.append(changeset)
        else:
            status, resp_headers, resp_body = _parse_http_response(content)
            items.append(BatchResponsePart(status, resp_headers, resp_body, _get(headers, "Content-ID")))
    return items


def flatten_responses(items: Iterable[BatchResponsePart | BatchChangeSetResponse]) -> list[BatchResponsePart]:
    flat: list[BatchResponsePart] = []
    for item in items:
        flat.extend(item.parts if isinstance(item, BatchChangeSetResponse) else [item])
    return flat


# --------------------------------------------------------------------------------------------
# JSON batch
# --------------------------------------------------------------------------------------------


def parse_json_request(body: bytes) -> list[BatchRequestPart]:
    try:
        document = json.loads(body or b"{}")
    except ValueError as exc:
        raise BatchFormatError(f"the JSON batch body is not valid JSON: {exc}") from None
    requests = document.get("requests") if isinstance(document, dict) else None
    if not isinstance(requests, list):
        raise BatchFormatError("a JSON batch body needs a 'requests' array")
    parts: list[BatchRequestPart] = []
    for entry in requests:
        if not isinstance(entry, dict) or "method" not in entry or "url" not in entry:
            raise BatchFormatError("every JSON batch request needs 'method' and 'url'")
        body_value = entry.get("body")
        raw = b"" if body_value is None else json.dumps(body_value).encode()
        headers = {str(k): str(v) for k, v in (entry.get("headers") or {}).items()}
        parts.append(
            BatchRequestPart(
                method=str(entry["method"]).upper(),
                url=str(entry["url"]),
                headers=headers,
                body=raw,
                content_id=None if entry.get("id") is None else str(entry["id"]),
                atomicity_group=entry.get("atomicityGroup"),
                request_id=None if entry.get("id") is None else str(entry["id"]),
            )
        )
    return parts


def encode_json_response(parts: Iterable[BatchResponsePart]) -> bytes:
    responses = []
    for part in parts:
        entry: dict[str, Any] = {
            "id": part.request_id,
            "status": part.status,
            "headers": {k.lower(): v for k, v in part.headers.items()},
        }
        if part.body:
            try:
                entry["body"] = json.loads(part.body)
            except ValueError:
                entry["body"] = part.body.decode("utf-8", "replace")
        responses.append(entry)
    return json.dumps({"responses": responses}).encode()


def encode_json_request(parts: Iterable[BatchRequestPart]) -> bytes:
    requests = []
    for part in parts:
        entry: dict[str, Any] = {"method": part.method, "url": part.url, "headers": part.headers}
        if part.request_id is not None:
            entry["id"] = part.request_id
        if part.atomicity_group is not None:
            entry["atomicityGroup"] = part.atomicity_group
        if part.body:
            entry["body"] = json.loads(part.body)
        requests.append(entry)
    return json.dumps({"requests": requests}).encode()
