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

import datetime
import functools
import os
import traceback
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Column, Endpoint, Table, TableInfo, WriteResult
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import SAMPLE_SIZE, StampForm, detect_form, needs_sample, render
from ansible_collections.tablesync.integration.plugins.module_utils.values import Undecodable, id_text, lenient_text, new_record_id

try:
    import sqlalchemy as sa
    from sqlalchemy import exc as sa_exc

    HAS_SQLALCHEMY = True
    SQLALCHEMY_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the modules
    HAS_SQLALCHEMY = False
    SQLALCHEMY_IMPORT_ERROR = traceback.format_exc()

DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def sql_url(kind: str, options: Mapping[str, Any]) -> sa.engine.URL:
    """The SQLAlchemy URL of a database endpoint or store, from a URL or from parts.

    TLS options (``sslmode``, ``ssl_ca``, ``ssl_cert``, ``ssl_key``) become the driver's
    own URL parameters: libpq's names for psycopg, SQLAlchemy's ``ssl_*`` for PyMySQL.
    """
    if options.get("url"):
        url = sa.engine.make_url(options["url"])
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername=DRIVERS["postgresql"])
        elif url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=DRIVERS["mysql"])
        if options.get("password") and not url.password:
            url = url.set(password=options["password"])
    elif kind == "sqlite":
        path = options.get("path") or options.get("database")
        if not path:
            raise ConfigurationError("a sqlite endpoint needs 'path' (or 'url')")
        return sa.engine.URL.create("sqlite", database=os.path.abspath(os.path.expanduser(path)))
    else:
        if kind not in DRIVERS:
            raise ConfigurationError("unknown database type %r" % kind)
        url = sa.engine.URL.create(
            DRIVERS[kind],
            username=options.get("user"),
            password=options.get("password"),
            host=options.get("host") or "127.0.0.1",
            port=options.get("port"),
            database=options.get("database"),
        )
    query = dict(url.query)
    query.update({k: str(v) for k, v in (options.get("connect_options") or {}).items()})
    query.update(_ssl_query(url.get_backend_name(), options))
    return url.set(query=query) if query != dict(url.query) else url


def _ssl_query(backend: str, options: Mapping[str, Any]) -> dict[str, str]:
    mode = options.get("sslmode")
    if mode is not None and mode not in SSL_MODES:
        raise ConfigurationError("sslmode must be one of %s, not %r" % (", ".join(SSL_MODES), mode))
    files = {k: options[k] for k in ("ssl_ca", "ssl_cert", "ssl_key") if options.get(k)}
    if backend == "postgresql":
        out = {"sslmode": mode} if mode else {}
        out.update({{"ssl_ca": "sslrootcert", "ssl_cert": "sslcert", "ssl_key": "sslkey"}[k]: v for k, v in files.items()})
        return out
    if backend == "mysql":
        if mode == "disable":
            return {}
        out = dict(files)
        if mode in ("require", "verify-ca", "verify-full"):
            if mode != "require" and "ssl_ca" not in files:
                raise ConfigurationError("sslmode %s needs ssl_ca (the CA certificate file)" % mode)
            # why: a non-empty ssl dict makes PyMySQL use TLS; host names are checked only for verify-full
            out["ssl_check_hostname"] = "true" if mode == "verify-full" else "false"
        return out
    return {}


def requires_tls(options: Mapping[str, Any]) -> bool:
    return options.get("sslmode") in ("require", "verify-ca", "verify-full")


DRIVER_LIBRARIES = {"postgresql": "psycopg (psycopg[binary])", "mysql": "PyMySQL"}


def create_sql_engine(url: sa.engine.URL, require_tls: bool = False) -> sa.engine.Engine:
    """An engine, or a clear message naming the Python library a database type needs."""
    try:
        return _create_sql_engine(url, require_tls)
    except (ImportError, sa_exc.NoSuchModuleError) as exc:
        backend = url.get_backend_name()
        library = DRIVER_LIBRARIES.get(backend, url.drivername)
        raise ConfigurationError("the python library %s is required for %s databases: %s" % (library, backend, exc)) from None


