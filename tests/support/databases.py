"""Real PostgreSQL and MariaDB databases for the tests: created per test, dropped afterwards.

The servers are the project's test services (tests/ci/ensure-services.sh starts them):
PostgreSQL on 127.0.0.1:5432 (user postgres) and MariaDB on 127.0.0.1:3306 (user root).
A server that does not answer fails the test with a message saying how to start it; these
tests never skip.

``load_demo`` copies the SQLite demo databases (playbooks/files/build_demo_databases.py)
into a server database with the same tables, keys and data; modified-on columns default to
the current UTC time, and ``touch_customers`` stamps them when it changes records, as the
SQLite demo's triggers do.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tests.support.fixtures import Demo, build_demo

PG_ADMIN = os.environ.get("TABLESYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MY_ADMIN = os.environ.get("TABLESYNC_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/mysql")
SERVERS = {"postgresql": PG_ADMIN, "mysql": MY_ADMIN}
START_HINT = "run `make services` (tests/ci/ensure-services.sh) to start the test database servers"


def _admin_engine(kind: str) -> sa.engine.Engine:
    return sa.create_engine(SERVERS[kind], isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@dataclass
class ServerDatabase:
    """A database created for one test on one of the servers."""

    kind: str  # postgresql | mysql
    name: str
    url: sa.engine.URL

    def options(self, **extra: Any) -> dict[str, Any]:
        """Endpoint options (the module's local/integration dict) from parts, not a URL."""
        opts = {"type": self.kind, "host": self.url.host, "port": self.url.port, "database": self.name, "user": self.url.username}
        opts.update(extra)
        return opts

    @property
    def url_text(self) -> str:
        return self.url.render_as_string(hide_password=False)

    def engine(self) -> sa.engine.Engine:
        connect_args = {"init_command": "SET time_zone = '+00:00'"} if self.kind == "mysql" else {"options": "-c timezone=UTC"}
        return sa.create_engine(self.url, connect_args=connect_args)

    def scalar(self, sql: str, **params: Any) -> Any:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).scalar()
        finally:
            engine.dispose()

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.text(sql), params)]
        finally:
            engine.dispose()

    def execute(self, sql: str, **params: Any) -> None:
        engine = self.engine()
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(sql), params)
        finally:
            engine.dispose()


@contextlib.contextmanager
def server_database(kind: str) -> Iterator[ServerDatabase]:
    """Create a uniquely named database on the ``kind`` server; drop it afterwards."""
    name = "tablesync_test_%s" % uuid.uuid4().hex[:12]
    admin = _admin_engine(kind)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text('CREATE DATABASE "%s"' % name if kind == "postgresql" else "CREATE DATABASE `%s`" % name))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail("the %s test server (%s) is unreachable: %s; %s" % (kind, admin.url.render_as_string(), exc.orig, START_HINT), pytrace=False)
    url = sa.engine.make_url(SERVERS[kind]).set(database=name)
    try:
        yield ServerDatabase(kind, name, url)
    finally:
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name))
            else:
                conn.execute(sa.text("DROP DATABASE IF EXISTS `%s`" % name))
        admin.dispose()


@pytest.fixture
def pg_db() -> Iterator[ServerDatabase]:
    with server_database("postgresql") as db:
        yield db


@pytest.fixture
def pg_db2() -> Iterator[ServerDatabase]:
    with server_database("postgresql") as db:
        yield db


@pytest.fixture
def my_db() -> Iterator[ServerDatabase]:
    with server_database("mysql") as db:
        yield db


@pytest.fixture
def my_db2() -> Iterator[ServerDatabase]:
    with server_database("mysql") as db:
        yield db


# -- demo data on the servers ----------------------------------------------------------------------


def _server_type(column: sa.Column, modified: bool) -> Any:
    """The server column type for a SQLite demo column."""
    kind = type(column.type).__name__.upper()
    if modified or kind in ("DATETIME", "TIMESTAMP"):
        return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    if kind in ("NUMERIC", "DECIMAL"):
        return sa.Numeric(24, 8)
    if kind in ("INTEGER", "INT", "BIGINT"):
        return sa.Integer()
    return sa.String(255)


