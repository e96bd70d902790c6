"""Source data that breaks the engine's assumptions: a key held by two rows, text that is not valid UTF-8.

Real SQLite files, and real PostgreSQL and MariaDB source tables: the records concerned fail alone
with a message naming them, everything else is written, and the next run after the data is
corrected synchronises them.
"""

from __future__ import annotations

import datetime
import os
import sqlite3

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError
from tests.support.databases import ServerDatabase
from tests.support.fixtures import Demo, customer_account_mapping, default_mapping_set, execute, rows

PARTY = {
    "name": "PARTY", "local_table": "party", "local_key": "no", "local_modified_field": "modified_on",
    "integration_table": "account", "integration_key": "accountid", "direction": "to_integration",
    "fields": [{"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"}],
}


def stamp(hours_ago: float) -> datetime.datetime:
    return (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=hours_ago)).replace(tzinfo=None, microsecond=0)


class Parties(Demo):
    """A party table without a primary key (SQLite, or a server database) and a CRM account table (SQLite)."""

    server: ServerDatabase | None = None

    @property
    def local(self):
        return self.server.options() if self.server is not None else super().local

    def insert(self, number: str, name: str, hours_ago: float = 24) -> None:
        if self.server is not None:
            self.server.execute("insert into party (no, name, modified_on) values (:n, :m, :t)", n=number, m=name, t=stamp(hours_ago))
        else:
            execute(self.erp, "insert into party (no, name, modified_on) values (?, ?, ?)", number, name, stamp(hours_ago).isoformat(" "))

    def delete_one(self, number: str, name: str) -> None:
        if self.server is not None:
            self.server.execute("delete from party where no = :n and name = :m", n=number, m=name)
        else:
            execute(self.erp, "delete from party where no = ? and name = ?", number, name)

    def accounts(self) -> dict[str, str]:
        return dict(rows(self.crm, "select accountnumber, name from account"))


def parties(tmp_path, server: ServerDatabase | None = None) -> Parties:
    directory = str(tmp_path / "parties")
    os.makedirs(directory)
    demo = Parties(directory, os.path.join(directory, "erp.sqlite"), os.path.join(directory, "crm.sqlite"), os.path.join(directory, "store.sqlite"))
    demo.server = server
    if server is not None:
        server.execute("create table party (no varchar(20) not null, name varchar(100), modified_on %s)"
                       % ("timestamp" if server.kind == "postgresql" else "datetime(6)"))
        execute(demo.erp, "create table unused (id integer primary key)")
    else:
        execute(demo.erp, "create table party (no text not null, name text, modified_on datetime)")
    execute(demo.crm, "create table account (accountid text primary key, accountnumber text, name text)")
    for number in ("P1", "P2", "P3", "P4", "P5"):
        demo.insert(number, "party %s" % number)
    return demo


def job(run, name="PARTY"):
    return next(j for j in run.jobs if j.mapping == name)


def coupled_ids(demo: Demo, mapping: str = "PARTY") -> list[str]:
    return [r[0] for r in rows(demo.store_path, "select local_id from tablesync_couplings where mapping = ?", mapping)]


def assert_duplicate_failed(result, number: str, rows_holding: int = 2) -> None:
    messages = [e["message"] for e in result.errors if e["record_id"] == number]
    assert messages, result.errors
    for message in messages:
        assert "mapping PARTY" in message and "local table party" in message and "key %s in %d rows" % (number, rows_holding) in message
    assert {e["record_id"] for e in result.errors} == {number}, "only the duplicated key fails"


@pytest.fixture
def sqlite_parties(tmp_path):
    demo = parties(tmp_path)
    yield demo
    demo.close()


