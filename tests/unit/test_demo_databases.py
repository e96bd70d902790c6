"""Tests of the demo-data scripts playbooks/files/build_demo_databases.py and change_demo_records.py.

The scripts are run as an Ansible task would run them: as separate processes printing one line of JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

FILES = Path(__file__).resolve().parents[2] / "playbooks" / "files"
BUILD = FILES / "build_demo_databases.py"
CHANGE = FILES / "change_demo_records.py"
SMALL = ("--customers", "150", "--items", "40", "--resources", "8")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")

ERP_MODIFIED = {
    "currency": "modified_on", "salesperson": "modified_on", "unit_of_measure": "modified_on", "customer": "modified_on",
    "contact": "modified_on", "item": "modified_on", "resource": "modified_on",
}
CRM_MODIFIED = {
    "systemuser": "modifiedon", "transactioncurrency": "modifiedon", "uomschedule": "modifiedon", "account": "modifiedon",
    "contact": "modifiedon", "product": "modifiedon",
}


def run_script(script: Path, *args: str, expect_rc: int = 0) -> dict[str, Any]:
    """Run a script with this interpreter; return its single JSON line."""
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == expect_rc, f"rc={proc.returncode}\nstdout={proc.stdout}\nstderr={proc.stderr}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def build(directory: Path, *args: str, expect_rc: int = 0) -> tuple[dict[str, Any], Path, Path]:
    """Build (or not) the demo databases erp.db / crm.db in directory."""
    erp, crm = directory / "erp.db", directory / "crm.db"
    return run_script(BUILD, "--erp", str(erp), "--crm", str(crm), *args, expect_rc=expect_rc), erp, crm


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def utc_now_text(delta: timedelta = timedelta()) -> str:
    """Current UTC time (plus delta) in the stored timestamp format."""
    return (datetime.now(timezone.utc).replace(tzinfo=None) + delta).strftime("%Y-%m-%d %H:%M:%S.%f")


def dump(path: Path) -> list[str]:
    """SQL dump of a database (schema and rows)."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def default_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, Path]:
    """Demo databases built with the default arguments (shared: tests that write copy them first)."""
    return build(tmp_path_factory.mktemp("default"))


def test_default_row_counts(default_build: tuple[dict[str, Any], Path, Path]) -> None:
    result, erp, crm = default_build
    assert result["changed"] is True
    actual_erp = {table: query(erp, f"SELECT COUNT(*) FROM {table}")[0][0] for table in ERP_MODIFIED}
    actual_crm = {table: query(crm, f"SELECT COUNT(*) FROM {table}")[0][0] for table in CRM_MODIFIED}
    assert result["erp"] == actual_erp
    assert result["crm"] == actual_crm
    contacts = actual_erp.pop("contact")
    assert actual_erp == {"currency": 10, "salesperson": 0, "unit_of_measure": 8, "customer": 2000, "item": 300, "resource": 40}
    assert 3600 <= contacts <= 4400  # 0..4 per customer, 2 on average
    assert actual_crm == {"systemuser": 12, "transactioncurrency": 0, "uomschedule": 0, "account": 0, "contact": 0, "product": 0}
    per_customer = query(erp, "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM contact GROUP BY company_no)")[0][0]
    assert per_customer <= 4