def _now_default(kind: str) -> Any:
    return sa.text("(UTC_TIMESTAMP(6))") if kind == "mysql" else sa.text("timezone('utc', now())")


def load_demo(sqlite_path: str, target: ServerDatabase, schema: str | None = None) -> dict[str, int]:
    """Copy every table of a SQLite demo database into ``target``; returns rows per table."""
    source = sa.create_engine("sqlite:///" + sqlite_path)
    dest = target.engine()
    counts: dict[str, int] = {}
    try:
        meta = sa.MetaData()
        meta.reflect(source)
        out_meta = sa.MetaData(schema=schema)
        copies = []
        for table in meta.sorted_tables:
            columns = []
            for col in table.columns:
                modified = col.name in ("modified_on", "modifiedon")
                columns.append(
                    sa.Column(
                        col.name,
                        _server_type(col, modified),
                        primary_key=col.primary_key,
                        nullable=col.nullable or False,
                        autoincrement=False,
                        server_default=_now_default(target.kind) if modified else None,
                    )
                )
            copy = sa.Table(table.name, out_meta, *columns)
            for col in columns:
                if col.name in ("modified_on", "modifiedon"):
                    sa.Index("ix_%s_%s" % (table.name, col.name), copy.c[col.name])
            copies.append((table, copy))
        with dest.begin() as conn:
            if schema:
                conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
            out_meta.create_all(conn)
        with source.connect() as src, dest.begin() as conn:
            for table, copy in copies:
                data = [dict(r._mapping) for r in src.execute(sa.select(table))]
                for row in data:
                    for key, value in row.items():
                        if isinstance(value, str) and key in ("modified_on", "modifiedon"):
                            row[key] = datetime.datetime.fromisoformat(value)
                if data:
                    conn.execute(copy.insert(), data)
                counts[table.name] = len(data)
    finally:
        source.dispose()
        dest.dispose()
    return counts


def touch_customers(target: ServerDatabase, count: int, schema: str | None = None) -> list[str]:
    """Change ``count`` customers (phone and credit limit) and stamp their modified-on, like an ERP user."""
    table = "%s.customer" % schema if schema else "customer"
    numbers = [r[0] for r in target.rows("select no from %s order by no" % table)][:count]
    engine = target.engine()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    try:
        with engine.begin() as conn:
            for i, number in enumerate(numbers):
                conn.execute(
                    sa.text("update %s set phone = :p, credit_limit = credit_limit + :c, modified_on = :m where no = :n" % table),
                    {"p": "+1 (425) 555-99%02d" % i, "c": decimal.Decimal("1000.00"), "m": now, "n": number},
                )
    finally:
        engine.dispose()
    return numbers


class ServerDemo(Demo):
    """The demo on database servers: ERP and CRM as server databases, store at a URL or path."""

    def __init__(self, base: Demo, erp_db: ServerDatabase, crm_db: ServerDatabase, store: str):
        super().__init__(base.directory, base.erp, base.crm, store)
        self.erp_db = erp_db
        self.crm_db = crm_db

    @property
    def local(self) -> dict[str, Any]:
        return self.erp_db.options()

    @property
    def integration(self) -> dict[str, Any]:
        return self.crm_db.options()

    def change_customers(self, count: int, seed: int = 1) -> list[str]:
        return touch_customers(self.erp_db, count)


def server_demo(directory: str, erp_db: ServerDatabase, crm_db: ServerDatabase, store: str, customers: int = 200,
                items: int = 30, resources: int = 5) -> ServerDemo:
    """Build the SQLite demo, copy it to the servers, and return the demo wired to them."""
    base = build_demo(directory, customers=customers, items=items, resources=resources)
    load_demo(base.erp, erp_db)
    load_demo(base.crm, crm_db)
    return ServerDemo(base, erp_db, crm_db, store)