def _create_sql_engine(url: sa.engine.URL, require_tls: bool = False) -> sa.engine.Engine:
    """An engine with the settings every part of the engine relies on.

    Sessions run in UTC (naive datetimes are UTC throughout the engine, server defaults
    such as CURRENT_TIMESTAMP must agree). ``require_tls`` makes a MySQL connection that
    did not negotiate TLS fail (PyMySQL would silently fall back to plain text).
    """
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # why: concurrent readers while a sync writes
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.get_backend_name() == "mysql":
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"init_command": "SET time_zone = '+00:00'"})
        if require_tls:

            @sa.event.listens_for(engine, "connect")
            def _check_tls(dbapi_conn, _record):  # why: PyMySQL silently talks plain text to a server without TLS
                cursor = dbapi_conn.cursor()
                cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
                row = cursor.fetchone()
                cursor.close()
                if not row or not row[1]:
                    raise EndpointError("the MySQL/MariaDB server at %s:%s did not negotiate TLS, which sslmode requires" % (url.host, url.port or 3306))

        return engine
    connect_args = {} if "options" in url.query else {"options": "-c timezone=UTC"}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def release_before_fork(engine: sa.engine.Engine) -> bool:
    """Close an engine's idle connections before the process forks; False when that is not safe.

    Why: SQLite keeps per-process lock state for each open database file, and a child forked
    with a connection open shares it and may read without its locks. An in-memory database
    or a connection in use cannot be closed. Server databases need nothing: the child opens
    its own connections (``renew_after_fork``) and never touches the parent's.
    """
    if engine.url.get_backend_name() != "sqlite":
        return True
    if engine.url.database in (None, "", ":memory:") or engine.pool.checkedout():
        return False
    engine.dispose()
    return True


def renew_after_fork(engine: sa.engine.Engine) -> None:
    """In a forked child: leave the parent's connections alone (not even closing them) and open new ones."""
    engine.dispose(close=False)


@dataclass
class PreparedRows:
    """Rows made ready for one INSERT ahead of it (possibly in another process, see read_ahead).

    ``statement`` set: the compiled INSERT and ``rows`` as the driver takes them (the columns'
    bind processors applied, in ``columns`` order); None: ``rows`` keep Python values (COPY, or
    SQLAlchemy's path).
    """

    columns: tuple[str, ...]
    rows: list[tuple]
    statement: str | None = None


_SQLITE_DATETIME_FORMAT = "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"


