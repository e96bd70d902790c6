"""Execution of ``$batch`` requests (multipart/mixed for both flavours, JSON for Business Central).

Documented behaviour:

* Dataverse: up to 1000 requests per batch, no nested batches; requests run in order; change
  sets are atomic and may reference earlier results as ``$<Content-ID>``; GET must not be in a
  change set; the batch stops at the first failure unless ``Prefer: odata.continue-on-error``
  (webapi/execute-batch-operations-using-web-api). Created entities are answered with
  ``Location`` and ``OData-EntityId`` (same page).
* Business Central: at most 100 operations per ``$batch`` (administration/operational-limits-online
  "Max batch size"); JSON batching with ``{"requests": [...]}`` and ``Isolation: snapshot`` makes the
  whole batch transactional: responses are still returned, but nothing is applied when one
  fails (webservices/use-odata-batch).
* A failed change set is answered with the failing request's response alone (OData 4.0 part 1,
  11.7.4), and in JSON batches the other members of a failed atomicity group get 424.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .batch_codec import (
    BatchChangeSet,
    BatchChangeSetResponse,
    BatchFormatError,
    BatchRequestPart,
    BatchResponsePart,
    encode_json_response,
    encode_multipart_response,
    parse_json_request,
    parse_multipart_request,
)
from .odata_model import ODataError
from .odata_protocol import ApiRequest, ApiResponse, Headers, parse_prefer

if TYPE_CHECKING:  # pragma: no cover
    from .odata_dispatch import Dispatcher


class BatchExecutor:
    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.svc = dispatcher.svc
        self.content_ids: dict[str, str] = {}

    # ------------------------------------------------------------------------------------------
    def execute(self, req: ApiRequest) -> ApiResponse:
        if req.method.upper() != "POST":
            raise ODataError(405, "0x0" if self.dispatcher.dv else "BadRequest_MethodNotAllowed", "$batch requires POST.")
        content_type = req.headers.get("Content-Type") or ""
        prefs = parse_prefer(req.headers)
        continue_on_error = "odata.continue-on-error" in prefs
        try:
            if content_type.lower().startswith("multipart/mixed"):
                items = parse_multipart_request(content_type, req.body)
                json_format = False
            elif content_type.lower().startswith("application/json") and not self.dispatcher.dv:
                items = list(parse_json_request(req.body))
                json_format = True
            else:
                raise ODataError(
                    415 if not content_type else 400,
                    "0x0" if self.dispatcher.dv else "BadRequest",
                    f"The batch request Content-Type '{content_type}' is not supported; use multipart/mixed"
                    + ("" if self.dispatcher.dv else " or application/json") + ".",
                )
        except BatchFormatError as exc:
            raise ODataError(400, "0x0" if self.dispatcher.dv else "BadRequest", f"The batch request body is malformed: {exc}") from None

        operations = sum(len(i.parts) if isinstance(i, BatchChangeSet) else 1 for i in items)
        limit = self.svc.max_batch_operations
        if operations > limit:
            raise ODataError(
                400,
                "0x0" if self.dispatcher.dv else "BadRequest",
                "The current batch message contains too many parts. Only batch messages with a maximum number of "
                f"'{limit}' query operations, including changeset operations, are allowed.",
            )
        self.svc.batch_operations += operations

        headers = {"OData-Version": "4.0"}
        if continue_on_error:
            headers["Preference-Applied"] = "odata.continue-on-error"
        isolation = (req.headers.get("Isolation") or "").lower() == "snapshot" and not self.dispatcher.dv
        store = self.svc._store
        if isolation:
            store.begin()
        if json_format:
            parts = self._run_json(items, req, continue_on_error)  # type: ignore[arg-type]
            failed = any(p.status >= 400 for p in parts)
            body = encode_json_response(parts)
            headers["Content-Type"] = "application/json; odata.metadata=minimal"
        else:
            results = self._run_multipart(items, req, continue_on_error)
            failed = any(
                (p.status >= 400) for r in results for p in (r.parts if isinstance(r, BatchChangeSetResponse) else [r])
            )
            content_type_out, body = encode_multipart_response(results)
            headers["Content-Type"] = content_type_out
        if isolation:
            if failed:
                store.rollback()
            else:
                store.commit()
        return ApiResponse(200, headers, body)

    # ------------------------------------------------------------------------------------------
    def _run_multipart(self, items: list[Any], outer: ApiRequest, continue_on_error: bool) -> list[Any]:
        results: list[Any] = []
        for item in items:
            if isinstance(item, BatchChangeSet):
                result = self._run_changeset(item.parts, outer)
                results.append(result)
                failed = isinstance(result, BatchResponsePart)
            else:
                response = self._run_part(item, outer)
                results.append(response)
                failed = response.status >= 400
            if failed and not continue_on_error:
                break
        return results

    def _run_changeset(self, parts: list[BatchRequestPart], outer: ApiRequest) -> BatchChangeSetResponse | BatchResponsePart:
        result, _ignored = self._run_atomic(parts, outer)
        return result

    def _run_atomic(self, parts: list[BatchRequestPart], outer: ApiRequest) -> tuple[BatchChangeSetResponse | BatchResponsePart, int | None]:
        """Run parts in one transaction; on failure roll back and return (failing response, its index)."""
        store = self.svc._store
        store.begin()
        done: list[BatchResponsePart] = []
        for position, part in enumerate(parts):
            if part.method.upper() == "GET":
                error = ODataError(400, "0x0" if self.dispatcher.dv else "BadRequest", "GET requests must not be included in a change set.")
                response = self._as_part(self.dispatcher.error_response(error), part)
            else:
                response = self._run_part(part, outer)
            if response.status >= 400:
                store.rollback()
                for earlier in parts[:position]:
                    ref = earlier.content_id
                    if ref is not None:
                        self.content_ids.pop(ref, None)
                return response, position
            done.append(response)
        store.commit()
        return BatchChangeSetResponse(done), None

    def _run_json(self, parts: list[BatchRequestPart], outer: ApiRequest, continue_on_error: bool) -> list[BatchResponsePart]:
        results: list[BatchResponsePart] = []
        index = 0
        while index < len(parts):
            part = parts[index]
            if part.atomicity_group:
                group = [p for p in parts[index:] if p.atomicity_group == part.atomicity_group]
                index += len(group)
                result, failed_at = self._run_atomic(group, outer)
                if isinstance(result, BatchChangeSetResponse):
                    results.extend(result.parts)
                    failed = False
                else:
                    for position, member in enumerate(group):
                        if position == failed_at:
                            results.append(result)
                        else:
                            body = json.dumps({"error": {"code": "", "message": "Failed Dependency"}}).encode()
                            headers = {"Content-Type": "application/json", "OData-Version": "4.0"}
                            results.append(BatchResponsePart(424, headers, body, request_id=member.request_id))
                    failed = True
            else:
                index += 1
                response = self._run_part(part, outer)
                results.append(response)
                failed = response.status >= 400
            if failed and not continue_on_error:
                break
        return results

    # ------------------------------------------------------------------------------------------
    def _resolve_url(self, url: str) -> tuple[str, list[tuple[str, str]]]:
        if url.startswith("$"):
            ref, _ignored, rest = url[1:].partition("/")
            base = self.content_ids.get(ref)
            if base is None:
                raise ODataError(400, "0x0" if self.dispatcher.dv else "BadRequest", f"Content-ID reference '${ref}' is not defined.")
            url = base + ("/" + rest if rest else "")
        parsed = urlsplit(url)
        path = unquote(parsed.path)
        if not parsed.scheme and not path.startswith("/"):
            path = self.svc.api_root_path + path
        return path, parse_qsl(parsed.query, keep_blank_values=True)

    def _substitute_references(self, body: bytes) -> bytes:
        if not self.content_ids or b"$" not in body:
            return body
        try:
            document = json.loads(body)
        except ValueError:
            return body
        if isinstance(document, dict):
            for name, value in list(document.items()):
                if isinstance(value, str) and value.startswith("$") and value[1:] in self.content_ids:
                    document[name] = self.content_ids[value[1:]]
        return json.dumps(document).encode()

    def _run_part(self, part: BatchRequestPart, outer: ApiRequest) -> BatchResponsePart:
        try:
            path, query = self._resolve_url(part.url)
        except ODataError as exc:
            return self._as_part(self.dispatcher.error_response(exc), part)
        header_items = list(part.headers.items())
        inner_names = {k.lower() for k, _ignored in header_items}
        for name in ("Company", "Authorization"):
            value = outer.headers.get(name)
            if value is not None and name.lower() not in inner_names:
                header_items.append((name, value))
        request = ApiRequest(
            method=part.method.upper(),
            path=path,
            query=query,
            headers=Headers(header_items),
            body=self._substitute_references(part.body),
            in_batch=True,
        )
        response = self.dispatcher.handle(request)
        result = self._as_part(response, part)
        if part.content_id is not None and response.status < 300:
            location = response.headers.get("OData-EntityId") or response.headers.get("Location")
            if location:
                self.content_ids[part.content_id] = location
        return result

    @staticmethod
    def _as_part(response: ApiResponse, part: BatchRequestPart) -> BatchResponsePart:
        return BatchResponsePart(
            response.status,
            dict(response.headers),
            response.body,
            content_id=part.content_id if part.request_id is None else None,
            request_id=part.request_id,
        )
