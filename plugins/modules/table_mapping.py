#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: table_mapping
short_description: Declare or remove an integration table mapping
version_added: 0.1.0
description:
  - Declares a named pair of tables (a local ERP table and an integration CRM table) with its field
    mappings, direction, filters and options, or removes it with O(state=absent).
  - Before anything is written the declaration is checked against the real tables of both endpoints
    (tables, columns, key types, filter fields); errors name the mapping and the field.
  - Idempotent. With C(--diff) the task shows the declaration before and after.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
options:
  name:
    description: Name of the mapping, for example V(CUSTOMER).
    type: str
    required: true
  state:
    description: Whether the mapping should exist. Removing a mapping removes its couplings.
    type: str
    choices: [present, absent]
    default: present
  local_table:
    description: Table on the local side. Required with O(state=present).
    type: str
  local_key:
    description: Key field of O(local_table).
    type: str
  local_modified_field:
    description: Modified-on field of O(local_table); modified-records runs then read only records changed since the last run.
    type: str
  integration_table:
    description: Table or entity set on the integration side. Required with O(state=present).
    type: str
  integration_key:
    description: Key field of O(integration_table).
    type: str
  integration_modified_field:
    description: Modified-on field of O(integration_table).
    type: str
  direction:
    description: Which way records flow.
    type: str
    choices: [to_integration, from_integration, bidirectional]
    default: to_integration
  fields:
    description: Field mappings.
    type: list
    elements: dict
    suboptions:
      field:
        description: Local field.
        type: str
      integration_field:
        description: Integration field.
        type: str
      direction:
        description: Direction of this field; defaults to the mapping's and may only narrow it.
        type: str
        choices: [to_integration, from_integration, bidirectional]
      constant:
        description: A value always written to the one field named (O(fields[].field) or O(fields[].integration_field)).
        type: raw
  table_filter:
    description: Which local records the mapping sees, in the OData C($filter) language, for example V(blocked eq 0 and country in ('DK','SE')).
    type: str
  integration_table_filter:
    description: Which integration records the mapping sees, in the same language as O(table_filter).
    type: str
  synch_only_coupled_records:
    description:
      - Whether modified-records runs only synchronise coupled records (true), or also create and couple
        records for uncoupled ones (false). A full synchronisation always creates them.
      - When omitted, a new mapping gets V(true) and an existing mapping keeps its setting.
    type: bool
  dependencies:
    description: Mappings that must be synchronised before this one.
    type: list
    elements: str
    default: []
notes:
  - Supports C(check_mode) and C(diff_mode).
requirements:
  - SQLAlchemy >= 2.0
  - jsonschema
  - odata-query
"""

EXAMPLES = r"""
- name: Customers become accounts
  tablesync.integration.table_mapping:
    name: CUSTOMER
    local_table: customer
    local_key: "no"
    local_modified_field: modified_on
    integration_table: account
    integration_key: accountid
    integration_modified_field: modifiedon
    direction: to_integration
    dependencies: [CURRENCY, SALESPEOPLE]
    table_filter: "blocked eq 0"
    fields:
      - {field: "no", integration_field: accountnumber}
      - {field: name, integration_field: name}
      - {field: email, integration_field: emailaddress1}
    store: /var/lib/tablesync/store.sqlite
    local: {type: sqlite, path: /srv/erp.sqlite}
    integration: {type: sqlite, path: /srv/crm.sqlite}

- name: Remove a mapping and its couplings
  tablesync.integration.table_mapping:
    name: RESOURCE-PRODUCT
    state: absent
"""

RETURN = r"""
mapping:
  description: The declaration as stored (empty after O(state=absent)).
  returned: always
  type: dict
  sample: {"name": "CUSTOMER", "direction": "to_integration", "local_table": "customer"}
couplings:
  description: Number of couplings the mapping has.
  returned: always
  type: int
  sample: 2000
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tablesync.integration.plugins.module_utils.module_support import common_argument_spec, engine_session

DECLARATION_KEYS = (
    "local_table",
    "local_key",
    "local_modified_field",
    "integration_table",
    "integration_key",
    "integration_modified_field",
    "direction",
    "fields",
    "table_filter",
    "integration_table_filter",
    "synch_only_coupled_records",
    "dependencies",
)


def declaration(params: dict, existing: dict | None) -> dict:
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import normalize

    wanted = {"name": params["name"]}
    wanted.update({k: params[k] for k in DECLARATION_KEYS})
    if wanted["synch_only_coupled_records"] is None:
        wanted["synch_only_coupled_records"] = existing["synch_only_coupled_records"] if existing else True
    return normalize(wanted)


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        local_table={"type": "str"},
        local_key={"type": "str", "no_log": False},
        local_modified_field={"type": "str"},
        integration_table={"type": "str"},
        integration_key={"type": "str", "no_log": False},
        integration_modified_field={"type": "str"},
        direction={"type": "str", "default": "to_integration", "choices": ["to_integration", "from_integration", "bidirectional"]},
        fields={
            "type": "list",
            "elements": "dict",
            "options": {
                "field": {"type": "str"},
                "integration_field": {"type": "str"},
                "direction": {"type": "str", "choices": ["to_integration", "from_integration", "bidirectional"]},
                "constant": {"type": "raw"},
            },
        },
        table_filter={"type": "str"},
        integration_table_filter={"type": "str"},
        synch_only_coupled_records={"type": "bool"},
        dependencies={"type": "list", "elements": "str", "default": []},
    )
    module = AnsibleModule(
        argument_spec=spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("local_table", "local_key", "integration_table", "integration_key", "fields", "local", "integration"))],
    )
    name = module.params["name"]
    present = module.params["state"] == "present"
    sides = ("local", "integration") if present else ()
    with engine_session(module, sides=sides, read_only=module.check_mode) as (store, endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
        from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables

        existing = store.get_mapping(name)
        if present:
            wanted = declaration(module.params, existing)
            mapping = Mapping.from_definition(wanted)
            mapping.bind(open_tables(mapping, endpoints))
            changed = existing != wanted
            if changed and not module.check_mode:
                with mapping_locks(store, [name], None, module.params["lock_timeout"], task="table_mapping"):
                    store.put_mapping(wanted)
        else:
            wanted = {}
            changed = existing is not None
            if changed and not module.check_mode:
                with mapping_locks(store, [name], None, module.params["lock_timeout"], task="table_mapping"):
                    store.delete_mapping(name)
        result = {
            "changed": changed,
            "mapping": wanted,
            "couplings": store.count_couplings(name) if present else 0,
        }
        if module._diff:
            result["diff"] = {"before": existing or {}, "after": wanted}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
