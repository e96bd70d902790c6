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
    (tables, columns, key types, filter fields and the types of the values filters compare them with), and
    against the mappings already declared (its dependencies and lookups must be declared, and must not lead
    back to it); errors name the mapping and the field, and the store is left unchanged.
  - Idempotent. With C(--diff) the task shows the declaration before and after.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
  - tablesync.integration.declaration
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - tablesync.integration.attributes
attributes:
  check_mode:
    support: full
    details:
      - Validates the declaration against the endpoints and reports what would change; writes nothing.
      - A dependency or lookup naming a mapping that is not declared, and the removal of a mapping others depend on,
        are warnings in check mode, since an earlier task of the play would have declared or removed those mappings.
  diff_mode:
    support: full
    details: The declaration before and after.
options:
  name:
    description: Name of the mapping, for example V(CUSTOMER).
    type: str
    required: true
  state:
    description:
      - Whether the mapping should exist. Removing a mapping removes its couplings.
      - A mapping other mappings depend on (through O(dependencies) or a lookup) is not removed; the error names them.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Options left out take their defaults (V(none), V(false), no limit) when a mapping is declared.
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
    match_on:
      - {field: email, integration_field: emailaddress1, ignore_case: true, trim: true}
    fields:
      - {field: "no", integration_field: accountnumber}
      - {field: name, integration_field: name}
      - {field: email, integration_field: emailaddress1}
    store: /var/lib/tablesync/store.sqlite
    local: {type: sqlite, path: /srv/erp.sqlite}
    integration: {type: sqlite, path: /srv/crm.sqlite}

- name: Contacts kept in step both ways, merging edits of different fields
  tablesync.integration.table_mapping:
    name: CONTACTS
    local_table: contact
    local_key: "no"
    local_modified_field: modified_on
    integration_table: contact
    integration_key: contactid
    integration_modified_field: modifiedon
    direction: bidirectional
    update_conflict_resolution: merge
    merge_fallback: integration_wins
    deletion_conflict_resolution: restore_records
    max_changes_percent: 20
    fields:
      - {field: first_name, integration_field: firstname, transform: [trim]}
      - {field: surname, integration_field: lastname, transform: [trim, {truncate: 50}]}
      - {field: email, integration_field: emailaddress1, direction: to_integration, transform: [lower]}
      - {field: company_no, integration_field: parentcustomerid, lookup: CUSTOMER}

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

from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import REQUIRED, declaration_argument_spec
from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def declaration(params: dict, existing: dict | None) -> dict:
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import normalize

    wanted = {"name": params["name"]}
    wanted.update({k: params[k] for k in declaration_argument_spec()})
    if wanted["synch_only_coupled_records"] is None:
        wanted["synch_only_coupled_records"] = existing["synch_only_coupled_records"] if existing else True
    return normalize(wanted)


def refuse(module: AnsibleModule, problem: Exception | None) -> None:
    """Fail for a problem that other declarations decide; in check mode warn, since earlier tasks wrote nothing."""
    if problem is None:
        return
    if not module.check_mode:
        raise problem
    # why: a play declares mappings in dependency order; in check mode the mapping an earlier task would declare (or
    # remove) is not in the store, and failing here would predict a failure the real run does not have
    module.warn("%s (check mode: the store does not hold what earlier tasks would have declared or removed; a real run "
                "fails here unless they do)" % problem)


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        **declaration_argument_spec(),
    )
    module = IntegrationModule(
        argument_spec=spec,
        supports_check_mode=True,
        required_if=[("state", "present", (*REQUIRED, "local", "integration"))],
    )
    name = module.params["name"]
    present = module.params["state"] == "present"
    sides = ("local", "integration") if present else ()
    with engine_session(module, sides=sides, read_only=module.check_mode) as (store, endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import cycle_problem, loadable, removal_problem, undeclared_problem
        from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
        from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables

        existing = store.get_mapping(name)
        others = loadable(store.list_mappings(), skip=name)
        if present:
            wanted = declaration(module.params, existing)
            mapping = Mapping.from_definition(wanted)
            refuse(module, undeclared_problem(mapping, others))
            problem = cycle_problem(mapping, others)
            if problem is not None:
                raise problem
            mapping.bind(open_tables(mapping, endpoints))
            # why: a declaration stored before an option existed equals one that leaves it at its default
            changed = existing is None or normalize(existing) != wanted
            if changed and not module.check_mode:
                with mapping_locks(store, [name], None, module.params["lock_timeout"], task="table_mapping"):
                    store.put_mapping(wanted)
        else:
            wanted = {}
            changed = existing is not None
            refuse(module, removal_problem(name, others) if changed else None)
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
