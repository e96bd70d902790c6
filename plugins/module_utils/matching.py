# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Match-based coupling: pair uncoupled records of the two sides on declared match fields.

A mapping may declare ``match_on``: field pairs whose values identify a record on both
sides (a number, an e-mail address, or a number and a name). Values compare exactly unless
a match entry asks for ``ignore_case`` or ``trim``. Uncoupled records of each side are
streamed once and indexed on their key, so matching costs two scans and no nested loop.
A key held by exactly one uncoupled record on each side couples the two; a key held by
more than one record on either side is ambiguous, never guessed: its records are held
(they fail with an ``ambiguous match`` message, are retried by every later run and resolve
once the data is unambiguous). A full sync runs this before it creates anything; other
runs match the records they would create page by page (page_matching.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping as ReadMapping  # why: the name Mapping is the declared mapping (mapping.py)
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE, SIDES
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.match_key import MatchKey
from ansible_collections.tablesync.integration.plugins.module_utils.store import HELD, Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import id_text

# A record's values of the match keys, normalised; a part is None where the record has no value (never indexed: unmatched)
KeyValues = tuple["str | None", ...]  # why: a string, as module code runs on Python 3.9 where str | None is no value


def match_keys(mapping: Mapping, tables: dict[str, Any] | None = None, match_on: Sequence[Any] | None = None) -> list[MatchKey]:
    """The mapping's match fields (or ``match_on`` given instead), checked against the tables (Mapping.match_keys)."""
    return mapping.match_keys(tables, match_on)


@dataclass
class MatchResult:
    """What matching found. ``pairs`` and ``held`` are complete; the lists are capped for reporting.

    ``held``: side -> id -> why the record is held (an ``ambiguous match`` message).
    """

    mapping: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    held: dict[str, dict[str, str]] = field(default_factory=lambda: {s: {} for s in SIDES})
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    ambiguous_keys: int = 0
    unmatched: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SIDES})
    unmatched_records: list[dict[str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "coupled": len(self.pairs),
            "ambiguous": self.ambiguous_keys,
            "ambiguous_records": sum(len(ids) for ids in self.held.values()),
            "unmatched": sum(self.unmatched.values()),
            "unmatched_local": self.unmatched["local"],
            "unmatched_integration": self.unmatched["integration"],
        }

    def logged(self) -> list[tuple[str, str, str]]:
        """What the job log keeps of it, as failed records (side, id, why): every held record, and the unmatched ones reported."""
        out = [(side, rid, why) for side in SIDES for rid, why in sorted(self.held[side].items())]
        out.extend((r["side"], r["id"], "unmatched in mapping %s: no uncoupled %s record has its match key; it stays uncoupled"
                    % (self.mapping, OTHER_SIDE[r["side"]])) for r in self.unmatched_records)
        return out

    def report(self, cap: int) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "pairs": [{"local_id": lid, "integration_id": iid} for lid, iid in self.pairs[:cap]],
            "pairs_truncated": len(self.pairs) > cap,
            "ambiguous": self.ambiguous[:cap],
            "unmatched": self.unmatched_records[:cap],
        }


def _index(mapping: Mapping, table: Any, side: str, store: Any, keys: list[MatchKey], batch_size: int, result: MatchResult, cap: int,
           probe: dict[KeyValues, list[str]] | None = None, coupled_only: bool = False,
           ) -> tuple[dict[KeyValues, list[str]], dict[KeyValues, dict[str, str | None]]]:
    """Normalised key -> ids of the side's uncoupled records (within the mapping's filter); and, for the keys of
    ``probe`` (the other side's uncoupled records), the side's coupled records with that key, id -> partner id.

    Memory is O(uncoupled records of the side): one key tuple and its ids each. That is the
    price of a hash join instead of a nested loop; coupled records are kept only where they
    hold a key of ``probe``, which makes that key ambiguous (the record is taken).
    """
    # why: a match field may be the key itself (a code); endpoints read each column once
    fields = list(dict.fromkeys([mapping.key(side)] + [k.field_on(side) for k in keys]))
    positions = [fields.index(k.field_on(side)) for k in keys]
    norms = [k.normaliser() for k in keys]
    other = SIDES[1 - SIDES.index(side)]
    index: dict[KeyValues, list[str]] = {}
    taken: dict[KeyValues, dict[str, str | None]] = {}
    for page in table.scan(fields, where=mapping.filters.get(side), page_size=batch_size):
        ids = [id_text(r[0]) for r in page]
        coupled = store.couplings_for(mapping.name, side, ids) if store.exists else {}
        for row, rid in zip(page, ids):
            if rid in coupled:
                if probe:
                    key = tuple(norm(row[pos]) for norm, pos in zip(norms, positions))
                    if key in probe:
                        taken.setdefault(key, {})[rid] = coupled[rid].side_id(other)
                continue
            if coupled_only:
                continue
            key = tuple(norm(row[pos]) for norm, pos in zip(norms, positions))
            if any(part is None for part in key):
                _unmatched(result, side, rid, cap)
                continue
            index.setdefault(key, []).append(rid)
    return index, taken