def check_duplicates_fail_alone_then_sync(demo: Parties, batch_size: int) -> None:
    demo.insert("P3", "party P3 again")
    demo.declare([PARTY])
    first = job(demo.run("full", batch_size=batch_size))
    assert_duplicate_failed(first, "P3")
    assert first.counts["inserted"] == 4 and first.counts["failed"] >= 1
    assert sorted(demo.accounts()) == ["P1", "P2", "P4", "P5"], "nothing is created for a duplicated key"
    again = job(demo.run("full", batch_size=batch_size))  # the coupling constraint is never reached
    assert_duplicate_failed(again, "P3")
    assert again.counts["inserted"] == 0
    coupled = coupled_ids(demo)
    assert sorted(coupled) == ["P1", "P2", "P4", "P5"] and len(set(coupled)) == len(coupled)
    demo.delete_one("P3", "party P3 again")
    skipped = job(demo.run("modified", batch_size=batch_size))  # it failed the same way twice: skipped until restored
    assert skipped.counts["inserted"] == 0 and skipped.counts["failed"] == 0 and "P3" not in demo.accounts()
    demo.engine()[0].restore_skipped("PARTY")
    fixed = job(demo.run("modified", batch_size=batch_size))
    assert fixed.counts["inserted"] == 1 and fixed.counts["failed"] == 0
    assert demo.accounts()["P3"] == "party P3"
    assert sorted(coupled_ids(demo)) == ["P1", "P2", "P3", "P4", "P5"]


@pytest.mark.parametrize("batch_size", [1000, 3], ids=["one-page", "page-boundary"])
def test_a_key_held_by_two_rows_fails_alone_then_syncs_once_single(sqlite_parties, batch_size):
    check_duplicates_fail_alone_then_sync(sqlite_parties, batch_size)


def test_both_rows_of_a_key_held_twice_in_one_page_fail(sqlite_parties):
    sqlite_parties.insert("P3", "party P3 again")
    sqlite_parties.declare([PARTY])
    result = job(sqlite_parties.run("full"))
    assert result.counts["failed"] == 2 and result.counts["read"] == 6
    assert len([e for e in result.errors if e["record_id"] == "P3"]) == 2


def test_a_key_duplicated_later_is_not_updated_while_duplicated(sqlite_parties):
    demo = sqlite_parties
    demo.declare([PARTY])
    assert job(demo.run("full")).counts["inserted"] == 5
    execute(demo.erp, "update party set name = 'renamed', modified_on = ? where no = 'P2'", stamp(2).isoformat(" "))
    demo.insert("P2", "a second P2", hours_ago=1)  # read on a later page of a read by modified-on
    result = job(demo.run("modified", batch_size=1))
    assert_duplicate_failed(result, "P2")
    assert result.counts["modified"] == 0 and demo.accounts()["P2"] == "party P2"
    demo.delete_one("P2", "a second P2")
    fixed = job(demo.run("modified"))
    assert fixed.counts["modified"] == 1 and fixed.counts["failed"] == 0
    assert demo.accounts()["P2"] == "renamed"


def test_a_unique_key_costs_no_duplicate_query(sqlite_parties):
    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint

    execute(sqlite_parties.erp, "create table keyed (no text primary key, name text)")
    execute(sqlite_parties.erp, "create table indexed (no text not null, name text)")
    execute(sqlite_parties.erp, "create unique index ux_indexed_no on indexed (no)")
    endpoint = open_endpoint("local", sqlite_parties.local)
    try:
        assert not endpoint.table("party", "no").key_unique
        assert endpoint.table("keyed", "no").key_unique and endpoint.table("indexed", "no").key_unique
        sqlite_parties.insert("P3", "again")
        assert endpoint.table("party", "no").duplicate_keys(["P1", "P3", "P9"]) == {"P3": 2}
    finally:
        endpoint.close()


@pytest.mark.postgresql
def test_a_key_held_by_two_rows_on_postgresql(tmp_path, pg_db):
    demo = parties(tmp_path, pg_db)
    try:
        check_duplicates_fail_alone_then_sync(demo, batch_size=3)
    finally:
        demo.close()


@pytest.mark.mysql
def test_a_key_held_by_two_rows_on_mariadb(tmp_path, my_db):
    demo = parties(tmp_path, my_db)
    try:
        check_duplicates_fail_alone_then_sync(demo, batch_size=1000)
    finally:
        demo.close()


# -- text that is not valid UTF-8 ---------------------------------------------------------------------------


BAD_TEXT = "CAST(x'fffe41' AS TEXT)"


