"""Write operations of the OData test double (create, PATCH/upsert, DELETE, ``@odata.bind``,
Dataverse CreateMultiple/UpdateMultiple). Mixed into ``odata_dispatch.Dispatcher``, which
provides routing, formatting and the flavour-specific errors used here; see its docstring for
the documented behaviour and sources.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from .odata_model import (
    ColumnType,
    ODataError,
    Table,
    ValueProblem,
    coerce_value,
    default_value,
    format_datetime,
    is_guid,
    normalize_guid,
)
from .odata_protocol import ApiRequest, ApiResponse, etag_matches, parse_key_text, parse_prefer, split_segments
from .query_eval import QueryError, parse_select


class WriteOperations:
    """Mixin: expects ``svc``, ``dv``, the ``err_*`` helpers, ``find_key``, ``format_row`` ... from Dispatcher."""

    # ==========================================================================================
    # writing
    # ==========================================================================================
    def now(self) -> str:
        return format_datetime(self.svc.clock(), self.svc.flavour)

    def build_row(self, table: Table, body: Any, existing: dict[str, Any] | None, key: str | None) -> tuple[dict[str, Any], str | None]:
        """Validate a request body and merge it into ``existing``; returns (row, key from body)."""
        defn = table.definition
        if not isinstance(body, dict):
            raise ODataError(400, "0x80048d19" if self.dv else "BadRequest", "The request body must be a JSON object.")
        row = dict(existing) if existing is not None else {}
        body_key: str | None = None
        for name, value in body.items():
            if name.startswith("@"):
                continue  # @odata.type, @odata.context, @odata.etag ... are annotations
            if name.endswith("@odata.bind"):
                self._bind(table, row, name[: -len("@odata.bind")], value)
                continue
            if "@" in name:
                continue  # property annotations such as name@OData.Community.Display.V1.FormattedValue
            if name == defn.key:
                if not is_guid(value):
                    raise self.err_value(defn, name, ColumnType("guid"), ValueProblem(f"{value!r} is not a GUID"))
                body_key = normalize_guid(value)
                if key is not None and body_key != key and not self.dv:
                    raise ODataError(400, "BadRequest_InvalidOperation", f"Control '{name}' is read-only.")
                continue
            if name in defn.server_fields:
                if not self.dv:
                    raise ODataError(400, "BadRequest_InvalidOperation", f"Control '{name}' is read-only.")
                continue  # Dataverse ignores values for columns that are not valid for create/update
            if name not in defn.fields:
                raise self.err_payload(defn, name)
            ctype = defn.fields[name]
            try:
                stored = coerce_value(ctype, value, self.svc.flavour)
            except ValueProblem as exc:
                raise self.err_value(defn, name, ctype, exc) from None
            if stored is None and not self.dv:
                stored = default_value(ctype)  # Business Central has no null field values
            row[name] = stored
        if existing is None:
            for name, ctype in defn.fields.items():
                row.setdefault(name, None if self.dv else default_value(ctype))
            for attribute in defn.lookups:
                row.setdefault(defn.lookup_value_name(attribute), None)
        return row, body_key

    def _bind(self, table: Table, row: dict[str, Any], navigation: str, value: Any) -> None:
        defn = table.definition
        found = defn.lookup_by_navigation(navigation) if self.dv else None
        if found is None:
            raise self.err_payload(defn, navigation)
        attribute, target = found
        value_name = defn.lookup_value_name(attribute)
        if value is None:
            row[value_name] = None
            row.pop(f"__{attribute}_target", None)
            return
        if not isinstance(value, str):
            raise self.err_payload(defn, f"{navigation}@odata.bind")
        ref = value
        root = self.svc.api_root
        if ref.startswith(root):
            ref = ref[len(root) :]
        else:
            parsed = urlsplit(ref)
            if parsed.scheme:
                ref = parsed.path
            if ref.startswith(self.svc.api_root_path):
                ref = ref[len(self.svc.api_root_path) :]
        ref = ref.lstrip("/")
        try:
            segments = split_segments(ref)
        except QueryError:
            segments = []
        if len(segments) != 1 or segments[0][1] is None:
            raise ODataError(400, "0x80048d19", f"The @odata.bind value '{value}' is not a valid entity reference.")
        set_name, key_text = segments[0]
        if set_name != target.entity_set:
            raise ODataError(
                400,
                "0x80048d19",
                f"The navigation property '{navigation}' references entity set '{target.entity_set}', not '{set_name}'.",
            )
        if set_name not in self.svc._defs:
            raise self.err_segment(set_name)
        target_table = self.svc._store.table(None, set_name)
        key, _ignored = self.find_key(target_table, key_text)
        if key is None:
            raise self.err_not_found(target_table.definition, key_text)
        row[value_name] = key
        row[f"__{attribute}_target"] = (navigation, set_name)

    def _check_alternate_keys(self, table: Table, row: dict[str, Any], key: str) -> None:
        for names in table.definition.alternate_keys:
            values = {n: row.get(n) for n in names}
            if any(v is None or v == "" for v in values.values()):
                continue
            other = table.find_by_alternate_key(values)
            if other is not None and other != key:
                raise self.err_alternate_duplicate(table.definition, names)

    def store_row(self, table: Table, key: str, row: dict[str, Any], created: bool) -> None:
        defn = table.definition
        now = self.now()
        version = self.svc._store.next_version()
        row[defn.key] = key
        if self.dv:
            if created:
                row["createdon"] = now
            row["modifiedon"] = now
            row["versionnumber"] = version
        else:
            row["lastModifiedDateTime"] = now
        self._check_alternate_keys(table, row, key)
        self.svc._store.put_row(table, key, row, version)
        self.svc.row_writes["create" if created else "update"] += 1

    def create_row(self, table: Table, body: Any) -> str:
        row, body_key = self.build_row(table, body, None, None)
        key = body_key or str(uuid.uuid4())
        if key in table.rows:
            raise self.err_duplicate(table.definition, key)
        self.store_row(table, key, row, created=True)
        return key

    def create(self, table: Table, req: ApiRequest) -> ApiResponse:
        self._check_options(req, {"$select"})
        prefs = parse_prefer(req.headers)
        key = self.create_row(table, req.json())
        return self._write_response(table, key, req, prefs, created=True)

    def _write_response(self, table: Table, key: str, req: ApiRequest, prefs: dict[str, str | None], created: bool) -> ApiResponse:
        defn = table.definition
        url = self.entity_url(table, key)
        etag = self.etag(table.versions[key])
        select = parse_select(req.param("$select"), defn.column_types(), self._query_options(defn).type_name)
        wants = prefs.get("return")
        if self.dv:
            if wants == "representation":
                body = {"@odata.context": self.context_url(table, select, "/$entity"), **self.format_row(table, key, select, prefs)}
                return self._json(201 if created else 200, body, {"Preference-Applied": "return=representation", "ETag": etag})
            headers = {"OData-EntityId": url}
            if req.in_batch and created:
                headers = {"Location": url, "OData-EntityId": url}
            return self._empty(204, headers)
        if wants == "minimal":
            return self._empty(204, {"Location": url, "OData-EntityId": url, "Preference-Applied": "return=minimal", "ETag": etag})
        body = {"@odata.context": self.context_url(table, select, "/$entity"), **self.format_row(table, key, select, prefs)}
        headers = {"ETag": etag}
        if created:
            headers["Location"] = url
        return self._json(201 if created else 200, body, headers)

    def patch(self, table: Table, key_text: str, req: ApiRequest) -> ApiResponse:
        self._check_options(req, {"$select"})
        prefs = parse_prefer(req.headers)
        defn = table.definition
        if_match = req.headers.get("If-Match")
        if_none_match = req.headers.get("If-None-Match")
        if not self.dv and not if_match:
            raise ODataError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
            )
        key, alternate = self.find_key(table, key_text)
        body = req.json()
        if key is None:
            if if_match or not self.dv:
                raise self.err_not_found(defn, key_text)
            # Dataverse upsert: create the record with the key from the URL.
            row, _ignored = self.build_row(table, body, None, None)
            row.update(alternate)
            parsed = parse_key_text(key_text)
            new_key = parsed.get("", parsed.get(defn.key)) if not alternate else str(uuid.uuid4())
            self.store_row(table, new_key, row, created=True)
            return self._write_response(table, new_key, req, prefs, created=True)
        current = self.etag(table.versions[key])
        if if_none_match and if_none_match.strip() == "*" and self.dv:
            raise self.err_duplicate(defn, key)
        if if_match and not etag_matches(if_match, current):
            raise self.err_stale()
        row, _ignored = self.build_row(table, body, table.rows[key], key)
        self.store_row(table, key, row, created=False)
        return self._write_response(table, key, req, prefs, created=False)

    def delete(self, table: Table, key_text: str, req: ApiRequest) -> ApiResponse:
        self._check_options(req, set())
        defn = table.definition
        if_match = req.headers.get("If-Match")
        if not self.dv and not if_match:
            raise ODataError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
            )
        key, _ignored = self.find_key(table, key_text)
        if key is None:
            raise self.err_not_found(defn, key_text)
        if if_match and not etag_matches(if_match, self.etag(table.versions[key])):
            raise self.err_stale()
        self.svc._store.remove_row(table, key)
        self.svc.row_writes["delete"] += 1
        return self._empty(204)

    # ==========================================================================================
    # bulk operations (Dataverse CreateMultiple / UpdateMultiple)
    # ==========================================================================================
    def bulk(self, table: Table, action: str, req: ApiRequest) -> ApiResponse:
        defn = table.definition
        if action not in ("CreateMultiple", "UpdateMultiple"):
            raise self.err_segment(f"Microsoft.Dynamics.CRM.{action}")
        body = req.json()
        targets = body.get("Targets") if isinstance(body, dict) else None
        if not isinstance(targets, list) or not targets:
            raise ODataError(400, "0x80048d19", f"The {action} request requires a non-empty 'Targets' collection.")
        expected = f"Microsoft.Dynamics.CRM.{defn.logical_name}"
        store = self.svc._store
        store.begin()
        try:
            ids: list[str] = []
            for index, target in enumerate(targets):
                if not isinstance(target, dict):
                    raise ODataError(400, "0x80048d19", f"Targets[{index}] is not an entity object.")
                odata_type = str(target.get("@odata.type", "")).lstrip("#")
                if odata_type != expected:
                    raise ODataError(
                        400,
                        "0x80048d19",
                        f"Targets[{index}]: the '@odata.type' property must be set to '{expected}' (got '{odata_type or 'none'}').",
                    )
                if action == "CreateMultiple":
                    ids.append(self.create_row(table, target))
                else:
                    raw_key = target.get(defn.key)
                    if not is_guid(raw_key):
                        raise ODataError(400, "0x80048d19", f"Targets[{index}]: the primary key '{defn.key}' is required for UpdateMultiple.")
                    key = normalize_guid(raw_key)
                    if key not in table.rows:
                        raise self.err_not_found(defn, key)
                    row, _ignored = self.build_row(table, target, table.rows[key], key)
                    self.store_row(table, key, row, created=False)
                    ids.append(key)
        except Exception:
            store.rollback()
            raise
        store.commit()
        if action == "CreateMultiple":
            return self._json(200, {"@odata.context": f"{self.svc.api_root}$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse", "Ids": ids})
        return self._empty(204)
