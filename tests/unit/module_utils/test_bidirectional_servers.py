"""A bidirectional mapping between PostgreSQL (local) and MariaDB (integration), with typed columns.

The databases are created for the test and dropped afterwards; the test fails when a server
is unreachable (tests/ci/ensure-services.sh starts them).
"""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
import sqlalchemy as sa

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
MY = "mysql+pymysql://root@127.0.0.1:3306/"

LOCAL_DDL = """create table customer (
    no varchar(20) primary key, name varchar(100) not null, credit_limit numeric(12, 2), blocked boolean not null default false,
    since date)"""
INTEGRATION_DDL = """create table account (
    accountid char(36) primary key, accountnumber varchar(20), name varchar(100), creditlimit decimal(12, 2),
    creditonhold tinyint(1), createdon datetime(6))"""

MAPPING = {
    "name": "CUSTOMER",
    "local_table": "customer",
    "local_key": "no",
    "integration_table": "account",
    "integration_key": "accountid",
    "direction": "bidirectional",
    "update_conflict_resolution": "merge",
    "fields": [
        {"field": "no", "integration_field": "accountnumber"},
        {"field": "name", "integration_field": "name"},
        {"field": "credit_limit", "integration_field": "creditlimit"},
        {"field": "blocked", "integration_field": "creditonhold"},
        {"field": "since", "integration_field": "createdon"},
    ],
}


@pytest.fixture
def servers(tmp_path):
    name = "tsbidir_%s" % uuid.uuid4().hex[:12]
    admin = {"pg": sa.create_engine(PG + "postgres", isolation_level="AUTOCOMMIT"), "my": sa.create_engine(MY + "test")}
    with admin["pg"].connect() as conn:
        conn.execute(sa.text("create database %s" % name))
    with admin["my"].begin() as conn:
        conn.execute(sa.text("create database %s" % name))
    local, integration = sa.create_engine(PG + name), sa.create_engine(MY + name)
    try:
        with local.begin() as conn:
            conn.execute(sa.text(LOCAL_DDL))
        with integration.begin() as conn:
            conn.execute(sa.text(INTEGRATION_DDL))
        yield {"local": local, "integration": integration, "store": str(tmp_path / "store.sqlite"),
               "options": {"local": {"type": "postgresql", "url": PG + name}, "integration": {"type": "mysql", "url": MY + name}}}
    finally:
        local.dispose()
        integration.dispose()
        with admin["pg"].connect() as conn:
            conn.execute(sa.text("drop database if exists %s with (force)" % name))
        with admin["my"].begin() as conn:
            conn.execute(sa.text("drop database if exists %s" % name))
        for engine in admin.values():
            engine.dispose()


def sql(engine, text, **params):
    with engine.begin() as conn:
        result = conn.execute(sa.text(text), params)
        return result.fetchall() if result.returns_rows else None


def run(servers, mode):
    store = Store(servers["store"])
    endpoints = {side: open_endpoint(side, servers["options"][side]) for side in ("local", "integration")}
    try:
        result = SyncRunner(store, endpoints).run(mode)
        return result.jobs[0].counts
    finally:
        for endpoint in endpoints.values():
            endpoint.close()
        store.close()


def declare(servers):
    store = Store(servers["store"])
    endpoints = {side: open_endpoint(side, servers["options"][side]) for side in ("local", "integration")}
    try:
        clean = normalize(MAPPING)
        mapping = Mapping.from_definition(clean)
        mapping.bind(open_tables(mapping, endpoints))
        store.put_mapping(clean)
    finally:
        for endpoint in endpoints.values():
            endpoint.close()
        store.close()


def test_typed_columns_sync_both_ways_without_ping_pong(servers):
    local, integration = servers["local"], servers["integration"]
    for i in range(40):
        sql(local, "insert into customer values (:no, :name, :limit, :blocked, :since)", no="C%03d" % i, name="Customer %d" % i,
            limit=decimal.Decimal("1000.50") + i, blocked=i % 5 == 0, since=datetime.date(2020, 1, 1) + datetime.timedelta(days=i))
    for i in range(3):
        sql(integration, "insert into account values (:id, :no, :name, 99.90, 1, '2021-06-01 12:30:00')",
            id=str(uuid.uuid4()), no="CRM%d" % i, name="Crm %d" % i)
    declare(servers)
    first = run(servers, "full")
    assert first["inserted"] == 43 and first["failed"] == 0
    assert sql(local, "select name, credit_limit, blocked, since from customer where no = 'CRM1'") == [
        ("Crm 1", decimal.Decimal("99.90"), True, datetime.date(2021, 6, 1))]
    assert sql(integration, "select creditlimit, creditonhold, createdon from account where accountnumber = 'C005'") == [
        (decimal.Decimal("1005.50"), 1, datetime.datetime(2020, 1, 6))]
    for mode in ("full", "modified", "modified"):
        counts = run(servers, mode)
        assert counts["modified"] == counts["inserted"] == counts["failed"] == 0, (mode, counts)
    # one change per side, then a merge of edits of different fields of one record
    sql(local, "update customer set credit_limit = 1234.56 where no = 'C001'")
    sql(integration, "update account set name = 'Renamed' where accountnumber = 'C002'")
    sql(local, "update customer set blocked = true where no = 'C003'")
    sql(integration, "update account set name = 'Both' where accountnumber = 'C003'")
    changed = run(servers, "modified")
    assert changed["modified"] == 3 and changed["failed"] == 0
    assert sql(integration, "select creditlimit from account where accountnumber = 'C001'") == [(decimal.Decimal("1234.56"),)]
    assert sql(local, "select name from customer where no = 'C002'") == [("Renamed",)]
    assert sql(local, "select name, blocked from customer where no = 'C003'") == [("Both", True)]
    assert sql(integration, "select name, creditonhold from account where accountnumber = 'C003'") == [("Both", 1)]
    for _attempt in range(2):
        assert run(servers, "modified")["modified"] == 0
