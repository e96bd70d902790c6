# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP for the web endpoints: OAuth2 tokens, service protection retries, paging and $batch.

Microsoft's services throttle (429, with ``Retry-After`` on Dataverse, not always on Business
Central), restart (503) and drop connections; every request here is retried with the delay
the service asks for, or an exponential back-off, for a bounded total time. The client secret
and the bearer token are only ever put in the token request body and the Authorization header:
no message built here contains them.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import json
import random
import re
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.service_protection import (
    BUDGETS,
    BUSINESS_CENTRAL_MAX_PARALLEL,
    DATAVERSE_MAX_PARALLEL,
    Pacer,
)

try:
    import requests
    import requests.adapters
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the modules
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))
# why: a 429 is refused by service protection before any work; a 5xx may come from a gateway after the service committed
REFUSED_UNDONE = frozenset((429,))
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"


class ConnectionLost(EndpointError):
    """The outcome of a request that must not be resent blindly is unknown: the connection dropped,
    or a server or gateway error (500, 502, 503, 504) came back, possibly after the service carried it out."""


@dataclass
class Response:
    """What the endpoint needs of an HTTP response (also used for the parts of a $batch)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    def error_message(self) -> str:
        """The service's own error message (OData ``{"error": {"code", "message"}}``)."""
        try:
            document = self.json()
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            err = document["error"]
            code = err.get("code")
            message = err.get("message") or ""
            return "HTTP %d %s: %s" % (self.status, code, message) if code else "HTTP %d: %s" % (self.status, message)
        text = self.body.decode("utf-8", "replace").strip()[:300]
        return "HTTP %d%s" % (self.status, (": " + text) if text else "")

    def error_code(self) -> str | None:
        try:
            document = self.json()
        except ValueError:
            return None
        if isinstance(document, dict) and isinstance(document.get("error"), dict):
            return document["error"].get("code")
        return None


@dataclass
class BatchPart:
    method: str
    url: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


AUTH_KINDS = ("oauth2", "bearer", "basic", "none")  # how a client authenticates its API requests


@dataclass
class ClientSettings:
    url: str
    token: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    authority: str | None = None
    token_url: str | None = None
    user: str | None = None
    password: str | None = None
    api_key: str | None = None
    api_key_header: str = "X-API-Key"
    verify: Any = True
    ca_bundle: str | None = None
    auth: str = "oauth2"
    timeout: float = 60.0
    max_retry_seconds: float = 300.0
    kind: str = "odata"
    max_parallel: int | None = None

    @property
    def anonymous(self) -> bool:
        """No bearer token to renew (HTTP Basic, an API key alone, or nothing)."""
        return self.auth in ("basic", "none")

    def secrets(self) -> list[str]:
        return [s for s in (self.client_secret, self.token, self.password, self.api_key) if s]

    @classmethod
    def from_options(cls, options: Mapping[str, Any], default_scope: str) -> ClientSettings:
        kind = options.get("type")
        url = options.get("url")
        if not url:
            raise ConfigurationError("a %s endpoint needs 'url' (the service root)" % kind)
        settings = cls(
            url=url.rstrip("/") + "/",
            token=options.get("token"),
            tenant_id=options.get("tenant_id"),
            client_id=options.get("client_id"),
            client_secret=options.get("client_secret"),
            scope=options.get("scope") or default_scope,
            authority=options.get("authority"),
            token_url=options.get("token_url"),
            user=options.get("user"),
            password=options.get("password"),
            api_key=options.get("api_key"),
            api_key_header=options.get("api_key_header") or "X-API-Key",
            verify=options.get("validate_certs") is not False,
            ca_bundle=options.get("ca_bundle") if options.get("validate_certs") is not False else None,
            timeout=float(options.get("timeout") or 60),
            max_retry_seconds=float(options["max_retry_seconds"]) if options.get("max_retry_seconds") is not None else 300.0,
            kind=str(kind),
            max_parallel=options.get("max_parallel_requests"),
        )
        if settings.max_parallel is not None and int(settings.max_parallel) < 1:
            raise ConfigurationError("max_parallel_requests of a %s endpoint must be 1 or more, not %s" % (kind, settings.max_parallel))
        settings.auth = _auth_kind(settings, kind)
        return settings


