"""Request processing of the OData test double, independent of the HTTP server.

:class:`Dispatcher` turns an :class:`ApiRequest` into an :class:`ApiResponse` for one of the
two flavours. The HTTP handler (``odata_handler``) calls it for each authenticated request;
the batch executor (``odata_batch``) calls it for each part of a ``$batch``.

Documented behaviour implemented here, with the page it comes from
(Dataverse pages are under learn.microsoft.com/power-apps/developer/data-platform/,
Business Central pages under learn.microsoft.com/dynamics365/business-central/dev-itpro/):

Dataverse
  * POST create -> 204 + ``OData-EntityId``; ``Prefer: return=representation`` -> 201 with the
    row, ``Preference-Applied``, and no ``OData-EntityId`` (webapi/create-entity-web-api).
  * PATCH is an upsert; ``If-Match: *`` prevents the create (404), ``If-None-Match: *`` prevents
    the update (412); a stale ``If-Match`` ETag gives 412 ConcurrencyVersionMismatch 0x80060882
    (webapi/perform-conditional-operations-using-web-api, webapi/update-delete-entities-using-web-api,
    reference/web-service-error-codes).
  * 204 on update/delete, 200 with ``return=representation`` on update, 404 on a missing delete.
  * 412 for DuplicateRecord 0x80040237 (webapi/compose-http-requests-handle-errors status table).
  * ``If-None-Match`` with the current ETag on a retrieve -> 304 (conditional retrievals).
  * Paging: ``Prefer: odata.maxpagesize`` (default and maximum 5000, larger values ignored),
    ``Preference-Applied``, ``@odata.nextLink`` with an opaque ``$skiptoken``; no ``$skip``;
    ``$top`` is ignored when combined with maxpagesize (webapi/query/page-results).
  * ``$count=true`` -> ``@odata.count`` capped at 5000; ``/$count`` -> text/plain
    (webapi/query/count-rows).
  * ``RetrieveTotalRecordCount(EntityNames=@p1)?@p1=["account"]`` -> ``EntityRecordCountCollection``
    (``Keys``: logical names, ``Values``: their record counts), the whole table's count beyond the
    5000 of ``$count`` (webapi/query/count-rows, webapi/reference/retrievetotalrecordcount,
    webapi/reference/entityrecordcountcollection); the double's snapshot is taken when asked.
  * Change tracking: ``Prefer: odata.track-changes`` -> ``@odata.deltaLink`` with
    ``$deltatoken``; delta rows then ``$deletedEntity`` rows; ``$filter``/``$orderby``/
    ``$expand``/``$top`` rejected (use-change-tracking-synchronize-data-external-systems);
    ChangeTrackingNotEnabledForEntity 0x80072491 and ExpiredVersionStamp 0x80044352
    (reference/web-service-error-codes).
  * CreateMultiple (200 ``{"Ids": [...]}``) / UpdateMultiple (204); ``@odata.type`` required on
    every target; on a standard table any error rolls the whole request back (bulk-operations).
  * ``@odata.bind`` for single-valued navigation properties; lookups read back as
    ``_<attribute>_value`` (webapi/create-entity-web-api).

Business Central (API v2.0)
  * ``GET api/v2.0/companies`` and ``companies({id})/<entity set>``
    (api-reference/v2.0/api/dynamics_company_get, developer/devenv-connect-apps-tips).
  * POST -> 201 with the entity; PATCH -> 200 with the entity; DELETE -> 204; ``If-Match``
    is required on PATCH and DELETE (api-reference/v2.0/api/dynamics_customer_*,
    webservices/use-odata-to-modify-data). Without it: 400 BadRequest_InvalidToken
    "Could not validate the client concurrency token ..." (webservices/dynamics-error-codes).
    A stale ETag: ``Request_EntityChanged`` (same table) with status ``bc_stale_etag_status``.
  * Server-driven paging: 20,000 entities per page, ``odata.maxpagesize`` up to 20,000
    (webservices/Server-Driven-Paging-in-OData-Web-Services).
  * "The 'OR' operator is not supported on distinct fields on an OData filter."
    (webservices/odata-known-limitations).
  * Application_StringExceededLength for over-long strings (webservices/dynamics-error-codes).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from .odata_model import (
    DATAVERSE,
    ColumnType,
    EntitySetDef,
    ODataError,
    Table,
    ValueProblem,
    coerce_value,
    is_guid,
    normalize_guid,
)
from .odata_protocol import (
    JSON_TYPE,
    ApiRequest,
    ApiResponse,
    Headers,
    Route,
    decode_token,
    encode_token,
    etag_matches,
    parse_key_text,
    parse_prefer,
    split_segments,
)
from .odata_writes import WriteOperations
from .query_eval import (
    FilterEvaluator,
    QueryError,
    QueryOptions,
    compare_sort_keys,
    parse_orderby,
    parse_select,
    sort_rows,
)

if TYPE_CHECKING:  # pragma: no cover
    from .odata_service import ODataService


# --------------------------------------------------------------------------------------------
# Dispatcher
# --------------------------------------------------------------------------------------------


class Dispatcher(WriteOperations):
    def __init__(self, service: ODataService):
        self.svc = service

    @property
    def dv(self) -> bool:
        return self.svc.flavour == DATAVERSE

    # ==========================================================================================
    # errors (flavour-specific codes and messages)
    # ==========================================================================================
    def err_query(self, message: str) -> ODataError:
        # Dataverse: 0x80060888 is the code its OData layer uses for URL/query problems (not in the
        # pages read); Business Central documents BadRequest_NotFound for query syntax errors.
        return ODataError(400, "0x80060888" if self.dv else "BadRequest_NotFound", message)

    def err_segment(self, segment: str) -> ODataError:
        message = f"Resource not found for the segment '{segment}'."
        return ODataError(404, "0x80060888" if self.dv else "BadRequest_ResourceNotFound", message)

    def err_not_found(self, defn: EntitySetDef, key: str) -> ODataError:
        if self.dv:
            return ODataError(404, "0x80040217", f"{defn.logical_name} With Id = {key} Does Not Exist")
        return ODataError(
            404, "BadRequest_NotFound", f"The {defn.logical_name} does not exist. Identification fields and values: Id='{key}'"
        )

    def err_payload(self, defn: EntitySetDef, prop: str) -> ODataError:
        if self.dv:
            return ODataError(
                400,
                "0x80048d19",
                f"Error identified in Payload provided by the user for Entity :'{defn.name}', For more information on this error "
                f"please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  InnerException : "
                f"Microsoft.OData.ODataException: Invalid property '{prop}' was found in entity 'Microsoft.Dynamics.CRM.{defn.logical_name}'.",
            )
        return ODataError(
            400,
            "BadRequest",
            f"The property '{prop}' does not exist on type 'Microsoft.NAV.{defn.type_name}'. "
            "Make sure to only use property names that are defined by the type.",
        )

    def err_value(self, defn: EntitySetDef, prop: str, ctype: ColumnType, problem: ValueProblem) -> ODataError:
        text = str(problem)
        if text.startswith("The length of the string"):
            if self.dv:
                return ODataError(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The length of the '{prop}' attribute of the '{defn.logical_name}' entity "
                    f"exceeded the maximum allowed length of '{ctype.max_length}'.",
                )
            return ODataError(400, "Application_StringExceededLength", text)
        message = f"Cannot convert the value of property '{prop}' to the expected type '{ctype.edm}': {text}."
        return ODataError(400, "0x80048d19" if self.dv else "BadRequest", message)

    def err_duplicate(self, defn: EntitySetDef, key: str) -> ODataError:
        if self.dv:
            # DuplicateRecord -> 412 (compose-http-requests-handle-errors); message from
            # perform-conditional-operations-using-web-api "Prevent update in upsert".
            return ODataError(412, "0x80040237", "A record with matching key values already exists.")
        return ODataError(
            400,
            "Internal_EntityWithSameKeyExists",
            f"The {defn.logical_name} already exists. Identification fields and values: Id='{key}'",
        )

    def err_alternate_duplicate(self, defn: EntitySetDef, names: tuple[str, ...]) -> ODataError:
        if self.dv:
            return ODataError(
                412,
                "0x80060892",
                f"Entity Key {defn.logical_name}_{'_'.join(names)} violated. A record with the same value for {', '.join(names)} "
                "already exists. A duplicate record cannot be created. Select one or more unique values and try again.",
            )
        return ODataError(
            400,
            "Internal_EntityWithSameKeyExists",
            f"The {defn.logical_name} already exists. Identification fields and values: "
            + ",".join(f"{n}=''" for n in names),
        )

    def err_stale(self) -> ODataError:
        if self.dv:
            return ODataError(412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided.")
        return ODataError(self.svc.bc_stale_etag_status, "Request_EntityChanged", "Another user has already changed the record.")

    # ==========================================================================================
    # routing
    # ==========================================================================================
    def route(self, method: str, path: str, headers: Headers | None = None) -> Route:
        root = self.svc.api_root_path
        if not path.startswith(root):
            if path.rstrip("/") == root.rstrip("/"):
                return Route("service")
            return Route("unknown", segment=path)
        rest = path[len(root) :]
        if rest in ("", "/"):
            return Route("service")
        if rest == "$batch":
            return Route("batch")
        if rest == "$metadata":
            return Route("metadata")
        try:
            segments = split_segments(rest.rstrip("/"))
        except QueryError:
            return Route("unknown", segment=rest)
        if self.dv:
            return self._route_entity_path(segments, None)
        first, key = segments[0]
        if first == "companies":
            if len(segments) == 1:
                return Route("companies" if key is None else "company", key_text=key)
            company = self._company_id(key)
            return self._route_entity_path(segments[1:], company)
        # Business Central also accepts the company as a `Company` header or `company` parameter.
        return self._route_entity_path(segments, "__from_header__")

    def _route_entity_path(self, segments: list[tuple[str, str | None]], company: str | None) -> Route:
        name, key = segments[0]
        if self.dv and name == "WhoAmI" and len(segments) == 1:
            return Route("whoami")
        if self.dv and name == "RetrieveTotalRecordCount" and len(segments) == 1 and key is not None:
            return Route("total_record_count", key_text=key)
        if name not in self.svc._defs:
            return Route("unknown", segment=name)
        if len(segments) == 1:
            return Route("collection" if key is None else "entity", name, key, company)
        if len(segments) == 2 and key is not None and segments[1][0] in self.svc._defs[name].column_types():
            return Route("not_implemented", name, key, company, segment=segments[1][0])
        if len(segments) == 2 and key is None:
            second, second_key = segments[1]
            if second == "$count" and second_key is None:
                return Route("count", name, None, company)
            if self.dv and second.startswith("Microsoft.Dynamics.CRM."):
                return Route("bulk", name, None, company, action=second[len("Microsoft.Dynamics.CRM.") :])
            return Route("unknown", segment=second)
        return Route("unknown", segment=segments[1][0] if len(segments) > 1 else name)

    def _company_id(self, key: str | None) -> str | None:
        if key is None:
            return None
        value = key.strip().strip("'")
        return normalize_guid(value) if is_guid(value) else value

    # ==========================================================================================
    # entry point
    # ==========================================================================================
    def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            route = self.route(req.method, req.path, req.headers)
            return self._dispatch(route, req)
        except ODataError as exc:
            return self.error_response(exc)
        except QueryError as exc:
            return self.error_response(self.err_query(str(exc)))

    def error_response(self, exc: ODataError) -> ApiResponse:
        headers = {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **exc.headers}
        return ApiResponse(exc.status, headers, json.dumps(exc.body()).encode())

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> ApiResponse:
        out = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
        out.update(headers or {})
        return ApiResponse(status, out, json.dumps(payload).encode())

    def _empty(self, status: int, headers: dict[str, str] | None = None) -> ApiResponse:
        out = {"OData-Version": "4.0"}
        out.update(headers or {})
        return ApiResponse(status, out, b"")

    def _dispatch(self, route: Route, req: ApiRequest) -> ApiResponse:
        method = req.method.upper()
        if route.kind == "unknown":
            raise self.err_segment(route.segment or req.path)
        if route.kind == "batch":
            if req.in_batch:
                raise ODataError(400, "0x0" if self.dv else "BadRequest", "Batch requests cannot contain other batch requests.")
            from .odata_batch import BatchExecutor

            return BatchExecutor(self).execute(req)
        if route.kind == "service":
            return self._service_document()
        if route.kind == "metadata":
            return self._metadata()
        if route.kind == "not_implemented":
            raise ODataError(
                501,
                "TestDoubleNotImplemented",
                f"Single-property requests ('{route.segment}') are valid OData but are not implemented by the test double.",
            )
        if route.kind == "whoami":
            return self._json(200, self.svc._whoami())
        if route.kind == "total_record_count" and method == "GET":
            return self._total_record_count(route.key_text or "", req)
        if route.kind in ("companies", "company"):
            return self._companies(route, req)
        company = self._resolve_company(route, req)
        table = self.svc._store.table(company, route.entity_set)
        if route.kind == "collection":
            if method == "GET":
                return self.get_collection(table, req)
            if method == "POST":
                return self.create(table, req)
        elif route.kind == "count":
            if method == "GET":
                return self.count(table, req)
        elif route.kind == "entity":
            if method == "GET":
                return self.get_entity(table, route.key_text or "", req)
            if method == "PATCH":
                return self.patch(table, route.key_text or "", req)
            if method == "DELETE":
                return self.delete(table, route.key_text or "", req)
        elif route.kind == "bulk" and method == "POST":
            return self.bulk(table, route.action or "", req)
        raise ODataError(405, "0x80060888" if self.dv else "BadRequest_MethodNotAllowed", f"The HTTP method '{method}' is not allowed on this resource.")

    def _resolve_company(self, route: Route, req: ApiRequest) -> str | None:
        if self.dv:
            return None
        company = route.company
        if company == "__from_header__":
            name = req.headers.get("Company") or req.param("company")
            if not name:
                raise ODataError(
                    400,
                    "Internal_CompanyNotFound",
                    "Can't process the request because the default company can't be found.",
                )
            company = self.svc._find_company(name)
        if company is None or not any(c["id"] == company for c in self.svc._companies):
            raise ODataError(404, "BadRequest_NotFound", f"The company '{route.company}' does not exist.")
        return company

    # ==========================================================================================
    # service document, WhoAmI, companies
    # ==========================================================================================
    def _service_document(self) -> ApiResponse:
        sets = [{"name": n, "kind": "EntitySet", "url": n} for n in self.svc._defs]
        if not self.dv:
            sets.insert(0, {"name": "companies", "kind": "EntitySet", "url": "companies"})
        return self._json(200, {"@odata.context": f"{self.svc.api_root}$metadata", "value": sets})

    def _metadata(self) -> ApiResponse:
        """A minimal CSDL document: entity types with key and typed properties, and the container."""
        namespace = "Microsoft.Dynamics.CRM" if self.dv else "Microsoft.NAV"
        lines = [
            '<?xml version="1.0" encoding="utf-8"?>',
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
            "<edmx:DataServices>",
            f'<Schema Namespace="{namespace}" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
        ]
        for defn in self.svc._defs.values():
            type_name = defn.type_name
            lines.append(f'<EntityType Name="{escape(type_name)}"><Key><PropertyRef Name="{defn.key}" /></Key>')
            for prop, ctype in defn.column_types().items():
                length = f' MaxLength="{ctype.max_length}"' if ctype.max_length else ""
                nullable = ' Nullable="false"' if prop == defn.key else ""
                lines.append(f'<Property Name="{escape(prop)}" Type="{ctype.edm}"{length}{nullable} />')
            for targets in defn.lookups.values():
                for target in targets:
                    target_type = self.svc._defs[target.entity_set].type_name if target.entity_set in self.svc._defs else target.entity_set
                    lines.append(f'<NavigationProperty Name="{escape(target.navigation_property)}" Type="{namespace}.{escape(target_type)}" />')
            lines.append("</EntityType>")
        container = "System" if self.dv else "NAV"
        lines.append(f'<EntityContainer Name="{container}">')
        if not self.dv:
            lines.append('<EntitySet Name="companies" EntityType="Microsoft.NAV.company" />')
        for defn in self.svc._defs.values():
            type_name = defn.type_name
            lines.append(f'<EntitySet Name="{escape(defn.name)}" EntityType="{namespace}.{escape(type_name)}" />')
        lines += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
        return ApiResponse(200, {"Content-Type": "application/xml", "OData-Version": "4.0"}, "\n".join(lines).encode())

    def _companies(self, route: Route, req: ApiRequest) -> ApiResponse:
        if req.method.upper() != "GET":
            raise ODataError(
                405,
                "BadRequest_MethodNotAllowed",
                f"'{req.method.upper()}' requests for 'companies' of EdmType 'Entity' are not allowed within "
                "Microsoft Dynamics 365 Business Central OData web services.",
            )
        context = f"{self.svc.api_root}$metadata#companies"
        if route.kind == "company":
            company = self._company_id(route.key_text)
            for entry in self.svc._companies:
                if entry["id"] == company:
                    return self._json(200, {"@odata.context": context + "/$entity", **entry})
            raise ODataError(404, "BadRequest_NotFound", f"The company '{route.key_text}' does not exist.")
        return self._json(200, {"@odata.context": context, "value": list(self.svc._companies)})

    # ==========================================================================================
    # formatting
    # ==========================================================================================
    def etag(self, version: int) -> str:
        if self.dv:
            return f'W/"{version}"'
        text = str(version)
        token = base64.b64encode(f"'{len(text)};{text};00;'".encode()).decode()
        return f'W/"{token}"'

    def entity_url(self, table: Table, key: str) -> str:
        if self.dv:
            return f"{self.svc.api_root}{table.definition.name}({key})"
        return f"{self.svc.api_root}companies({table.company})/{table.definition.name}({key})"

    def context_url(self, table: Table, select: list[str] | None, suffix: str = "") -> str:
        base = f"{self.svc.api_root}$metadata#"
        name = table.definition.name
        if not self.dv:
            name = f"companies({table.company})/{name}"
        if select:
            name += f"({','.join(select)})"
        return base + name + suffix

    def format_row(self, table: Table, key: str, select: list[str] | None, prefs: dict[str, str | None] | None = None) -> dict[str, Any]:
        defn = table.definition
        row = table.rows[key]
        out: dict[str, Any] = {"@odata.etag": self.etag(table.versions[key])}
        names = select if select is not None else defn.property_order()
        if self.dv and defn.key not in names:
            names = [*names, defn.key]  # Dataverse always returns the primary key
        annotations = self._wanted_annotations(prefs or {})
        for name in names:
            out[name] = row.get(name)
            if annotations and name.startswith("_") and name.endswith("_value") and row.get(name) is not None:
                attribute = name[1:-6]
                target = row.get(f"__{attribute}_target")
                if target is not None and self._annotation_wanted(annotations, "Microsoft.Dynamics.CRM.lookuplogicalname"):
                    out[f"{name}@Microsoft.Dynamics.CRM.lookuplogicalname"] = self.svc._defs[target[1]].logical_name
                if target is not None and self._annotation_wanted(annotations, "Microsoft.Dynamics.CRM.associatednavigationproperty"):
                    out[f"{name}@Microsoft.Dynamics.CRM.associatednavigationproperty"] = target[0]
        return out

    @staticmethod
    def _wanted_annotations(prefs: dict[str, str | None]) -> list[str]:
        value = prefs.get("odata.include-annotations")
        return [a.strip() for a in value.split(",")] if value else []

    @staticmethod
    def _annotation_wanted(patterns: list[str], name: str) -> bool:
        for pattern in patterns:
            if pattern == "*" or pattern == name or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return True
        return False

    # ==========================================================================================
    # keys
    # ==========================================================================================
    def find_key(self, table: Table, key_text: str) -> tuple[str | None, dict[str, Any]]:
        """Resolve ``(guid)`` or ``(altkey='x')``; returns (row key or None, alternate-key values)."""
        defn = table.definition
        parsed = parse_key_text(key_text)
        if "" in parsed or list(parsed) == [defn.key]:
            value = parsed.get("", parsed.get(defn.key))
            if not isinstance(value, str) or not is_guid(value):
                raise ODataError(
                    400,
                    "0x80060888" if self.dv else "Application_InvalidGUID",
                    f"Invalid format of GUID string '{value}'." if not self.dv else f"Bad Request - Error in query syntax: invalid key '{key_text}'.",
                )
            key = normalize_guid(value)
            return (key if key in table.rows else None), {}
        names = tuple(sorted(parsed))
        if not any(tuple(sorted(alt)) == names for alt in defn.alternate_keys):
            raise ODataError(
                400,
                "0x80060888" if self.dv else "BadRequest_NotFound",
                f"The key '{key_text}' is not a valid alternate key for entity '{defn.logical_name}'.",
            )
        columns = defn.column_types()
        values: dict[str, Any] = {}
        for name, value in parsed.items():
            try:
                values[name] = coerce_value(columns[name], value, self.svc.flavour) if value is not None else None
            except ValueProblem as exc:
                raise self.err_value(defn, name, columns[name], exc) from None
        return table.find_by_alternate_key(values), values

    # ==========================================================================================
    # reading
    # ==========================================================================================
    def _query_options(self, defn: EntitySetDef) -> QueryOptions:
        return QueryOptions(
            case_insensitive=True,
            sql_nulls=self.dv,
            sql_wildcards=self.dv,
            allow_in=self.svc.filter_allow_in,
            reject_or_across_fields=(not self.dv) and self.svc.bc_reject_or_across_fields,
            type_name=(f"Microsoft.Dynamics.CRM.{defn.type_name}" if self.dv else f"Microsoft.NAV.{defn.type_name}"),
        )

    def _page_size(self, prefs: dict[str, str | None]) -> tuple[int, bool]:
        """(page size, whether the maxpagesize preference was applied)."""
        default = self.svc.default_page_size
        requested = prefs.get("odata.maxpagesize")
        if requested is None:
            return default, False
        try:
            size = int(requested)
        except ValueError:
            return default, False
        if size <= 0 or size > self.svc.max_page_size:
            return default, False  # page-results.md: larger requests are ignored
        return size, True

    def _check_options(self, req: ApiRequest, allowed: set[str]) -> None:
        for name, _ignored in req.query:
            if not name.startswith("$"):
                continue
            if name == "$skip" and self.dv:
                raise self.err_query("The query parameter $skip is not supported")
            if name in ("$expand", "$apply", "$search", "$compute", "$levels", "$format"):
                raise ODataError(
                    501,
                    "TestDoubleNotImplemented",
                    f"The query option {name} is valid OData but is not implemented by the test double.",
                )
            if name not in allowed:
                raise self.err_query(f"The query parameter '{name}' is not supported.")

    def _filtered(self, table: Table, req: ApiRequest) -> list[dict[str, Any]]:
        defn = table.definition
        text = req.param("$filter")
        rows = list(table.rows.values())
        if text is None:
            return rows
        predicate = FilterEvaluator(defn.column_types(), self._query_options(defn)).compile(text)
        listed = FilterEvaluator.equality_values(text)
        if listed is not None:
            # why: a service finds listed keys or codes in an index; the whole predicate on every row made big doubles slow
            column, values = listed
            rows = [row for row in rows if row.get(column) is not None and str(row.get(column)).lower() in values]
        return [row for row in rows if predicate(row)]

    def count(self, table: Table, req: ApiRequest) -> ApiResponse:
        self._check_options(req, {"$filter", "$deltatoken"})
        if req.param("$deltatoken") is not None:
            token = self._delta_token(table, req.param("$deltatoken") or "")
            total = len(self._delta_items(table, token["version"], self.svc._store.current_version))
        else:
            total = len(self._filtered(table, req))
        return ApiResponse(200, {"Content-Type": "text/plain", "OData-Version": "4.0"}, str(total).encode())

    def _total_record_count(self, parameters: str, req: ApiRequest) -> ApiResponse:
        """The RetrieveTotalRecordCount function: ``EntityNames`` given inline or as a parameter alias (``@p1``)."""
        name, _eq, value = parameters.partition("=")
        if name.strip() != "EntityNames" or not value:
            raise self.err_query("RetrieveTotalRecordCount takes one parameter, EntityNames.")
        value = value.strip()
        text = req.param(value) if value.startswith("@") else value.replace("'", '"')
        try:
            names = json.loads(text or "")
        except ValueError:
            raise self.err_query(f"EntityNames: {text!r} is not a collection of logical names.") from None
        by_logical = {defn.logical_name: set_name for set_name, defn in self.svc._defs.items()}
        unknown = [n for n in names if n not in by_logical]
        if unknown:
            raise ODataError(404, "0x80040217", f"Could not find an entity with name {unknown[0]}")
        values = [len(self.svc._store.table(None, by_logical[n]).rows) for n in names]
        body = {"@odata.context": f"{self.svc.api_root}$metadata#Microsoft.Dynamics.CRM.RetrieveTotalRecordCountResponse",
                "EntityRecordCountCollection": {"Count": len(names), "IsReadOnly": False, "Keys": names, "Values": values}}
        return self._json(200, body)

    def get_collection(self, table: Table, req: ApiRequest) -> ApiResponse:
        prefs = parse_prefer(req.headers)
        if self.dv and req.param("$deltatoken") is not None:
            return self._get_delta(table, req, prefs)
        skiptoken = req.param("$skiptoken")
        state = self._decode_skiptoken(skiptoken) if skiptoken else {}
        tracking = self.dv and ("odata.track-changes" in prefs or bool(state.get("ct")))
        if tracking:
            self._check_tracking_allowed(table, req)
        allowed = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken"} | (set() if self.dv else {"$skip"})
        self._check_options(req, allowed)

        defn = table.definition
        columns = defn.column_types()
        qo = self._query_options(defn)
        select = parse_select(req.param("$select"), columns, qo.type_name)
        order = parse_orderby(req.param("$orderby"), columns, qo.type_name)
        rows = self._filtered(table, req)
        keyed = sort_rows(rows, order, columns, defn.key, qo.case_insensitive)
        total = len(keyed)
        descending = [item.descending for item in order]

        page_size, applied = self._page_size(prefs)
        top = self._int_option(req, "$top")
        skip = self._int_option(req, "$skip")
        if self.dv and applied:
            top = None  # page-results.md: "If you include both, $top is ignored."
        remaining = state.get("rem", top)
        if state.get("after") is not None:
            after = state["after"]
            keyed = [pair for pair in keyed if compare_sort_keys(pair[0], after, descending) > 0]
        elif skip:
            keyed = keyed[skip:]
        limit = page_size if remaining is None else min(page_size, remaining)
        page = keyed[:limit]
        left = None if remaining is None else remaining - len(page)
        more = len(keyed) > len(page) and (left is None or left > 0)

        body: dict[str, Any] = {"@odata.context": self.context_url(table, select)}
        if (req.param("$count") or "").lower() == "true":
            body["@odata.count"] = min(total, 5000) if self.dv else total
            annotations = self._wanted_annotations(prefs)
            if self.dv and self._annotation_wanted(annotations, "Microsoft.Dynamics.CRM.totalrecordcount"):
                body["@Microsoft.Dynamics.CRM.totalrecordcount"] = min(total, 5000)
                body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = total > 5000
        body["value"] = [self.format_row(table, row[defn.key], select, prefs) for _ignored, row in page]

        delta_version = state.get("dv", self.svc._store.current_version)
        if more:
            token = {"after": page[-1][0] if page else None, "rem": left}
            if tracking:
                token.update(ct=True, dv=delta_version)
            body["@odata.nextLink"] = self._link(table, req, {"$skiptoken": self._encode_skiptoken(token)}, drop={"$skip", "$top"})
        elif tracking:
            delta = self.svc._issue_delta_token(table, delta_version)
            body["@odata.deltaLink"] = self._link(table, req, {"$deltatoken": delta}, drop={"$skip", "$top", "$skiptoken"})

        applied_prefs = []
        if applied:
            applied_prefs.append(f"odata.maxpagesize={page_size}")
        if tracking and "odata.track-changes" in prefs:
            applied_prefs.append("odata.track-changes")
        if prefs.get("odata.include-annotations"):
            applied_prefs.append(f'odata.include-annotations="{prefs["odata.include-annotations"]}"')
        headers = {"Preference-Applied": ", ".join(applied_prefs)} if applied_prefs else {}
        return self._json(200, body, headers)

    def _int_option(self, req: ApiRequest, name: str) -> int | None:
        text = req.param(name)
        if text is None:
            return None
        if not re.fullmatch(r"\d+", text.strip()):
            raise self.err_query(f"Invalid value '{text}' for {name} query option found. The {name} query option requires a non-negative integer value.")
        return int(text)

    def _encode_skiptoken(self, state: dict[str, Any]) -> str:
        return encode_token(state)

    def _decode_skiptoken(self, token: str) -> dict[str, Any]:
        try:
            state = decode_token(token)
        except (ValueError, TypeError):
            raise self.err_query("The $skiptoken value is not valid.") from None
        if not isinstance(state, dict):
            raise self.err_query("The $skiptoken value is not valid.")
        return state

    def _link(self, table: Table, req: ApiRequest, add: dict[str, str], drop: set[str]) -> str:
        keep = [(k, v) for k, v in req.query if k not in drop and k not in add]
        keep += list(add.items())
        base = self.entity_set_url(table)
        query = urlencode(keep, quote_via=quote, safe="$,'()=:")
        return f"{base}?{query}" if query else base

    def entity_set_url(self, table: Table) -> str:
        if self.dv:
            return f"{self.svc.api_root}{table.definition.name}"
        return f"{self.svc.api_root}companies({table.company})/{table.definition.name}"

    def get_entity(self, table: Table, key_text: str, req: ApiRequest) -> ApiResponse:
        self._check_options(req, {"$select"})
        key, _ignored = self.find_key(table, key_text)
        defn = table.definition
        if key is None:
            raise self.err_not_found(defn, key_text)
        prefs = parse_prefer(req.headers)
        current = self.etag(table.versions[key])
        none_match = req.headers.get("If-None-Match")
        if none_match and none_match.strip() != "null" and etag_matches(none_match, current):
            return self._empty(304, {"ETag": current})
        select = parse_select(req.param("$select"), defn.column_types(), self._query_options(defn).type_name)
        body = {"@odata.context": self.context_url(table, select, "/$entity"), **self.format_row(table, key, select, prefs)}
        return self._json(200, body, {"ETag": current})

    # ==========================================================================================
    # change tracking (Dataverse)
    # ==========================================================================================
    def _check_tracking_allowed(self, table: Table, req: ApiRequest) -> None:
        if not table.definition.change_tracking:
            raise ODataError(400, "0x80072491", f"Entity {table.definition.logical_name} isn't enabled for change tracking.")
        for option in ("$filter", "$orderby", "$expand", "$top"):
            if req.param(option) is not None:
                raise self.err_query(f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.')

    def _delta_token(self, table: Table, token: str) -> dict[str, Any]:
        entry = self.svc._delta_tokens.get(token)
        now = self.svc.clock()
        if (
            entry is None
            or entry["expired"]
            or entry["set"] != table.definition.name
            or now - entry["issued"] > self.svc.delta_token_lifetime
        ):
            raise ODataError(400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync.")
        return entry

    def _delta_items(self, table: Table, since: int, until: int) -> list[tuple[str, str]]:
        changed = sorted((v, k) for k, v in table.versions.items() if since < v <= until)
        deleted = sorted((v, k) for k, v in table.tombstones.items() if since < v <= until and k not in table.rows)
        return [("row", k) for _ignored, k in changed] + [("deleted", k) for _ignored, k in deleted]

    def _get_delta(self, table: Table, req: ApiRequest, prefs: dict[str, str | None]) -> ApiResponse:
        self._check_tracking_allowed(table, req)
        self._check_options(req, {"$select", "$deltatoken", "$skiptoken", "$count"})
        token = self._delta_token(table, req.param("$deltatoken") or "")
        skiptoken = req.param("$skiptoken")
        state = self._decode_skiptoken(skiptoken) if skiptoken else {}
        until = state.get("to", self.svc._store.current_version)
        offset = state.get("off", 0)
        defn = table.definition
        select = parse_select(req.param("$select"), defn.column_types(), self._query_options(defn).type_name)
        items = self._delta_items(table, token["version"], until)
        page_size, applied = self._page_size(prefs)
        page = items[offset : offset + page_size]
        values: list[dict[str, Any]] = []
        for kind, key in page:
            if kind == "row" and key in table.rows:
                values.append(self.format_row(table, key, select, prefs))
            else:
                values.append({"@odata.context": f"{self.svc.api_root}$metadata#{defn.name}/$deletedEntity", "id": key, "reason": "deleted"})
        body: dict[str, Any] = {"@odata.context": self.context_url(table, select, "/$delta"), "value": values}
        if offset + page_size < len(items):
            body["@odata.nextLink"] = self._link(table, req, {"$skiptoken": encode_token({"to": until, "off": offset + page_size})}, drop=set())
        else:
            delta = self.svc._issue_delta_token(table, until)
            body["@odata.deltaLink"] = self._link(table, req, {"$deltatoken": delta}, drop={"$skiptoken"})
        headers = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if applied else {}
        return self._json(200, body, headers)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
