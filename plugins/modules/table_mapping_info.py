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
    so a mapping set can be exported from one store and declared again in another by passing each entry as the
    task's arguments (see the examples); the declared mappings are then equal.
  - Reads only the store; never changes anything.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Reads only; the module never reports C(changed).
  diff_mode:
    support: none
  platform:
    platforms: posix
  async:
    support: full
  action:
    support: none
  bypass_host_loop:
    support: none
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

- name: Declare the same mappings in a test store
  tablesync.integration.table_mapping:
    store: /tmp/test-store.sqlite
  args: "{{ item }}"
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
couplings:
  description: Number of couplings of each mapping listed.
  returned: always
  type: dict
  sample: {"CUSTOMER": 2000}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import exported
from ansible_collections.tablesync.integration.plugins.module_utils.module_support import common_argument_spec, engine_session


def main() -> None:
    spec = common_argument_spec()
    spec.update(names={"type": "list", "elements": "str"})
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    names = module.params["names"]
    with engine_session(module, sides=(), read_only=True) as (store, _endpoints):
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
    module.exit_json(changed=False, mappings=selected, couplings=couplings)


if __name__ == "__main__":
    main()