def test_references_and_codes(default_build: tuple[dict[str, Any], Path, Path]) -> None:
    erp, crm = default_build[1:]
    customer_numbers = {row[0] for row in query(erp, "SELECT no FROM customer")}
    assert {row[0] for row in query(erp, "SELECT DISTINCT company_no FROM contact")} <= customer_numbers
    assert query(erp, "SELECT COUNT(*) FROM contact WHERE company_no IS NULL")[0][0] == 0

    nicknames = [row[0] for row in query(crm, "SELECT nickname FROM systemuser")]
    assert len(set(nicknames)) == 12
    assert all(re.fullmatch(r"[A-Z]{2,3}", nickname) for nickname in nicknames)
    codes = [row[0] for row in query(erp, "SELECT salesperson_code FROM customer")]
    assert {code for code in codes if code is not None} <= set(nicknames)
    assert 0.85 <= sum(code is not None for code in codes) / len(codes) <= 0.95

    currencies = {row[0] for row in query(erp, "SELECT code FROM currency")}
    assert query(erp, "SELECT exchange_rate FROM currency WHERE code = 'USD'")[0][0] == 1
    customer_currencies = [row[0] for row in query(erp, "SELECT currency_code FROM customer")]
    assert {code for code in customer_currencies if code is not None} <= currencies
    assert 0.55 <= customer_currencies.count(None) / len(customer_currencies) <= 0.65
    blocked = query(erp, "SELECT AVG(blocked) FROM customer")[0][0]
    assert 0.01 <= blocked <= 0.05

    units = {row[0] for row in query(erp, "SELECT code FROM unit_of_measure")}
    assert {row[0] for row in query(erp, "SELECT base_unit_of_measure FROM item")} <= units
    assert {row[0] for row in query(erp, "SELECT base_unit_of_measure FROM resource")} <= {"HOUR", "DAY"}
    assert query(erp, "SELECT COUNT(DISTINCT name), COUNT(*) FROM customer")[0] == (2000, 2000)
    assert query(erp, "SELECT COUNT(DISTINCT description), COUNT(*) FROM item")[0] == (300, 300)
    assert {row[0] for row in query(erp, "SELECT DISTINCT country FROM customer")} == {"US", "GB", "DE", "DK", "FR", "NL"}
    assert query(erp, "SELECT MIN(no), MAX(no) FROM customer")[0] == ("C00010", "C20000")


def test_modified_on_is_historical(default_build: tuple[dict[str, Any], Path, Path]) -> None:
    erp, crm = default_build[1:]
    day_ago, two_years_ago = utc_now_text(-timedelta(days=1)), utc_now_text(-timedelta(days=740))
    for path, tables in ((erp, ERP_MODIFIED), (crm, CRM_MODIFIED)):
        for table, column in tables.items():
            values = [row[0] for row in query(path, f"SELECT {column} FROM {table}")]
            if not values:
                continue
            assert all(isinstance(v, str) and TIMESTAMP.match(v) for v in values), table
            assert max(values) < day_ago, table
            assert min(values) > two_years_ago, table
            assert len(set(values)) > 1, table
    customer_times = [row[0] for row in query(erp, "SELECT modified_on FROM customer")]
    assert min(customer_times) < utc_now_text(-timedelta(days=600))  # spread over about two years


def test_indexes_and_triggers(default_build: tuple[dict[str, Any], Path, Path]) -> None:
    erp, crm = default_build[1:]
    for path, tables in ((erp, ERP_MODIFIED), (crm, CRM_MODIFIED)):
        for table, column in tables.items():
            indexed = {
                tuple(info[2] for info in query(path, f"PRAGMA index_info('{index[1]}')"))
                for index in query(path, f"PRAGMA index_list('{table}')")
            }
            assert (column,) in indexed, table
            triggers = query(path, "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (table,))
            assert len(triggers) == 1 and "AFTER UPDATE" in triggers[0][0], table


@pytest.mark.parametrize(
    ("side", "table", "key", "column", "change"),
    [
        ("erp", "customer", "no", "modified_on", "phone = 'changed'"),
        ("erp", "item", "no", "modified_on", "unit_price = unit_price + 1"),
        ("crm", "systemuser", "systemuserid", "modifiedon", "mobilephone = 'changed'"),
    ],
)
def test_update_trigger(
    default_build: tuple[dict[str, Any], Path, Path], tmp_path: Path, side: str, table: str, key: str, column: str, change: str
) -> None:
    erp, crm = default_build[1:]
    path = tmp_path / f"{side}.db"
    shutil.copyfile(erp if side == "erp" else crm, path)
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA recursive_triggers = ON")  # must not loop even then
        row_key, old = conn.execute(f"SELECT {key}, {column} FROM {table} ORDER BY {key} LIMIT 1").fetchone()
        before = utc_now_text(-timedelta(seconds=1))
        with conn:
            conn.execute(f"UPDATE {table} SET {change} WHERE {key} = ?", (row_key,))
        (bumped,) = conn.execute(f"SELECT {column} FROM {table} WHERE {key} = ?", (row_key,)).fetchone()
        assert TIMESTAMP.match(bumped) and bumped.endswith("000")
        assert old < before <= bumped <= utc_now_text(timedelta(seconds=1))

        explicit = "2021-03-04 05:06:07.080910"
        with conn:
            conn.execute(f"UPDATE {table} SET {change}, {column} = ? WHERE {key} = ?", (explicit, row_key))
        assert conn.execute(f"SELECT {column} FROM {table} WHERE {key} = ?", (row_key,)).fetchone()[0] == explicit
        others = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} >= ?", (before,)).fetchone()[0]
        assert others == 0  # no other row was touched
    finally:
        conn.close()


