"""HTTP glue of the OData test double: token endpoint, bearer-token check, fault injection,
request counting, and the ``http.server`` handler class.

Token endpoint (Microsoft identity platform, client credentials grant):
``POST /{tenant}/oauth2/v2.0/token`` with form fields ``grant_type=client_credentials``,
``client_id``, ``client_secret`` (or HTTP Basic client authentication) and ``scope``
(``<resource>/.default``). Success: ``{"token_type": "Bearer", "expires_in", "ext_expires_in",
"access_token"}``. Errors use the identity platform shape ``{"error", "error_description",
"error_codes", "timestamp", "trace_id", "correlation_id"}``.

API requests without a valid bearer token get 401 with a ``WWW-Authenticate: Bearer ...``
challenge (Dataverse: compose-http-requests-handle-errors lists 401 for missing/expired auth
tickets; Business Central: Authentication_InvalidCredentials in webservices/dynamics-error-codes).
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import socket
import struct
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from .faults import LOST_AFTER_COMMIT
from .odata_model import DATAVERSE
from .odata_protocol import ApiRequest, ApiResponse, Headers

if TYPE_CHECKING:  # pragma: no cover
    from .odata_service import ODataService

KIND_BY_ROUTE = {
    "collection": "collection",
    "count": "collection",
    "companies": "collection",
    "entity": "entity",
    "company": "entity",
    "batch": "batch",
    "bulk": "bulk",
    "not_implemented": "entity",
}


# --------------------------------------------------------------------------------------------
# token endpoint
# --------------------------------------------------------------------------------------------


def _identity_error(status: int, error: str, code: int, description: str, svc: ODataService) -> ApiResponse:
    trace = str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {trace} Timestamp: {svc.clock():%Y-%m-%d %H:%M:%SZ}",
        "error_codes": [code],
        "timestamp": f"{svc.clock():%Y-%m-%d %H:%M:%SZ}",
        "trace_id": trace,
        "correlation_id": trace,
    }
    return ApiResponse(status, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store, no-cache"}, json.dumps(body).encode())


def token_endpoint(svc: ODataService, method: str, path: str, headers: Headers, body: bytes) -> ApiResponse:
    tenant = path.strip("/").split("/")[0]
    if method != "POST":
        return _identity_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.", svc)
    if tenant not in (svc.tenant_id, "organizations", "common") and tenant.lower() != svc.tenant_id.lower():
        return _identity_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.", svc)
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    authorization = headers.get("Authorization") or ""
    if authorization.lower().startswith("basic "):
        try:
            user, _ignored, password = base64.b64decode(authorization[6:].strip()).decode().partition(":")
        except ValueError:
            user, password = "", ""
        form.setdefault("client_id", unquote(user))
        form.setdefault("client_secret", unquote(password))
    grant_type = form.get("grant_type")
    if not grant_type:
        return _identity_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.", svc)
    if grant_type != "client_credentials":
        return _identity_error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'.", svc)
    client_id = form.get("client_id")
    if not client_id:
        return _identity_error(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.", svc)
    secret = svc.client_secret_of(client_id)
    if secret is None:
        return _identity_error(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{svc.tenant_id}'.",
            svc,
        )
    if form.get("client_secret") != secret:
        return _identity_error(401, "invalid_client", 7000215, "Invalid client secret provided.", svc)
    scope = form.get("scope", "")
    scopes = scope.split()
    if not scopes or not all(s.endswith("/.default") for s in scopes):
        return _identity_error(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
            "/.default suffixed to the resource identifier (application ID URI).",
            svc,
        )
    accepted = {s.rstrip("/").lower() for s in svc.accepted_scopes()}
    if any(s.rstrip("/").lower() not in accepted for s in scopes):
        return _identity_error(
            400,
            "invalid_resource",
            500011,
            f"The resource principal named {scopes[0][: -len('/.default')]} was not found in the tenant named {svc.tenant_id}.",
            svc,
        )
    token = svc.issue_token(client_id)
    lifetime = max(0, int(svc.token_lifetime))
    payload = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
    return ApiResponse(200, {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store, no-cache"}, json.dumps(payload).encode())


def new_token() -> str:
    # Opaque to the client; real tokens are JWTs, clients must not parse them.
    return "eyJ0eXAiOiJKV1QifQ." + secrets.token_urlsafe(32)


# --------------------------------------------------------------------------------------------
# auth check and faults
# --------------------------------------------------------------------------------------------


def check_auth(svc: ODataService, headers: Headers) -> ApiResponse | None:
    if not svc.require_auth:
        return None
    authorization = (headers.get("Authorization") or "").strip()
    problem = None
    if not authorization.lower().startswith("bearer "):
        problem = None if not authorization else 'error="invalid_request"'
    else:
        state = svc._token_state(bearer_token(headers) or "")
        if state == "valid":
            return None
        problem = 'error="invalid_token", error_description="The access token is expired"' if state == "expired" else 'error="invalid_token"'
    authority = f"{svc.url}/{svc.tenant_id}/oauth2/authorize"
    if svc.flavour == DATAVERSE:
        challenge = f"Bearer authorization_uri={authority}, resource_id={svc.url}/"
        body = b""
        content = {}
    else:
        challenge = f'Bearer authorization_uri="{authority}", resource_id="https://api.businesscentral.dynamics.com"'
        body = json.dumps(
            {"error": {"code": "Authentication_InvalidCredentials", "message": "The server has rejected the client credentials."}}
        ).encode()
        content = {"Content-Type": "application/json; odata.metadata=minimal"}
    if problem:
        challenge += ", " + problem
    return ApiResponse(401, {"WWW-Authenticate": challenge, "OData-Version": "4.0", **content}, body)


def bearer_token(headers: Headers) -> str | None:
    authorization = (headers.get("Authorization") or "").strip()
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None


def fault_response(svc: ODataService, kind: str) -> ApiResponse:
    plan = svc.faults
    retry_after = None if plan is None or plan.retry_after is None else str(plan.retry_after)
    headers = {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0"}
    dataverse = svc.flavour == DATAVERSE
    if kind == "429":
        if dataverse:
            # api-limits.md: 429 with Retry-After (seconds); "Number of requests" error 0x80072322.
            code, message = "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds."
            if retry_after:
                headers["Retry-After"] = retry_after
        else:
            # dynamics-rate-limits.md documents 429 but no Retry-After; the code is not documented.
            code, message = "TooManyRequests", "Too many requests. Request limits have been exceeded."
            if retry_after and plan is not None and plan.bc_429_retry_after:
                headers["Retry-After"] = retry_after
        return ApiResponse(429, headers, json.dumps({"error": {"code": code, "message": message}}).encode())
    if kind in ("503", "502", "504"):
        if retry_after:
            headers["Retry-After"] = retry_after
        status = int(kind)
        message = {503: "Service Unavailable", 502: "Bad Gateway", 504: "Gateway Timeout"}[status]
        return ApiResponse(status, headers, json.dumps({"error": {"code": "" if dataverse else "Unavailable", "message": message}}).encode())
    return ApiResponse(500, headers, json.dumps({"error": {"code": "" if dataverse else "Internal_ServerError", "message": "Internal Server Error"}}).encode())


def throttled_response(svc: ODataService, code: str, message: str, retry_after: float) -> ApiResponse:
    """Service protection's 429 (api-limits: Retry-After in seconds; Business Central has its own code)."""
    headers = {"Content-Type": "application/json; odata.metadata=minimal", "OData-Version": "4.0", "Retry-After": str(max(1, math.ceil(retry_after)))}
    if svc.flavour != DATAVERSE:
        code, message = "Application_TooManyRequests", "Too many requests. " + message
    return ApiResponse(429, headers, json.dumps({"error": {"code": code, "message": message}}).encode())


