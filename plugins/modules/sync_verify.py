#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sync_verify
short_description: Read-only reconciliation of integration table mappings
version_added: 0.1.0
description:
  - For every coupling of each mapping, checks that both records still exist and that their mapped values
    agree (each destination field holds what a sync would write there from its source field); then lists the
    records of each side, within the mapping's filter, that are not coupled.
  - Finds what a modified-records sync cannot see, such as records deleted on either side (no newer
    modified-on carries them) and records edited on their destination side.
  - Writes nothing to the endpoints or the store and never reports C(changed), so it is safe to run as a
    scheduled drift report. A later full sync repairs what it lists in one-way mappings (records edited on their
    destination side are written again from their source), following the mapping's deletion policy for deleted
    records; for bidirectional mappings, or to repair before a modified-records sync, use
    M(tablesync.integration.coupling) with O(tablesync.integration.coupling#module:resync=true) followed by a sync.
author:
  - tablesync developers (@tablesync)
extends_documentation_fragment:
  - tablesync.integration.connection
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - tablesync.integration.attributes
  - tablesync.integration.attributes.info_module
options:
  mappings:
    description: Names of the mappings to verify. All declared mappings when omitted.
    type: list
    elements: str
  max_reported_records:
    description: At most this many entries per kind of discrepancy and mapping are returned; the counts are always complete.
    type: int
    default: 100
  batch_size:
    description: Couplings and records read together.
    type: int
    default: 1000
  fail_on_discrepancies:
    description: Fail the task when any discrepancy is found (for a scheduled check that should alert).
    type: bool
    default: false
notes:
  - A key field of a coupled record is not compared, because a sync never renames a coupled record.
requirements:
  - SQLAlchemy >= 2.0
  - jsonschema
  - odata-query
"""

EXAMPLES = r"""
- name: Nightly drift report of the customer mapping
  tablesync.integration.sync_verify:
    mappings: [CUSTOMER]
  register: drift

- name: Show what drifted
  ansible.builtin.debug:
    msg: "{{ drift.mappings[0].counts }}"

- name: Rewrite the records that differ, from the mapping's source side, on the next sync
  tablesync.integration.coupling:
    mapping: CUSTOMER
    records: "{{ drift.mappings[0].differing }}"
    resync: true
"""

RETURN = r"""
mappings:
  description: One entry per mapping verified, in dependency order.
  returned: always
  type: list
  elements: dict
  contains:
    mapping:
      description: Mapping name.
      type: str
    couplings:
      description: Couplings checked.
      type: int
    in_agreement:
      description: Couplings whose two records exist and agree.
      type: int
    discrepancies:
      description: Total of RV(mappings[].counts).
      type: int
    counts:
      description:
        - differing (both records exist, some value disagrees), missing_local and missing_integration (the record of
          that side no longer exists), orphaned (both records are gone), uncoupled_local and uncoupled_integration.
      type: dict
      sample: {"differing": 2, "missing_local": 3, "missing_integration": 3, "orphaned": 0, "uncoupled_local": 0, "uncoupled_integration": 0}
    differing:
      description: Couplings whose values disagree, with C(fields) (field, side, expected, actual).
      type: list
      elements: dict
    missing_local:
      description: Couplings whose local record no longer exists (C(local_id), C(integration_id)).
      type: list
      elements: dict
    missing_integration:
      description: Couplings whose integration record no longer exists.
      type: list
      elements: dict
    orphaned:
      description: Couplings whose two records no longer exist.
      type: list
      elements: dict
    uncoupled_local:
      description: Local records not coupled (C(id)).
      type: list
      elements: dict
    uncoupled_integration:
      description: Integration records not coupled (C(id)).
      type: list
      elements: dict
    truncated:
      description: Whether some list holds fewer entries than its count.
      type: bool
discrepancies:
  description: Discrepancies of all mappings.
  returned: always
  type: int
  sample: 8
"""


from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        mappings={"type": "list", "elements": "str"},
        max_reported_records={"type": "int", "default": 100},
        batch_size={"type": "int", "default": 1000},
        fail_on_discrepancies={"type": "bool", "default": False},
    )
    module = IntegrationModule(argument_spec=spec, supports_check_mode=True, required_together=[("local", "integration")])
    p = module.params
    if p["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1")
    with engine_session(module, read_only=True) as (store, endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
        from ansible_collections.tablesync.integration.plugins.module_utils.mapping import open_tables
        from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
        from ansible_collections.tablesync.integration.plugins.module_utils.verify import verify_mapping

        selected = SyncRunner(store, endpoints, RunOptions.from_params(p, check_mode=True)).select(p["mappings"])
        bound = []
        for mapping in selected:  # validate every mapping before reading any records
            tables = open_tables(mapping, endpoints)
            bound.append((mapping, tables, mapping.bind(tables)))
        reports = [verify_mapping(m, t, f, store, batch_size=p["batch_size"], max_reported=p["max_reported_records"]).as_dict()
                   for m, t, f in bound]
    total = sum(r["discrepancies"] for r in reports)
    result = {"changed": False, "mappings": reports, "discrepancies": total}
    if total and p["fail_on_discrepancies"]:
        where = ", ".join("%s %d" % (r["mapping"], r["discrepancies"]) for r in reports if r["discrepancies"])
        module.fail_json(msg="%d discrepancies found: %s" % (total, where), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