def _auth_kind(s: ClientSettings, kind: Any) -> str:
    """Which authentication the options ask for; a clear error when they ask for two or for half of one."""
    chosen = [name for name, given in (("token", s.token), ("client_id", s.client_id), ("user", s.user)) if given]
    if len(chosen) > 1:
        raise ConfigurationError("a %s endpoint authenticates with one of 'token', OAuth2 client credentials ('client_id') or "
                                 "HTTP Basic ('user' and 'password'); %s are all set" % (kind, " and ".join(chosen)))
    if s.password and not s.user:
        raise ConfigurationError("a %s endpoint with 'password' needs 'user' (HTTP Basic authentication)" % kind)
    if s.token:
        return "bearer"
    if s.user:
        return "basic"
    if kind == "odata" and not s.client_id:
        return "none"
    missing = [n for n in ("client_id", "client_secret") if not getattr(s, n)]
    if not s.token_url and not s.tenant_id:
        missing.insert(0, "tenant_id")
    if missing:
        raise ConfigurationError("a %s endpoint needs either 'token' or OAuth2 client credentials; missing: %s" % (kind, ", ".join(missing)))
    return "oauth2"


class HttpClient:
    """One session to one service: authentication, retries, JSON, paging and $batch."""

    def __init__(self, settings: ClientSettings, sleep: Any = time.sleep):
        if not HAS_REQUESTS:
            raise ConfigurationError("the python library requests is required: %s" % REQUESTS_IMPORT_ERROR)
        self.settings = settings
        # why: passed with every request; a Session's own verify is overridden by REQUESTS_CA_BUNDLE in requests' environment merge
        self.verify: Any = (settings.ca_bundle or True) if settings.verify else False
        self._trust = _trust_adapter(settings.ca_bundle) if settings.ca_bundle else None
        self.pacer = _pacer(settings)
        self._token_lock = threading.Lock()
        self.session = self._new_session()
        self._inherited: Any = None  # a forked child's copy of its parent's session (renew_session)
        self._sleep = sleep
        self._token: str | None = settings.token
        self._token_expires = float("inf") if settings.token else 0.0
        self.requests_sent = 0
        self.retries = 0

    def close(self) -> None:
        self.session.close()

    def renew_session(self) -> None:
        """In a forked child: a session of its own (the parent's pooled connections stay the parent's)."""
        self._inherited = self.session  # why: left open; closing it here could disturb connections the parent still uses
        self.session = self._new_session()

    def _new_session(self) -> Any:
        session = requests.Session()
        # why: a pooled connection per request in flight; requests keeps 10 per host by default
        size = max(10, self.pacer.cap)
        session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size))
        session.mount("https://", self._trust or requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size))
        return session

    # -- auth ------------------------------------------------------------------------------------
    def token_endpoint(self) -> str:
        s = self.settings
        if s.token_url:
            return s.token_url
        return "%s/%s/oauth2/v2.0/token" % ((s.authority or DEFAULT_AUTHORITY).rstrip("/"), s.tenant_id)

    def _bearer(self, renew: bool = False) -> str:
        if self._token and not renew and time.monotonic() < self._token_expires:
            return self._token
        with self._token_lock:  # why: requests in flight together need one token, not one each
            return self._renewed_bearer(renew)

    def _renewed_bearer(self, renew: bool) -> str:
        if self._token and not renew and time.monotonic() < self._token_expires:
            return self._token
        if self.settings.token:
            return self.settings.token  # a static token cannot be renewed
        s = self.settings
        form = {"grant_type": "client_credentials", "client_id": s.client_id, "client_secret": s.client_secret, "scope": s.scope}
        response = self._send("POST", self.token_endpoint(), data=form, auth=False)
        if response.status != 200:
            try:
                document = response.json() or {}
            except ValueError:
                document = {}
            reason = document.get("error_description") or document.get("error") or response.body.decode("utf-8", "replace")[:200]
            raise EndpointError("token request to %s failed (HTTP %d): %s" % (self.token_endpoint(), response.status, _scrub(reason, s)))
        document = response.json()
        self._token = document["access_token"]
        # why: renew a minute early so a long page of writes never starts with a token about to expire
        self._token_expires = time.monotonic() + max(0.0, float(document.get("expires_in", 3599)) - 60)
        return self._token

    def _credentials(self) -> dict[str, str]:
        """The headers that authenticate an API request."""
        s = self.settings
        out = {s.api_key_header: s.api_key} if s.api_key else {}
        if s.auth == "basic":
            pair = "%s:%s" % (s.user, s.password or "")
            out["Authorization"] = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        elif s.auth in ("oauth2", "bearer"):
            out["Authorization"] = "Bearer " + self._bearer()
        return out

    # -- requests ---------------------------------------------------------------------------------
    def request(self, method: str, url: str, json_body: Any = None, headers: Mapping[str, str] | None = None,
                data: Any = None, resend: bool = True) -> Response:
        """Send an API request with retries; a 401 renews the token once.

        ``resend=False`` is for requests that must not be sent twice (creates, updates bound to an
        ETag): a dropped connection or a 5xx then raises ConnectionLost instead of resending, since
        the service may have carried the request out before the answer was lost. A 429 is resent:
        service protection refuses a request before doing any of it.
        """
        url = self.absolute(url)
        hdrs = {"Accept": "application/json", "OData-Version": "4.0", "OData-MaxVersion": "4.0"}
        hdrs.update(headers or {})
        body = data
        if json_body is not None:
            body = json.dumps(json_body, default=str).encode()
            hdrs.setdefault("Content-Type", "application/json; charset=utf-8")
        renewed = False
        while True:
            response = self._send(method, url, data=body, headers=hdrs, auth=True, resend=resend)
            if response.status == 401 and not renewed and self.settings.auth == "oauth2":
                renewed = True
                self._bearer(renew=True)
                continue
            return response

    def _send(self, method: str, url: str, data: Any = None, headers: Mapping[str, str] | None = None, auth: bool = True,
              resend: bool = True) -> Response:
        started = time.monotonic()
        attempt = 0
        waited = 0.0
        covered = 0.0  # the end of the pause this request's own 429 asked for (and slept)
        while True:
            self.pacer.hold_back(self._sleep, covered)
            hdrs = dict(headers or {})
            if auth:
                hdrs.update(self._credentials())
            wait: float | None = None
            try:
                self.requests_sent += 1
                with self.pacer.slot(self._sleep) as ticket:
                    raw = self.session.request(method, url, data=data, headers=hdrs, timeout=self.settings.timeout, verify=self.verify)
                response = Response(raw.status_code, dict(raw.headers), raw.content)
                if response.status != 429:
                    self.pacer.answered(response.headers, ticket)
                if response.status not in RETRY_STATUSES:
                    return response
                problem = response.error_message()
                if not resend and response.status not in REFUSED_UNDONE:
                    raise ConnectionLost("%s %s: %s" % (method, _path(url), problem))
                wait = _retry_after(response.header("Retry-After"))
            except requests.exceptions.SSLError as exc:
                if _certificate_problem(str(exc)):
                    # why: an untrusted or mismatched certificate stays so; retrying it for minutes helps nobody
                    raise EndpointError("%s %s: the TLS certificate of %s was not accepted (%s); set ca_bundle to the file of the "
                                        "CA that signed it, or validate_certs: false" % (method, _path(url), _host(url),
                                                                                         _certificate_problem(str(exc)))) from None
                problem = "TLS connection failed: %s" % type(exc).__name__
                if not resend:
                    raise ConnectionLost("%s %s: %s" % (method, _path(url), problem)) from None
                response = None
            except (requests.ConnectionError, requests.Timeout) as exc:
                problem = "connection failed: %s" % type(exc).__name__
                if not resend:
                    raise ConnectionLost("%s %s: %s" % (method, _path(url), problem)) from None
                response = None
            if wait is None:
                wait = min(30.0, 0.25 * (2 ** attempt)) * (0.5 + random.random() / 2)
            attempt += 1
            if max(time.monotonic() - started, waited) + wait > self.settings.max_retry_seconds:
                if response is not None:
                    return response
                raise EndpointError("%s %s: %s; gave up after %d attempts" % (method, _path(url), problem, attempt))
            self.retries += 1
            waited += wait
            if response is not None and response.status == 429:
                # why: service protection counts the user's requests, so every request of this client waits, and fewer go at once
                covered = self.pacer.throttled_for(wait)
            self._sleep(wait)

    def absolute(self, url: str) -> str:
        return url if re.match(r"^https?://", url) else self.settings.url + url.lstrip("/")

    def get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        response = self.request("GET", url, headers=headers)
        if response.status != 200:
            raise EndpointError("GET %s: %s" % (_path(self.absolute(url)), response.error_message()))
        return response.json()

    def pages(self, url: str, headers: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Each page of a collection, following ``@odata.nextLink`` exactly as the service gave it."""
        next_url: str | None = url
        while next_url:
            document = self.get_json(next_url, headers)
            yield document
            next_url = document.get("@odata.nextLink")

    # -- $batch -------------------------------------------------------------------------------------
    def batch_multipart(self, parts: Sequence[BatchPart], continue_on_error: bool = True, resend: bool = True) -> list[Response]:
        """A multipart/mixed ``$batch`` (Dataverse); one response per part, in order."""
        boundary = "batch_%s" % uuid.uuid4()
        out = bytearray()
        for part in parts:
            out += ("--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" % boundary).encode()
            lines = ["%s %s HTTP/1.1" % (part.method, self.absolute(part.url))]
            hdrs = dict(part.headers)
            payload = b""
            if part.body is not None:
                hdrs.setdefault("Content-Type", "application/json; type=entry")
                payload = json.dumps(part.body, default=str).encode()
            lines += ["%s: %s" % kv for kv in hdrs.items()]
            out += ("\r\n".join(lines) + "\r\n\r\n").encode() + payload + b"\r\n"
        out += ("--%s--\r\n" % boundary).encode()
        headers = {"Content-Type": "multipart/mixed; boundary=%s" % boundary}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        response = self.request("POST", "$batch", data=bytes(out), headers=headers, resend=resend)
        if response.status != 200:
            return [response] * len(parts)
        answers = parse_multipart(response.header("Content-Type") or "", response.body)
        return _align(answers, len(parts))

    def batch_json(self, parts: Sequence[BatchPart], url: str = "$batch", resend: bool = True) -> list[Response]:
        """A JSON ``$batch`` (Business Central); requests are independent, so one failure fails alone."""
        requests_ = []
        for index, part in enumerate(parts):
            entry: dict[str, Any] = {"id": str(index + 1), "method": part.method, "url": part.url, "headers": dict(part.headers)}
            if part.body is not None:
                entry["headers"].setdefault("Content-Type", "application/json")
                entry["body"] = part.body
            requests_.append(entry)
        response = self.request("POST", url, json_body={"requests": requests_}, headers={"Prefer": "odata.continue-on-error"}, resend=resend)
        if response.status != 200:
            return [response] * len(parts)
        by_id: dict[str, Response] = {}
        for item in (response.json() or {}).get("responses", []):
            body = item.get("body")
            raw = b"" if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
            by_id[str(item.get("id"))] = Response(int(item.get("status", 0)), dict(item.get("headers") or {}), raw)
        return [by_id.get(str(i + 1)) or _not_run() for i in range(len(parts))]


def parse_multipart(content_type: str, body: bytes) -> list[Response]:
    """Responses of a multipart/mixed batch answer; change-set answers are flattened."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise EndpointError("the $batch answer has no multipart boundary")
    out: list[Response] = []
    for raw in _split_parts(body, match.group(1)):
        head, content = _split_head(raw)
        part_type = _header_value(head, "Content-Type") or ""
        if part_type.lower().startswith("multipart/mixed"):
            out.extend(parse_multipart(part_type, content))
            continue
        status_head, status_body = _split_head(content.lstrip(b"\r\n"))
        lines = re.split(rb"\r?\n", status_head)
        status = re.match(rb"HTTP/\d\.\d\s+(\d{3})", lines[0].strip())
        headers = {}
        for line in lines[1:]:
            name, dummy, value = line.decode("utf-8", "replace").partition(":")
            if name.strip():
                headers[name.strip()] = value.strip()
        out.append(Response(int(status.group(1)) if status else 0, headers, status_body.rstrip(b"\r\n")))
    return out


def _split_parts(body: bytes, boundary: str) -> list[bytes]:
    pieces = re.split(rb"(?:\r?\n)?--" + re.escape(boundary.encode()), body)
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break
        parts.append(re.sub(rb"^[ \t]*\r?\n", b"", piece, count=1))
    return parts


def _split_head(blob: bytes) -> tuple[bytes, bytes]:
    match = re.search(rb"\r?\n\r?\n", blob)
    if not match:
        return blob, b""
    return blob[: match.start()], blob[match.end():]


def _header_value(head: bytes, name: str) -> str | None:
    for line in re.split(rb"\r?\n", head):
        key, dummy, value = line.decode("utf-8", "replace").partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def _align(answers: list[Response], count: int) -> list[Response]:
    """Without continue-on-error a batch stops at the first failure: the rest were not run."""
    return answers[:count] + [_not_run()] * (count - len(answers))


def _not_run() -> Response:
    return Response(0, {}, json.dumps({"error": {"code": "NotRun", "message": "not run: the batch stopped before it"}}).encode())


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait: ``Retry-After`` is delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (moment - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _pacer(settings: ClientSettings) -> Pacer:
    """N requests in flight: the option, else Dataverse's x-ms-dop-hint, 5 for Business Central, 1 for other OData services;
    and the service's documented budget per window."""
    budget = BUDGETS.get(settings.kind)
    if settings.max_parallel is not None:
        return Pacer(int(settings.max_parallel), cap=int(settings.max_parallel), budget=budget)
    if settings.kind == "dataverse":
        return Pacer(1, follow_hint=True, cap=DATAVERSE_MAX_PARALLEL, budget=budget)
    if settings.kind == "business_central":
        return Pacer(BUSINESS_CENTRAL_MAX_PARALLEL, cap=BUSINESS_CENTRAL_MAX_PARALLEL, budget=budget)
    return Pacer(1, cap=1)


def _trust_adapter(ca_bundle: str) -> Any:
    """An adapter whose TLS context trusts the system store, requests' own bundle and ``ca_bundle`` (which extends them:
    the token endpoint of a service behind a private CA still needs the public roots)."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=DEFAULT_CA_BUNDLE_PATH)
    except OSError:
        pass  # why: a system without requests' bundle (distribution packages) still has the system store
    try:
        context.load_verify_locations(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError("ca_bundle %s cannot be read as PEM CA certificates: %s" % (ca_bundle, exc)) from None

    class TrustAdapter(requests.adapters.HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = context
            return super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = context
            return super().proxy_manager_for(proxy, **kwargs)

    return TrustAdapter(pool_connections=4, pool_maxsize=DATAVERSE_MAX_PARALLEL)


def _certificate_problem(text: str) -> str | None:
    """What OpenSSL or the host name check said about a refused certificate, or None for another TLS failure."""
    match = re.search(r"certificate verify failed: ([^(]+?)\s*\(|(hostname '[^']*' doesn't match[^\"']*)|(Hostname mismatch[^\"']*)", text)
    if not match:
        return None
    return next(g for g in match.groups() if g).strip()


def _host(url: str) -> str:
    return re.sub(r"^(https?://[^/]+).*$", r"\1", url)


def _path(url: str) -> str:
    """The URL without its query (no filter values in error messages)."""
    return url.split("?", 1)[0]


def _scrub(text: str, settings: ClientSettings) -> str:
    for secret in settings.secrets():
        text = text.replace(secret, "********")
    return text
