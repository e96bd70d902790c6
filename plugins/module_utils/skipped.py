# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Skipped records: records a sync leaves alone after they failed the same way run after run, and their restoring.

A failed record stays on the mapping's retry list; each run it fails again with the same
message counts one more attempt, and at the sync's ``skip_after_failures`` attempts it is
skipped (Store.commit_batch), as Business Central marks such a record Skipped. Restoring
puts it back on the retry list, optionally without its coupling, so the next run of any mode
synchronises it again (or creates and couples it anew).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import SIDES
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store


@dataclass
class RestorePlan:
    """What restoring changes: the skipped records restored (as the store lists them) and the couplings removed."""

    mapping: str
    records: list[dict[str, Any]] = field(default_factory=list)
    uncouple: list[tuple[str, str]] = field(default_factory=list)  # (local id, integration id)

    @property
    def changed(self) -> bool:
        return bool(self.records or self.uncouple)

    def diff(self) -> dict[str, Any]:
        before = ["%s %s: %s" % (r["side"], r["record_id"], r["message"]) for r in self.records]
        return {"before": {"skipped": before, "couplings": ["%s <-> %s" % pair for pair in self.uncouple]},
                "after": {"skipped": [], "couplings": []}, "before_header": "skipped records of %s" % self.mapping}


def plan_restore(store: Store, mapping: str, ids: Sequence[str] | None, uncouple: bool) -> RestorePlan:
    """The skipped records of ``mapping`` to restore: those whose id (on either side) is in ``ids``, or all of them."""
    plan = RestorePlan(mapping)
    wanted = None if ids is None else set(ids)
    plan.records = [r for r in store.skipped_records([mapping]) if wanted is None or r["record_id"] in wanted]
    if uncouple:
        for side in SIDES:
            found = store.couplings_for(mapping, side, [r["record_id"] for r in plan.records if r["side"] == side])
            plan.uncouple.extend(sorted({(cp.local_id, cp.integration_id) for cp in found.values()} - set(plan.uncouple)))
    return plan


def apply_restore(store: Store, plan: RestorePlan) -> None:
    if plan.uncouple:
        store.change_couplings(plan.mapping, remove=plan.uncouple)
    store.restore_skipped(plan.mapping, [(r["side"], r["record_id"]) for r in plan.records])
