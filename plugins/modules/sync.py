#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sync
short_description: Synchronise integration table mappings between the ERP and the CRM
version_added: 0.1.0
description:
  - Runs one sync job per mapping, in the order their dependencies give.
  - O(mode=full) synchronises coupled records and creates and couples a destination record for every
    uncoupled source record, whatever O(ignore:synch_only_coupled_records) says; O(after_full_sync)
    then decides whether scheduled runs keep creating records.
  - O(mode=modified) synchronises only records changed since they were last synchronised, plus records
    that failed last time; uncoupled records are created only for mappings whose
    C(synch_only_coupled_records) is false.
  - With O(mappings) only the named mappings run (still in dependency order).
  - Reports C(changed) only when records were inserted, modified, deleted or coupled, or a mapping's setting changed.
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
    details: Returns the same counts, records and errors as a plan and writes nothing to the endpoints or the store.
  diff_mode:
    support: full
    details:
      - Lists per mapping what changed (or would change) and the changed records, each with the values of the fields
        it changes before and after (at most O(max_reported_records) records; long text is cut).
options:
  mode:
    description: Full synchronisation or modified records only.
    type: str
    choices: [full, modified]
    default: modified
  mappings:
    description: Names of the mappings to run. All declared mappings when omitted.
    type: list
    elements: str
  records:
    description:
      - Synchronise these records of the one mapping named in O(mappings) now, and nothing else (Business Central's
        "Synchronize Now" on chosen records). Each is a key or id of the local or the integration side.
      - A record is read from the side the mapping synchronises from and written even when it did not change; an
        uncoupled one is matched (the mapping's C(match_on)) or created and coupled. A record of the other side is
        synchronised through its coupled partner; an uncoupled one is refused, naming it, since the mapping's direction
        never reads that side. A bidirectional mapping synchronises each record from the side it is on.
      - The mapping's watermark does not move and no other record is read, whatever O(mode) says; dependencies are not run.
    type: list
    elements: str
  after_full_sync:
    description:
      - With O(mode=full), what the mappings' C(synch_only_coupled_records) setting is afterwards.
      - V(restore) keeps each mapping's previous setting; V(create_new_records) lets scheduled runs create
        records for uncoupled ones; V(only_coupled_records) makes them synchronise coupled records only.
    type: str
    choices: [restore, create_new_records, only_coupled_records]
    default: restore
  batch_size:
    description: Records read, written and committed together.
    type: int
    default: 1000
  read_ahead:
    description:
      - Plan the next pages of source records in a second process while this one writes the current page
        (reading, converting and fingerprinting overlap with the writes, on a second CPU core).
      - Applies to one-way mappings read from a SQL table whose lookups name other mappings, in real runs,
        from the second page on; other jobs run in one process whatever this says.
      - The second process only reads; every write stays in this one, in the same order.
    type: bool
    default: true
  max_reported_records:
    description: At most this many changed records and errors are returned.
    type: int
    default: 100
  tolerate_record_errors:
    description: Do not fail the task when some records failed (they are logged and retried next run).
    type: bool
    default: false
  skip_after_failures:
    description:
      - A record that fails with the same error in this many runs in a row is skipped, as Business Central marks
        it Skipped after its second identical failure. Later runs leave it alone and count it as C(skipped) (so
        a scheduled task stops failing on it); M(tablesync.integration.sync_job_info) lists it with its last error,
        and M(tablesync.integration.skipped_records) restores it once its cause is fixed.
      - A record held for an ambiguous match is never skipped (it resolves when the other side changes). V(0) never
        skips.
    type: int
    default: 2
  watermark_overlap:
    description:
      - A modified-records run keeps the newest modified-on value it read as the mapping's watermark, and the next
        run reads the records modified this many seconds before it or later. A record whose transaction stamped it
        before a run read and committed after it is so read by the next run.
      - Records read again in this overlap and found unchanged are neither written nor counted.
      - Modified-on values later than the run's start (clock skew, far-future placeholders such as 9999-12-31) do not
        advance the watermark; such records are read again by each run and found unchanged.
    type: int
    default: 60
  partition:
    description:
      - Synchronise one partition of each mapping's source records, so that several hosts share one sync (see the
        C(distributed_sync.yml) playbook). A record is in partition O(partition.index) of
        O(partition.count) when a stable hash of its key falls there, the same on every host and in every run.
      - Partitions write disjoint records and couplings and keep their own watermarks, job rows and locks, so the
        partitions of one mapping run side by side while two runs of the same partition, or a run of the whole
        mapping, wait for each other. Every partition of a sync must use the same O(partition.count) and a
        PostgreSQL store that every host reaches (a SQLite store serves partitions on one host).
      - Partitions of another O(partition.count) of the same mapping hold some of the same records, so a run waits
        until the runs of another count have finished (up to O(lock_timeout)).
      - A record that matches (C(match_on)) a record another partition coupled first is held as an ambiguous match.
      - A bidirectional mapping is not split; partition V(0) synchronises it whole and the others leave it out.
    type: dict
    suboptions:
      index:
        description: This host's partition, from V(0) to O(partition.count) minus 1.
        type: int
        required: true
      count:
        description: How many partitions the sync is split into.
        type: int
        required: true
  run_group:
    description:
      - An id the partitions of one distributed sync share, recorded with each one's run;
        M(tablesync.integration.sync_job_info) adds up their jobs by it (its O(tablesync.integration.sync_job_info#module:run_group)).
    type: str
  rebind:
    description:
      - The store keeps the couplings of one pair of endpoints, and the first run records that pair's types
        and addresses. A run against another pair fails before writing anything, because couplings of one
        environment must never be applied to another.
      - Set V(true) only when the same databases moved to a new address; the store then records the new pair.
    type: bool
    default: false
notes:
  - Works as an C(async) task; while it runs, M(tablesync.integration.sync_job_info) shows the records each job has
    processed so far, since the counts are committed batch by batch.
  - Check mode waits for the mapping locks like a run does, so a plan never reads a mapping halfway through another run.
  - The mappings of a run are locked from before its first job to its end; see O(lock_timeout).
requirements:
  - SQLAlchemy >= 2.0
  - jsonschema
  - odata-query
"""

EXAMPLES = r"""
- name: Full synchronisation of every mapping, then let scheduled runs create records
  tablesync.integration.sync:
    mode: full
    after_full_sync: create_new_records

- name: Re-run one mapping that drifted
  tablesync.integration.sync:
    mode: modified
    mappings: [CUSTOMER]

# The connections can be set once for a whole play, in the play's module_defaults:
#   module_defaults:
#     group/tablesync.integration.integration: {store: ..., local: ..., integration: ...}
- name: Synchronise modified records, with the connections given in the task
  tablesync.integration.sync:
    store: /var/lib/tablesync/store.sqlite
    local: {type: sqlite, path: /srv/erp.sqlite}
    integration: {type: sqlite, path: /srv/crm.sqlite}

- name: A long full synchronisation as an async task
  tablesync.integration.sync:
    mode: full
    batch_size: 500
  async: 3600
  poll: 30
"""

RETURN = r"""
run_id:
  description: Id of the run in the job log (null in check mode, which logs nothing).
  returned: always
  type: str
  sample: 2f0c1f5e-8c59-4a53-9d7e-3f1c2b4f8a11
mode:
  description: The synchronisation mode that ran.
  returned: always
  type: str
  sample: full
status:
  description: V(success), V(partial) (some records failed) or V(failed) for the run as a whole.
  returned: always
  type: str
  sample: success
jobs:
  description: One entry per sync job, in the order they ran.
  returned: always
  type: list
  elements: dict
  contains:
    mapping:
      description: Mapping name.
      type: str
      sample: CUSTOMER
    direction:
      description: Mapping direction.
      type: str
      sample: to_integration
    mode:
      description: V(full) or V(modified).
      type: str
    job_id:
      description: Id of the job in the job log (null in check mode).
      type: int
    status:
      description: V(success), V(partial) (some records failed) or V(failed).
      type: str
    started_at:
      description: When the job started (UTC).
      type: str
      sample: "2026-11-25 14:03:07.512344"
    ended_at:
      description: When the job ended (UTC).
      type: str
    duration:
      description: Seconds the job took.
      type: float
      sample: 0.42
    counts:
      description:
        - Records read, inserted, modified, deleted, unchanged, skipped, failed, coupled and uncoupled (couplings removed
          by a deletion conflict); for a bidirectional mapping, both directions added up.
      type: dict
      sample: {"read": 2000, "inserted": 2000, "modified": 0, "deleted": 0, "unchanged": 0, "skipped": 0, "failed": 0, "coupled": 0,
               "uncoupled": 0}
    directions:
      description:
        - Per direction the job synchronised (V(to_integration), V(from_integration); both for a bidirectional mapping),
          its job row in the job log (C(job_id), null in check mode) and its own C(counts).
      type: dict
      sample: {"to_integration": {"job_id": 41, "counts": {"read": 3, "modified": 3}}, "from_integration": {"job_id": 42,
               "counts": {"read": 1, "modified": 1}}}
    changed:
      description: Whether the job changed records, couplings or the mapping's setting.
      type: bool
    message:
      description: Why the job failed as a whole, when it did.
      type: str
    matching:
      description:
        - With O(mode=full) and a mapping that declares C(match_on), what matching did before the job created
          anything, as the M(tablesync.integration.coupling) module reports it with O(tablesync.integration.coupling#module:match=true)
          (counts, pairs, ambiguous, unmatched); null otherwise.
      type: dict
    throttled:
      description: Requests of the job that a web service refused with 429 (service protection); 0 for databases.
      type: int
    throttle_wait:
      description: Seconds the job's requests waited for the C(Retry-After) of those 429 answers, and for a service protection
        window that the client counted as spent.
      type: float
totals:
  description: The counts of all jobs added up.
  returned: always
  type: dict
  sample: {"inserted": 2000, "modified": 0, "unchanged": 0, "failed": 0}
records:
  description: Changed records, at most O(max_reported_records).
  returned: always
  type: list
  elements: dict
  contains:
    mapping:
      description: Mapping name.
      type: str
    action:
      description: What happened to the record, for example V(inserted), V(modified), V(deleted) or V(coupled).
      type: str
    local_id:
      description: Id of the record on the local side.
      type: str
    integration_id:
      description: Id of the record on the integration side.
      type: str
    changes:
      description:
        - With C(--diff), the fields an update or create writes, as C(side.field), each with its value C(before) (null for
          a created record) and C(after).
      type: dict
      returned: with --diff, for inserted and modified records
      sample: {"integration.address1_city": {"before": "Oslo", "after": "Bergen"}}
records_truncated:
  description: Whether more records changed than RV(records) lists.
  returned: always
  type: bool
errors:
  description: Records that failed, at most O(max_reported_records).
  returned: always
  type: list
  elements: dict
  contains:
    mapping:
      description: Mapping name.
      type: str
    side:
      description: Side of the record that failed, V(local) or V(integration).
      type: str
    record_id:
      description: Id of the record that failed.
      type: str
    message:
      description: Why it failed.
      type: str
synch_only_coupled_records:
  description: The setting each mapping ends the run with.
  returned: always
  type: dict
  sample: {"CUSTOMER": true}
"""

import json

from ansible_collections.tablesync.integration.plugins.module_utils.job_options import AFTER_FULL_SYNC, MODES, RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session
from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition


def diff_text(jobs: list, records: list, truncated: bool) -> str:
    """What the run changed, per mapping and per record, for --diff."""
    lines = []
    for job in jobs:
        counts = job["counts"]
        changes = ", ".join("%d %s" % (counts[key], key) for key in ("inserted", "modified", "deleted", "coupled") if counts.get(key))
        if changes:
            lines.append("%s (%s): %s" % (job["mapping"], job["direction"], changes))
    for rec in records:
        lines.append("  %s %s: local %s, integration %s" % (rec["action"], rec["mapping"], rec.get("local_id"), rec.get("integration_id")))
        for name, change in sorted((rec.get("changes") or {}).items()):
            lines.append("      %s: %s -> %s" % (name, json.dumps(change["before"]), json.dumps(change["after"])))
    if truncated:
        lines.append("  ... and more (raise max_reported_records to list them)")
    return "\n".join(lines) + "\n"


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        mode={"type": "str", "default": "modified", "choices": list(MODES)},
        mappings={"type": "list", "elements": "str"},
        records={"type": "list", "elements": "str"},
        after_full_sync={"type": "str", "default": "restore", "choices": list(AFTER_FULL_SYNC)},
        batch_size={"type": "int", "default": 1000},
        read_ahead={"type": "bool", "default": True},
        max_reported_records={"type": "int", "default": 100},
        tolerate_record_errors={"type": "bool", "default": False},
        skip_after_failures={"type": "int", "default": 2},
        watermark_overlap={"type": "int", "default": 60},
        rebind={"type": "bool", "default": False},
        partition={"type": "dict", "options": {"index": {"type": "int", "required": True}, "count": {"type": "int", "required": True}}},
        run_group={"type": "str"},
    )
    module = IntegrationModule(argument_spec=spec, supports_check_mode=True, required_together=[("local", "integration")])
    p = module.params
    if p["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1")
    if p["skip_after_failures"] < 0:
        module.fail_json(msg="skip_after_failures must be 0 (never skip) or more")
    if p["partition"] is not None:
        try:
            Partition(p["partition"]["index"], p["partition"]["count"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))
    with engine_session(module, read_only=module.check_mode) as (store, endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner

        runner = SyncRunner(store, endpoints, RunOptions.from_params(p, check_mode=module.check_mode, diff=module._diff))
        run = runner.run(p["mode"], p["mappings"], p["after_full_sync"], records=p["records"])
    records, truncated = run.records(p["max_reported_records"])
    jobs = [j.as_dict() for j in run.jobs]
    totals: dict = {}
    for job in jobs:
        for key, value in job["counts"].items():
            totals[key] = totals.get(key, 0) + value
    result = {
        "changed": run.changed,
        "run_id": run.run_id,
        "mode": run.mode,
        "status": run.status,
        "jobs": jobs,
        "totals": totals,
        "records": records,
        "records_truncated": truncated,
        "errors": run.errors(p["max_reported_records"]),
        "synch_only_coupled_records": run.synch_only_coupled_records,
    }
    if module._diff and run.changed:
        result["diff"] = {"prepared": diff_text(jobs, records, truncated)}
    if run.failed_records and not p["tolerate_record_errors"]:
        module.fail_json(msg="%d record(s) failed to synchronise; see errors (they are retried on the next run)" % run.failed_records, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
