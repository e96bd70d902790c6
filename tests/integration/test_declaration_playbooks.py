"""table_mapping through real ansible-playbook runs: declarations that would poison the store are refused,
and an exported mapping declared again in another store is the same mapping."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import DECLARATION_OPTIONS, FIELD_OPTIONS
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import DEFAULTS
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import ROOT, default_mapping_set, file_digest


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


# (declaration, error, whether check mode only warns: the mapping it lacks could be declared by an earlier task)
POISONING = [
    (default("CURRENCY", dependencies=["CONTACTS"]),
     "mapping CURRENCY, field dependencies: the dependencies would form a cycle: CURRENCY -> CONTACTS -> CUSTOMER -> CURRENCY", False),
    (default("CUSTOMER", dependencies=["PRICE-GROUPS"]),
     "mapping CUSTOMER, field dependencies: depends on mapping PRICE-GROUPS, which is not declared", True),
    (default("CUSTOMER", fields=_customer_fields(country={"field": "country", "integration_field": "address1_country", "lookup": "COUNTRIES"})),
     "mapping CUSTOMER, field country <-> address1_country: lookup through mapping COUNTRIES, which is not declared", True),
    (default("CUSTOMER", table_filter="blocked eq 'yes'"),
     "mapping CUSTOMER, field table_filter: mapping CUSTOMER, table_filter: blocked holds integer values, it cannot be compared with 'yes'", False),
    (default("CUSTOMER", integration_table_filter="creditlimit gt 0 and no_such_field eq 1"),
     "mapping CUSTOMER, field integration_table_filter: mapping CUSTOMER, integration_table_filter: unknown field 'no_such_field'", False),
    ({"name": "CURRENCY", "state": "absent"},
     "mapping CURRENCY: not removed: CUSTOMER depends on it (through dependencies or lookups); remove that mapping or its dependency on CURRENCY "
     "first", True),
]


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check_mode"])
def test_poisoning_declarations_are_refused_and_leave_the_store_unchanged(demo, play, check):
    demo.declare()
    demo.close()  # why: SQLite moves the declarations from its write-ahead log into the file when the last connection closes
    before, digest = stored(demo.store_path), file_digest(demo.store_path)
    out = play("declare_mappings.yml", *(["--check"] if check else []), declarations=[d for d, _message, _warns in POISONING], expect_failure=True)
    results, warnings = out["results"], " ".join(out["stdout"].split())
    assert [r["item"]["name"] for r in results] == [d["name"] for d, _message, _warns in POISONING]
    for result, (_declaration, message, warns) in zip(results, POISONING):
        if check and warns:
            assert not result.get("failed") and result["changed"] is True
            assert "[WARNING]: %s" % message in warnings and "(check mode: the store does not hold" in warnings
        else:
            assert result["failed"] is True and result["msg"].startswith(message), result["msg"]
    assert file_digest(demo.store_path) == digest
    assert stored(demo.store_path) == before


def test_a_play_declaring_mappings_in_dependency_order_passes_check_mode_on_a_fresh_store(demo, play):
    out = play("declare_mappings.yml", "--check", declarations=[default(n) for n in ("CURRENCY", "SALESPEOPLE", "CUSTOMER")])
    planned = out["results"]
    assert [r["changed"] for r in planned] == [True] * 3 and not any(r.get("failed") for r in planned)
    assert "[WARNING]: mapping CUSTOMER, field salesperson_code <-> ownerid: lookup through mapping SALESPEOPLE, which is not declared" in out["stdout"]
    assert stored(demo.store_path) == []


def test_mappings_are_declared_and_removed_in_dependency_order(demo, play):
    order = ["CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACTS"]
    declared = play("declare_mappings.yml", declarations=[default(n) for n in order])["results"]
    assert [r["changed"] for r in declared] == [True] * 4
    assert [m["name"] for m in stored(demo.store_path)] == order
    removed = play("declare_mappings.yml", declarations=[{"name": n, "state": "absent"} for n in reversed(order)])["results"]
    assert [r["changed"] for r in removed] == [True] * 4
    assert stored(demo.store_path) == []


# Every option of table_mapping set to a value other than its default, field options included.
EVERY_OPTION = {
    "name": "ACCOUNTS",
    "local_table": "customer",
    "local_key": "no",
    "local_modified_field": "modified_on",
    "local_modified_format": "iso",
    "integration_table": "account",
    "integration_key": "accountid",
    "integration_modified_field": "modifiedon",
    "integration_modified_format": "iso",
    "direction": "bidirectional",
    "fields": [
        {"field": "no", "integration_field": "accountnumber", "direction": "to_integration"},
        {"field": "name", "integration_field": "name", "transform": ["trim", {"truncate": 40}]},
        {"field": "email", "integration_field": "emailaddress1"},
        {"field": "blocked", "integration_field": "creditonhold", "value_map": {"values": {"0": 0, "1": 1}, "default": 0, "local_default": 0}},
        {"field": "salesperson_code", "integration_field": "ownerid", "lookup": "SALESPEOPLE", "clear_value_on_failed_lookup": True},
        {"integration_field": "address1_country", "constant": "DK"},
    ],
    "table_filter": "blocked eq 0",
    "integration_table_filter": "creditonhold ne 1",
    "synch_only_coupled_records": False,
    "dependencies": ["CURRENCY"],
    "update_conflict_resolution": "merge",
    "merge_fallback": "integration_wins",
    "deletion_conflict_resolution": "restore_records",
    "propagate_deletions": True,
    "max_deletes": 5,
    "max_deletes_percent": 12.5,
    "max_changes": 7,
    "max_changes_percent": 20.5,
    "match_on": [{"field": "email", "integration_field": "emailaddress1", "ignore_case": True, "trim": True}],
    "initial_direction": "from_integration",
}


def test_the_round_trip_declaration_sets_every_option_to_a_non_default_value():
    assert set(EVERY_OPTION) == {"name", *DECLARATION_OPTIONS}
    for option, spec in DECLARATION_OPTIONS.items():
        assert EVERY_OPTION[option] not in (None, DEFAULTS.get(option), spec.get("default")), option
    used = {key for f in EVERY_OPTION["fields"] for key in f}
    assert used == set(FIELD_OPTIONS)
    for key, spec in FIELD_OPTIONS.items():
        assert all(f[key] != spec.get("default") for f in EVERY_OPTION["fields"] if key in f), key


def test_an_exported_mapping_declared_in_a_fresh_store_is_equal(demo, play, tmp_path):
    declared = play("declare_mappings.yml", declarations=[default("CURRENCY"), default("SALESPEOPLE"), EVERY_OPTION])["results"]
    assert all(r["changed"] for r in declared)
    other = str(tmp_path / "fresh.sqlite")
    out = play("mapping_export.yml", other_store=other)
    assert [m["name"] for m in out["exported"]["mappings"]] == ["CURRENCY", "SALESPEOPLE", "ACCOUNTS"]
    assert all(r["changed"] for r in out["declared"]["results"])
    original, copy = stored(demo.store_path), stored(other)
    assert copy == original
    accounts = next(m for m in copy if m["name"] == "ACCOUNTS")
    assert {k: accounts[k] for k in ("update_conflict_resolution", "merge_fallback", "deletion_conflict_resolution", "max_changes_percent")} == {
        "update_conflict_resolution": "merge", "merge_fallback": "integration_wins", "deletion_conflict_resolution": "restore_records",
        "max_changes_percent": 20.5}
    assert accounts["fields"][4]["clear_value_on_failed_lookup"] is True


def _task_options(path: str, task: str) -> dict:
    with open(path) as handle:
        loaded = yaml.safe_load(handle)
    tasks = loaded[0]["tasks"] if isinstance(loaded[0], dict) and "tasks" in loaded[0] else loaded
    return next(t for t in tasks if t["name"].startswith(task))["tablesync.integration.table_mapping"]


def test_every_task_that_declares_a_list_of_mappings_passes_every_option():
    from ansible_collections.tablesync.integration.plugins.modules import table_mapping_info

    every = {"name", *DECLARATION_OPTIONS}
    documented = next(t for t in yaml.safe_load(table_mapping_info.EXAMPLES) if "tablesync.integration.table_mapping" in t)
    documented = documented["tablesync.integration.table_mapping"]
    tested = _task_options(os.path.join(ROOT, "tests", "integration", "playbooks", "mapping_export.yml"), "Declare the exported")
    role = _task_options(os.path.join(ROOT, "roles", "default_mappings", "tasks", "declare.yml"), "Declare the default")
    assert set(documented) - {"store"} == every
    assert {k: v for k, v in tested.items() if k != "store"} == {k: v for k, v in documented.items() if k != "store"}
    assert set(role) == every
