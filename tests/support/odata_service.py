"""``ODataService``: an in-process test double of Microsoft Dataverse Web API v9.2 and Business
Central API v2.0, served by ``http.server.ThreadingHTTPServer`` on 127.0.0.1.

Typical use::

    with ODataService("dataverse") as svc:
        svc.add_entity_set("accounts", fields={"name": "string", "accountnumber": "string(20)"},
                           change_tracking=True, alternate_keys=["accountnumber"])
        svc.insert("accounts", [{"name": "Contoso"}])
        token = requests.post(svc.token_url, data={"grant_type": "client_credentials",
                              "client_id": svc.client_id, "client_secret": svc.client_secret,
                              "scope": svc.accepted_scopes()[0]}).json()["access_token"]
        requests.get(svc.base_url + "accounts", headers={"Authorization": f"Bearer {token}"})

Several application users: ``svc.add_client(client_id, client_secret)`` lets another client id get
tokens; with ``svc.service_time = ServiceTime(per_user=True)`` each client id has its own service
protection limits (``service_time.py``).

See ``odata_dispatch`` / ``odata_batch`` / ``odata_handler`` for which documented behaviour is
reproduced and where each rule comes from. Run ``python -m tests.support.odata_service --help``
for a small server to poke at by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ssl
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .faults import FaultPlan
from .odata_dispatch import Dispatcher, utc_now
from .odata_handler import ODataHTTPServer, new_token
from .odata_model import (
    BUSINESS_CENTRAL,
    DATAVERSE,
    FLAVOURS,
    ColumnType,
    EntitySetDef,
    LookupTarget,
    Store,
    ValueProblem,
    coerce_value,
    default_value,
    derive_logical_name,
    format_datetime,
    is_guid,
    normalize_guid,
    parse_column_type,
)
from .service_time import ServiceTime

__all__ = ["ODataService", "FaultPlan", "RequestRecord"]

DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000a11c"
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"

# Display names used in Business Central messages ("The Customer does not exist ...").
BC_LOGICAL_NAMES = {
    "customers": "Customer",
    "vendors": "Vendor",
    "contacts": "Contact",
    "items": "Item",
    "currencies": "Currency",
    "unitsOfMeasure": "Unit of Measure",
    "salespeoplePurchasers": "Salesperson/Purchaser",
    "employees": "Employee",
    "paymentTerms": "Payment Terms",
    "countriesRegions": "Country/Region",
}


# EDM entity type names of the standard API v2.0 entity sets (resource pages of api-reference/v2.0).
BC_TYPE_NAMES = {
    "unitsOfMeasure": "unitOfMeasure",
    "salespeoplePurchasers": "salespersonPurchaser",
    "countriesRegions": "countryRegion",
    "paymentTerms": "paymentTerm",
}


@dataclass(frozen=True)
class RequestRecord:
    method: str
    kind: str  # collection, entity, batch, bulk, token, other
    path: str
    status: int | None  # None when the connection was reset
    fault: str | None


class ODataService:
    """Test double for Dataverse (``flavour="dataverse"``) or Business Central (``"business_central"``)."""

    def __init__(
        self,
        flavour: str = DATAVERSE,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tenant_id: str = DEFAULT_TENANT,
        client_id: str = "00000000-0000-4000-8000-0000c11e0001",
        client_secret: str = "test-client-secret",
        scope: str | None = None,
        static_token: str | None = None,
        token_lifetime: float = 3599,
        require_auth: bool = True,
        company_name: str = "CRONUS USA, Inc.",
        company_id: str | None = None,
        verbose: bool = False,
        tls: tuple[str, str] | None = None,
    ):
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {FLAVOURS}, not {flavour!r}")
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the test double only binds to 127.0.0.1")
        self.flavour = flavour
        self.host = "127.0.0.1"
        self.port = port
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.token_lifetime = token_lifetime
        self.require_auth = require_auth
        self.verbose = verbose
        self.tls = tls  # (certificate file, key file): serve HTTPS
        self.faults: FaultPlan | None = None
        self.service_time: ServiceTime | None = None  # latency, server time and service protection (service_time.py)

        dataverse = flavour == DATAVERSE
        # Dataverse: default and maximum page size 5000 (webapi/query/page-results).
        # Business Central: 20,000 per page, odata.maxpagesize up to 20000 (Server-Driven-Paging...).
        self.default_page_size = 5000 if dataverse else 20000
        self.max_page_size = 5000 if dataverse else 20000
        # Dataverse: up to 1000 requests per batch (execute-batch-operations-using-web-api);
        # Business Central: "Max batch size" 100 (operational-limits-online).
        self.max_batch_operations = 1000 if dataverse else 100
        self.bc_stale_etag_status = 412
        self.bc_reject_or_across_fields = True
        self.filter_allow_in = True
        # Dataverse: changes are kept 7 days by default (use-change-tracking-synchronize-data-external-systems).
        self.delta_token_lifetime = dt.timedelta(days=7)
        self.clock: Callable[[], dt.datetime] = utc_now

        self.requests: list[tuple[str, str]] = []
        self.request_log: list[RequestRecord] = []
        self.row_writes: Counter[str] = Counter()
        self.batch_operations = 0

        self._lock = threading.RLock()
        self._record_lock = threading.Lock()
        self._store = Store()
        self._defs: dict[str, EntitySetDef] = {}
        self._companies: list[dict[str, Any]] = []
        self._tokens: dict[str, float] = {}
        self._clients: dict[str, str] = {}  # client id -> secret, besides the default client_id/client_secret
        self._token_clients: dict[str, str] = {}  # token -> the client id it was issued to
        self._static_tokens: set[str] = set()
        self._delta_tokens: dict[str, dict[str, Any]] = {}
        self._delta_serial = 0
        self._user_id = str(uuid.uuid4())
        self._dispatcher = Dispatcher(self)
        self._server: ODataHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if static_token:
            self.add_static_token(static_token)
        if not dataverse:
            self.add_company(company_name, company_id)

    # ==========================================================================================
    # lifecycle
    # ==========================================================================================
    def start(self) -> ODataService:
        if self._server is not None:
            return self
        self._server = ODataHTTPServer((self.host, self.port), self)
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=f"odata-{self.flavour}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> ODataService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ==========================================================================================
    # addresses
    # ==========================================================================================
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the server root; also the token authority host)."""
        if self._server is None:
            raise RuntimeError("the service is not started; use it as a context manager or call start()")
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def api_root_path(self) -> str:
        return "/api/data/v9.2/" if self.flavour == DATAVERSE else "/api/v2.0/"

    @property
    def api_root(self) -> str:
        """Service root with a trailing slash: ``.../api/data/v9.2/`` or ``.../api/v2.0/``."""
        return self.url + self.api_root_path

    @property
    def base_url(self) -> str:
        """Where entity sets live: the service root (Dataverse) or ``.../companies(<id>)/`` (BC)."""
        if self.flavour == DATAVERSE:
            return self.api_root
        return f"{self.api_root}companies({self.company_id})/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    def accepted_scopes(self) -> list[str]:
        if self.scope:
            return [self.scope]
        if self.flavour == DATAVERSE:
            return [f"{self.url}/.default"]
        return [BC_SCOPE]

    # ==========================================================================================
    # schema and data
    # ==========================================================================================
    def add_entity_set(
        self,
        name: str,
        key: str | None = None,
        fields: Mapping[str, Any] | None = None,
        change_tracking: bool = False,
        alternate_keys: Iterable[str | Sequence[str]] = (),
        lookups: Mapping[str, tuple[str, str] | Sequence[tuple[str, str]]] | None = None,
        logical_name: str | None = None,
    ) -> EntitySetDef:
        """Declare an entity set.

        ``fields`` maps column names to types: string, string(N), int, decimal/money/float,
        bool, datetime, date, guid. ``lookups`` (Dataverse) maps a lookup attribute to its
        single-valued navigation property and target set, e.g.
        ``{"parentcustomerid": [("parentcustomerid_account", "accounts"), ("parentcustomerid_contact", "contacts")]}``;
        it is written with ``<navigation>@odata.bind`` and read back as ``_<attribute>_value``.
        ``alternate_keys`` lists column names or tuples of names (Dataverse ``set(name='x')``).
        ``change_tracking`` enables ``Prefer: odata.track-changes`` (Dataverse only).
        """
        dataverse = self.flavour == DATAVERSE
        if logical_name is None:
            logical_name = derive_logical_name(name) if dataverse else BC_LOGICAL_NAMES.get(name, derive_logical_name(name).capitalize())
        if key is None:
            key = f"{logical_name}id" if dataverse else "id"
        server_fields = (
            {"createdon": ColumnType("datetime"), "modifiedon": ColumnType("datetime"), "versionnumber": ColumnType("int")}
            if dataverse
            else {"lastModifiedDateTime": ColumnType("datetime")}
        )
        columns: dict[str, ColumnType] = {}
        for column, spec in (fields or {}).items():
            if column == key or column in server_fields:
                continue
            columns[column] = parse_column_type(spec)
        alt: list[tuple[str, ...]] = []
        for entry in alternate_keys:
            names = (entry,) if isinstance(entry, str) else tuple(entry)
            for column in names:
                if column not in columns:
                    raise ValueError(f"alternate key column {column!r} is not a declared field of {name}")
            alt.append(names)
        parsed_lookups: dict[str, list[LookupTarget]] = {}
        for attribute, spec in (lookups or {}).items():
            if not dataverse:
                raise ValueError("lookups/@odata.bind are a Dataverse feature")
            targets = [spec] if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) else list(spec)
            parsed_lookups[attribute] = [LookupTarget(nav, target) for nav, target in targets]
        definition = EntitySetDef(
            name=name,
            key=key,
            logical_name=logical_name,
            fields=columns,
            server_fields=server_fields,
            change_tracking=bool(change_tracking) and dataverse,
            alternate_keys=alt,
            lookups=parsed_lookups,
            type_name=logical_name if dataverse else BC_TYPE_NAMES.get(name, derive_logical_name(name)),
        )
        with self._lock:
            self._defs[name] = definition
            for company in self._company_keys():
                self._store.add_table(company, definition)
        return definition

    def insert(self, name: str, rows: Iterable[Mapping[str, Any]], company: str | None = None) -> list[str]:
        """Seed rows (not counted as API writes). Keys, server fields and lookups
        (``_<attr>_value`` or ``<attr>``) may be given; missing keys are generated."""
        keys: list[str] = []
        with self._lock:
            table = self._table(name, company)
            defn = table.definition
            for source in rows:
                row: dict[str, Any] = {}
                key = source.get(defn.key)
                key = normalize_guid(key) if key else str(uuid.uuid4())
                for column, value in source.items():
                    if column == defn.key:
                        continue
                    row[column] = self._seed_value(defn, column, value)
                for column, ctype in defn.fields.items():
                    row.setdefault(column, None if self.flavour == DATAVERSE else default_value(ctype))
                for attribute in defn.lookups:
                    row.setdefault(defn.lookup_value_name(attribute), None)
                self._stamp(table, key, row, created=key not in table.rows, keep_times=True)
                keys.append(key)
        return keys

    def rows(self, name: str, company: str | None = None) -> list[dict[str, Any]]:
        """Current rows as the API would return them (without @odata.etag), in insertion order."""
        with self._lock:
            table = self._table(name, company)
            return [self._public(row) for row in table.rows.values()]

    def get(self, name: str, key: str, company: str | None = None) -> dict[str, Any] | None:
        with self._lock:
            row = self._table(name, company).rows.get(normalize_guid(key))
            return None if row is None else self._public(row)

    def etag(self, name: str, key: str, company: str | None = None) -> str:
        """The current ETag of a row, as ``@odata.etag`` shows it."""
        with self._lock:
            table = self._table(name, company)
            return self._dispatcher.etag(table.versions[normalize_guid(key)])

    def update(self, name: str, key: str, changes: Mapping[str, Any], company: str | None = None) -> None:
        """Change a row out of band ("another user changed it"): new version, modified time."""
        with self._lock:
            table = self._table(name, company)
            key = normalize_guid(key)
            row = dict(table.rows[key])
            for column, value in changes.items():
                row[column] = self._seed_value(table.definition, column, value)
            self._stamp(table, key, row, created=False, keep_times="modifiedon" in changes or "lastModifiedDateTime" in changes)

    def delete(self, name: str, key: str, company: str | None = None) -> None:
        with self._lock:
            table = self._table(name, company)
            self._store.remove_row(table, normalize_guid(key))

    # -- companies (Business Central) ----------------------------------------------------------
    def add_company(self, name: str, company_id: str | None = None) -> str:
        if self.flavour != BUSINESS_CENTRAL:
            raise ValueError("companies exist only in the business_central flavour")
        company_id = normalize_guid(company_id) if company_id else str(uuid.uuid4())
        now = format_datetime(self.clock(), BUSINESS_CENTRAL)
        with self._lock:
            self._companies.append(
                {
                    "id": company_id,
                    "systemVersion": "24.0.16410.18056",
                    "timestamp": 1000 + len(self._companies),
                    "name": name,
                    "displayName": name,
                    "businessProfileId": "",
                    "systemCreatedAt": now,
                    "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
                    "systemModifiedAt": now,
                    "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
                }
            )
            for definition in self._defs.values():
                self._store.add_table(company_id, definition)
        return company_id

    @property
    def company_id(self) -> str | None:
        """The first (default) company; None for Dataverse."""
        return self._companies[0]["id"] if self._companies else None

    @property
    def companies(self) -> list[dict[str, Any]]:
        return [dict(c) for c in self._companies]

    # ==========================================================================================
    # auth
    # ==========================================================================================
    def add_client(self, client_id: str, client_secret: str) -> None:
        """Let another application (client id and secret) get tokens, besides the default ``client_id``."""
        with self._record_lock:
            self._clients[client_id] = client_secret

    def client_secret_of(self, client_id: str) -> str | None:
        """The secret of a known client id, None for an unknown one."""
        if client_id == self.client_id:
            return self.client_secret
        with self._record_lock:
            return self._clients.get(client_id)

    def issue_token(self, client_id: str | None = None) -> str:
        """Mint a bearer token of ``client_id`` (default: ``client_id``) valid for ``token_lifetime`` seconds (what the
        token endpoint does)."""
        token = new_token()
        with self._record_lock:
            self._tokens[token] = time.monotonic() + float(self.token_lifetime)
            self._token_clients[token] = client_id or self.client_id
        return token

    def add_static_token(self, token: str, client_id: str | None = None) -> None:
        """Accept ``token`` forever (no token endpoint round trip needed), as a token of ``client_id`` (default:
        ``client_id``)."""
        with self._record_lock:
            self._static_tokens.add(token)
            self._token_clients[token] = client_id or self.client_id

    def client_of(self, token: str | None) -> str:
        """The client id a token was issued to; the default ``client_id`` for an unknown token or none."""
        with self._record_lock:
            return self._token_clients.get(token or "", self.client_id)

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (static tokens are unaffected)."""
        with self._record_lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def _token_state(self, token: str) -> str:
        if token in self._static_tokens:
            return "valid"
        expires = self._tokens.get(token)
        if expires is None:
            return "unknown"
        return "valid" if time.monotonic() < expires else "expired"

    def _is_token_path(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        return len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]

    # ==========================================================================================
    # change tracking
    # ==========================================================================================
    def expire_delta_tokens(self) -> None:
        """Make every delta link issued so far unusable (the server answers ExpiredVersionStamp)."""
        with self._lock:
            for entry in self._delta_tokens.values():
                entry["expired"] = True

    def _issue_delta_token(self, table: Any, version: int) -> str:
        self._delta_serial += 1
        issued = self.clock()
        # Same shape as the documented token "919042!08/22/2017 08:10:44", plus a serial.
        token = f"{version}!{issued:%m/%d/%Y %H:%M:%S}!{self._delta_serial}"
        self._delta_tokens[token] = {"set": table.definition.name, "company": table.company, "version": version, "issued": issued, "expired": False}
        return token

    # ==========================================================================================
    # counters
    # ==========================================================================================
    def _record(self, method: str, kind: str, path: str, status: int | None, fault: str | None) -> None:
        with self._record_lock:
            self.requests.append((method, kind))
            self.request_log.append(RequestRecord(method, kind, path, status, fault))

    def request_counts(self) -> Counter[tuple[str, str]]:
        """Counter of (method, kind) over all requests seen since the last reset."""
        with self._record_lock:
            return Counter(self.requests)

    def reset_counters(self) -> None:
        with self._record_lock:
            self.requests.clear()
            self.request_log.clear()
            self.row_writes.clear()
            self.batch_operations = 0

    # ==========================================================================================
    # internals
    # ==========================================================================================
    def _company_keys(self) -> list[str | None]:
        return [None] if self.flavour == DATAVERSE else [c["id"] for c in self._companies]

    def _find_company(self, name_or_id: str) -> str | None:
        for company in self._companies:
            if name_or_id in (company["name"], company["id"]) or (is_guid(name_or_id) and normalize_guid(name_or_id) == company["id"]):
                return company["id"]
        return None

    def _table(self, name: str, company: str | None):
        if name not in self._defs:
            raise KeyError(f"entity set {name!r} is not declared; call add_entity_set first")
        if self.flavour == BUSINESS_CENTRAL:
            company = self._find_company(company) if company else self.company_id
        else:
            company = None
        return self._store.table(company, name)

    def _seed_value(self, defn: EntitySetDef, column: str, value: Any) -> Any:
        for attribute in defn.lookups:
            if column in (attribute, defn.lookup_value_name(attribute)):
                column = defn.lookup_value_name(attribute)
                return None if value is None else normalize_guid(value)
        columns = defn.column_types()
        if column not in columns:
            raise KeyError(f"{column!r} is not a column of {defn.name}")
        try:
            value = coerce_value(columns[column], value, self.flavour)
        except ValueProblem as exc:
            raise ValueError(f"{defn.name}.{column}: {exc}") from None
        if value is None and self.flavour == BUSINESS_CENTRAL:
            value = default_value(columns[column])
        return value

    def _stamp(self, table: Any, key: str, row: dict[str, Any], created: bool, keep_times: bool) -> None:
        defn = table.definition
        # Map seeded "parentcustomerid" to "_parentcustomerid_value".
        for attribute, targets in defn.lookups.items():
            if attribute in row:
                row[defn.lookup_value_name(attribute)] = row.pop(attribute)
            if row.get(defn.lookup_value_name(attribute)) is not None and f"__{attribute}_target" not in row:
                # Seeded lookups do not say which target they point at; assume the first declared.
                row[f"__{attribute}_target"] = (targets[0].navigation_property, targets[0].entity_set)
        now = format_datetime(self.clock(), self.flavour)
        version = self._store.next_version()
        row[defn.key] = key
        if self.flavour == DATAVERSE:
            if created and not (keep_times and row.get("createdon")):
                row["createdon"] = now
            if not (keep_times and row.get("modifiedon")):
                row["modifiedon"] = now
            row["versionnumber"] = version
        elif not (keep_times and row.get("lastModifiedDateTime") not in (None, "0001-01-01T00:00:00Z")):
            row["lastModifiedDateTime"] = now
        self._store.put_row(table, key, row, version)

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("__")}

    def _whoami(self) -> dict[str, Any]:
        return {
            "@odata.context": f"{self.api_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": "00000000-0000-0000-0000-0000000000b1",
            "UserId": self._user_id,
            "OrganizationId": "00000000-0000-0000-0000-0000000000c1",
        }


# ==============================================================================================
# CLI for manual poking
# ==============================================================================================


def _demo_schema(svc: ODataService) -> None:
    if svc.flavour == DATAVERSE:
        svc.add_entity_set("accounts", fields={"name": "string(160)", "accountnumber": "string(20)", "revenue": "money"},
                           change_tracking=True, alternate_keys=["accountnumber"])
        svc.add_entity_set("contacts", fields={"firstname": "string", "lastname": "string", "emailaddress1": "string"},
                           change_tracking=True,
                           lookups={"parentcustomerid": [("parentcustomerid_account", "accounts"), ("parentcustomerid_contact", "contacts")]})
        svc.add_entity_set("products", fields={"name": "string", "productnumber": "string"}, change_tracking=True)
        svc.add_entity_set("transactioncurrencies", fields={"isocurrencycode": "string(5)", "currencyname": "string"})
        svc.add_entity_set("uomschedules", fields={"name": "string"})
        svc.add_entity_set("systemusers", fields={"fullname": "string", "internalemailaddress": "string"})
        svc.insert("accounts", [{"name": f"Account {i:03d}", "accountnumber": f"A{i:03d}"} for i in range(12)])
    else:
        svc.add_entity_set("customers", fields={"number": "string(20)", "displayName": "string(100)", "email": "string(80)",
                                                "currencyCode": "string(10)", "creditLimit": "decimal"})
        svc.add_entity_set("contacts", fields={"number": "string(20)", "displayName": "string(100)", "email": "string(80)"})
        svc.add_entity_set("items", fields={"number": "string(20)", "displayName": "string(100)", "unitPrice": "decimal"})
        svc.add_entity_set("currencies", fields={"code": "string(10)", "displayName": "string(30)"})
        svc.add_entity_set("unitsOfMeasure", fields={"code": "string(10)", "displayName": "string(50)"})
        svc.add_entity_set("salespeoplePurchasers", fields={"code": "string(20)", "displayName": "string(50)", "email": "string(80)"})
        svc.insert("customers", [{"number": f"C{i:05d}", "displayName": f"Customer {i}"} for i in range(12)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Dataverse / Business Central OData test double on 127.0.0.1.")
    parser.add_argument("--flavour", choices=FLAVOURS, default=DATAVERSE)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default="dev-token", help="static bearer token accepted by the API (default: dev-token)")
    parser.add_argument("--no-demo", action="store_true", help="do not declare and seed the demo entity sets")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    svc = ODataService(args.flavour, port=args.port, static_token=args.token, verbose=args.verbose)
    if not args.no_demo:
        _demo_schema(svc)
    with svc:
        print(f"{args.flavour} test double at {svc.api_root}")
        print(f"entity sets under {svc.base_url}; Authorization: Bearer {args.token}")
        print(f"token endpoint {svc.token_url} (client_id={svc.client_id}, client_secret={svc.client_secret}, scope={svc.accepted_scopes()[0]})")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