def _unmatched(result: MatchResult, side: str, rid: str, cap: int) -> None:
    result.unmatched[side] += 1
    if len(result.unmatched_records) < cap:
        result.unmatched_records.append({"side": side, "id": rid})


def _ambiguous(result: MatchResult, keys: list[MatchKey], key: KeyValues, local_ids: list[str], integration_ids: list[str],
               cap: int, taken: dict[str, dict[str, str | None]] | None = None) -> None:
    """``taken``: per side, the records with the key already coupled to another record, to their partner."""
    result.ambiguous_keys += 1
    ids = {"local": sorted(local_ids), "integration": sorted(integration_ids)}
    taken = taken or {}
    for side in SIDES:
        other = SIDES[1 - SIDES.index(side)]
        coupled = taken.get(other, {})
        for rid in ids[side]:
            result.held[side][rid] = ambiguous_message(result.mapping, keys, side, rid, key, candidates=ids[other] + sorted(coupled),
                                                       coupled=coupled, rivals=[r for r in ids[side] if r != rid])
    if len(result.ambiguous) < cap:
        result.ambiguous.append({"key": list(key), "local_ids": sorted(local_ids), "integration_ids": sorted(integration_ids)})


def match_mapping(mapping: Mapping, tables: dict[str, Any], store: Any, match_on: Sequence[Any] | None = None,
                  batch_size: int = 1000, max_reported: int = 100) -> MatchResult:
    """Match the mapping's uncoupled records; writes nothing (see ``couple_matches``).

    A key shared by two uncoupled records of the same side is ambiguous too, even with no
    partner: creating both would duplicate it on the other side.
    """
    keys = match_keys(mapping, tables, match_on)
    if not keys:
        raise MappingError(mapping.name, "no match fields: declare match_on on the mapping or give it", field="match_on")
    result = MatchResult(mapping.name)
    local = _index(mapping, tables["local"], "local", store, keys, batch_size, result, max_reported)[0]
    remote, taken_remote = _index(mapping, tables["integration"], "integration", store, keys, batch_size, result, max_reported, probe=local)
    taken_local: dict[KeyValues, dict[str, str | None]] = {}
    if remote and mapping.direction != "to_integration":
        # why: records created on the local side too: a local record coupled elsewhere that holds the key makes it ambiguous
        taken_local = _index(mapping, tables["local"], "local", store, keys, batch_size, result, max_reported, probe=remote, coupled_only=True)[1]
    for key, local_ids in local.items():
        integration_ids = remote.pop(key, [])
        if key in taken_remote:
            _ambiguous(result, keys, key, local_ids, integration_ids, max_reported, taken={"integration": taken_remote[key]})
        elif len(local_ids) == 1 and len(integration_ids) == 1:
            result.pairs.append((local_ids[0], integration_ids[0]))
        elif len(local_ids) > 1 or len(integration_ids) > 1:
            _ambiguous(result, keys, key, local_ids, integration_ids, max_reported)
        else:
            _unmatched(result, "local", local_ids[0], max_reported)
    for key, integration_ids in remote.items():
        if key in taken_local:
            _ambiguous(result, keys, key, [], integration_ids, max_reported, taken={"local": taken_local[key]})
        elif len(integration_ids) > 1:
            _ambiguous(result, keys, key, [], integration_ids, max_reported)
        else:
            _unmatched(result, "integration", integration_ids[0], max_reported)
    result.pairs.sort()
    return result


