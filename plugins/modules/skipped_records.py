#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: skipped_records
short_description: Restore records a sync skipped after they failed the same way run after run
version_added: 0.1.0
description:
  - A record that fails with the same error in O(tablesync.integration.sync#module:skip_after_failures) runs in a row
    (two by default) is skipped, as Business Central marks such a record Skipped - later runs leave it alone and
    count it as C(skipped), so a scheduled sync stops failing on it.
    M(tablesync.integration.sync_job_info) lists skipped records with their last error.
  - Once the cause is fixed (a missing lookup target created, a conflict settled by hand), this module restores
    them. The next sync of any mode synchronises them again; one that fails again is skipped after
    O(tablesync.integration.sync#module:skip_after_failures) more failures.
  - With O(state=uncoupled) their couplings are removed as well, so that the next full sync creates (or matches)
    their partners anew, as Business Central's "Delete Couplings" of skipped records.
  - Idempotent. With C(--diff) the task shows the skipped records and couplings before and after.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - tablesync.integration.attributes
attributes:
  check_mode:
    support: full
    details: Reports the records that would be restored and the couplings that would be removed; writes nothing.
  diff_mode:
    support: full
    details: The skipped records and their couplings before and after.
options:
  mapping:
    description: Name of the mapping whose skipped records are restored.
    type: str
    required: true
  records:
    description:
      - Ids of the skipped records to restore, local or integration (the side they failed on, as
        M(tablesync.integration.sync_job_info) lists them). Every skipped record of the mapping when omitted.
    type: list
    elements: str
  state:
    description:
      - V(restored) puts the records back on the mapping's retry list.
      - V(uncoupled) restores them and removes their couplings.
    type: str
    choices: [restored, uncoupled]
    default: restored
"""

EXAMPLES = r"""
- name: Restore the customers skipped since their salesperson was missing
  tablesync.integration.skipped_records:
    mapping: CUSTOMER
    records: [C00010, C00011]

- name: Restore every skipped record of a mapping and remove their couplings
  tablesync.integration.skipped_records:
    mapping: CONTACTS
    state: uncoupled
"""

RETURN = r"""
records:
  description: The records restored (or, in check mode, that would be).
  returned: always
  type: list
  elements: dict
  contains:
    side:
      description: Side the record failed on, V(local) or V(integration).
      type: str
    record_id:
      description: Id of the record.
      type: str
    message:
      description: Its last error.
      type: str
    attempts:
      description: Runs in a row it failed with that error.
      type: int
uncoupled:
  description: Couplings removed (O(state=uncoupled)), as C(local_id) and C(integration_id).
  returned: always
  type: list
  elements: dict
"""


from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        mapping={"type": "str", "required": True},
        records={"type": "list", "elements": "str"},
        state={"type": "str", "default": "restored", "choices": ["restored", "uncoupled"]},
    )
    module = IntegrationModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    with engine_session(module, sides=(), read_only=module.check_mode, existing_store=True) as (store, _endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.skipped import apply_restore, plan_restore

        if not store.exists or store.get_mapping(p["mapping"]) is None:
            module.fail_json(msg="mapping %s is not declared in the store %s" % (p["mapping"], store.address))
        plan = plan_restore(store, p["mapping"], p["records"], p["state"] == "uncoupled")
        if plan.changed and not module.check_mode:
            apply_restore(store, plan)
    result = {
        "changed": plan.changed,
        "mapping": p["mapping"],
        "records": [{k: r[k] for k in ("side", "record_id", "message", "attempts")} for r in plan.records],
        "uncoupled": [{"local_id": lid, "integration_id": iid} for lid, iid in plan.uncouple],
    }
    if module._diff:
        result["diff"] = plan.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
