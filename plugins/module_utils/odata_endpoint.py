# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Web endpoints: Dataverse Web API v9.2, Business Central API v2.0 and generic OData v4.

Tables are entity sets, their columns are learnt from the service's ``$metadata``. Reads
``$select`` only the mapped fields, filter on the service (mapping filter and modified-since
watermark, ordered by modified-on then key) and follow ``@odata.nextLink`` unchanged. Writes
go many records per request: Dataverse ``CreateMultiple``/``UpdateMultiple`` and ``$batch``
with continue-on-error (so a refused record fails alone, with the service's message), Business
Central JSON ``$batch`` of at most 100 operations.

Dataverse lookups appear as a column named after the lookup attribute (``parentcustomerid``,
a GUID): read from ``_parentcustomerid_value``, written as ``<navigation>@odata.bind``. The
navigation property and target entity set come from ``$metadata`` or, when a lookup has
several targets, from the endpoint option ``lookups``.
"""

from __future__ import annotations

import datetime
import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.tablesync.integration.plugins.module_utils.chunks import chunks
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import (
    MAX_PAGES_IN_FLIGHT,
    ChangeRead,
    Column,
    Endpoint,
    Table,
    TableInfo,
    WriteResult,
)
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.http_client import (
    BC_SCOPE,
    BatchPart,
    ClientSettings,
    ConnectionLost,
    HttpClient,
    Response,
)
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import to_utc
from ansible_collections.tablesync.integration.plugins.module_utils.odata_metadata import EntityType, Metadata
from ansible_collections.tablesync.integration.plugins.module_utils.values import new_record_id

DATAVERSE = "dataverse"
BUSINESS_CENTRAL = "business_central"
ODATA = "odata"

EDM_KINDS = {
    "Edm.String": "text",
    "Edm.Guid": "uuid",
    "Edm.Decimal": "decimal",
    "Edm.Double": "float",
    "Edm.Single": "float",
    "Edm.Int16": "integer",
    "Edm.Int32": "integer",
    "Edm.Int64": "integer",
    "Edm.Byte": "integer",
    "Edm.SByte": "integer",
    "Edm.Boolean": "boolean",
    "Edm.DateTimeOffset": "datetime",
    "Edm.Date": "date",
    "Edm.Binary": "binary",
}
# Columns the services maintain themselves.
SERVER_FIELDS = {
    DATAVERSE: ("createdon", "modifiedon", "versionnumber", "overriddencreatedon"),
    BUSINESS_CENTRAL: ("lastModifiedDateTime",),
    ODATA: (),
}
LIMITS = {  # (maximum page size, maximum operations per $batch)
    DATAVERSE: (5000, 1000),  # webapi/query/page-results; execute-batch-operations-using-web-api
    BUSINESS_CENTRAL: (20000, 100),  # Server-Driven-Paging; operational-limits-online "Max batch size"
    ODATA: (5000, 100),
}
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
DUPLICATE_RECORD = "0x80040237"
WRITE_ATTEMPTS = 5  # sends of one write request whose answers keep being lost
OUTCOME_UNKNOWN = -1  # the status of a batch part whose answer was lost after it was sent
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*$")


# -- the endpoint -------------------------------------------------------------------------------------


def default_scope(kind: str, url: str) -> str | None:
    """Dataverse: ``https://<org>.crm.dynamics.com/.default``; Business Central: its fixed resource."""
    if kind == DATAVERSE:
        parts = urlsplit(url)
        return "%s://%s/.default" % (parts.scheme, parts.netloc)
    if kind == BUSINESS_CENTRAL:
        return BC_SCOPE
    return None


class ODataEndpoint(Endpoint):
    def __init__(self, side: str, options: Mapping[str, Any]):
        super().__init__(side, options)
        self.kind = options["type"]
        url = options.get("url") or ""
        scope = default_scope(self.kind, url)
        if self.kind == ODATA and options.get("client_id") and not options.get("scope"):
            raise ConfigurationError("%s: an odata endpoint with client credentials needs 'scope'" % side)
        self.client = HttpClient(ClientSettings.from_options(options, scope or ""))
        max_page, max_batch = LIMITS[self.kind]
        self.page_size = min(int(options.get("page_size") or max_page), max_page)
        self.batch_size = min(int(options.get("batch_size") or max_batch), max_batch)
        self.bulk = options.get("bulk_operations", True) is not False and self.kind == DATAVERSE
        self.lookup_options = dict(options.get("lookups") or {})
        self._metadata: Metadata | None = None
        self._prefix: str | None = None
        self._tables: dict[tuple[str, str], ODataTable] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def type(self) -> str:
        return self.kind

    def address(self) -> str:
        parts = urlsplit(self.client.settings.url)
        company = self.options.get("company")
        return "%s://%s%s%s" % (parts.scheme, parts.hostname or "", (":%d" % parts.port) if parts.port else "", parts.path) + (
            " company %s" % company if company else "")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.client.close()

    def renew_after_fork(self) -> None:
        # why: a read-ahead process planning a full sync reads coupled records here (convergence.py)
        self.client.renew_session()
        self._pool = None  # why: a forked child has none of its parent's threads

    def throttling(self) -> tuple[int, float]:
        return self.client.pacer.throttled, self.client.pacer.waited

    def each(self, function: Callable[[Any], Any], items: list) -> list:
        """``function`` of every item, in order, up to the client's number of requests in flight at once."""
        pacer = self.client.pacer
        if len(items) < 2 or pacer.cap < 2:
            return [function(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=pacer.cap, thread_name_prefix="tablesync-web")
        return list(self._pool.map(function, items))

    @property
    def metadata(self) -> Metadata:
        if self._metadata is None:
            response = self.client.request("GET", "$metadata", headers={"Accept": "application/xml"})
            if response.status != 200:
                raise EndpointError("%s endpoint %s: cannot read $metadata: %s" % (self.side, self.address(), response.error_message()))
            self._metadata = Metadata.parse(response.body)
        return self._metadata

    @property
    def prefix(self) -> str:
        """Where entity sets live, relative to the service root (Business Central: the company)."""
        if self._prefix is None:
            self._prefix = self._company_prefix() if self.kind == BUSINESS_CENTRAL else ""
        return self._prefix

    def _company_prefix(self) -> str:
        wanted = self.options.get("company")
        companies = self.client.get_json("companies").get("value", [])
        names = [c.get("name") for c in companies]
        if not wanted:
            if len(companies) == 1:
                return "companies(%s)/" % companies[0]["id"]
            raise ConfigurationError("%s: the Business Central environment has %d companies (%s); set 'company' to one name or id"
                                     % (self.side, len(companies), ", ".join(map(str, names))))
        for company in companies:
            if str(wanted).lower() in (str(company.get("id")).lower(), str(company.get("name")).lower(), str(company.get("displayName")).lower()):
                return "companies(%s)/" % company["id"]
        raise ConfigurationError("%s: Business Central company %r not found; companies: %s" % (self.side, wanted, ", ".join(map(str, names))))

    def table(self, name: str, key: str) -> ODataTable:
        cached = self._tables.get((name, key))
        if cached is not None:
            return cached
        meta = self.metadata
        set_name = name if name in meta.sets else meta.set_of_type(name)
        if set_name is None or meta.sets[set_name] not in meta.types:
            raise EndpointError("%s endpoint (%s) has no entity set %s; entity sets: %s"
                                % (self.side, self.address(), name, ", ".join(sorted(meta.sets))))
        result = ODataTable(self, set_name, meta.resolved(meta.sets[set_name]), key)
        self._tables[(name, key)] = result
        return result


@dataclass
class Lookup:
    attribute: str
    navigation: str | None
    entity_set: str | None
    choices: list[str]


class ODataTable(Table):
    endpoint: ODataEndpoint  # why: narrowed for the type checker: an OData table reaches its endpoint's paging and batching
    filter_values_per_query = 50  # as many as read_by_ids lists in one URL
    # why: a forked process reads and plans the next pages on a session of its own (renew_after_fork) while this one writes
    supports_read_ahead = True

    def __init__(self, endpoint: ODataEndpoint, set_name: str, etype: EntityType, key: str):
        self.endpoint = endpoint
        self.client = endpoint.client
        self.kind = endpoint.kind
        self.supports_change_tracking = self.kind == DATAVERSE  # tried per read; DataverseChangeRead.enabled says if the entity has it
        self.set_name = set_name
        self.etype = etype
        self.props: dict[str, str] = {}  # column -> property name on the wire
        self.lookups: dict[str, Lookup] = {}
        columns: dict[str, Column] = {}
        server = SERVER_FIELDS[self.kind]
        for prop, (edm, length, nullable) in etype.properties.items():
            name = prop
            if self.kind == DATAVERSE and prop.startswith("_") and prop.endswith("_value"):
                name = prop[1:-6]
                self.lookups[name] = self._lookup(name)
            is_key = prop in etype.key
            columns[name] = Column(
                name=name,
                kind=EDM_KINDS.get(edm, "text"),
                nullable=nullable and not is_key,
                max_length=length,
                primary_key=is_key,
                server_generated=prop in server or (is_key and self.kind == BUSINESS_CENTRAL),
            )
            self.props[name] = prop
        if key not in columns:
            raise EndpointError("%s entity set %s has no key property %s" % (endpoint.side, set_name, key))
        self.key = key
        self.info = TableInfo(name=set_name, columns=columns, primary_key=tuple(etype.key))
        self.kinds = {c: col.kind for c, col in columns.items()}
        self.url = endpoint.prefix + set_name
        self.bulk = endpoint.bulk

    def _lookup(self, attribute: str) -> Lookup:
        options = self.endpoint.lookup_options
        configured = None
        for name in ("%s.%s" % (self.set_name, attribute), "%s.%s" % (self.etype.name, attribute)):
            if name in options:
                configured = options[name] or {}
        meta = self.endpoint.metadata
        choices = [n for n in self.etype.navigation if n == attribute or n.startswith(attribute + "_")]
        if configured:
            nav = configured.get("navigation")
            target = configured.get("entity_set")
            if nav and not target and nav in self.etype.navigation:
                target = meta.set_of_type(self.etype.navigation[nav])
            return Lookup(attribute, nav, target, choices)
        if len(choices) == 1:
            return Lookup(attribute, choices[0], meta.set_of_type(self.etype.navigation[choices[0]]), choices)
        return Lookup(attribute, None, None, choices)

    # -- values -------------------------------------------------------------------------------------
    def _from_wire(self, column: str, value: Any) -> Any:
        if value is None:
            return None
        kind = self.kinds.get(column, "text")
        bc = self.kind == BUSINESS_CENTRAL
        if kind == "datetime":
            if bc and str(value).startswith("0001-01-01"):
                return None
            moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("z", "+00:00"))
            if moment.tzinfo is not None:
                moment = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return moment
        if kind == "date":
            return None if bc and value == "0001-01-01" else datetime.date.fromisoformat(str(value)[:10])
        if kind == "decimal":
            return decimal.Decimal(repr(value) if isinstance(value, float) else str(value))
        if kind == "uuid":
            text = str(value).lower()
            return None if bc and text == EMPTY_GUID else text
        if kind == "text" and bc and value == "":
            return None  # why: Business Central has no null; its blank must equal the other side's null
        return value

    def _to_wire(self, column: str, value: Any) -> Any:
        if value is None:
            return None
        kind = self.kinds.get(column, "text")
        if isinstance(value, decimal.Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
            return value.isoformat(timespec="seconds") + "Z"
        if isinstance(value, datetime.date):
            return value.isoformat()
        if kind == "uuid":
            return str(value).lower()
        return value

    def _literal(self, column: str, value: Any) -> str:
        """An OData URL literal for a value of the column."""
        kind = self.kinds.get(column, "text")
        wire = self._to_wire(column, value)
        if wire is None:
            return "''" if self.kind == BUSINESS_CENTRAL and kind == "text" else "null"
        if kind == "uuid":
            return str(wire)
        if kind == "boolean":
            return "true" if wire else "false"
        if kind in ("integer", "decimal", "float"):
            return str(wire)
        if kind in ("datetime", "date"):
            return str(wire)
        return "'%s'" % str(wire).replace("'", "''")

    def _since_literal(self, column: str, since: Any) -> str:
        """The lower bound of a read by modified-on: a UTC DateTimeOffset (or date) whatever the time zone of ``since``."""
        moment = to_utc(since)
        if self.kinds.get(column) == "date":
            # why: to_utc gives None only for None, and a read by modified-on always has a lower bound
            return moment.date().isoformat()  # type: ignore[union-attr]
        return self._literal(column, moment)

    def _row(self, item: Mapping[str, Any], fields: Sequence[str]) -> tuple:
        return tuple(self._from_wire(f, item.get(self.props.get(f, f))) for f in fields)

    def _prop(self, column: str) -> str:
        try:
            return self.props[column]
        except KeyError:
            raise EndpointError("%s entity set %s has no property %s" % (self.endpoint.side, self.set_name, column)) from None

    def _query(self, fields: Sequence[str], filters: Sequence[str] = (), orderby: str | None = None) -> str:
        params = [("$select", ",".join(self._prop(f) for f in fields))]
        if filters:
            params.append(("$filter", " and ".join(filters)))
        if orderby:
            params.append(("$orderby", orderby))
        return self.url + "?" + urlencode(params, quote_via=quote, safe="$,'():")

    def _page_headers(self, page_size: int) -> dict[str, str]:
        return {"Prefer": "odata.maxpagesize=%d" % max(1, min(page_size, self.endpoint.page_size))}

    # -- reads ----------------------------------------------------------------------------------------------
    def scan(self, fields, where=None, modified_field=None, modified_since=None, page_size=1000, modified_format="auto") -> Iterator[list[tuple]]:
        filters = []
        server_where = where is not None and not (set(where.fields) & set(self.lookups))
        if server_where:
            filters.append("(%s)" % where.to_odata(expand_in=True))
        key = self._prop(self.key)
        orderby = "%s asc" % key
        if modified_field:
            mod = self._prop(modified_field)
            orderby = "%s asc,%s asc" % (mod, key)
            if modified_since is not None:
                # why: 'ge' re-reads records sharing the watermark's timestamp; they are unchanged by fingerprint
                filters.append("%s ge %s" % (mod, self._since_literal(modified_field, modified_since)))
        # why: the filter is checked again here (the service may compare text case-insensitively), so its fields are read too
        names = list(dict.fromkeys([*fields, *(sorted(where.fields) if where is not None else [])]))
        width = len(fields)
        documents = self.client.pages(self._query(names, filters, orderby), self._page_headers(page_size))
        if server_where:
            documents = self._or_without_filter(documents, names, filters[1:], orderby, page_size)
        # why: pages of the size asked for whatever the service's page size, so that writes to the other side go in full batches
        held: list[tuple] = []
        for document in documents:
            rows = [self._row(item, names) for item in document.get("value", [])]
            if where is not None:
                rows = [r for r in rows if where.matches(dict(zip(names, r)))]
            held.extend(r[:width] for r in rows)
            while len(held) >= page_size:
                yield held[:page_size]
                held = held[page_size:]
        if held:
            yield held

    def _or_without_filter(self, documents: Iterator[dict], names: list[str], filters: list[str], orderby: str,
                           page_size: int) -> Iterator[dict]:
        """The pages of a filtered read; if the service refuses the mapping filter (Business Central
        allows no 'or' across fields), the filter is applied on the client instead."""
        try:
            first = next(documents, None)
        except EndpointError as exc:
            if "HTTP 400" not in str(exc):
                raise
            yield from self.client.pages(self._query(names, filters, orderby), self._page_headers(page_size))
            return
        if first is not None:
            yield first
            yield from documents

    def count(self, where=None, modified_field=None, modified_since=None, modified_format="auto") -> int | None:
        """How many records a scan with these arguments reads, for the progress of a job; None when the service cannot
        count them cheaply. A count that fails is None too: it never fails the sync.

        Dataverse: ``$count=true`` counts up to 5,000 (webapi/query/count-rows); beyond, an unfiltered read takes the
        ``RetrieveTotalRecordCount`` snapshot (at most a day old), a filtered one is not counted. Business Central and
        generic OData: the ``/$count`` segment with the read's filter.
        """
        if where is not None and set(where.fields) & set(self.lookups):
            return None  # why: a filter on lookups is applied on the client (see scan): the service cannot count it
        try:
            filters = ["(%s)" % where.to_odata(expand_in=True)] if where is not None else []
            if modified_field and modified_since is not None:
                filters.append("%s ge %s" % (self._prop(modified_field), self._since_literal(modified_field, modified_since)))
            return self._dataverse_count(filters) if self.kind == DATAVERSE else self._segment_count(filters)
        except (EndpointError, ConnectionLost, ValueError, TypeError, KeyError, IndexError, AttributeError):
            return None

    def _segment_count(self, filters: list[str]) -> int | None:
        url = self.url + "/$count" + ("?" + urlencode([("$filter", " and ".join(filters))], quote_via=quote, safe="$,'():") if filters else "")
        response = self.client.request("GET", url, headers={"Accept": "text/plain"})
        if response.status != 200:
            return None  # why: Business Central refuses some filters (an 'or' across fields) that scan applies on the client
        return int(response.body.decode("utf-8-sig").strip())

    def _dataverse_count(self, filters: list[str]) -> int | None:
        headers = dict(self._page_headers(1))
        headers["Prefer"] += ',odata.include-annotations="Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"'
        response = self.client.request("GET", self._query([self.key], filters) + "&$count=true", headers=headers)
        if response.status != 200:
            return None
        document = response.json()
        count = int(document["@odata.count"])
        if not document.get("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"):
            return count
        if filters:
            return None  # why: past 5,000 only the whole table's snapshot can be had, and the read is a part of it
        snapshot = self.client.get_json("RetrieveTotalRecordCount(EntityNames=@p1)?@p1=" + quote(json.dumps([self.etype.name])))
        counts = snapshot["EntityRecordCountCollection"]
        return max(count, int(dict(zip(counts["Keys"], counts["Values"]))[self.etype.name]))

    def track_changes(self, fields: Sequence[str], delta_link: str | None = None, where: Any = None,
                      page_size: int = 1000) -> DataverseChangeRead:
        """Dataverse change tracking: records changed and deleted since ``delta_link``.

        Without a link, or when the service says its version stamp expired, this is a full read
        (``DataverseChangeRead.full``). The mapping filter applies here, on the client: the service allows
        no ``$filter`` with change tracking.
        """
        if self.kind != DATAVERSE:
            raise EndpointError("%s: change tracking is a Dataverse feature; %s is a %s entity set" % (self.endpoint.side, self.set_name, self.kind))
        return DataverseChangeRead(self, list(fields), delta_link, where, page_size)

    def read_by_ids(self, ids, fields) -> list[tuple]:
        return [self._row(item, fields) for item in self._by_ids(ids, fields)]

    def _by_ids(self, ids: Sequence[str], fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The service's items of the records ``ids`` (those that exist), ``fields`` selected."""
        return self._by_values(self.key, [i for i in ids if self._valid_id(i)], fields)

    def _by_values(self, column: str, values: Sequence[Any], fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """The service's items whose ``column`` holds one of ``values``, ``fields`` selected."""
        prop = self._prop(column)
        conditions = [" or ".join("%s eq %s" % (prop, self._literal(column, v)) for v in chunk)
                      for chunk in chunks(list(values), self.filter_values_per_query)]
        urls = [self._query(fields, [condition]) for condition in conditions]
        headers = self._page_headers(self.filter_values_per_query)
        if self.kind != BUSINESS_CENTRAL or len(urls) < 2:
            for url in urls:
                for document in self.client.pages(url, headers):
                    yield from document.get("value", [])
            return
        # why: the GETs of a thousand ids go in one $batch: one round trip instead of twenty (ETags before updates)
        for chunk in chunks(urls, self.endpoint.batch_size):
            answers = self.client.batch_json([BatchPart("GET", self.client.absolute(u), None, headers) for u in chunk])
            for answer in answers:
                if answer.status != 200:
                    raise EndpointError("GET %s: %s" % (self.set_name, answer.error_message()))
                document = answer.json() or {}
                yield from document.get("value", [])
                if document.get("@odata.nextLink"):
                    for rest in self.client.pages(document["@odata.nextLink"], headers):
                        yield from rest.get("value", [])

    def find(self, values, fields, limit=10) -> list[tuple]:
        conditions = []
        for column, value in values.items():
            if column in self.lookups:
                continue  # compared below; lookups cannot be filtered by attribute name
            conditions.append("%s eq %s" % (self._prop(column), self._literal(column, value)))
        names = list(dict.fromkeys([*fields, *values]))
        found = []
        for document in self.client.pages(self._query(names, conditions), self._page_headers(limit * 10)):
            for item in document.get("value", []):
                row = dict(zip(names, self._row(item, names)))
                if all(_same(row.get(c), v) for c, v in values.items()):
                    found.append(tuple(row[f] for f in fields))
                    if len(found) >= limit:
                        return found
        return found

    def new_id(self) -> str | None:
        # why: a client-chosen GUID recorded before the create makes a rerun find the record instead of duplicating it
        if self.kind == BUSINESS_CENTRAL or self.kinds[self.key] != "uuid":
            return None
        return new_record_id()

    def _id_text(self, value: Any) -> str:
        """A record id as text: GUIDs in lower case, other keys (a code, a number) as they are."""
        return str(value).lower() if self.kinds[self.key] == "uuid" else str(value)

    def _valid_id(self, record_id: str) -> bool:
        if self.kinds[self.key] != "uuid":
            return True
        try:
            uuid.UUID(str(record_id))
            return True
        except ValueError:
            return False

    # -- write bodies ----------------------------------------------------------------------------------
    def _body(self, values: Mapping[str, Any], with_key: bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for column, value in values.items():
            if column == self.key and not with_key:
                continue
            if column in self.lookups:
                lookup = self.lookups[column]
                if not lookup.navigation or not lookup.entity_set:
                    raise _Refused("lookup %s of %s has navigation properties %s; choose one with the endpoint option "
                                   "lookups: {%s.%s: {navigation: ..., entity_set: ...}}"
                                   % (column, self.set_name, ", ".join(lookup.choices) or "(none)", self.set_name, column))
                body["%s@odata.bind" % lookup.navigation] = None if value is None else "/%s(%s)" % (lookup.entity_set, str(value).lower())
                continue
            body[self._prop(column)] = self._to_wire(column, value)
        return body

    def _entity(self, record_id: str, current: Mapping[str, Current] | None = None) -> str:
        """The record's address; ``current`` holds the entity ids of records keyed by another column."""
        entity = current[record_id].entity if current and record_id in current else None
        if entity is not None:
            return "%s(%s)" % (self.url, entity)
        # why: a text key such as C#0005 or C%0009 would be cut or garbled in the path without percent-encoding
        return "%s(%s)" % (self.url, quote(self._literal(self.key, record_id), safe="'"))

    def _bodies(self, rows: Sequence[Mapping[str, Any]], with_key: bool) -> list[dict[str, Any] | WriteResult]:
        out: list[dict[str, Any] | WriteResult] = []
        for row in rows:
            try:
                out.append(self._body(row, with_key))
            except _Refused as exc:
                rid = row.get(self.key)
                out.append(WriteResult(False, record_id=None if rid is None else str(rid), error=str(exc)))
        return out

    # -- writes ------------------------------------------------------------------------------------------
    def pages_in_flight(self, records: int) -> int:
        # why: enough pages to fill every request the service takes at once, and at least two, so that the next page
        # is on the wire while the job stores the one before (pages_in_flight.py)
        wanted = self.endpoint.client.pacer.limit * self.endpoint.batch_size
        return max(2, min(-(-wanted // max(1, records)), MAX_PAGES_IN_FLIGHT))

    def insert(self, rows) -> list[WriteResult]:
        rows = [dict(r) for r in rows]
        # why: a Business Central record's id is the service's; a key such as a salesperson code is the client's
        bodies = self._bodies(rows, with_key=not self.info.columns[self.key].server_generated)
        results: list[WriteResult | None] = [b if isinstance(b, WriteResult) else None for b in bodies]
        todo = [i for i, b in enumerate(bodies) if not isinstance(b, WriteResult)]
        for done in self.endpoint.each(lambda chunk: self._create_chunk(chunk, rows, bodies), list(chunks(todo, self.endpoint.batch_size))):
            for i, res in done.items():
                results[i] = res
        return [r for r in results if r is not None]

    def _create_chunk(self, chunk: list[int], rows: list, bodies: list) -> dict[int, WriteResult]:
        """Creates of one write request, never making a record twice when an answer was lost on the way."""
        done: dict[int, WriteResult] = {}
        # why: only an entity key makes a resent create fail as a duplicate; another key (a code) may not be unique there
        own = {i: str(rows[i][self.key]) for i in chunk if rows[i].get(self.key) is not None} if self.key in self.etype.key else {}
        pending = list(chunk)
        lost = ""
        bulk = self.bulk and len(chunk) > 1
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                # why: the last answer was lost, the service may have made the records: look them up before sending again
                done.update(self._already_created(pending, rows, own))
                pending = [i for i in pending if i not in done]
            if not pending:
                break
            if bulk and self.bulk:
                try:
                    made = self._create_multiple([bodies[i] for i in pending], [rows[i] for i in pending])
                except ConnectionLost as exc:
                    lost = str(exc)
                    continue
                if made is not None:
                    done.update(zip(pending, made))
                    return done
                # why: a refused CreateMultiple may be a resent one whose first answer was lost: those records exist under our ids
                done.update(self._already_created([i for i in pending if i in own], rows, own))
                pending = [i for i in pending if i not in done]
                bulk = False
                if not pending:
                    break
            answers = self._batch([BatchPart("POST", self.url, bodies[i]) for i in pending], resend=False)
            duplicates = [i for i, resp in zip(pending, answers) if i in own and resp.error_code() == DUPLICATE_RECORD]
            existing = self._existing([own[i] for i in duplicates])
            unknown = []
            for i, resp in zip(pending, answers):
                if resp.status == OUTCOME_UNKNOWN:
                    unknown.append(i)
                    lost = resp.error_message()
                elif i in duplicates and own[i].lower() in existing:
                    done[i] = WriteResult(True, record_id=own[i])
                else:
                    done[i] = self._created(rows[i], resp)
            pending = unknown
        for i in pending:
            done[i] = WriteResult(False, record_id=own.get(i), error="the outcome of the create is unknown after %d attempts (%s)"
                                  % (WRITE_ATTEMPTS, lost))
        return done

    def _already_created(self, pending: list[int], rows: list, own: Mapping[int, str]) -> dict[int, WriteResult]:
        """Of records whose create may have been carried out, those the service has: by their client-chosen
        id, else (the service assigns ids) by the values they were created with."""
        found: dict[int, WriteResult] = {}
        existing = self._existing([own[i] for i in pending if i in own])
        for i in pending:
            if i in own and own[i].lower() in existing:
                found[i] = WriteResult(True, record_id=own[i])
        by_values = [i for i in pending if i not in own]
        for i, rid in self._found_by_values(by_values, rows).items():
            found[i] = WriteResult(True, record_id=rid)
        return found

    def _found_by_values(self, pending: list[int], rows: list) -> dict[int, str]:
        """Ids of records holding exactly the values of ``rows[i]``; each record answers for one row only."""
        if not pending:
            return {}
        columns = [c for c in rows[pending[0]] if c != self.key and c not in self.lookups and self.kinds.get(c) == "text"]
        # why: a text column every row fills tells the records apart: a look-up per 50 records, not one per record
        column = next((c for c in columns if all(rows[i].get(c) not in (None, "") for i in pending)), None)
        if column is None:
            matches = {i: self.find(rows[i], [self.key], limit=1) for i in pending}
            return {i: self._id_text(m[0][0]) for i, m in matches.items() if m}
        names = list(dict.fromkeys([self.key, *[c for i in pending for c in rows[i]]]))
        candidates = [dict(zip(names, self._row(item, names))) for item in self._by_values(column, [rows[i][column] for i in pending], names)]
        out: dict[int, str] = {}
        taken: set[str] = set()
        for i in pending:
            for record in candidates:
                rid = self._id_text(record[self.key])
                if rid not in taken and all(_same(record.get(c), v) for c, v in rows[i].items() if c != self.key):
                    out[i] = rid
                    taken.add(rid)
                    break
        return out

    def _existing(self, ids: list[str]) -> set[str]:
        return {str(r[0]).lower() for r in self.read_by_ids(ids, [self.key])} if ids else set()

    def _create_multiple(self, bodies: list, rows: list) -> list[WriteResult] | None:
        """Dataverse CreateMultiple: all or nothing, so any refusal falls back to a $batch that isolates it.
        Raises ConnectionLost when the answer was lost."""
        odata_type = "Microsoft.Dynamics.CRM.%s" % self.etype.name
        targets = [dict(b, **{"@odata.type": odata_type}) for b in bodies]
        response = self.client.request("POST", "%s/Microsoft.Dynamics.CRM.CreateMultiple" % self.url, json_body={"Targets": targets},
                                       resend=False)
        self._note_bulk_support(response)
        if response.status != 200:
            return None
        ids = (response.json() or {}).get("Ids") or []
        if len(ids) != len(rows):
            return None
        return [WriteResult(True, record_id=str(i).lower()) for i in ids]

    def _created(self, row: Mapping[str, Any], response: Response) -> WriteResult:
        own = row.get(self.key)
        if response.status in (200, 201, 204):
            if response.status != 204 and response.body.strip():
                rid = (response.json() or {}).get(self._prop(self.key))
                if rid is not None:
                    return WriteResult(True, record_id=self._id_text(rid))
            match = _ENTITY_ID.search(response.header("OData-EntityId") or response.header("Location") or "")
            if match:
                return WriteResult(True, record_id=match.group(1).lower())
            if own is not None:
                return WriteResult(True, record_id=str(own))
            return WriteResult(False, error="the service did not say which id it gave the new record")
        return WriteResult(False, record_id=None if own is None else str(own), error=response.error_message())

    def update(self, changes) -> list[WriteResult]:
        changes = [(rid, {k: v for k, v in dict(values).items() if k != self.key}) for rid, values in changes]
        results: list[WriteResult | None] = [None] * len(changes)
        current: dict[str, Current] = {}
        if self.kind == BUSINESS_CENTRAL:
            current = self._current([change[0] for change in changes])
        todo = []
        bodies: dict[int, dict] = {}
        for index, (rid, values) in enumerate(changes):
            if self.kind == BUSINESS_CENTRAL and rid not in current:
                results[index] = _missing(rid)
                continue
            try:
                bodies[index] = self._body(values, with_key=False)
            except _Refused as exc:
                results[index] = WriteResult(False, record_id=rid, error=str(exc))
                continue
            todo.append(index)
        batches = list(chunks(todo, self.endpoint.batch_size))
        answers = self.endpoint.each(lambda chunk: self._update_chunk([changes[i] for i in chunk], [bodies[i] for i in chunk], current), batches)
        for chunk, done in zip(batches, answers):
            for i, res in zip(chunk, done):
                results[i] = res
        return [r for r in results if r is not None]

    def _update_chunk(self, changes: list[tuple[str, dict]], bodies: list[dict], current: dict[str, Current]) -> list[WriteResult]:
        """Updates of one write request. A Business Central update carries the record's ETag: once carried out,
        the same request fails with 412, so an update whose answer was lost is read back, done when the record
        holds its values, else sent again with the record's new ETag."""
        results: dict[int, WriteResult] = {}
        pending = list(range(len(changes)))
        lost = ""
        if self.bulk and len(changes) > 1:
            # why: UpdateMultiple sets values without an ETag; sending it again after a lost answer changes nothing more
            done = self._update_multiple([(changes[j][0], bodies[j]) for j in pending])
            if done is not None:
                return done
        bound = self.kind == BUSINESS_CENTRAL
        for attempt in range(WRITE_ATTEMPTS):
            if attempt:
                again = self._current([changes[j][0] for j in pending], sorted({c for j in pending for c in changes[j][1]}))
                for j in pending:
                    rid, values = changes[j]
                    now = again.get(rid)
                    if now is None:
                        results[j] = _missing(rid)
                    elif all(_same(now.values.get(c), v) for c, v in values.items()):
                        results[j] = WriteResult(True, record_id=rid)
                    else:
                        current[rid] = now
                pending = [j for j in pending if j not in results]
            if not pending:
                break
            parts = []
            for j in pending:
                rid = changes[j][0]
                # why: Dataverse PATCH is an upsert; If-Match: * makes it fail on a vanished record instead
                etag = current[rid].etag if rid in current else "*"
                parts.append(BatchPart("PATCH", self._entity(rid, current), bodies[j], {"If-Match": etag}))
            unknown = []
            for j, resp in zip(pending, self._batch(parts, resend=not bound)):
                if resp.status == OUTCOME_UNKNOWN:
                    unknown.append(j)
                    lost = resp.error_message()
                else:
                    results[j] = self._written(changes[j][0], resp)
            pending = unknown
        for j in pending:
            results[j] = WriteResult(False, record_id=changes[j][0], error="the outcome of the update is unknown after %d attempts (%s)"
                                     % (WRITE_ATTEMPTS, lost))
        return [results[j] for j in range(len(changes))]

    def _update_multiple(self, items: list[tuple[str, dict]]) -> list[WriteResult] | None:
        odata_type = "Microsoft.Dynamics.CRM.%s" % self.etype.name
        key = self._prop(self.key)
        targets = [dict(body, **{"@odata.type": odata_type, key: rid}) for rid, body in items]
        response = self.client.request("POST", "%s/Microsoft.Dynamics.CRM.UpdateMultiple" % self.url, json_body={"Targets": targets})
        self._note_bulk_support(response)
        if response.status not in (200, 204):
            return None
        return [WriteResult(True, record_id=rid) for rid, dummy in items]

    def _note_bulk_support(self, response: Response) -> None:
        """A table without CreateMultiple/UpdateMultiple is written with $batch from then on."""
        if response.status in (404, 405, 501):
            self.bulk = False

    def delete(self, ids) -> list[WriteResult]:
        ids = list(ids)
        current = self._current(ids) if self.kind == BUSINESS_CENTRAL else {}
        results: dict[str, WriteResult] = {}
        todo = []
        for rid in ids:
            if self.kind == BUSINESS_CENTRAL and rid not in current:
                results[rid] = _missing(rid)
            else:
                todo.append(rid)

        def send(chunk: list[str]) -> list[WriteResult]:
            parts = [BatchPart("DELETE", self._entity(rid, current), None, {"If-Match": current[rid].etag if rid in current else "*"})
                     for rid in chunk]
            # why: a delete sent again after a lost answer finds the record gone (404), which is what was asked
            return [self._written(rid, resp) for rid, resp in zip(chunk, self._batch(parts))]

        batches = list(chunks(todo, self.endpoint.batch_size))
        for chunk, done in zip(batches, self.endpoint.each(send, batches)):
            results.update(zip(chunk, done))
        return [results[rid] for rid in ids]

    def _written(self, rid: str, response: Response) -> WriteResult:
        if 200 <= response.status < 300:
            return WriteResult(True, record_id=rid)
        if response.status == 404 and not self._existing([rid]):
            # why: a 404 may come from a wrong address or a proxy; only a read saying the record is gone makes it a deletion
            return _missing(rid)
        return WriteResult(False, record_id=rid, error=response.error_message())

    def _current(self, ids: Sequence[str], columns: Sequence[str] = ()) -> dict[str, Current]:
        """The records as they are now: ETag (Business Central requires the record's own on PATCH and DELETE),
        the entity id of a table keyed by another column than the entity key (a code), and ``columns``."""
        out: dict[str, Current] = {}
        key = self._prop(self.key)
        entity_keys = [k for k in self.etype.key if k != key]
        fields = list(dict.fromkeys([self.key, *[k for k in entity_keys if k in self.props.values()], *columns]))
        for item in self._by_ids(ids, fields):
            entity = item.get(entity_keys[0]) if len(entity_keys) == 1 else None
            out[str(item.get(key)).lower()] = Current(item.get("@odata.etag") or "*", None if entity is None else str(entity),
                                                      dict(zip(fields, self._row(item, fields))))
        return {rid: out[str(rid).lower()] for rid in ids if str(rid).lower() in out}

    def _batch(self, parts: list[BatchPart], resend: bool = True) -> list[Response]:
        """One answer per part; a part whose outcome is unknown (``resend=False`` and the answer lost) answers OUTCOME_UNKNOWN."""
        try:
            if self.kind == BUSINESS_CENTRAL:
                return self.client.batch_json([BatchPart(p.method, self.client.absolute(p.url), p.body, p.headers) for p in parts], resend=resend)
            if self.kind == DATAVERSE:
                return self.client.batch_multipart(parts, resend=resend)
        except ConnectionLost as exc:
            return [_unknown(exc)] * len(parts)
        # why: $batch support and its continue-on-error behaviour vary between generic OData services
        answers = []
        for p in parts:
            try:
                answers.append(self.client.request(p.method, p.url, json_body=p.body, headers=p.headers, resend=resend))
            except ConnectionLost as exc:
                answers.append(_unknown(exc))
        return answers


class DataverseChangeRead(ChangeRead):
    """One change-tracking read: iterate ``pages()``, then keep ``delta_link`` for the next read."""

    EXPIRED = "0x80044352"  # ExpiredVersionStamp (Dataverse web service error codes)
    NOT_ENABLED = "0x80072491"  # ChangeTrackingNotEnabledForEntity

    def __init__(self, table: ODataTable, fields: list[str], delta_link: str | None, where: Any, page_size: int):
        self.table = table
        self.fields = fields
        self.where = where
        self.page_size = page_size
        self.start = delta_link
        self.full = delta_link is None
        self.enabled = True  # False when the entity has no change tracking: nothing is read, use scan()
        self.delta_link: str | None = None

    def pages(self) -> Iterator[tuple[list[tuple], list[str]]]:
        """(changed rows in ``fields`` order, ids of deleted records) per page."""
        table = self.table
        names = list(dict.fromkeys([*self.fields, *(sorted(self.where.fields) if self.where is not None else [])]))
        headers = {"Prefer": "odata.track-changes,odata.maxpagesize=%d" % max(1, min(self.page_size, table.endpoint.page_size))}
        url: str | None = self.start or table._query(names)
        # why: url is typed optional for the loop below (no next link ends it); the first request always has one
        response = table.client.request("GET", url, headers=headers)  # type: ignore[arg-type]
        code = response.error_code() if response.status == 400 else None
        if self.start and code == self.EXPIRED:
            self.full, url = True, table._query(names)
            response = table.client.request("GET", url, headers=headers)
            code = response.error_code() if response.status == 400 else None
        if code == self.NOT_ENABLED:
            self.enabled = False
            return
        if response.status != 200:
            raise EndpointError("change tracking read of %s: %s" % (table.set_name, response.error_message()))
        width = len(self.fields)
        key = table._prop(table.key)
        document = response.json()
        while True:
            rows, deleted = [], []
            for item in document.get("value", []):
                if "$deletedEntity" in str(item.get("@odata.context", "")):
                    deleted.append(str(item.get("id") or item.get(key)).lower())
                    continue
                row = table._row(item, names)
                if self.where is None or self.where.matches(dict(zip(names, row))):
                    rows.append(row[:width])
            yield rows, deleted
            url = document.get("@odata.nextLink")
            if not url:
                self.delta_link = document.get("@odata.deltaLink")
                return
            document = table.client.get_json(url, headers)


class _Refused(Exception):
    """A record that cannot be written as it is; it fails alone."""


@dataclass
class Current:
    """A record as the service holds it now."""

    etag: str
    entity: str | None
    values: dict[str, Any]


def _unknown(exc: Exception) -> Response:
    return Response(OUTCOME_UNKNOWN, {}, json.dumps({"error": {"code": "OutcomeUnknown", "message": str(exc)}}).encode())


def _missing(rid: str) -> WriteResult:
    return WriteResult(False, record_id=rid, error="record %s no longer exists" % rid, missing=True)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower() if _is_guid(a) and _is_guid(b) else a == b
    if a is None or b is None:
        return (a in (None, "")) and (b in (None, ""))
    try:
        return decimal.Decimal(str(a)) == decimal.Decimal(str(b)) if not isinstance(a, (bool, datetime.date)) else a == b
    except decimal.InvalidOperation:
        return a == b


def _is_guid(text: str) -> bool:
    return bool(re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", text))
