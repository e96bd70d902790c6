"""The playbooks in playbooks/: full sync, modified sync and one mapping, driven by extra vars."""

from __future__ import annotations

import os

import yaml

from tests.integration.conftest import ROOT, ansible_playbook, extra_vars
from tests.support.fixtures import rows

PLAYBOOKS = os.path.join(ROOT, "playbooks")


def _connections(demo, tmp_path) -> list[str]:
    """The connection settings as a vars file, the way a user passes them (-e @file)."""
    path = tmp_path / "connections.yml"
    path.write_text(yaml.safe_dump({"tablesync_store": demo.store_path, "tablesync_local": demo.local, "tablesync_integration": demo.integration}))
    return ["-e", "@%s" % path]


def _table(stdout: str, mapping: str) -> list[str]:
    """The summary row of a mapping: mapping direction inserted modified deleted unchanged skipped failed coupled uncoupled seconds."""
    lines = [line.strip(" -'\",") for line in stdout.splitlines()]
    return next(line.split() for line in lines if line.startswith(mapping + " "))


def test_full_modified_and_single_mapping_playbooks(demo, tmp_path):
    connections = _connections(demo, tmp_path)
    full = ansible_playbook(os.path.join(PLAYBOOKS, "full_sync.yml"), *connections,
                            *extra_vars(tablesync_declare_default_mappings=True, tablesync_after_full_sync="create_new_records"))
    assert _table(full.stdout, "CUSTOMER")[2] == "200"
    accounts = dict(rows(demo.crm, "select accountnumber, accountid from account"))
    assert sorted(accounts) == sorted(r[0] for r in rows(demo.erp, "select no from customer"))
    assert dict(rows(demo.store_path, "select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'")) == accounts
    assert rows(demo.store_path, "select count(*) from tablesync_mappings where synch_only_coupled_records")[0][0] == 0

    demo.change_customers(4, seed=3)
    modified = ansible_playbook(os.path.join(PLAYBOOKS, "modified_sync.yml"), *connections)
    assert _table(modified.stdout, "CUSTOMER")[3] == "4"
    assert _table(modified.stdout, "CURRENCY")[3] == "0"

    changed = demo.change_customers(3, seed=4)
    single = ansible_playbook(os.path.join(PLAYBOOKS, "sync_mapping.yml"), *connections, *extra_vars(tablesync_mappings=["CUSTOMER"]))
    assert _table(single.stdout, "CUSTOMER")[3] == "3"
    assert "CURRENCY " not in single.stdout and "ITEM-PRODUCT " not in single.stdout
    names = dict(rows(demo.erp, "select no, name from customer"))
    synced = dict(rows(demo.crm, "select accountnumber, name from account"))
    assert all(synced[number] == names[number] for number in changed)


def test_playbooks_name_what_is_missing(demo, tmp_path):
    no_endpoints = ansible_playbook(os.path.join(PLAYBOOKS, "modified_sync.yml"), check=False)
    assert no_endpoints.returncode != 0
    assert "tablesync_local" in no_endpoints.stdout and "tablesync_integration" in no_endpoints.stdout
    no_mapping = ansible_playbook(os.path.join(PLAYBOOKS, "sync_mapping.yml"), *_connections(demo, tmp_path), check=False)
    assert no_mapping.returncode != 0
    assert "Set tablesync_mappings" in no_mapping.stdout + no_mapping.stderr
    # nothing was written
    assert rows(demo.crm, "select count(*) from account")[0][0] == 0


def test_full_sync_role_runs_as_an_async_task(demo, tmp_path):
    connections = _connections(demo, tmp_path)
    run = ansible_playbook(os.path.join(PLAYBOOKS, "full_sync.yml"), *connections,
                           *extra_vars(tablesync_declare_default_mappings=True, tablesync_async=600, tablesync_poll=1))
    assert _table(run.stdout, "CUSTOMER")[2] == "200"
    assert "ASYNC OK on localhost" in run.stdout, run.stdout[-3000:]
    assert rows(demo.crm, "select count(*) from account")[0][0] == 200