def test_crm_default_and_trigger_on_empty_table(default_build: tuple[dict[str, Any], Path, Path], tmp_path: Path) -> None:
    crm = default_build[2]
    path = tmp_path / "crm.db"
    shutil.copyfile(crm, path)
    conn = sqlite3.connect(path)
    try:
        before = utc_now_text(-timedelta(seconds=1))
        with conn:
            conn.execute("INSERT INTO account (accountid, name) VALUES ('a1', 'Inserted')")
            conn.execute("INSERT INTO account (accountid, name, modifiedon) VALUES ('a2', 'Explicit', '2022-01-01 00:00:00.000000')")
            conn.execute("UPDATE account SET name = 'Changed' WHERE accountid = 'a2'")
        rows = dict(conn.execute("SELECT accountid, modifiedon FROM account").fetchall())
        assert TIMESTAMP.match(rows["a1"]) and rows["a1"] >= before
        assert TIMESTAMP.match(rows["a2"]) and rows["a2"] >= before
    finally:
        conn.close()


def test_rerun_without_force_reports_unchanged(tmp_path: Path) -> None:
    first, erp, crm = build(tmp_path, *SMALL)
    assert first["changed"] is True
    content = (erp.read_bytes(), crm.read_bytes())
    again = build(tmp_path, *SMALL)[0]
    assert again["changed"] is False
    assert again["erp"] == first["erp"] and again["crm"] == first["crm"]
    assert (erp.read_bytes(), crm.read_bytes()) == content
    forced = build(tmp_path, *SMALL, "--force")[0]
    assert forced["changed"] is True
    crm.unlink()
    rebuilt = build(tmp_path, *SMALL)[0]
    assert rebuilt["changed"] is True and crm.exists()


def test_foreign_file_needs_force(tmp_path: Path) -> None:
    (tmp_path / "erp.db").write_text("not a database\n")
    refused, erp = build(tmp_path, *SMALL, expect_rc=1)[:2]
    assert refused["failed"] is True and refused["changed"] is False
    assert erp.read_text() == "not a database\n"
    forced = build(tmp_path, *SMALL, "--force")[0]
    assert forced["changed"] is True and forced["erp"]["customer"] == 150


def test_same_seed_gives_identical_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    erp_a, crm_a = build(tmp_path / "a", *SMALL, "--seed", "7")[1:]
    erp_b, crm_b = build(tmp_path / "b", *SMALL, "--seed", "7")[1:]
    erp_c = build(tmp_path / "c", *SMALL, "--seed", "8")[1]
    assert dump(erp_a) == dump(erp_b) and dump(crm_a) == dump(crm_b)
    assert erp_a.read_bytes() == erp_b.read_bytes() and crm_a.read_bytes() == crm_b.read_bytes()
    assert dump(erp_a) != dump(erp_c)


def test_change_demo_records(tmp_path: Path) -> None:
    erp = build(tmp_path, *SMALL)[1]
    before = {row[0]: row[1:] for row in query(erp, "SELECT no, phone, credit_limit, modified_on FROM customer")}
    started = utc_now_text(-timedelta(seconds=1))
    result = run_script(CHANGE, "--erp", str(erp), "--count", "5", "--seed", "3")
    assert result["changed"] is True
    changed = result["customers"]
    assert len(changed) == 5 and changed == sorted(set(changed)) and set(changed) <= set(before)
    after = {row[0]: row[1:] for row in query(erp, "SELECT no, phone, credit_limit, modified_on FROM customer")}
    for number, (phone, limit, modified) in after.items():
        if number in changed:
            assert phone != before[number][0] and limit != before[number][1]
            assert modified >= started and TIMESTAMP.match(modified)
        else:
            assert (phone, limit, modified) == before[number]
    again = run_script(CHANGE, "--erp", str(erp), "--count", "5", "--seed", "3")
    assert again["customers"] == changed  # deterministic choice ...
    latest = {row[0]: row[1:3] for row in query(erp, "SELECT no, phone, credit_limit FROM customer")}
    assert all(latest[number] != after[number][:2] for number in changed)  # ... but new values each run
    missing = run_script(CHANGE, "--erp", str(tmp_path / "missing.db"), expect_rc=1)
    assert missing["failed"] is True and not (tmp_path / "missing.db").exists()
