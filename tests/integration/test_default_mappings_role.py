"""The default_mappings role: its profile is checked, and a connection error is reported once."""

from __future__ import annotations

import json
import re

from tests.integration.conftest import ansible_playbook

PLAY = """
- name: Declare the default mappings
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: tablesync.integration.default_mappings
      vars: {variables}
"""


def run_role(tmp_path, **variables: object):
    playbook = tmp_path / "role.yml"
    playbook.write_text(PLAY.format(variables=json.dumps(variables)))
    return ansible_playbook(str(playbook), check=False)


def declared(store: str) -> list[str]:
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

    with_store = Store(store, read_only=True)
    try:
        return [m["name"] for m in with_store.list_mappings()] if with_store.exists else []
    finally:
        with_store.close()


def failed_items(output: str) -> list[str]:
    """The loop items that failed, as the default callback reports them."""
    return re.findall(r"^failed: \[localhost\] \(item=([^)]*)\)", output, flags=re.M)


def endpoints(demo) -> dict:
    return {"default_mappings_local": {"type": "sqlite", "path": demo.erp},
            "default_mappings_integration": {"type": "sqlite", "path": demo.crm}}


def test_a_mistyped_profile_fails_the_role_before_anything_is_declared(tmp_path, demo):
    proc = run_role(tmp_path, default_mappings_store=demo.store_path, default_mappings_profile="business_central_dataverce",
                    **endpoints(demo))
    assert proc.returncode != 0
    out = " ".join(proc.stdout.split())
    assert "default_mappings_profile" in out and "business_central_dataverce" in out and "erp_crm" in out
    assert declared(demo.store_path) == []


def test_the_profile_declares_its_set(tmp_path, demo):
    proc = run_role(tmp_path, default_mappings_store=demo.store_path, default_mappings_profile="erp_crm", **endpoints(demo))
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert declared(demo.store_path) == ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS",
                                         "RESOURCE-PRODUCT", "ITEM-PRODUCT"]


def test_a_store_that_cannot_be_reached_is_reported_once(tmp_path, demo):
    # nothing listens on port 9 of the loopback interface
    proc = run_role(tmp_path, default_mappings_store="postgresql://postgres@127.0.0.1:9/tablesync", **endpoints(demo))
    assert proc.returncode != 0
    assert failed_items(proc.stdout) == ["CURRENCY"], proc.stdout[-4000:]
    assert "cannot be opened (check the store option" in proc.stdout


def test_a_missing_endpoint_database_is_reported_once(tmp_path, demo):
    variables = endpoints(demo)
    variables["default_mappings_integration"] = {"type": "sqlite", "path": str(tmp_path / "no-such-crm.sqlite")}
    proc = run_role(tmp_path, default_mappings_store=demo.store_path, **variables)
    assert proc.returncode != 0
    assert failed_items(proc.stdout) == ["CURRENCY"], proc.stdout[-4000:]
    assert "no-such-crm.sqlite does not exist" in " ".join(proc.stdout.split())
    assert declared(demo.store_path) == []