def customers(demo: Demo, count: int) -> list[str]:
    return [r[0] for r in rows(demo.erp, "select no from customer order by no limit ?", count)]


def account_name(demo: Demo, number: str) -> str | None:
    found = rows(demo.crm, "select name from account where accountnumber = ?", number)
    return found[0][0] if found else None


def assert_undecodable_failed(result, number: str) -> None:
    assert result.counts["failed"] == 1, result.errors
    error = result.errors[0]
    assert error["mapping"] == "CUSTOMER" and error["record_id"] == number
    message = error["message"]
    assert "mapping CUSTOMER" in message and number in message and "field name" in message and "not valid UTF-8" in message


def test_undecodable_text_fails_its_record_alone_in_a_full_sync(demo):
    number = customers(demo, 3)[1]
    execute(demo.erp, "update customer set name = %s where no = ?" % BAD_TEXT, number)
    with pytest.raises(sqlite3.OperationalError, match="Could not decode"):
        rows(demo.erp, "select name from customer where no = ?", number)  # what a plain read of the page meets
    demo.declare()
    run = demo.run("full")
    customer = job(run, "CUSTOMER")
    assert_undecodable_failed(customer, number)
    assert customer.counts["inserted"] == 199 and account_name(demo, number) is None
    assert [j.mapping for j in run.jobs] == [m["name"] for m in default_mapping_set()], "later mappings run"
    assert job(run, "ITEM-PRODUCT").counts["inserted"] > 0
    execute(demo.erp, "update customer set name = 'Fixed Name' where no = ?", number)
    fixed = job(demo.run("modified"), "CUSTOMER")
    assert fixed.counts["inserted"] == 1 and fixed.counts["failed"] == 0
    assert account_name(demo, number) == "Fixed Name"


def test_undecodable_text_fails_its_record_alone_in_a_modified_run(demo):
    demo.declare()
    demo.run("full")
    changed = demo.change_customers(5, seed=7)
    number = sorted(changed)[2]
    execute(demo.erp, "update customer set name = %s where no = ?" % BAD_TEXT, number)
    before = account_name(demo, number)
    result = job(demo.run("modified"), "CUSTOMER")
    assert_undecodable_failed(result, number)
    assert result.counts["modified"] == 4, "the page's other changed records are written"
    assert account_name(demo, number) == before
    execute(demo.erp, "update customer set name = 'Fixed Name' where no = ?", number)
    fixed = job(demo.run("modified"), "CUSTOMER")
    assert fixed.counts["failed"] == 0 and fixed.counts["modified"] == 1
    assert account_name(demo, number) == "Fixed Name"


def test_an_undecodable_key_is_a_clear_error_naming_the_table(demo):
    number = customers(demo, 1)[0]
    execute(demo.erp, "update customer set no = CAST(x'43ff3031' AS TEXT) where no = ?", number)
    demo.declare()
    with pytest.raises(EndpointError, match=r"table customer holds a key \(column no\) that is not valid UTF-8"):
        demo.run("full")


@pytest.mark.parametrize("local_change", [False, True], ids=["read-as-source", "read-as-partner"])
def test_undecodable_text_in_a_bidirectional_pair_fails_it_alone(demo, local_change):
    demo.declare([customer_account_mapping(direction="bidirectional", fields=[
        {"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"},
        {"field": "phone", "integration_field": "telephone1"}])])
    demo.run("full")
    first, second = customers(demo, 2)
    accountid = rows(demo.crm, "select accountid from account where accountnumber = ?", first)[0][0]
    execute(demo.crm, "update account set name = %s where accountid = ?" % BAD_TEXT, accountid)
    execute(demo.erp, "update customer set phone = 'new phone' where no in (?, ?)", *([first, second] if local_change else [second, second]))
    result = job(demo.run("modified"), "CUSTOMER")
    assert result.counts["failed"] == 1 and result.counts["modified"] == 1, result.errors
    message = result.errors[0]["message"]
    assert accountid in message and "integration field name: not valid UTF-8" in message
    assert rows(demo.crm, "select telephone1 from account where accountnumber = ?", second)[0][0] == "new phone"
