#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: table_mapping_info
short_description: List the declared integration table mappings, for export and review
version_added: 0.1.0
description:
  - Returns the declared mappings with their field mappings, filters and options, and the number of couplings
    of each, in dependency order (a mapping after those it depends on; declaration order otherwise).
  - Each entry of RV(mappings) holds exactly the options of M(tablesync.integration.table_mapping) that are set,
    so a mapping set can be exported from one store and declared again in another by passing each option of an
    entry to M(tablesync.integration.table_mapping) (see the examples); the declared mappings are then equal.
  - Reads only the store; never changes anything.
  - Fails, naming the store, when O(store) does not exist yet (no task has written to it), so that a mistyped
    path or URL is not taken for an empty store.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - tablesync.integration.attributes
  - tablesync.integration.attributes.info_module
options:
  names:
    description: Only these mappings. All declared mappings when omitted.
    type: list
    elements: str
notes:
  - O(local) and O(integration) are not used.
requirements:
  - SQLAlchemy >= 2.0
"""

EXAMPLES = r"""
- name: Export the mapping set of the production store
  tablesync.integration.table_mapping_info:
    store: postgresql://sync@db.example.com/tablesync
  register: exported

- name: Declare the same mappings in a test store (every option of table_mapping, as the export holds them)
  tablesync.integration.table_mapping:
    store: /tmp/test-store.sqlite
    name: "{{ item.name }}"
    local_table: "{{ item.local_table | default(omit) }}"
    local_key: "{{ item.local_key | default(omit) }}"
    local_modified_field: "{{ item.local_modified_field | default(omit) }}"
    local_modified_format: "{{ item.local_modified_format | default(omit) }}"
    integration_table: "{{ item.integration_table | default(omit) }}"
    integration_key: "{{ item.integration_key | default(omit) }}"
    integration_modified_field: "{{ item.integration_modified_field | default(omit) }}"
    integration_modified_format: "{{ item.integration_modified_format | default(omit) }}"
    direction: "{{ item.direction | default(omit) }}"
    fields: "{{ item.fields | default(omit) }}"
    table_filter: "{{ item.table_filter | default(omit) }}"
    integration_table_filter: "{{ item.integration_table_filter | default(omit) }}"
    synch_only_coupled_records: "{{ item.synch_only_coupled_records | default(omit) }}"
    dependencies: "{{ item.dependencies | default(omit) }}"
    update_conflict_resolution: "{{ item.update_conflict_resolution | default(omit) }}"
    merge_fallback: "{{ item.merge_fallback | default(omit) }}"
    deletion_conflict_resolution: "{{ item.deletion_conflict_resolution | default(omit) }}"
    propagate_deletions: "{{ item.propagate_deletions | default(omit) }}"
    max_deletes: "{{ item.max_deletes | default(omit) }}"
    max_deletes_percent: "{{ item.max_deletes_percent | default(omit) }}"
    max_changes: "{{ item.max_changes | default(omit) }}"
    max_changes_percent: "{{ item.max_changes_percent | default(omit) }}"
    match_on: "{{ item.match_on | default(omit) }}"
    initial_direction: "{{ item.initial_direction | default(omit) }}"
  loop: "{{ exported.mappings }}"
  loop_control:
    label: "{{ item.name }}"
"""

RETURN = r"""
mappings:
  description:
    - The declarations, each valid input for M(tablesync.integration.table_mapping) as it is, in dependency order.
  returned: always
  type: list
  elements: dict
  sample:
    - name: CUSTOMER
      local_table: customer
      local_key: "no"
      integration_table: account
      integration_key: accountid
      direction: to_integration
      fields: [{"field": "no", "integration_field": "accountnumber"}]
      dependencies: [CURRENCY, SALESPEOPLE]
      synch_only_coupled_records: true
levels:
  description:
    - The mappings listed, in dependency levels; a mapping depends only on mappings of earlier levels. A distributed
      sync runs one task per level, so that every partition of a level ends before the next level starts.
    - Empty when the declarations cannot be ordered (an undeclared dependency or a cycle).
  returned: always
  type: list
  elements: list
  sample: [[CURRENCY, SALESPEOPLE], [CUSTOMER], [CONTACT]]
couplings:
  description: Number of couplings of each mapping listed.
  returned: always
  type: dict
  sample: {"CUSTOMER": 2000}
"""


from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import exported
from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def main() -> None:
    spec = common_argument_spec()
    spec.update(names={"type": "list", "elements": "str"})
    module = IntegrationModule(argument_spec=spec, supports_check_mode=True)
    names = module.params["names"]
    with engine_session(module, sides=(), read_only=True, existing_store=True) as (store, _endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import export_order

        declared = export_order(store.list_mappings())
        known = {d["name"] for d in declared}
        unknown = [n for n in names or () if n not in known]
        if unknown:
            module.fail_json(msg="mapping %s not declared in the store %s (declared: %s)"
                             % (", ".join(unknown), store.address, ", ".join(sorted(known)) or "none"))
        # why: unset options are left out, so each entry can be passed to table_mapping as it is
        selected = [exported(d) for d in declared if not names or d["name"] in names]
        couplings = {d["name"]: store.count_couplings(d["name"]) for d in selected}
        levels = listed_levels(declared, {d["name"] for d in selected})
    module.exit_json(changed=False, mappings=selected, levels=levels, couplings=couplings)


def listed_levels(declared: list[dict], listed: set[str]) -> list[list[str]]:
    """The dependency levels of the listed mappings (empty when the declarations cannot be ordered)."""
    from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import dependency_levels
    from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError, OrderingError
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping

    try:
        levels = dependency_levels([Mapping.from_definition(d) for d in declared])
    except (MappingError, OrderingError):
        return []
    return [names for names in ([n for n in level if n in listed] for level in levels) if names]


if __name__ == "__main__":
    main()
