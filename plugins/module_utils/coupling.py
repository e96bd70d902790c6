# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Couplings as a first-class object: couple and uncouple given records, idempotently.

A new coupling has no fingerprints. The next sync therefore sees its source record as
changed and writes it in the mapping's direction, so the two records agree; for a
bidirectional mapping ``initial_direction`` decides which side wins that first sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import RecordError

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling
    from ansible_collections.tablesync.integration.plugins.module_utils.write_policy import WritePolicy

INITIAL_SOURCE = {"to_integration": "local", "from_integration": "integration"}


def held(mapping: Mapping, policy: WritePolicy, src: str, cp: Coupling | None) -> bool:
    """Whether a sync flow leaves a source record (coupled by ``cp``, if it is) alone (counted as skipped).

    - a create-only job (``policy.updates`` False) leaves coupled records alone;
    - a bidirectional pair coupled but never synchronised (no fingerprints) is written
      only from the side ``initial_direction`` names (default: to_integration), so the
      first sync of a newly coupled pair makes the two records agree one way.
    """
    if cp is None:
        return False  # why: records matching found ambiguous are failed, not skipped (page_matching.match_before_create)
    if not policy.updates:
        return True
    if mapping.direction == "bidirectional" and cp.local_fp is None and cp.integration_fp is None:
        return INITIAL_SOURCE[mapping.initial_direction or "to_integration"] != src
    return False


@dataclass
class CouplingPlan:
    """What a coupling task changes: couplings removed and added, as (local id, integration id)."""

    mapping: str
    add: list[tuple[str, str]] = field(default_factory=list)
    remove: list[tuple[str, str]] = field(default_factory=list)
    reset: list[tuple[str, str]] = field(default_factory=list)  # kept, fingerprints cleared (resync)
    before: set[tuple[str, str]] = field(default_factory=set)

    @property
    def changed(self) -> bool:
        return bool(self.add or self.remove or self.reset)

    def after(self) -> set[tuple[str, str]]:
        return (self.before - set(self.remove)) | set(self.add)

    def diff(self) -> dict[str, Any]:
        reset = set(self.reset)

        def lines(pairs: set[tuple[str, str]], marked: set[tuple[str, str]]) -> list[str]:
            return ["%s <-> %s%s" % (p[0], p[1], " (to resynchronise)" if p in marked else "") for p in sorted(pairs)]

        return {"before": {"couplings": lines(self.before, set())}, "after": {"couplings": lines(self.after(), reset)},
                "before_header": "couplings of %s" % self.mapping, "after_header": "couplings of %s" % self.mapping}


def _existing(store: Any, mapping: str, side: str, ids: Sequence[str]) -> dict[str, Coupling]:
    return store.couplings_for(mapping, side, list(ids)) if store.exists and ids else {}


def _check_exist(mapping: Mapping, tables: dict[str, Any], side: str, ids: Sequence[str]) -> None:
    table = tables[side]
    try:
        found = {str(r[0]) for r in table.read_by_ids(list(ids), [mapping.key(side)])}
    except (TypeError, ValueError):  # why: an id that cannot be a key of this table does not exist
        found = set()
        for rid in ids:
            try:
                found.update(str(r[0]) for r in table.read_by_ids([rid], [mapping.key(side)]))
            except (TypeError, ValueError):
                pass
    missing = [rid for rid in ids if rid not in found]
    if missing:
        raise RecordError("mapping %s: %s record%s %s %s not exist (table %s)" % (
            mapping.name, side, "s" if len(missing) > 1 else "", ", ".join(missing), "do" if len(missing) > 1 else "does", table.info.name))


def plan_couple(mapping: Mapping, tables: dict[str, Any], store: Any, pairs: Sequence[tuple[str, str]], force: bool = False,
                resync: bool = False) -> CouplingPlan:
    """Plan coupling the given pairs; raises RecordError before anything is written.

    Errors: a record that does not exist, a record given twice with different partners,
    or (without ``force``) a record already coupled to a different partner. With ``force``
    the other coupling is removed first. With ``resync`` a pair already coupled loses its
    fingerprints, so the next sync rewrites it in the mapping's direction.
    """
    plan = CouplingPlan(mapping.name)
    wanted: dict[str, str] = {}
    reverse: dict[str, str] = {}
    for lid, iid in pairs:
        if wanted.setdefault(lid, iid) != iid:
            raise RecordError("mapping %s: local record %s is given twice, with %s and %s" % (mapping.name, lid, wanted[lid], iid))
        if reverse.setdefault(iid, lid) != lid:
            raise RecordError("mapping %s: integration record %s is given twice, with %s and %s" % (mapping.name, iid, reverse[iid], lid))
    _check_exist(mapping, tables, "local", list(wanted))
    _check_exist(mapping, tables, "integration", list(reverse))
    by_local = _existing(store, mapping.name, "local", list(wanted))
    by_integration = _existing(store, mapping.name, "integration", list(reverse))
    plan.before = {(c.local_id, c.integration_id) for c in list(by_local.values()) + list(by_integration.values())}
    conflicts = []
    for lid, iid in wanted.items():
        if lid in by_local and by_local[lid].integration_id == iid:
            cp = by_local[lid]
            if resync and (cp.local_fp is not None or cp.integration_fp is not None):
                plan.reset.append((lid, iid))
            continue
        for other in (by_local.get(lid), by_integration.get(iid)):
            if other is not None:
                conflicts.append("%s is coupled to %s" % (
                    ("local record %s" % lid, "integration record %s" % other.integration_id) if other.local_id == lid
                    else ("integration record %s" % iid, "local record %s" % other.local_id)))
                if (other.local_id, other.integration_id) not in plan.remove:
                    plan.remove.append((other.local_id, other.integration_id))
        plan.add.append((lid, iid))
    if conflicts and not force:
        raise RecordError("mapping %s: %s; use force to re-couple" % (mapping.name, "; ".join(conflicts)))
    return plan


def plan_uncouple(mapping: Mapping, store: Any, records: Sequence[dict[str, str | None]]) -> CouplingPlan:
    """Plan removing the couplings of the given records (by local id, integration id or both).

    A record that is not coupled (or, with both ids given, not coupled to that partner) is
    left alone: uncoupling is idempotent, and records that no longer exist can be uncoupled.
    """
    plan = CouplingPlan(mapping.name)
    by_local = _existing(store, mapping.name, "local", [lid for r in records if (lid := r.get("local_id"))])
    by_integration = _existing(store, mapping.name, "integration", [iid for r in records if (iid := r.get("integration_id"))])
    for rec in records:
        lid, iid = rec.get("local_id"), rec.get("integration_id")
        cp = by_local.get(lid) if lid else by_integration.get(iid) if iid else None
        if cp is None or (iid and cp.integration_id != iid):
            continue
        pair = (cp.local_id, cp.integration_id)
        plan.before.add(pair)
        if pair not in plan.remove:
            plan.remove.append(pair)
    return plan


def apply_plan(store: Any, plan: CouplingPlan) -> None:
    store.change_couplings(plan.mapping, add=plan.add, remove=plan.remove, reset=plan.reset)
