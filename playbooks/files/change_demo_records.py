#!/usr/bin/env python
"""Change a few customers in the ERP demo database, like a user editing them in the ERP.

Usage::

    change_demo_records.py --erp PATH [--count 5] [--seed 1]

``--count`` customers, chosen deterministically from ``--seed`` among all customers, get a new
phone number (last two digits changed) and a new credit limit (raised or lowered by a round
amount, never below zero). The UPDATE does not set ``modified_on``: the table's AFTER UPDATE
trigger (created by build_demo_databases.py) stamps the current UTC time, so the next sync
picks the customers up. Each run changes the values again, even with the same seed.

Prints one line of JSON: ``{"changed": true, "customers": ["C00130", ...]}`` (sorted), or
``{"failed": true, "msg": ...}`` with exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from random import Random
from typing import Any

CENT = Decimal("0.01")
CREDIT_STEPS = (500, 1000, 2500, 5000, 10000)
TRIGGER_SQL = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'customer' AND sql LIKE '%modified_on%'"


class ChangeError(Exception):
    """The database cannot be changed as asked."""


def new_phone(rng: Random, phone: str | None) -> str:
    """The phone number with its last two digits replaced by two different ones."""
    if not phone or len(phone) < 2 or not phone[-2:].isdigit():
        return f"+1 (425) 555-01{rng.randrange(100):02d}"
    old = int(phone[-2:])
    return f"{phone[:-2]}{(old + rng.randrange(1, 100)) % 100:02d}"


def new_credit_limit(rng: Random, limit: Any) -> Decimal:
    """The credit limit moved up or down by a round step (down only if it stays >= 0)."""
    old = Decimal(str(limit if limit is not None else 0))
    step = Decimal(rng.choice(CREDIT_STEPS))
    if rng.random() < 0.5 and old - step >= 0:
        step = -step
    return (old + step).quantize(CENT)


def connect(path: Path) -> sqlite3.Connection:
    """Open an existing database read-write (never create one)."""
    if not path.is_file():
        raise ChangeError(f"no such database: {path}")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ChangeError(f"cannot open {path}: {exc}") from exc
    return conn


def change_customers(conn: sqlite3.Connection, count: int, seed: int) -> list[str]:
    """Change count customers (chosen from seed) and return their numbers, sorted."""
    try:
        numbers = [row[0] for row in conn.execute("SELECT no FROM customer ORDER BY no")]
    except sqlite3.OperationalError as exc:
        raise ChangeError(f"not an ERP demo database: {exc}") from exc
    if not conn.execute(TRIGGER_SQL).fetchone()[0]:
        raise ChangeError("table customer has no modified_on trigger; rebuild it with build_demo_databases.py")
    rng = Random(seed)
    chosen = sorted(rng.sample(numbers, min(count, len(numbers))))
    with conn:
        for number in chosen:
            phone, limit = conn.execute("SELECT phone, credit_limit FROM customer WHERE no = ?", (number,)).fetchone()
            conn.execute(
                "UPDATE customer SET phone = ?, credit_limit = ? WHERE no = ?",
                (new_phone(rng, phone), str(new_credit_limit(rng, limit)), number),
            )
    return chosen


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--erp", required=True, help="path of the ERP demo SQLite file")
    parser.add_argument("--count", type=int, default=5, help="number of customers to change")
    parser.add_argument("--seed", type=int, default=1, help="selects the customers and the new values")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        conn = connect(Path(args.erp))
        try:
            changed = change_customers(conn, args.count, args.seed)
        finally:
            conn.close()
    except (ChangeError, sqlite3.Error) as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": str(exc)}))
        return 1
    print(json.dumps({"changed": bool(changed), "customers": changed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
