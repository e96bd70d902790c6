# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQL tables as endpoints, through SQLAlchemy Core (SQLite, PostgreSQL, MariaDB/MySQL).

Nothing here depends on one database: reads use keyset pagination (no long-lived
cursor, stable order, index-friendly), writes use executemany in one transaction per
batch and fall back to one transaction per record only when the batch fails, so a
bad record fails alone.
"""

from __future__ import annotations

import functools
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.chunks import chunks
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Column, Endpoint, Table, TableInfo, WriteResult
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import SAMPLE_SIZE, StampForm, detect_form, needs_sample, render
from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import (
    DEFAULT_PORTS,
    HAS_SQLALCHEMY,
    SQLALCHEMY_IMPORT_ERROR,
    PreparedRows,
    Select,
    create_sql_engine,
    name_database_errors,
    prepare_rows,
    release_before_fork,
    renew_after_fork,
    requires_tls,
    safe_address,
    sql_url,
    write_rows,
)
from ansible_collections.tablesync.integration.plugins.module_utils.values import id_text, new_record_id

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import Lenient
except ImportError:  # pragma: no cover - sql_support.HAS_SQLALCHEMY tells, and the modules report it
    pass


def column_kind(col_type: Any) -> str:
    """Map a SQLAlchemy type (as reflected from SQLite, PostgreSQL or MySQL/MariaDB) to a value kind."""
    if getattr(col_type, "display_width", None) == 1 and type(col_type).__name__ == "TINYINT":
        return "boolean"  # MySQL's BOOLEAN is TINYINT(1)
    checks = (
        (sa.Boolean, "boolean"),
        (sa.DateTime, "datetime"),
        (sa.Date, "date"),
        (sa.Uuid, "uuid"),
        (sa.Float, "float"),
        (sa.Numeric, "decimal"),
        (sa.Integer, "integer"),
        (sa.LargeBinary, "binary"),
        (sa.String, "text"),
    )
    for cls, kind in checks:
        if isinstance(col_type, cls):
            return kind
    return "text"


IDS_PER_QUERY = 500
DUPLICATES_PER_QUERY = 10000  # why: below every supported database's limit of bound parameters per statement


class SqlTable(Table):
    endpoint: SqlEndpoint  # why: narrowed for the type checker: a SQL table reaches its endpoint's engine
    supports_read_ahead = True

    def __init__(self, endpoint: SqlEndpoint, table: sa.Table, key: str):
        self.endpoint = endpoint
        self.table = table
        self.key = key
        self.key_col = table.c[key]
        self.info = TableInfo(
            name=table.fullname,
            columns={c.name: self._column(c) for c in table.columns},
            primary_key=tuple(c.name for c in table.primary_key.columns),
        )
        self.key_kind = self.info.columns[key].kind
        self._selects_by_ids: dict[tuple[str, ...], Select] = {}
        # why: drivers bind native UUID columns from uuid.UUID, the engine passes ids and values as text
        self._uuid_cols = {c.name for c in table.columns if self.info.columns[c.name].kind == "uuid" and getattr(c.type, "as_uuid", False)}

    def _column(self, col: sa.Column) -> Column:
        kind = column_kind(col.type)
        # SQLite's INTEGER PRIMARY KEY is the rowid ("auto"); elsewhere only a reflected
        # AUTO_INCREMENT/serial (autoincrement=True), an identity or a server default count.
        auto = (True, "auto") if self.endpoint.engine.dialect.name == "sqlite" else (True,)
        generated = bool(
            col.primary_key
            and (
                col.server_default is not None
                or col.identity is not None
                or (kind == "integer" and col.autoincrement in auto and len(col.table.primary_key.columns) == 1)
            )
        )
        return Column(
            name=col.name,
            kind=kind,
            nullable=bool(col.nullable),
            max_length=getattr(col.type, "length", None),
            primary_key=bool(col.primary_key),
            server_generated=generated,
        )

    def check_filter(self, where: Any) -> None:
        where.to_sqlalchemy(self.table.c)  # why: the very condition a read compiles, from the reflected types

    # -- ids ---------------------------------------------------------------------------
    def _native_id(self, record_id: str) -> Any:
        if self.key_kind == "integer":
            return int(record_id)
        if self.key_kind == "uuid":
            return uuid.UUID(record_id)
        return record_id

    def _bind(self, values: Mapping[str, Any]) -> Mapping[str, Any]:
        if not self._uuid_cols or not self._uuid_cols.intersection(values):
            return values  # why: nothing to convert; the caller's values are only read
        out = dict(values)
        for name in self._uuid_cols.intersection(out):
            if isinstance(out[name], str):
                out[name] = uuid.UUID(out[name])
        return out

    def new_id(self) -> str | None:
        if self.info.columns[self.key].server_generated:
            return None
        if self.key_kind == "integer":
            return None
        return new_record_id()

    def _cols(self, fields: Sequence[str]) -> list:
        try:
            cols = [self.table.c[f] for f in fields]
        except KeyError as exc:
            raise EndpointError("%s table %s has no column %s" % (self.endpoint.side, self.info.name, exc)) from None
        if self.endpoint.engine.dialect.name != "sqlite":
            return cols
        # why: SQLite stores any value in any column; one bad value must fail its record, not the read
        return [sa.type_coerce(c, Lenient(c.type)).label(c.name) if c.name != self.key else c for c in cols]

    # why: Table declares key_unique as a plain attribute; a SQL table works it out once, from the schema, when first asked
    @functools.cached_property
    def key_unique(self) -> bool:  # type: ignore[override]
        """Whether the key column is the primary key or has a unique constraint or index of its own."""
        own = {self.key}
        if {c.name for c in self.table.primary_key.columns} == own:
            return True
        if any(isinstance(c, sa.UniqueConstraint) and {col.name for col in c.columns} == own for c in self.table.constraints):
            return True
        return any(index.unique and {col.name for col in index.columns} == own for index in self.table.indexes)

    def duplicate_keys(self, ids: Sequence[str]) -> dict[str, int]:
        if self.key_unique or not ids:
            return {}
        wanted = sorted(set(ids))
        count = sa.func.count()
        out: dict[str, int] = {}
        with self.endpoint.engine.connect() as conn:
            for chunk in chunks(wanted, DUPLICATES_PER_QUERY):  # one query for a page of any usual size
                stmt = (sa.select(self.key_col, count).where(self.key_col.in_([self._native_id(i) for i in chunk]))
                        .group_by(self.key_col).having(count > 1))
                out.update((id_text(r[0]), int(r[1])) for r in conn.execute(stmt))
        return out

    # -- reads ---------------------------------------------------------------------------
    def scan(self, fields, where=None, modified_field=None, modified_since=None, page_size=1000, modified_format="auto") -> Iterator[list[tuple]]:
        """Pages in key order, or, from ``modified_since`` on (``>=``), in (modified-on, key) order.

        The keyset condition compares the modified-on column as stored (see _stored): a value
        converted and bound back may not equal the stored one (SQLite text), and a tie of equal
        stamps longer than a page would be cut at the page's end. A page is completed with the
        rows equal to its last (modified-on, key) or key, which a key without a unique constraint
        may repeat.
        """
        cols = self._cols(fields)
        key = self.key_col
        key_pos = list(fields).index(self.key)
        if modified_since is not None and modified_field and modified_field not in fields:
            raise EndpointError("scan by modified-on needs %s among the fields read" % modified_field)
        conditions, mod, since = self._read_conditions(where, modified_field, modified_since, modified_format)
        base = sa.select(*cols) if mod is None else sa.select(*cols, mod.label("_stored_mod"))
        base = base.where(*conditions)
        last_key = sa.bindparam("_last_key", type_=key.type)
        if mod is not None:
            last_mod = sa.bindparam("_last_mod", type_=mod.type)
            after = sa.or_(mod > last_mod, sa.and_(mod == last_mod, key > last_key))
            tie = sa.and_(mod == last_mod, key == last_key)
            base = base.order_by(mod, key)
        else:
            after, tie = key > last_key, key == last_key
            base = base.order_by(key)
        first, following = Select(base.limit(page_size)), Select(base.where(after).limit(page_size))
        # why: a key that may repeat must not have its run cut at a page's end
        rest = None if self.key_unique else Select(base.where(tie))
        params: dict[str, Any] = {} if mod is None else {"_since": since}
        started = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=sa_exc.SAWarning)
            while True:
                with self.endpoint.engine.connect() as conn:
                    rows = following.rows(conn, params) if started else first.rows(conn, params)
                    more = len(rows) >= page_size
                    if rows:
                        params.update(self._tail(rows[-1], key_pos, mod is not None))
                    if more and rest is not None:
                        rows = _completed(rows, rest.rows(conn, params), key_pos, mod is not None)
                if not rows:
                    return
                started = True
                yield [r[:-1] for r in rows] if mod is not None else rows
                if not more:
                    return

    def _read_conditions(self, where: Any, modified_field: str | None, modified_since: Any,
                         modified_format: str) -> tuple[list[Any], Any, Any]:
        """The conditions of a read (the mapping filter, modified-on from ``modified_since`` on, compared as stored),
        the modified-on column as stored (None without ``modified_since``) and the bound as stored."""
        conditions: list[Any] = []
        mod = since = None
        if modified_since is not None and modified_field:
            mod = self._stored(self.table.c[modified_field])
            since = render(modified_since, self.modified_form(modified_field, modified_format))
            conditions.append(mod >= sa.bindparam("_since", since, type_=mod.type))
        if where is not None:
            conditions.append(where.to_sqlalchemy(self.table.c))
        return conditions, mod, since

    def count(self, where=None, modified_field=None, modified_since=None, modified_format="auto") -> int | None:
        conditions, _mod, since = self._read_conditions(where, modified_field, modified_since, modified_format)
        stmt = sa.select(sa.func.count()).select_from(self.table).where(*conditions)
        with warnings.catch_warnings(), self.endpoint.engine.connect() as conn:
            warnings.simplefilter("ignore", category=sa_exc.SAWarning)
            return int(conn.execute(stmt, {} if since is None else {"_since": since}).scalar() or 0)

    def _tail(self, row: tuple, key_pos: int, by_modified: bool) -> dict[str, Any]:
        """The keyset parameters after ``row``: its key and, in a modified-on read, its modified-on as stored (last column)."""
        out = {"_last_key": self._native_id(id_text(row[key_pos]))}
        if by_modified:
            out["_last_mod"] = row[-1]
        return out

    def _stored(self, col: sa.Column) -> Any:
        """A column read and bound as stored: on SQLite without its type's conversions (text stays text)."""
        if self.endpoint.engine.dialect.name == "sqlite":
            return sa.type_coerce(col, sa.types.NullType())
        return col  # why: server databases return and bind their native values exactly

    def modified_form(self, field: str, declared: str = "auto") -> StampForm:
        """How a modified-on column stores its values: from its type, else from a sample of them as stored."""
        col = self.table.c[field]
        kind = self.info.columns[field].kind
        native = self.endpoint.engine.dialect.name != "sqlite"
        sample: list[Any] = []
        if needs_sample(kind, native):
            stored = self._stored(col)
            stmt = sa.select(stored).where(col.is_not(None)).order_by(self.key_col).limit(SAMPLE_SIZE)
            with self.endpoint.engine.connect() as conn:
                sample = [r[0] for r in conn.execute(stmt)]
        return detect_form(kind, sample, declared, native_dates=native, aware=bool(getattr(col.type, "timezone", False)))

    def read_by_ids(self, ids, fields) -> list[tuple]:
        out: list[tuple] = []
        if not ids:
            return out
        select = self._by_ids(tuple(fields))
        with warnings.catch_warnings(), self.endpoint.engine.connect() as conn:
            warnings.simplefilter("ignore", category=sa_exc.SAWarning)
            for chunk in chunks(list(ids), IDS_PER_QUERY):
                chunk = [self._native_id(i) for i in chunk]
                chunk += [None] * (IDS_PER_QUERY - len(chunk))  # why: one statement for every chunk; NULL matches no key
                out.extend(select.rows(conn, {"id%d" % n: value for n, value in enumerate(chunk)}))
        return out

    def _by_ids(self, fields: tuple[str, ...]) -> Select:
        """The SELECT of ``fields`` for one chunk of ids, compiled once (key IN a fixed number of parameters)."""
        select = self._selects_by_ids.get(fields)
        if select is None:
            ids = [sa.bindparam("id%d" % n, type_=self.key_col.type) for n in range(IDS_PER_QUERY)]
            select = self._selects_by_ids[fields] = Select(sa.select(*self._cols(fields)).where(self.key_col.in_(ids)))
        return select

    def find(self, values, fields, limit=10) -> list[tuple]:
        cols = self._cols(fields)
        conds = [self.table.c[k].is_(None) if v is None else self.table.c[k] == v for k, v in values.items()]
        stmt = sa.select(*cols).where(sa.and_(*conds)).order_by(self.key_col).limit(limit)
        with warnings.catch_warnings(), self.endpoint.engine.connect() as conn:
            warnings.simplefilter("ignore", category=sa_exc.SAWarning)
            return [tuple(r) for r in conn.execute(stmt)]

    def _existing(self, conn, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(list(ids), 500):
            stmt = sa.select(self.key_col).where(self.key_col.in_([self._native_id(i) for i in chunk]))
            found.update(id_text(r[0]) for r in conn.execute(stmt))
        return found

    # -- writes --------------------------------------------------------------------------
    def _insert_one(self, conn: Any, row: Mapping[str, Any]) -> str:
        """One row inserted, its key as the database gave it (lastrowid)."""
        inserted = conn.execute(self.table.insert(), [row]).inserted_primary_key
        if inserted is None:  # why: SQLAlchemy gives none only for statements that are not a single-row insert
            raise EndpointError("%s table %s: the database did not return the key of an inserted row" % (self.endpoint.side, self.info.name))
        return id_text(inserted[0])

    def insert(self, rows) -> list[WriteResult]:
        rows = [self._bind(r) for r in rows]
        if not rows:
            return []
        prepared = self._prepare_bound(rows)
        if prepared is not None:
            return self.insert_prepared(prepared, [id_text(r[self.key]) for r in rows])
        try:
            return self._insert_batch(rows)
        except sa_exc.SQLAlchemyError as exc:
            if len(rows) == 1:
                return [self._refused(rows[0], exc)]
        results = []
        for row in rows:  # why: isolate the record the database refuses; the others go in
            try:
                results.extend(self._insert_batch([row]))
            except sa_exc.SQLAlchemyError as exc:
                results.append(self._refused(row, exc))
        return results

    def _insert_batch(self, rows: list[dict]) -> list[WriteResult]:
        server_key = any(self.key not in r for r in rows)
        with warnings.catch_warnings(), self.endpoint.engine.begin() as conn:
            warnings.simplefilter("ignore", category=sa_exc.SAWarning)
            if server_key and conn.dialect.insert_executemany_returning_sort_by_parameter_order:
                stmt = self.table.insert().returning(self.key_col, sort_by_parameter_order=True)
                ids = [id_text(r[0]) for r in conn.execute(stmt, rows)]
            elif server_key:
                # why: MySQL and MariaDB before 10.5 have no INSERT ... RETURNING: one row at a time, the key from lastrowid
                ids = [self._insert_one(conn, row) for row in rows]
            else:  # rows of different columns (prepare_insert takes the others)
                conn.execute(self.table.insert(), rows)
                ids = [id_text(r[self.key]) for r in rows]
        return [WriteResult(True, record_id=i) for i in ids]

    def prepare_insert(self, rows: Sequence[Mapping[str, Any]]) -> PreparedRows | None:
        """Rows with client-chosen keys and the same columns, ready for the driver; None otherwise."""
        return self._prepare_bound([self._bind(r) for r in rows])

    def _prepare_bound(self, rows: list[Mapping[str, Any]]) -> PreparedRows | None:
        if not rows or any(self.key not in r for r in rows):
            return None
        columns = tuple(rows[0])
        if not all(tuple(r) == columns for r in rows):
            return None
        return prepare_rows(self.endpoint.engine.dialect, self.table, columns, [tuple(r.values()) for r in rows])

    def insert_prepared(self, prepared: PreparedRows, ids: Sequence[str]) -> list[WriteResult]:
        try:
            with self.endpoint.engine.begin() as conn:
                write_rows(conn, self.table, prepared)
            return [WriteResult(True, record_id=i) for i in ids]
        except sa_exc.SQLAlchemyError as exc:
            if len(ids) == 1:
                return [WriteResult(False, record_id=ids[0], error=_db_error(exc))]
        results = []
        for row, record_id in zip(prepared.rows, ids):  # why: isolate the record the database refuses; the others go in
            try:
                with self.endpoint.engine.begin() as conn:
                    write_rows(conn, self.table, PreparedRows(prepared.columns, [row], prepared.statement))
                results.append(WriteResult(True, record_id=record_id))
            except sa_exc.SQLAlchemyError as exc:
                results.append(WriteResult(False, record_id=record_id, error=_db_error(exc)))
        return results

    def _refused(self, row: dict, exc: Exception) -> WriteResult:
        return WriteResult(False, record_id=id_text(row[self.key]) if self.key in row else None, error=_db_error(exc))

    def update(self, changes) -> list[WriteResult]:
        changes = list(changes)
        if not changes:
            return []
        try:
            with warnings.catch_warnings(), self.endpoint.engine.begin() as conn:
                warnings.simplefilter("ignore", category=sa_exc.SAWarning)
                existing = self._existing(conn, [c[0] for c in changes])
                present = [c for c in changes if c[0] in existing]
                for columns, group in _group_by_columns(present):
                    stmt = (
                        self.table.update()
                        .where(self.key_col == sa.bindparam("_k"))
                        .values({c: sa.bindparam("_v_" + c) for c in columns})
                    )
                    params = [dict({"_v_" + c: v for c, v in self._bind(values).items()}, _k=self._native_id(rid)) for rid, values in group]
                    conn.execute(stmt, params)
            return [WriteResult(True, record_id=rid) if rid in existing else _missing(rid) for rid, _values in changes]
        except sa_exc.SQLAlchemyError as exc:
            if len(changes) == 1:
                return [WriteResult(False, record_id=changes[0][0], error=_db_error(exc))]
        return [self.update([c])[0] for c in changes]

    def delete(self, ids) -> list[WriteResult]:
        ids = list(ids)
        if not ids:
            return []
        try:  # why: one statement per 500 records; a refusal falls back to one transaction per record
            with self.endpoint.engine.begin() as conn:
                existing = self._existing(conn, ids)
                for chunk in chunks(sorted(existing), 500):
                    conn.execute(self.table.delete().where(self.key_col.in_([self._native_id(i) for i in chunk])))
            return [WriteResult(True, record_id=rid) if rid in existing else _missing(rid) for rid in ids]
        except sa_exc.SQLAlchemyError as exc:
            if len(ids) == 1:
                return [WriteResult(False, record_id=ids[0], error=_db_error(exc))]
        return [self.delete([rid])[0] for rid in ids]


class SqlEndpoint(Endpoint):
    """A database whose tables are synchronised."""

    def __init__(self, side: str, options: Mapping[str, Any]):
        super().__init__(side, options)
        if not HAS_SQLALCHEMY:
            raise ConfigurationError("the python library SQLAlchemy is required: %s" % SQLALCHEMY_IMPORT_ERROR)
        self._type = options["type"]
        self.url = sql_url(self._type, options)
        if self.url.get_backend_name() != ("mysql" if self._type == "mysql" else self._type):
            raise ConfigurationError("%s: the url of a %s endpoint must be a %s URL, not %s" % (side, self._type, self._type, self.url.get_backend_name()))
        if self._type == "sqlite" and not os.path.exists(self.url.database or ""):
            raise EndpointError("%s: sqlite database %s does not exist" % (side, self.url.database))
        self.engine = create_sql_engine(self.url, require_tls=requires_tls(options))
        name_database_errors(self.engine, "%s database %s" % (side, safe_address(self.url)))
        self.schema = options.get("schema")
        self._tables: dict[tuple[str, str], SqlTable] = {}

    @property
    def type(self) -> str:
        return self._type

    def address(self) -> str:
        return safe_address(self.url)

    def release_before_fork(self) -> bool:
        return release_before_fork(self.engine)

    def renew_after_fork(self) -> None:
        renew_after_fork(self.engine)

    def binding_address(self) -> str:
        """Which database this is, whoever connects: the file, or host:port/database[/schema]."""
        if self._type == "sqlite":
            return self.url.database or ""
        address = "%s:%s/%s" % (self.url.host or "", self.url.port or DEFAULT_PORTS[self._type], self.url.database or "")
        return address + ("/" + self.schema if self.schema else "")

    def table(self, name: str, key: str) -> SqlTable:
        cached = self._tables.get((name, key))
        if cached is not None:
            return cached
        schema, _dot, table_name = name.rpartition(".")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=sa_exc.SAWarning)
                table = sa.Table(table_name, sa.MetaData(), autoload_with=self.engine, schema=schema or self.schema)
        except sa_exc.NoSuchTableError:
            raise EndpointError("%s endpoint (%s) has no table %s" % (self.side, self.address(), name)) from None
        except sa_exc.OperationalError as exc:
            raise EndpointError("%s endpoint (%s) cannot be read: %s" % (self.side, self.address(), _db_error(exc))) from None
        if key not in table.c:
            raise EndpointError("%s table %s has no key column %s" % (self.side, name, key))
        result = SqlTable(self, table, key)
        self._tables[(name, key)] = result
        return result

    def close(self) -> None:
        self.engine.dispose()


def _group_by_columns(changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[tuple[str, ...], list]]:
    groups: dict[tuple[str, ...], list] = {}
    for rid, values in changes:
        groups.setdefault(tuple(sorted(values)), []).append((rid, values))
    return list(groups.items())


def _completed(rows: list[tuple], tie: list[tuple], key_pos: int, by_modified: bool) -> list[tuple]:
    """A full page with every row equal to its last one (key, and modified-on as stored): those it holds replaced by all of them."""
    def ident(row: tuple) -> tuple:
        return (row[key_pos], row[-1]) if by_modified else (row[key_pos],)

    last = ident(rows[-1])
    end = len(rows)
    while end and ident(rows[end - 1]) == last:
        end -= 1
    return rows[:end] + tie


def _missing(rid: str) -> WriteResult:
    return WriteResult(False, record_id=rid, error="record %s no longer exists" % rid, missing=True)


def _db_error(exc: Exception) -> str:
    """The driver's message without the SQL statement and parameters SQLAlchemy appends."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]
