"""What ansible-doc shows for every module and role, and the diff the sync module reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.integration.conftest import ROOT, ansible_playbook, playbook_env
from tests.support.fixtures import rows

ROLES = ["default_mappings", "full_sync"]
MODULES = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "plugins", "modules")) if name.endswith(".py") and name != "__init__.py")


def ansible_doc(*args: str) -> dict:
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-doc"), "--json", *args]
    proc = subprocess.run(cmd, env=playbook_env(), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def module_docs() -> dict:
    """ansible-doc's entries of every module from one run (why: each run loads Ansible and the collection anew)."""
    return ansible_doc(*("tablesync.integration.%s" % module for module in MODULES))


@pytest.fixture(scope="module")
def role_docs() -> dict:
    return ansible_doc("-t", "role", *("tablesync.integration.%s" % role for role in ROLES))


@pytest.mark.parametrize("module", MODULES)
def test_module_documents_options_examples_and_return_values(module, module_docs):
    entry = module_docs["tablesync.integration.%s" % module]
    options = entry["doc"]["options"]
    for shared in ("store", "local", "integration"):
        assert shared in options, "%s: the connection doc fragment is missing" % module
    assert options["local"]["suboptions"]["password"]["description"]
    assert entry["doc"]["short_description"] and entry["doc"]["author"]
    assert "tablesync.integration.%s:" % module in entry["examples"]
    assert entry["return"], "%s documents no return values" % module
    attributes = entry["doc"].get("attributes") or {}
    assert attributes.get("check_mode", {}).get("support") in ("full", "partial"), "%s: document check mode support in attributes" % module


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_are_documented(role, role_docs):
    spec = role_docs["tablesync.integration.%s" % role]
    options = spec["entry_points"]["main"]["options"]
    for side in ("store", "local", "integration"):
        assert "%s_%s" % (role, side) in options
    assert all(option.get("description") for option in options.values())


def test_sync_diff_lists_what_changes(demo, run_sync):
    demo.declare()
    first = run_sync("--diff", sync_mode="full")
    assert "CUSTOMER (to_integration): 200 inserted" in first["diff"]["prepared"]
    changed = demo.change_customers(2, seed=5)
    before = rows(demo.crm, "select accountnumber, name from account order by 1")
    plan = run_sync("--diff", "--check", sync_mode="modified")
    prepared = plan["diff"]["prepared"]
    assert "CUSTOMER (to_integration): 2 modified" in prepared
    assert all("modified CUSTOMER: local %s," % number in prepared for number in changed)
    assert "CURRENCY" not in prepared
    assert rows(demo.crm, "select accountnumber, name from account order by 1") == before
    # field by field: what each record's update changes, before and after
    crm = {r[0]: r for r in rows(demo.crm, "select accountnumber, name, address1_city, telephone1, emailaddress1 from account")}
    erp = {r[0]: r for r in rows(demo.erp, "select no, name, city, phone, email from customer")}
    columns = ("name", "address1_city", "telephone1", "emailaddress1")
    records = {r["local_id"]: r for r in plan["records"] if r["mapping"] == "CUSTOMER"}
    for number in changed:
        changes = records[number]["changes"]
        expected = {"integration." + column: {"before": crm[number][i + 1], "after": erp[number][i + 1]}
                    for i, column in enumerate(columns) if crm[number][i + 1] != erp[number][i + 1]}
        assert expected and {k: v for k, v in changes.items() if k in expected} == expected
        assert all(k in expected for k in changes if k.split(".")[1] in columns)
        name = next(iter(expected))
        assert "%s: %s -> %s" % (name, json.dumps(expected[name]["before"]), json.dumps(expected[name]["after"])) in prepared
    created = next(r for r in first["records"] if r["mapping"] == "CUSTOMER" and r["action"] == "inserted")
    assert created["changes"]["integration.accountnumber"] == {"before": None, "after": created["local_id"]}
    assert "diff" not in run_sync(sync_mode="modified")
    assert "diff" not in run_sync("--diff", sync_mode="modified")


def test_unreachable_store_fails_with_what_to_fix(tmp_path):
    playbook = tmp_path / "info.yml"
    # nothing listens on port 9 of the loopback interface
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - tablesync.integration.sync_job_info: {store: 'postgresql://postgres@127.0.0.1:9/tablesync'}\n"
    )
    proc = ansible_playbook(str(playbook), check=False)
    assert proc.returncode != 0
    assert "cannot be opened (check the store option" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("module", [m for m in MODULES if m.endswith("_info")])
def test_info_modules_never_report_changed(module, demo, run_sync, tmp_path):
    demo.declare()
    run_sync(sync_mode="full")
    out = tmp_path / "info.json"
    playbook = tmp_path / "info.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n"
        "  module_defaults:\n    group/tablesync.integration.integration:\n"
        "      store: %s\n      local: {type: sqlite, path: %s}\n      integration: {type: sqlite, path: %s}\n"
        "  tasks:\n    - tablesync.integration.%s:\n      register: info\n"
        "    - ansible.builtin.copy: {content: '{{ info | to_json }}', dest: %s, mode: '0644'}\n"
        % (demo.store_path, demo.erp, demo.crm, module, out)
    )
    ansible_playbook(str(playbook))
    result = json.loads(out.read_text())
    assert result["changed"] is False and not result.get("failed")