def prepare_rows(dialect: Any, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> PreparedRows:
    """Value tuples in the order of ``columns`` made ready for ``write_rows``."""
    columns = tuple(columns)
    if len(rows) < 2 or dialect.name == "postgresql":
        return PreparedRows(columns, list(rows))
    statement, order = _insert_statement(table, columns, dialect)
    if statement is None:  # why: a dialect with named parameters keeps SQLAlchemy's path
        return PreparedRows(columns, list(rows))
    by_name = dict(zip(columns, zip(*rows)))
    columns_values = []
    for c in order:  # why: column by column, each distinct value converted by the column's bind processor once
        values = by_name[c]
        impl = table.c[c].type.dialect_impl(dialect)
        process = impl.bind_processor(dialect)
        if process is not None and getattr(impl, "_storage_format", None) == _SQLITE_DATETIME_FORMAT:
            # why: the same text as SQLAlchemy's SQLite DATETIME (naive datetimes), in C; most values are distinct
            values = [v.isoformat(" ", "microseconds") if v.__class__ is datetime.datetime and v.tzinfo is None else process(v) for v in values]
        elif process is not None:
            try:
                values = list(map({v: process(v) for v in set(values) if v is not None}.get, values))  # None stays None
            except TypeError:  # an unhashable value
                values = [process(v) for v in values]
        columns_values.append(values)
    return PreparedRows(tuple(order), list(zip(*columns_values)), statement)


def write_rows(conn: Any, table: sa.Table, prepared: PreparedRows) -> None:
    """Insert prepared rows through the fastest path the driver has (see bulk_insert)."""
    rows = prepared.rows
    if not rows:
        return
    if prepared.statement is None:
        if conn.dialect.name == "postgresql" and len(rows) > 1:
            _copy_rows(conn, table, prepared.columns, rows)
        else:
            conn.execute(table.insert(), [dict(zip(prepared.columns, r)) for r in rows])
        return
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(prepared.statement, rows)
    except Exception as exc:  # why: callers handle database refusals as SQLAlchemy errors
        raise sa_exc.DBAPIError("INSERT INTO %s" % table.fullname, None, exc) from exc
    finally:
        cursor.close()


def bulk_insert(conn: Any, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert rows (value tuples in the order of ``columns``) in one transaction, through the fastest path the driver has.

    PostgreSQL: COPY FROM STDIN (measured here: about 2.5 times faster than psycopg's
    pipelined executemany and a sixth of its client CPU; the multi-row INSERT form was slower
    than both). SQLite and MySQL/MariaDB: the driver's own executemany of the compiled INSERT,
    with the columns' bind processors applied here (SQLAlchemy's per-row parameter building
    was a third of a full sync's time). Single rows go through SQLAlchemy. Columns left out
    keep their server defaults.
    """
    write_rows(conn, table, prepare_rows(conn.dialect, table, columns, rows))


@functools.lru_cache(maxsize=64)
def _insert_statement(table: sa.Table, columns: tuple[str, ...], dialect: Any) -> tuple[str | None, list[str]]:
    """The INSERT of ``columns`` compiled for a dialect with positional parameters, and their order in it."""
    compiled = table.insert().compile(dialect=dialect, column_keys=list(columns))
    order = list(compiled.positiontup or ()) if compiled.positional else []
    if sorted(order) != sorted(columns):
        return None, []
    return str(compiled), order


class Select:
    """A SELECT run many times with different parameters, its rows returned as plain tuples.

    Why: for dialects with positional parameters (SQLite, PyMySQL) the statement is compiled
    once, runs on the driver's cursor, and the columns are converted by their types' result
    processors one column at a time, instead of a Row object built and copied per record (a
    tenth of a full sync's time). Statements with expanding parameters, and other dialects,
    go through SQLAlchemy.
    """

    def __init__(self, stmt: Any):
        self.stmt = stmt
        self._dialect: Any = None
        self._compiled: Any = None
        self._direct = False
        self._params: list[tuple[str, Any]] = []
        self._results: list[Any] = []

    def _prepare(self, dialect: Any) -> None:
        compiled = self.stmt.compile(dialect=dialect)
        self._dialect, self._compiled = dialect, compiled
        self._direct = compiled.positional and not any(b.expanding for b in compiled.binds.values())
        if self._direct:
            self._params = [(name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in compiled.positiontup]
            self._results = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in self.stmt.selected_columns]

    def rows(self, conn: Any, params: Mapping[str, Any] | None = None) -> list[tuple]:
        try:
            return self._rows(conn, params)
        except sa_exc.DBAPIError as exc:
            if not _undecodable_text(exc):
                raise
        # why: SQLite fails the whole fetch on one value that is not valid UTF-8; only such a page is read
        # again, decoding leniently, so that the record holding it fails alone (values.Undecodable)
        driver_conn = conn.connection.driver_connection
        previous = driver_conn.text_factory
        driver_conn.text_factory = lenient_text
        try:
            found = self._rows(conn, params)
        finally:
            driver_conn.text_factory = previous
        self._refuse_undecodable_keys(found, params)
        return found

    def _refuse_undecodable_keys(self, found: list[tuple], params: Mapping[str, Any] | None) -> None:
        """Raise when a column read as it is (a key: other columns are read through _Lenient) is not valid UTF-8."""
        for index, column in enumerate(self.stmt.selected_columns):
            if isinstance(column.type, _Lenient):
                continue
            bad = next((r[index] for r in found if r[index].__class__ is Undecodable), None)
            if bad is not None:
                table = getattr(getattr(column, "table", None), "fullname", "?")
                after = (params or {}).get("_last_key")
                raise EndpointError("table %s holds a key (column %s) that is %s%s; records cannot be read by such a key: "
                                    "correct it in the table" % (table, column.name, bad.describe(),
                                                                 "" if after is None else ", in the page read after key %r" % (after,)))

    def _rows(self, conn: Any, params: Mapping[str, Any] | None = None) -> list[tuple]:
        if self._dialect is not conn.dialect:
            self._prepare(conn.dialect)
        if not self._direct:
            return [tuple(r) for r in conn.execute(self.stmt, dict(params or {})).all()]
        compiled = self._compiled
        values = compiled.construct_params(dict(params or {}))
        args = [values[name] if process is None else process(values[name]) for name, process in self._params]
        cursor = conn.connection.driver_connection.cursor()
        try:
            cursor.execute(compiled.string, args)
            raw = cursor.fetchall()
        except Exception as exc:  # why: callers handle database errors as SQLAlchemy errors
            raise sa_exc.DBAPIError(compiled.string, None, exc) from exc
        finally:
            cursor.close()
        if not raw:
            return []
        if not any(self._results):
            return [tuple(r) for r in raw]
        columns = [col if process is None else list(map(process, col)) for process, col in zip(self._results, zip(*raw))]
        return list(zip(*columns))


def _undecodable_text(exc: Exception) -> bool:
    """Whether a fetch failed on a SQLite text value that is not valid UTF-8."""
    orig = getattr(exc, "orig", None) or exc.__cause__
    return orig.__class__.__module__ == "sqlite3" and "Could not decode to UTF-8" in str(orig)


def _copy_rows(conn: Any, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from psycopg import sql  # why: only reached through the psycopg dialect

    target = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(target, sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except Exception as exc:  # why: callers handle database refusals as SQLAlchemy errors
        raise sa_exc.DBAPIError("COPY %s" % table.fullname, None, exc) from exc
    finally:
        cursor.close()


DATABASE_ATTRIBUTE = "tablesync_database"


def name_database_errors(engine: sa.engine.Engine, database: str) -> None:
    """Mark every error raised on ``engine`` with the database it came from.

    why: a read-only or corrupted SQLite file gives the same driver message whichever of
    the store and the endpoints it is; the module's message names the one that failed.
    """

    @sa.event.listens_for(engine, "handle_error")
    def _name(context: Any) -> None:
        if context.sqlalchemy_exception is not None:
            setattr(context.sqlalchemy_exception, DATABASE_ATTRIBUTE, database)


def safe_address(url: sa.engine.URL) -> str:
    """The URL without the password, for the store and messages; a secret query parameter (``?password=``) shows ``***``."""
    from ansible_collections.tablesync.integration.plugins.module_utils.module_support import SECRET_QUERY_PARAMETERS

    hidden = {k: "***" for k in url.query if k.lower() in SECRET_QUERY_PARAMETERS}
    text = (url.update_query_dict(hidden) if hidden else url).render_as_string(hide_password=True)
    return text.replace(":***@", "@").replace("=%2A%2A%2A", "=***")


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


if HAS_SQLALCHEMY:

    class _Lenient(sa.types.UserDefinedType):
        """Reads a column through its type's converter, keeping the raw value when it does not fit."""

        cache_ok = True

        def __init__(self, original: Any):
            self.original = original

        def get_col_spec(self, **kw: Any) -> str:
            return self.original.compile()

        def result_processor(self, dialect: Any, coltype: Any) -> Any:
            process = self.original.dialect_impl(dialect).result_processor(dialect, coltype)
            if process is None:
                return None

            def run(value: Any) -> Any:
                try:
                    return process(value)
                except (TypeError, ValueError, ArithmeticError):
                    return value

            return run


IDS_PER_QUERY = 500
DUPLICATES_PER_QUERY = 10000  # why: below every supported database's limit of bound parameters per statement


class SqlTable(Table):
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
        return [sa.type_coerce(c, _Lenient(c.type)).label(c.name) if c.name != self.key else c for c in cols]

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
            for chunk in _chunks(wanted, DUPLICATES_PER_QUERY):  # one query for a page of any usual size
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
            for chunk in _chunks(list(ids), IDS_PER_QUERY):
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
        for chunk in _chunks(list(ids), 500):
            stmt = sa.select(self.key_col).where(self.key_col.in_([self._native_id(i) for i in chunk]))
            found.update(id_text(r[0]) for r in conn.execute(stmt))
        return found

    # -- writes --------------------------------------------------------------------------
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
                ids = [id_text(conn.execute(self.table.insert(), [row]).inserted_primary_key[0]) for row in rows]
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
                for chunk in _chunks(sorted(existing), 500):
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


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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