# --------------------------------------------------------------------------------------------
# http.server glue
# --------------------------------------------------------------------------------------------


class ODataHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], service: ODataService):
        super().__init__(address, ODataRequestHandler)
        self.service = service


class ODataRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # why: headers and body go out in two writes; with Nagle on, each answer waits for the client's delayed ACK
    disable_nagle_algorithm = True
    server_version = "ODataTestDouble/1.0"
    sys_version = ""
    server: ODataHTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        if self.server.service.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle()

    def do_PUT(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    # ------------------------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        svc = self.server.service
        body = self._read_body()
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qsl(split.query, keep_blank_values=True)
        headers = Headers(list(self.headers.items()))
        method = self.command.upper()
        fault = None
        model = None
        if svc._is_token_path(path):
            kind = "token"
            response = token_endpoint(svc, method, path, headers, body)
        else:
            if svc.service_time is not None:
                # why: service protection counts each application user's requests apart (ServiceTime.per_user)
                model = svc.service_time.for_user(svc.client_of(bearer_token(headers)))
            route = svc._dispatcher.route(method, path, headers)
            kind = KIND_BY_ROUTE.get(route.kind, "other")
            response = check_auth(svc, headers)
            if response is None:
                fault = svc.faults.next_fault(method) if svc.faults is not None else None
                if fault == "reset":
                    svc._record(method, kind, path, None, fault)
                    self._reset()
                    return
                refusal = model.admit() if model is not None and (fault is None or fault in LOST_AFTER_COMMIT) else None
                if fault is not None and fault not in LOST_AFTER_COMMIT:
                    response = fault_response(svc, fault)
                elif refusal is not None:
                    response = throttled_response(svc, *refusal)
                else:
                    request = ApiRequest(method, path, query, headers, body)
                    started = time.monotonic()
                    with svc._lock:
                        before = sum(svc.row_writes.values())
                        response = svc._dispatcher.handle(request)
                        written = sum(svc.row_writes.values()) - before
                    if model is not None:
                        # why: the double's own work is part of the service time the model gives the request
                        model.work(written, time.monotonic() - started)
                    if fault == "reset_after":
                        svc._record(method, kind, path, None, fault)
                        self._reset()
                        return
                    if fault is not None:  # committed, then a gateway answers instead of the service
                        response = fault_response(svc, fault.split("_")[0])
        if model is not None:
            response.headers.update(model.headers())
        svc._record(method, kind, path, response.status, fault)
        self._send(response)

    def _send(self, response: ApiResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and response.status not in (204, 304):
            self.wfile.write(response.body)

    def _reset(self) -> None:
        """Close the connection without a response; SO_LINGER 0 makes it a TCP reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            # why: a process forked from this one (the engine's read-ahead) holds a copy of the descriptor, so close()
            # alone would leave the connection open and the client waiting for its read timeout
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass
