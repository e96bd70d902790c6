"""Watermarks with the ERP's modified-on in a PostgreSQL timestamptz and a MariaDB DATETIME(6) column:
a tie longer than a page, rows committed late, time-zone-aware values."""

from __future__ import annotations

import datetime
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import ServerDatabase
from tests.support.fixtures import Demo, customer_account_mapping, rows

UTC = datetime.timezone.utc
FIRST = datetime.datetime(2025, 2, 1, 8, 0)
NEWEST = datetime.datetime(2025, 3, 1, 12, 0, 36, 861000)
CUSTOMERS = 100
SCHEMAS = {
    "postgresql": "create table customer (no varchar(20) primary key, name varchar(100) not null, phone varchar(40), modified timestamptz not null)",
    "mysql": "create table customer (no varchar(20) primary key, name varchar(100) not null, phone varchar(40), modified datetime(6) not null)",
}
KINDS = [pytest.param("postgresql", marks=pytest.mark.postgresql), pytest.param("mysql", marks=pytest.mark.mysql)]


@dataclass
class ServerErpDemo(Demo):
    """The ERP's customer table on a database server; the CRM and the store in SQLite files."""

    server: ServerDatabase | None = None

    @property
    def local(self) -> dict[str, Any]:
        return self.server.options()  # type: ignore[union-attr]


def number(n):
    return "C%04d" % n


def stored(kind, moment):
    """A naive UTC instant as the server column takes it: aware for timestamptz."""
    return moment.replace(tzinfo=UTC) if kind == "postgresql" else moment


@pytest.fixture(params=KINDS)
def sdemo(request, tmp_path):
    kind = request.param
    db = request.getfixturevalue("pg_db" if kind == "postgresql" else "my_db")
    engine = db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(SCHEMAS[kind]))
            conn.execute(sa.text("create index ix_customer_modified on customer (modified)"))
            conn.execute(sa.text("insert into customer values (:no, :name, :phone, :modified)"),
                         [{"no": number(n), "name": "Customer %d" % n, "phone": "555-%04d" % n,
                           "modified": stored(kind, FIRST + datetime.timedelta(minutes=n))} for n in range(1, CUSTOMERS + 1)])
    finally:
        engine.dispose()
    directory = str(tmp_path / "demo")
    os.makedirs(directory)
    demo = ServerErpDemo(directory=directory, erp="", crm=os.path.join(directory, "crm.sqlite"),
                         store_path=os.path.join(directory, "store.sqlite"), server=db)
    crm = sqlite3.connect(demo.crm)
    crm.execute("create table account (accountid text primary key, accountnumber text, name text, telephone1 text, modifiedon datetime)")
    crm.close()
    demo.declare([customer_account_mapping(
        local_modified_field="modified",
        fields=[{"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"},
                {"field": "phone", "integration_field": "telephone1"}])])
    full = demo.run("full", batch_size=7).jobs[0]
    assert full.counts["inserted"] == CUSTOMERS and full.status == "success", full.as_dict()
    yield demo
    demo.close()


def change(demo, numbers, moment, suffix):
    db = demo.server
    engine = db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("update customer set phone = phone || :suffix, modified = :modified where no = :no" if db.kind == "postgresql"
                                 else "update customer set phone = concat(phone, :suffix), modified = :modified where no = :no"),
                         [{"suffix": suffix, "modified": stored(db.kind, moment), "no": number(n)} for n in numbers])
    finally:
        engine.dispose()


def in_step(demo):
    customers = set(demo.server.rows("select no, name, phone from customer"))
    return customers == set(rows(demo.crm, "select accountnumber, name, telephone1 from account"))


def job(demo, mode="modified"):
    return demo.run(mode, batch_size=7).jobs[0]


def test_a_tie_longer_than_a_page_is_read_whole(sdemo):
    change(sdemo, range(20, 50), NEWEST, "-tie")
    run = job(sdemo)
    assert run.status == "success" and run.counts["modified"] == 30, (run.message, run.counts)
    assert in_step(sdemo)
    assert not job(sdemo).changed


def test_rows_committed_late_are_read_by_the_next_run(sdemo):
    change(sdemo, [5], NEWEST, "-first")
    assert job(sdemo).counts["modified"] == 1
    # two transactions that stamped their rows before that read and committed after it
    change(sdemo, [6], NEWEST, "-late")
    change(sdemo, [7], NEWEST - datetime.timedelta(seconds=1), "-late")
    run = job(sdemo)
    assert run.counts["modified"] == 2 and run.counts["read"] == 2, run.counts
    assert in_step(sdemo)


def test_time_zone_aware_values_keep_the_newest_utc_instant(sdemo):
    db = sdemo.server
    if db.kind == "postgresql":
        # 13:00:36.861+01 is 12:00:36.861 UTC; the session's time zone does not matter
        db.execute("update customer set phone = phone || '-tz', modified = '2025-03-01 13:00:36.861+01' where no in ('C0011', 'C0012')")
    else:
        change(sdemo, [11, 12], NEWEST, "-tz")
    run = job(sdemo)
    assert run.status == "success" and run.counts["modified"] == 2, (run.message, run.counts)
    store = sdemo.engine()[0]
    assert store.watermark("CUSTOMER", "local") == NEWEST
    assert in_step(sdemo)
