#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: coupling
short_description: Couple or uncouple records of an integration table mapping, given or by matching fields
version_added: 0.1.0
description:
  - A coupling pairs a local (ERP) record with an integration (CRM) record under one mapping. A record is
    coupled to at most one record per mapping.
  - With O(records) (or O(local_id) and O(integration_id)) the given pairs are coupled (O(state=present)) or
    uncoupled (O(state=absent)). Coupling a record already coupled to a different partner is an error unless
    O(force=true); coupling a record that does not exist is an error naming it.
  - With O(match=true) the uncoupled records of both sides are paired on match fields (O(match_on), or the
    mapping's declared C(match_on)); values compare exactly unless a match entry sets C(ignore_case) or C(trim).
    A record whose key is held by exactly one uncoupled record on the other side is coupled to it. Keys held
    by more than one record on either side are ambiguous; they are reported and left uncoupled, never guessed.
    O(unmatched) decides what happens to the rest.
  - A new coupling has no fingerprints yet, so the next sync (of any mode) writes the source record over its
    partner in the mapping's direction and the two agree; for a bidirectional mapping its C(initial_direction)
    decides which side that is.
  - Idempotent. With C(--diff) the task shows the couplings of the given records before and after.
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
    details: Reports the couplings that would be added, removed or reset; writes nothing.
  diff_mode:
    support: full
    details: The couplings before and after.
options:
  mapping:
    description: Name of the mapping the couplings belong to.
    type: str
    required: true
  state:
    description:
      - V(present) couples the given records; V(absent) removes their couplings.
      - With V(absent) a record is named by its local id, its integration id or both; a record that is not
        coupled (or not to the partner given) is left alone, and records that no longer exist can be uncoupled.
    type: str
    choices: [present, absent]
    default: present
  records:
    description:
      - The records to couple or uncouple, each a dictionary with C(local_id) and C(integration_id) (the key values
        of the two records, as text).
      - Other keys are ignored, so the entries M(tablesync.integration.sync_verify) reports can be passed as they are.
    type: list
    elements: dict
  local_id:
    description: Id of one local record (instead of O(records)).
    type: str
  integration_id:
    description: Id of one integration record (instead of O(records)).
    type: str
  force:
    description: Re-couple records already coupled to a different partner; their other couplings are removed.
    type: bool
    default: false
  resync:
    description:
      - Clear the fingerprints of the given pairs even when they are already coupled, so the next sync writes
        them again in the mapping's direction. Use it to repair differences M(tablesync.integration.sync_verify)
        reports that a modified-records sync does not see (a record edited on its destination side).
    type: bool
    default: false
  match:
    description:
      - Couple the mapping's uncoupled records by their match fields instead of given records.
      - The job log (M(tablesync.integration.sync_job_info)) keeps the matching as a job of mode C(match) with the pairs
        coupled, and each ambiguous record and each unmatched one reported as a failed record with its reason.
    type: bool
    default: false
  match_on:
    description:
      - With O(match=true), the match fields, instead of the mapping's declared C(match_on).
      - Each entry is a field name of one of the mapping's field mappings (either side), or a dictionary with
        C(field) (local), C(integration_field), and the normalisation options C(ignore_case) and C(trim)
        (both default V(false), so values compare exactly; with V(true) letter case or surrounding spaces are
        ignored, and values that differ only in them hold the same key).
    type: list
    elements: raw
  unmatched:
    description:
      - With O(match=true), what happens to uncoupled records that match nothing.
      - V(leave) leaves them uncoupled. V(create) creates and couples a partner for each in the mapping's
        direction (both ways for a bidirectional mapping), as a logged sync job; ambiguous records are never created,
        they fail with an C(ambiguous match) error (in RV(errors) and the job log), so later syncs retry them.
    type: str
    choices: [leave, create]
    default: leave
  max_reported_pairs:
    description: At most this many pairs, ambiguous keys and unmatched records are returned.
    type: int
    default: 100
  batch_size:
    description: Records read and couplings committed together.
    type: int
    default: 1000
notes:
  - Matching reads each side's uncoupled records once and indexes them on the normalised key; memory grows
    with the number of uncoupled records, not with the product of both sides.
requirements:
  - SQLAlchemy >= 2.0
  - jsonschema
  - odata-query
"""

EXAMPLES = r"""
- name: Couple a customer to the account it already has in the CRM
  tablesync.integration.coupling:
    mapping: CUSTOMER
    local_id: C00010
    integration_id: 4b1f0e52-8c3a-4a33-9d41-2f6f1c0d7e21

- name: Couple several records at once
  tablesync.integration.coupling:
    mapping: CUSTOMER
    records:
      - {local_id: C00011, integration_id: 0c2bd0c6-3d5e-4c3e-8a10-5a4f0e5b3c11}
      - {local_id: C00012, integration_id: 9a7e8a4b-0f6c-4a8e-b1d3-6c2f1e0a9b22}

- name: Remove a coupling by the CRM id
  tablesync.integration.coupling:
    mapping: CUSTOMER
    integration_id: 4b1f0e52-8c3a-4a33-9d41-2f6f1c0d7e21
    state: absent

- name: Couple customers and accounts that share an e-mail address, ignoring case and spaces
  tablesync.integration.coupling:
    mapping: CUSTOMER
    match: true
    match_on: [email]
  register: matched

- name: Couple on number and name (exact case), and create what matches nothing
  tablesync.integration.coupling:
    mapping: ITEM-PRODUCT
    match: true
    match_on:
      - {field: "no", integration_field: productnumber}
      - {field: description, integration_field: name, ignore_case: false}
    unmatched: create
"""

RETURN = r"""
mapping:
  description: The mapping name.
  returned: always
  type: str
  sample: CUSTOMER
coupled:
  description: Couplings added.
  returned: always
  type: int
  sample: 2
uncoupled:
  description: Couplings removed (including those O(force) replaced).
  returned: always
  type: int
  sample: 0
resynced:
  description: Couplings whose fingerprints were cleared (O(resync)).
  returned: always
  type: int
  sample: 0
couplings:
  description: With given records, their couplings after the task, as C(local_id) and C(integration_id).
  returned: always
  type: list
  elements: dict
  sample: [{"local_id": "C00010", "integration_id": "4b1f0e52-8c3a-4a33-9d41-2f6f1c0d7e21"}]
counts:
  description:
    - With O(match=true), coupled (pairs), ambiguous (keys), ambiguous_records, unmatched, unmatched_local,
      unmatched_integration and created (records created with O(unmatched=create)).
  returned: when O(match=true)
  type: dict
  sample: {"coupled": 150, "ambiguous": 5, "ambiguous_records": 15, "unmatched": 100, "created": 0}
pairs:
  description: With O(match=true), the pairs coupled, at most O(max_reported_pairs).
  returned: when O(match=true)
  type: list
  elements: dict
ambiguous:
  description: With O(match=true), ambiguous keys with the ids of the records holding them on each side; left uncoupled.
  returned: when O(match=true)
  type: list
  elements: dict
  sample: [{"key": ["ann@example.com"], "local_ids": ["C00007"], "integration_ids": ["a1", "b2"]}]
unmatched:
  description: With O(match=true), uncoupled records that match nothing, as C(side) and C(id).
  returned: when O(match=true)
  type: list
  elements: dict
job:
  description: With O(unmatched=create), the sync job that created the records (counts as in the sync module).
  returned: when O(unmatched=create)
  type: dict
errors:
  description:
    - With O(unmatched=create), records that could not be created, those of ambiguous keys included (their
      message starts with C(ambiguous match)); the task then fails.
  returned: when O(unmatched=create)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def given_records(params: dict) -> list[dict]:
    if params["records"] is not None:
        return [{"local_id": _text(r.get("local_id")), "integration_id": _text(r.get("integration_id"))} for r in params["records"]]
    if params["local_id"] is not None or params["integration_id"] is not None:
        return [{"local_id": params["local_id"], "integration_id": params["integration_id"]}]
    return []


def explicit(module: AnsibleModule, store, mapping, tables) -> dict:
    from ansible_collections.tablesync.integration.plugins.module_utils.coupling import apply_plan, plan_couple, plan_uncouple

    p = module.params
    records = given_records(p)
    if p["state"] == "present":
        incomplete = [r for r in records if not r["local_id"] or not r["integration_id"]]
        if incomplete:
            module.fail_json(msg="mapping %s: coupling needs both local_id and integration_id (got %s)" % (mapping.name, incomplete[0]))
        plan = plan_couple(mapping, tables, store, [(r["local_id"], r["integration_id"]) for r in records], p["force"], p["resync"])
    else:
        missing = [r for r in records if not r["local_id"] and not r["integration_id"]]
        if missing:
            module.fail_json(msg="mapping %s: uncoupling needs local_id or integration_id for every record" % mapping.name)
        plan = plan_uncouple(mapping, store, records)
    if plan.changed and not module.check_mode:
        apply_plan(store, plan)
    result = {
        "changed": plan.changed,
        "coupled": len(plan.add),
        "uncoupled": len(plan.remove),
        "resynced": len(plan.reset),
        "couplings": [{"local_id": lid, "integration_id": iid} for lid, iid in sorted(plan.after())][:p["max_reported_pairs"]],
    }
    if module._diff:
        result["diff"] = plan.diff()
    return result


def matched(module: AnsibleModule, store, mapping, tables, flows) -> dict:
    from ansible_collections.tablesync.integration.plugins.module_utils.couple_uncoupled import create_unmatched
    from ansible_collections.tablesync.integration.plugins.module_utils.matching import ForeseenCouplings, couple_matches, match_mapping

    p = module.params
    cap = p["max_reported_pairs"]
    found = match_mapping(mapping, tables, store, match_on=p["match_on"], batch_size=p["batch_size"], max_reported=cap)
    if not module.check_mode:
        if found.pairs:
            couple_matches(store, mapping.name, found.pairs, p["batch_size"])
        logged = found.logged()
        store.record_job(mapping.name, "match", mapping.direction, {"coupled": len(found.pairs), "failed": len(logged)}, logged)
    result = dict(found.report(cap))
    result.update(coupled=len(found.pairs), uncoupled=0, resynced=0, couplings=[])
    result["counts"]["created"] = 0
    if p["unmatched"] == "create":
        job_store = ForeseenCouplings(store, mapping.name, found.pairs) if module.check_mode else store
        job = create_unmatched(mapping, tables, flows, job_store, found.held, dry_run=module.check_mode,
                               batch_size=p["batch_size"], max_records=cap)
        result["counts"]["created"] = job.counts["inserted"]
        result["job"] = job.as_dict()
        result["errors"] = job.errors
    result["changed"] = bool(found.pairs or result["counts"]["created"])
    if module._diff:
        result["diff"] = {"before": {"couplings": []},
                          "after": {"couplings": ["%s <-> %s" % pair for pair in found.pairs[:cap]]},
                          "after_header": "new couplings of %s" % mapping.name}
    return result


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        mapping={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        records={"type": "list", "elements": "dict"},
        local_id={"type": "str"},
        integration_id={"type": "str"},
        force={"type": "bool", "default": False},
        resync={"type": "bool", "default": False},
        match={"type": "bool", "default": False},
        match_on={"type": "list", "elements": "raw"},
        unmatched={"type": "str", "default": "leave", "choices": ["leave", "create"]},
        max_reported_pairs={"type": "int", "default": 100},
        batch_size={"type": "int", "default": 1000},
    )
    module = IntegrationModule(
        argument_spec=spec,
        supports_check_mode=True,
        mutually_exclusive=[("records", "local_id"), ("records", "integration_id")],
        required_together=[("local", "integration")],
    )
    p = module.params
    if p["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1")
    if p["match"] == bool(given_records(p)) and not (p["records"] == [] and not p["match"]):
        module.fail_json(msg="give either records (or local_id/integration_id) or match=true")
    if p["match"] and p["state"] == "absent":
        module.fail_json(msg="match applies to state=present only")
    if p["match"] is False and (p["match_on"] or p["unmatched"] != "leave"):
        module.fail_json(msg="match_on and unmatched apply with match=true only")
    with engine_session(module, read_only=module.check_mode) as (store, endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables

        definition = store.get_mapping(p["mapping"])
        if definition is None:
            module.fail_json(msg="mapping %s is not declared in the store %s" % (p["mapping"], store.address))
        mapping = Mapping.from_definition(definition)
        tables = open_tables(mapping, endpoints)
        flows = mapping.bind(tables)
        result = matched(module, store, mapping, tables, flows) if p["match"] else explicit(module, store, mapping, tables)
    result["mapping"] = p["mapping"]
    if result.get("errors"):
        module.fail_json(msg="%d record(s) could not be created; see errors" % len(result["errors"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
