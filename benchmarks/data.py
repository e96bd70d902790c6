"""The benchmark's data: a realistic customer table (ERP side), the empty CRM account table, changes.

Deterministic for a given row count and seed. About 200 bytes a row over 12 columns. The
modified-on column is indexed (as in any ERP); timestamps are naive UTC text in the
``YYYY-MM-DD HH:MM:SS.ffffff`` form SQLAlchemy's SQLite DateTime reads.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
from collections.abc import Iterator
from random import Random

SOURCE_COLUMNS = (
    ("no", "TEXT PRIMARY KEY"),
    ("name", "TEXT NOT NULL"),
    ("address", "TEXT"),
    ("city", "TEXT"),
    ("post_code", "TEXT"),
    ("country", "TEXT"),
    ("phone", "TEXT"),
    ("email", "TEXT"),
    ("credit_limit", "NUMERIC NOT NULL DEFAULT 0"),
    ("blocked", "INTEGER NOT NULL DEFAULT 0"),
    ("currency_code", "TEXT"),
    ("modified_on", "DATETIME NOT NULL"),
)

# (ERP customer column, CRM account column): the field renames every contender applies.
FIELD_MAP = (
    ("no", "accountnumber"),
    ("name", "name"),
    ("address", "address1_line1"),
    ("city", "address1_city"),
    ("post_code", "address1_postalcode"),
    ("country", "address1_country"),
    ("phone", "telephone1"),
    ("email", "emailaddress1"),
    ("credit_limit", "creditlimit"),
    ("blocked", "creditonhold"),
    ("currency_code", "transactioncurrencycode"),
)

ACCOUNT_DDL = """
CREATE TABLE IF NOT EXISTS account (
    accountid TEXT PRIMARY KEY,
    accountnumber TEXT,
    name TEXT,
    address1_line1 TEXT,
    address1_city TEXT,
    address1_postalcode TEXT,
    address1_country TEXT,
    telephone1 TEXT,
    emailaddress1 TEXT,
    creditlimit NUMERIC,
    creditonhold INTEGER,
    transactioncurrencycode TEXT,
    modifiedon DATETIME DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')
)
"""

# The engine's declaration of the same job (what `table_mapping` would receive).
MAPPING = {
    "name": "CUSTOMER",
    "local_table": "customer",
    "local_key": "no",
    "local_modified_field": "modified_on",
    "integration_table": "account",
    "integration_key": "accountid",
    "direction": "to_integration",
    "synch_only_coupled_records": False,
    "fields": [{"field": local, "integration_field": crm} for local, crm in FIELD_MAP],
}

BASE_TIME = datetime.datetime(2025, 1, 1)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

_FIRST = ("Anna", "Ben", "Carla", "David", "Elif", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Klara", "Luca", "Mia", "Noah")
_LAST = ("Andersen", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen", "Keller", "Larsen")
_KINDS = ("Trading", "Logistics", "Consulting", "Furniture", "Engineering", "Foods", "Textiles", "Systems", "Retail", "Supplies")
_FORMS = ("Ltd", "GmbH", "A/S", "S.A.", "B.V.", "Inc.", "AB", "S.r.l.")
_STREETS = ("Main Street", "Station Road", "Bahnhofstrasse", "Rue de la Paix", "Kongens Gade", "Via Roma", "High Street", "Market Square")
_PLACES = (
    ("DK", "Copenhagen", "DKK", "+45"), ("DE", "Hamburg", "EUR", "+49"), ("FR", "Lyon", "EUR", "+33"), ("GB", "Leeds", "GBP", "+44"),
    ("IT", "Milan", "EUR", "+39"), ("NL", "Utrecht", "EUR", "+31"), ("SE", "Malmo", "SEK", "+46"), ("US", "Seattle", "USD", "+1"),
)


def _customer(rng: Random, index: int, position: int) -> tuple:
    country, city, currency, prefix = rng.choice(_PLACES)
    company = "%s %s %s" % (rng.choice(_LAST), rng.choice(_KINDS), rng.choice(_FORMS))
    domain = company.split()[0].lower() + "-" + company.split()[1].lower() + ".example"
    contact = rng.choice(_FIRST).lower()
    return (
        "C%07d" % index,
        company,
        "%d %s" % (rng.randint(1, 250), rng.choice(_STREETS)),
        city,
        "%05d" % rng.randint(1000, 99999),
        country,
        "%s %03d %04d %03d" % (prefix, rng.randint(100, 999), rng.randint(0, 9999), rng.randint(0, 999)),
        "%s.%d@%s" % (contact, index, domain),
        "%d.%02d" % (rng.randint(0, 200) * 500, rng.choice((0, 0, 0, 50))),
        1 if rng.random() < 0.03 else 0,
        currency,
        (BASE_TIME + datetime.timedelta(seconds=position * 7 + rng.randint(0, 6), microseconds=rng.randint(0, 999999))).strftime(TIME_FORMAT),
    )


def _rows(count: int, seed: int) -> Iterator[tuple]:
    rng = Random(seed)
    order = list(range(1, count + 1))
    rng.shuffle(order)  # why: key order and modified-on order differ, as in a real table
    for position, index in enumerate(order):
        yield _customer(rng, index, position)


def build_source(path: str, rows: int, seed: int = 7) -> None:
    """Create the ERP database with ``rows`` customers (replacing any file at ``path``)."""
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    conn = sqlite3.connect(tmp)
    try:
        conn.execute("CREATE TABLE customer (%s)" % ", ".join("%s %s" % c for c in SOURCE_COLUMNS))
        conn.executemany("INSERT INTO customer VALUES (%s)" % ", ".join("?" * len(SOURCE_COLUMNS)), _rows(rows, seed))
        conn.execute("CREATE INDEX ix_customer_modified_on ON customer (modified_on)")
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)


def build_destination(path: str) -> None:
    """The CRM database with its empty account table."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(ACCOUNT_DDL)
        conn.commit()
    finally:
        conn.close()


def change_customers(path: str, count: int, round_no: int, seed: int = 11) -> list[str]:
    """Edit ``count`` customers (phone and credit limit) and stamp them after every earlier change.

    The same (count, round_no, seed) edits the same customers the same way in every copy, so each
    contender syncs identical changes. Their modified-on is in the past (an hour-scale offset
    after the data set's newest stamp), so the sync's safety overlap does not re-read them.
    """
    rng = Random(seed * 1000 + round_no)
    conn = sqlite3.connect(path)
    try:
        total = conn.execute("SELECT COUNT(*) FROM customer").fetchone()[0]
        newest = conn.execute("SELECT MAX(modified_on) FROM customer").fetchone()[0]
        start = datetime.datetime.strptime(newest, TIME_FORMAT) + datetime.timedelta(seconds=1)
        picked = sorted(rng.sample(range(1, total + 1), min(count, total)))
        numbers = ["C%07d" % i for i in picked]
        params = []
        for offset, number in enumerate(numbers):
            stamp = (start + datetime.timedelta(milliseconds=offset)).strftime(TIME_FORMAT)
            phone = "+45 %03d %04d %03d" % (rng.randint(100, 999), rng.randint(0, 9999), round_no % 1000)
            params.append((phone, rng.randint(0, 200) * 500 + round_no, stamp, number))
        conn.executemany("UPDATE customer SET phone = ?, credit_limit = ?, modified_on = ? WHERE no = ?", params)
        conn.commit()
        return numbers
    finally:
        conn.close()
