"""table_mapping through real ansible-playbook runs: declarations that would poison the store are refused."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.integration.conftest import ansible_playbook, extra_vars
from tests.support.fixtures import default_mapping_set, file_digest


@pytest.fixture
def play(demo, tmp_path):
    """Run a test playbook on the demo databases; returns the result it wrote."""

    def run(playbook: str, *args: str, **variables: object) -> dict:
        result_file = str(tmp_path / "result.json")
        if os.path.exists(result_file):
            os.remove(result_file)
        values = {"store_path": demo.store_path, "erp": demo.erp, "crm": demo.crm, "result_file": result_file}
        values.update(variables)
        ansible_playbook(playbook, *extra_vars(**values), *args)
        with open(result_file) as handle:
            return json.load(handle)

    return run


def default(name: str, **changes: object) -> dict:
    return dict(next(d for d in default_mapping_set() if d["name"] == name), **changes)


def stored(path: str) -> list[dict]:
    store = Store(path, read_only=True)
    try:
        return store.list_mappings()
    finally:
        store.close()


def _customer_fields(**replace: dict) -> list[dict]:
    return [replace.get(f["field"], f) for f in default("CUSTOMER")["fields"]]


POISONING = [
    (default("CURRENCY", dependencies=["CONTACTS"]),
     "mapping CURRENCY, field dependencies: the dependencies would form a cycle: CURRENCY -> CONTACTS -> CUSTOMER -> CURRENCY"),
    (default("CUSTOMER", dependencies=["PRICE-GROUPS"]),
     "mapping CUSTOMER, field dependencies: depends on mapping PRICE-GROUPS, which is not declared"),
    (default("CUSTOMER", fields=_customer_fields(country={"field": "country", "integration_field": "address1_country", "lookup": "COUNTRIES"})),
     "mapping CUSTOMER, field country <-> address1_country: lookup through mapping COUNTRIES, which is not declared"),
    (default("CUSTOMER", table_filter="blocked eq 'yes'"),
     "mapping CUSTOMER, field table_filter: mapping CUSTOMER, table_filter: blocked holds integer values, it cannot be compared with 'yes'"),
    (default("CUSTOMER", integration_table_filter="creditlimit gt 0 and no_such_field eq 1"),
     "mapping CUSTOMER, field integration_table_filter: mapping CUSTOMER, integration_table_filter: unknown field 'no_such_field'"),
    ({"name": "CURRENCY", "state": "absent"},
     "mapping CURRENCY: not removed: CUSTOMER depends on it (through dependencies or lookups); remove that mapping or its dependency on CURRENCY first"),
]


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check_mode"])
def test_poisoning_declarations_are_refused_and_leave_the_store_unchanged(demo, play, check):
    demo.declare()
    demo.close()  # why: SQLite moves the declarations from its write-ahead log into the file when the last connection closes
    before, digest = stored(demo.store_path), file_digest(demo.store_path)
    results = play("declare_mappings.yml", *(["--check"] if check else []),
                   declarations=[d for d, _message in POISONING], expect_failure=True)["results"]
    assert [r["item"]["name"] for r in results] == [d["name"] for d, _message in POISONING]
    for result, (_declaration, message) in zip(results, POISONING):
        assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    assert file_digest(demo.store_path) == digest
    assert stored(demo.store_path) == before


def test_mappings_are_declared_and_removed_in_dependency_order(demo, play):
    order = ["CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACTS"]
    declared = play("declare_mappings.yml", declarations=[default(n) for n in order])["results"]
    assert [r["changed"] for r in declared] == [True] * 4
    assert [m["name"] for m in stored(demo.store_path)] == order
    removed = play("declare_mappings.yml", declarations=[{"name": n, "state": "absent"} for n in reversed(order)])["results"]
    assert [r["changed"] for r in removed] == [True] * 4
    assert stored(demo.store_path) == []