def ambiguous_message(mapping: str, keys: Sequence[MatchKey], side: str, record_id: str, values: Sequence[Any],
                      candidates: Sequence[str] = (), coupled: ReadMapping[str, str | None] | None = None, rivals: Sequence[str] = ()) -> str:
    """Why a record is held: names the mapping, the record, its key values and the records that make the match ambiguous.

    ``candidates``: ids of the other side's records with the key; ``coupled``: those of them already coupled, to the
    id of their partner; ``rivals``: other records of the record's own side with the key.
    """
    other = SIDES[1 - SIDES.index(side)]
    key = ", ".join("%s %r" % (k.field_on(side), v) for k, v in zip(keys, values))
    reasons = []
    if candidates:
        reasons.append("%s %s %s" % (_records(other, candidates), _some(candidates), "match" if len(candidates) > 1 else "matches"))
    reasons.extend("%s record %s is coupled to %s record %s" % (other, cid, side, partner) for cid, partner in sorted((coupled or {}).items()))
    if rivals:
        reasons.append("%s %s %s the same key" % (_records(side, rivals), _some(rivals), "have" if len(rivals) > 1 else "has"))
    return ("%s in mapping %s: %s record %s (%s): %s; nothing was created, the record is retried by every run "
            "until it matches one record or none" % (HELD, mapping, side, record_id, key, "; ".join(reasons)))


def _records(side: str, ids: Sequence[str]) -> str:
    return "%s record%s" % (side, "s" if len(ids) > 1 else "")


def _some(ids: Sequence[str], cap: int = 10) -> str:
    shown = ", ".join(ids[:cap])
    return shown if len(ids) <= cap else "%s and %d more" % (shown, len(ids) - cap)


def couple_matches(store: Any, mapping: str, pairs: Sequence[tuple[str, str]], batch_size: int = 1000) -> None:
    """Store the matched couplings, one transaction per batch (without fingerprints)."""
    for start in range(0, len(pairs), batch_size):
        store.change_couplings(mapping, add=pairs[start:start + batch_size])


def claim_matches(store: Any, mapping: str, couplings: Sequence[Coupling], batch_size: int = 1000) -> list[Coupling]:
    """Store matched couplings where neither record is coupled yet, each atomically (Store.claim_couplings); the ones
    another run coupled first (a partition of the same sync that matched the same record) come back."""
    lost: list[Coupling] = []
    for start in range(0, len(couplings), batch_size):
        lost.extend(store.claim_couplings(mapping, couplings[start:start + batch_size]))
    return lost


def lost_claim_message(mapping: str, side: str, record_id: str, partner_side: str, partner_id: str) -> str:
    """Why a record whose match another partition coupled first is held (its message begins as every held record's)."""
    return ("%s in mapping %s: %s record %s matches %s record %s, which another partition of this sync coupled to another "
            "record first; nothing was created, the record is retried by every run until it matches one record or none"
            % (HELD, mapping, side, record_id, partner_side, partner_id))


class ForeseenCouplings:
    """A store that also shows couplings a check-mode run would have made.

    Why: check mode writes nothing, yet its plan must count a matched record as an update of
    its partner, not as a create, to report what the real run does.
    """

    def __init__(self, store: Any, mapping: str, pairs: Sequence[tuple[str, str]]):
        self._store = store
        self._mapping = mapping
        self._foreseen: dict[str, dict[str, Coupling]] = {s: {} for s in SIDES}
        for lid, iid in pairs:
            cp = Coupling(mapping, local_id=lid, integration_id=iid)
            self._foreseen["local"][lid] = cp
            self._foreseen["integration"][iid] = cp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def exists(self) -> bool:
        return True

    def couplings_for(self, mapping: str, side: str, ids: Sequence[str]) -> dict[str, Coupling]:
        out = self._store.couplings_for(mapping, side, ids) if self._store.exists else {}
        if mapping == self._mapping:
            foreseen = self._foreseen[side]
            # copies: a dry-run job sets fingerprints on what it is given, and nothing was written
            out.update({i: dataclasses.replace(foreseen[i]) for i in ids if i in foreseen})
        return out

    def failed_ids(self, mapping: str, side: str) -> list[str]:
        return self._store.failed_ids(mapping, side) if self._store.exists else []

    def unsynced_ids(self, mapping: str, side: str) -> list[str]:
        return self._store.unsynced_ids(mapping, side) if self._store.exists else []

    def watermark(self, mapping: str, side: str) -> Any:
        return self._store.watermark(mapping, side) if self._store.exists else None


def foresee_lookups(foreseen: dict[str, dict[str, dict[str, str | None]]], mapping: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Check mode: let the lookups of later mappings of the run translate through couplings it would make."""
    pairs_of = foreseen.setdefault(mapping, {"local": {}, "integration": {}})
    for lid, iid in pairs:
        pairs_of["local"][lid] = iid
        pairs_of["integration"][iid] = lid
