"""Two customer databases that already share records: the case match-based coupling is for.

Of all distinct customers 60 % are on both sides (same e-mail; on some the CRM copy differs
in case or surrounding whitespace), 20 % only in the ERP and 20 % only in the CRM. On top,
``ambiguous`` e-mails are held by one record on one side and two on the other.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.fixtures import Demo, customer_account_mapping

ERP_SCHEMA = """
CREATE TABLE customer (
    no TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT,
    modified_on DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'))
"""
CRM_SCHEMA = """
CREATE TABLE account (
    accountid TEXT PRIMARY KEY, accountnumber TEXT, name TEXT, emailaddress1 TEXT, telephone1 TEXT,
    modifiedon DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'))
"""


def customer_mapping(direction: str = "bidirectional", **extra: Any) -> dict[str, Any]:
    fields = [
        {"field": "no", "integration_field": "accountnumber"},
        {"field": "name", "integration_field": "name"},
        {"field": "email", "integration_field": "emailaddress1"},
        {"field": "phone", "integration_field": "telephone1"},
    ]
    return customer_account_mapping(**dict({"direction": direction, "fields": fields}, **extra))


@dataclass
class SharedCustomers:
    erp: str
    crm: str
    shared: list[str] = field(default_factory=list)  # e-mails (normalised) on both sides
    erp_only: list[str] = field(default_factory=list)
    crm_only: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    ambiguous_records: int = 0


def _variant(email: str, i: int) -> str:
    """The CRM's copy of a shared e-mail: sometimes upper case, sometimes padded."""
    if i % 3 == 0:
        return email.upper()
    if i % 5 == 0:
        return "  %s " % email
    if i % 7 == 0:
        return email.title()
    return email


def shared_customer_rows(distinct: int = 250, ambiguous: int = 5) -> tuple[SharedCustomers, list[tuple], list[tuple]]:
    """The expected e-mail sets, the customer rows and the account rows (in the schemas' column order)."""
    data = SharedCustomers("", "")
    n_shared, n_only = distinct * 60 // 100, distinct * 20 // 100
    erp_rows: list[tuple] = []
    crm_rows: list[tuple] = []
    ids = (str(uuid.UUID(int=i + 1)) for i in range(10 ** 6))
    for i in range(n_shared):
        email = "customer%d@example.com" % i
        data.shared.append(email)
        erp_rows.append(("C%05d" % i, "Customer %d" % i, email, "+45 1000 %04d" % i))
        crm_rows.append((next(ids), "A%05d" % i, "Customer %d Ltd" % i, _variant(email, i), "+45 1000 %04d" % i))
    for i in range(n_only):
        email = "erp%d@example.com" % i
        data.erp_only.append(email)
        erp_rows.append(("E%05d" % i, "ERP only %d" % i, email, None))
        email = "crm%d@example.com" % i
        data.crm_only.append(email)
        crm_rows.append((next(ids), "K%05d" % i, "CRM only %d" % i, email, None))
    for k in range(ambiguous):
        email = "twice%d@example.com" % k
        data.ambiguous.append(email)
        one_erp = k % 2 == 0  # alternately one ERP record / two CRM records and the other way round
        for j in range(1 if one_erp else 2):
            erp_rows.append(("X%02d%d" % (k, j), "Ambiguous %d/%d" % (k, j), email if j == 0 else email.upper(), None))
        for j in range(2 if one_erp else 1):
            crm_rows.append((next(ids), "Y%02d%d" % (k, j), "Ambiguous %d/%d" % (k, j), email if j == 0 else " %s" % email, None))
        data.ambiguous_records += 3
    return data, erp_rows, crm_rows


def build_shared_customers(directory: str, distinct: int = 250, ambiguous: int = 5) -> SharedCustomers:
    """ERP and CRM SQLite files under ``directory``; ``distinct`` customers split 60/20/20."""
    os.makedirs(directory, exist_ok=True)
    data, erp_rows, crm_rows = shared_customer_rows(distinct, ambiguous)
    data.erp, data.crm = os.path.join(directory, "erp.sqlite"), os.path.join(directory, "crm.sqlite")
    for path, schema, table, rows in ((data.erp, ERP_SCHEMA, "customer (no, name, email, phone)", erp_rows),
                                      (data.crm, CRM_SCHEMA, "account (accountid, accountnumber, name, emailaddress1, telephone1)", crm_rows)):
        if os.path.exists(path):
            os.remove(path)
        conn = sqlite3.connect(path)
        conn.execute(schema)
        marks = ", ".join("?" * len(rows[0]))
        conn.executemany("INSERT INTO %s VALUES (%s)" % (table, marks), rows)
        conn.commit()
        conn.close()
    return data


def email_counts(path: str, table: str, column: str) -> dict[str, int]:
    """How many records hold each e-mail, normalised (trimmed, case-folded)."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, int] = {}
        for (email,) in conn.execute("SELECT %s FROM %s" % (column, table)):
            if email is not None:
                key = email.strip().casefold()
                out[key] = out.get(key, 0) + 1
        return out
    finally:
        conn.close()


def load_shared_customers(erp_url: str, crm_url: str, distinct: int = 250, ambiguous: int = 5) -> SharedCustomers:
    """The same data in two server databases (PostgreSQL, MariaDB), through SQLAlchemy."""
    import sqlalchemy as sa

    data, erp_rows, crm_rows = shared_customer_rows(distinct, ambiguous)
    now = sa.func.current_timestamp()
    for url, name, columns, values in (
        (erp_url, "customer", ("no", "name", "email", "phone"), erp_rows),
        (crm_url, "account", ("accountid", "accountnumber", "name", "emailaddress1", "telephone1"), crm_rows),
    ):
        meta = sa.MetaData()
        cols = [sa.Column(c, sa.String(64), primary_key=(i == 0), nullable=not (i == 0 or (name, c) == ("customer", "name")))
                for i, c in enumerate(columns)]
        modified = "modified_on" if name == "customer" else "modifiedon"
        table = sa.Table(name, meta, *cols, sa.Column(modified, sa.DateTime, nullable=False, server_default=now))
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            meta.create_all(conn)
            conn.execute(table.insert(), [dict(zip(columns, r)) for r in values])
        engine.dispose()
    return data


# the shared customers' CRM copies of an e-mail differ in case or surrounding spaces: match them folded
FOLDED_EMAIL = {"field": "email", "integration_field": "emailaddress1", "ignore_case": True, "trim": True}


@pytest.fixture
def shared(tmp_path):
    data = build_shared_customers(str(tmp_path / "dbs"))
    demo = Demo(str(tmp_path), data.erp, data.crm, os.path.join(str(tmp_path), "store.sqlite"))
    demo.data = data
    yield demo
    demo.close()
