#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: sync_job_info
short_description: Read the sync job log and its errors
version_added: 0.1.0
description:
  - Lists sync jobs with their counts, newest last, filtered by run, mapping, status and time, and the
    errors of each job (one per failed record).
  - Jobs still running show the records processed so far; the counts are committed batch by batch.
  - Never changes anything.
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
  run_id:
    description: Only the jobs of this run.
    type: str
  run_group:
    description:
      - Only the jobs of the runs that share this group, the O(tablesync.integration.sync#module:run_group) the
        partitions of a distributed sync were given.
    type: str
  mappings:
    description: Only the jobs of these mappings.
    type: list
    elements: str
  status:
    description: Only jobs with one of these statuses.
    type: list
    elements: str
    choices: [running, success, partial, failed, interrupted]
  since:
    description: Only jobs started at or after this time (ISO 8601, UTC).
    type: str
  until:
    description: Only jobs started at or before this time (ISO 8601, UTC).
    type: str
  limit:
    description: At most this many jobs (the newest).
    type: int
    default: 100
  include_errors:
    description: Return the errors of each job.
    type: bool
    default: true
  include_skipped:
    description: Return the skipped records (of O(mappings), or of every mapping) with their last error.
    type: bool
    default: true
requirements:
  - SQLAlchemy >= 2.0
"""

EXAMPLES = r"""
- name: Jobs of the last run that had failed records
  tablesync.integration.sync_job_info:
    run_id: "{{ sync_result.run_id }}"
    status: [partial, failed]
  register: failed_jobs

- name: Everything CUSTOMER did since Monday
  tablesync.integration.sync_job_info:
    mappings: [CUSTOMER]
    since: "2026-11-23T00:00:00"
"""

RETURN = r"""
totals:
  description:
    - The jobs returned, added up per run and mapping (and direction). The partitions of a distributed sync count as
      one run, the run group they share; every other run is its own.
  returned: always
  type: list
  elements: dict
  contains:
    run:
      description: The run group, or the run id of a run without one.
      type: str
    mapping:
      description: Mapping name.
      type: str
    direction:
      description: V(to_integration) or V(from_integration).
      type: str
    jobs:
      description: How many jobs were added up (one per partition and run of it).
      type: int
    partitions:
      description: The partitions added up, as V(index/count), each once; empty for runs of the whole mapping.
      type: list
      elements: str
    complete:
      description: Whether a job of the whole mapping, or of every partition of its count, is among them.
      type: bool
    status:
      description: The worst status of those jobs (V(running) first, then V(failed), V(interrupted), V(partial)).
      type: str
    started_at:
      description: When the first of them started.
      type: str
    ended_at:
      description: When the last of them ended; null while one runs.
      type: str
    counts:
      description: Their counts added up.
      type: dict
jobs:
  description: Sync jobs, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Job id.
      type: int
    run_id:
      description: Run the job belongs to.
      type: str
    group_id:
      description: The run group of the job's run (O(run_group)), if it has one.
      type: str
    partition:
      description: The partition the job synchronised, as V(index/count); null for the whole mapping.
      type: str
    mapping:
      description: Mapping name.
      type: str
    mode:
      description: V(full) or V(modified).
      type: str
    direction:
      description:
        - Direction the job synchronised, V(to_integration) or V(from_integration); a bidirectional mapping's run writes
          one job per direction, each with its own counts, as the seed system does.
      type: str
    status:
      description:
        - V(running), V(success), V(partial) or V(failed); V(interrupted) when its process ended without finishing
          it (killed, or its host went down), found by the next run of the store. Its counts are those last committed.
      type: str
    started_at:
      description: When the job started (UTC).
      type: str
      sample: "2026-11-25 14:03:07.512344"
    ended_at:
      description: When the job ended (UTC); null while it runs.
      type: str
    message:
      description: Why the job failed as a whole, when it did.
      type: str
    counts:
      description:
        - Records read, inserted, modified, deleted, unchanged, skipped, failed, coupled and uncoupled; for a running job,
          so far.
      type: dict
    total:
      description: Records the job expects to read (counted by its source when it started); null when the source cannot count.
      type: int
    progress:
      description:
        - For a running job, how far it is; the figures that need C(total) are null when it is unknown.
      type: dict
      returned: when the job is running
      contains:
        read:
          description: Records read so far (committed batch by batch).
          type: int
        total:
          description: Records it expects to read.
          type: int
        percentage:
          description: C(read) of C(total), in percent.
          type: float
        rate:
          description: Records read a second since the job started.
          type: float
        eta_seconds:
          description: Seconds left at that rate.
          type: int
        waiting_mappings:
          description: Mappings of the job's run that have not started yet, in the order they will run.
          type: list
          elements: str
    errors:
      description: One entry per failed record (side, record_id, message), when O(include_errors) is true.
      type: list
      elements: dict
skipped_records:
  description:
    - Records skipped after failing the same way in O(tablesync.integration.sync#module:skip_after_failures) runs in a row,
      when O(include_skipped) is true; M(tablesync.integration.skipped_records) restores them.
  returned: always
  type: list
  elements: dict
  contains:
    mapping:
      description: Mapping name.
      type: str
    side:
      description: Side the record failed on.
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
    failed_at:
      description: When it last failed (UTC).
      type: str
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.tablesync.integration.plugins.module_utils.job_totals import mapping_totals
from ansible_collections.tablesync.integration.plugins.module_utils.module_support import IntegrationModule, common_argument_spec, engine_session


def parse_time(module: AnsibleModule, name: str) -> datetime.datetime | None:
    value = module.params[name]
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        module.fail_json(msg="%s: %r is not an ISO 8601 date-time" % (name, value))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        run_id={"type": "str"},
        run_group={"type": "str"},
        mappings={"type": "list", "elements": "str"},
        status={"type": "list", "elements": "str", "choices": ["running", "success", "partial", "failed", "interrupted"]},
        since={"type": "str"},
        until={"type": "str"},
        limit={"type": "int", "default": 100},
        include_errors={"type": "bool", "default": True},
        include_skipped={"type": "bool", "default": True},
    )
    module = IntegrationModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    since, until = parse_time(module, "since"), parse_time(module, "until")
    with engine_session(module, sides=(), read_only=True, existing_store=True) as (store, _endpoints):
        from ansible_collections.tablesync.integration.plugins.module_utils.counters import COUNTERS
        from ansible_collections.tablesync.integration.plugins.module_utils.progress import running_progress

        rows = store.jobs(run_id=p["run_id"], group_id=p["run_group"], mappings=p["mappings"], status=p["status"], since=since, until=until, limit=p["limit"])
        progress = running_progress(store, rows)
        errors = store.job_errors([r["id"] for r in rows]) if p["include_errors"] else []
        skipped = store.skipped_records(p["mappings"]) if p["include_skipped"] and store.exists else []
    by_job: dict = {}
    for err in errors:
        by_job.setdefault(err["job_id"], []).append(
            {"side": err["side"], "record_id": err["record_id"], "message": err["message"], "created_at": err["created_at"].isoformat(sep=" ")}
        )
    jobs = []
    for r in rows:
        job = {k: v for k, v in r.items() if k not in COUNTERS}
        for key in ("started_at", "ended_at"):
            job[key] = job[key].isoformat(sep=" ") if job[key] else None
        job["counts"] = {c: r[c] for c in COUNTERS}
        if r["id"] in progress:
            job["progress"] = progress[r["id"]]
        if p["include_errors"]:
            job["errors"] = by_job.get(r["id"], [])
        jobs.append(job)
    skipped_records = [{"mapping": r["mapping"], "side": r["side"], "record_id": r["record_id"], "message": r["message"],
                        "attempts": r["attempts"], "failed_at": r["failed_at"].isoformat(sep=" ")} for r in skipped]
    module.exit_json(changed=False, jobs=jobs, totals=mapping_totals(jobs), skipped_records=skipped_records)


if __name__ == "__main__":
    main()
