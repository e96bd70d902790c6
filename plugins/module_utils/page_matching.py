# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Matching where a record would be created: in every mode, a page of records at a time.

Before a sync job creates the partner of an uncoupled source record, a mapping that declares
``match_on`` looks for destination records with the same key (within the destination filter):

* exactly one, not coupled, and no other record of the page to create has the key: the two
  are coupled (counted ``coupled``) and written as a coupled pair in the mapping's direction;
* several, one already coupled to another record, or another record of the page with the
  key: the record is held: it fails with an ``ambiguous match`` message, so it is stored on
  the retry list and every later run tries again until the data is unambiguous;
* none: the record is created.

The look-up costs one query per page of records to create (or per ``filter_values_per_query``
records of a web table), never a scan of a whole table. A full sync matches every uncoupled
record before it starts (job.SyncJob.couple_matches_first); its held records are failed here
and it looks up nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.coupling import INITIAL_SOURCE
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE, Table
from ansible_collections.tablesync.integration.plugins.module_utils.filters import combine, value_in
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import JobOptions
from ansible_collections.tablesync.integration.plugins.module_utils.job_result import JobResult
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Flow, Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.matching import MatchKey, ambiguous_message, foresee_lookups, match_keys
from ansible_collections.tablesync.integration.plugins.module_utils.page_plan import PagePlan
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import Foreseen
from ansible_collections.tablesync.integration.plugins.module_utils.store import Coupling
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, converter, id_text
from ansible_collections.tablesync.integration.plugins.module_utils.write_policy import WritePolicy

# kinds a look-up filter can list values of (binary values cannot be written in a filter)
_FILTER_KINDS = ("text", "integer", "decimal", "float", "boolean", "date", "datetime", "uuid")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass
class MatchScope:
    """What matching reads: the mapping's tables, the couplings (``store``), the job's options, and in check mode the
    couplings the run would make (``foreseen``)."""

    mapping: Mapping
    tables: dict[str, Table]
    store: Any
    opts: JobOptions
    foreseen: Foreseen


@dataclass
class PageMatches:
    """What matching decided for the records of a page that would be created."""

    couple: dict[str, str] = field(default_factory=dict)  # source id -> destination id
    hold: dict[str, str] = field(default_factory=dict)  # source id -> why (an ambiguous match message)


def looks_up_matches(mapping: Mapping, opts: JobOptions) -> bool:
    """Whether the job looks for a match before it creates a record (a full sync's matching already did)."""
    return bool(mapping.match_on) and not opts.matched


def plans_read_destination(mapping: Mapping, opts: JobOptions, policy: WritePolicy) -> bool:
    """Whether planning a page reads what the pages before it write: the records they created and coupled.

    Why: a page planned ahead of the previous page's writes would not see a record that page
    creates or couples with the same key, and would couple or create it a second time.
    """
    return looks_up_matches(mapping, opts) and policy.creates


def match_before_create(scope: MatchScope, result: JobResult, flow: Flow, plan: PagePlan, todo: list[tuple]) -> list[tuple]:
    """The page's records to write, (row, source id, fingerprint, coupling or None, ...), once those without a coupling are matched.

    A held record is failed with its reason. A matched record gets its new coupling (stored with the
    page) and is written as a coupled pair; in a bidirectional mapping only from the side its
    ``initial_direction`` names, else the pair is coupled now and written by the next run.
    """
    creates = [(entry[0], entry[1]) for entry in todo if entry[3] is None]
    if not creates:
        return todo
    decision = decide_matches(scope, flow, plan.positions, creates)
    if not decision.couple and not decision.hold:
        return todo
    mapping = scope.mapping
    writes_pairs = not mapping.bidirectional or INITIAL_SOURCE[mapping.initial_direction or "to_integration"] == flow.src
    out = []
    for entry in todo:
        sid, cp = entry[1], entry[3]
        if cp is None and sid in decision.hold:
            result.fail(plan.batch, flow.src, sid, decision.hold[sid])
            continue
        if cp is None and sid in decision.couple:
            cp = Coupling.of_flow(mapping.name, flow.src, sid, decision.couple[sid])
            plan.batch.new_couplings.append(cp)
            result.counts["coupled"] += 1
            result.log("coupled", cp.local_id, cp.integration_id)
            if scope.opts.dry_run:
                foresee_lookups(scope.foreseen, mapping.name, [(cp.local_id, cp.integration_id)])
            if not writes_pairs:
                continue
            entry = (*entry[:3], cp, *entry[4:])
        out.append(entry)
    return out


def decide_matches(scope: MatchScope, flow: Flow, positions: dict[str, int], creates: Sequence[tuple[tuple, str]]) -> PageMatches:
    """Couple or hold each record of ``creates`` (row, source id) that matching decides about; reads only."""
    decision = PageMatches()
    held = scope.opts.hold.get(flow.src) or {}
    for _row, sid in creates:
        if sid in held:
            decision.hold[sid] = held[sid]
    if not looks_up_matches(scope.mapping, scope.opts):
        return decision
    mapping, src, dst = scope.mapping, flow.src, flow.dst
    keys = match_keys(mapping)
    found = _source_keys(scope, src, positions, [c for c in creates if c[1] not in decision.hold], keys)
    by_key: dict[tuple, list[str]] = {}
    for sid, (_raw, key) in found.items():
        by_key.setdefault(key, []).append(sid)
    lone: dict[str, tuple] = {}
    for key, sids in by_key.items():
        if len(sids) == 1:
            lone[sids[0]] = key
            continue
        for sid in sids:
            decision.hold[sid] = ambiguous_message(mapping.name, keys, src, sid, found[sid][0], rivals=[s for s in sids if s != sid])
    _hold_rivals(scope, src, keys, found, lone, decision)
    if not lone:
        return decision
    candidates = find_candidates(scope, dst, keys, {sid: found[sid][0] for sid in lone})
    coupled = _coupled(scope, dst, sorted({cid for ids in candidates.values() for cid in ids}))
    for sid, key in lone.items():
        ids = candidates.get(key, [])
        if len(ids) == 1 and ids[0] not in coupled:
            decision.couple[sid] = ids[0]
        elif ids:
            decision.hold[sid] = ambiguous_message(mapping.name, keys, src, sid, found[sid][0], candidates=ids,
                                                   coupled={cid: coupled[cid] for cid in ids if cid in coupled})
    return decision


def _hold_rivals(scope: MatchScope, src: str, keys: list[MatchKey], found: dict[str, tuple[list[Any], tuple]], lone: dict[str, tuple],
                 decision: PageMatches) -> None:
    """Hold (and take out of ``lone``) the records another uncoupled record of their own side shares the key with.

    Why: the page is not the whole table; a rival read in another page, or not read at all by a modified run, makes
    the match as ambiguous as the full sync's matching finds it (it indexes every uncoupled record).
    """
    if not lone:
        return
    rivals = find_candidates(scope, src, keys, {sid: found[sid][0] for sid in lone})
    others = {sid: [r for r in rivals.get(key, []) if r != sid] for sid, key in lone.items()}
    coupled = _coupled(scope, src, sorted({r for ids in others.values() for r in ids}))
    for sid, ids in others.items():
        ids = [r for r in ids if r not in coupled]
        if ids:
            decision.hold[sid] = ambiguous_message(scope.mapping.name, keys, src, sid, found[sid][0], rivals=ids)
            del lone[sid]


def _source_keys(scope: MatchScope, src: str, positions: dict[str, int], creates: Sequence[tuple[tuple, str]],
                 keys: list[MatchKey]) -> dict[str, tuple[list[Any], tuple]]:
    """Source id -> (match values, normalised key) of the records that have a key (an empty value matches nothing)."""
    names = [k.field_on(src) for k in keys]
    missing = [n for n in dict.fromkeys(names) if n not in positions]
    rows: dict[str, tuple] = {sid: row for row, sid in creates}
    at = positions
    if missing and creates:
        # why: a match field no field mapping reads (match_on names it directly) is read for the page at once
        fields = list(dict.fromkeys([scope.mapping.key(src), *names]))
        rows = {id_text(r[0]): r for r in scope.tables[src].read_by_ids([sid for _row, sid in creates], fields)}
        at = {f: i for i, f in enumerate(fields)}
    norms = [k.normaliser() for k in keys]
    out: dict[str, tuple[list[Any], tuple]] = {}
    for sid, row in rows.items():
        raw = [row[at[n]] for n in names]
        key = tuple(norm(v) for norm, v in zip(norms, raw))
        if all(part is not None for part in key):
            out[sid] = (raw, key)
    return out


def find_candidates(scope: MatchScope, dst: str, keys: list[MatchKey], values: dict[str, list[Any]]) -> dict[tuple, list[str]]:
    """Normalised key -> ids of the records of side ``dst`` (within its filter) with the key of one of the records ``values`` lists.

    One query per ``filter_values_per_query`` records: each match field ``in`` the records' values.
    Why the endpoint does a wider selection and the key is checked here: the endpoint compares its
    way (MariaDB ignores case, SQLite's lower() folds only ASCII letters, SQL trim() only spaces),
    the normaliser of the key decides, as it does in a full sync's matching. Folded fields are
    therefore asked for as ``tolower(trim(field))`` with the value lower-cased both ways (Python and
    ASCII only), which finds what differs in case on every endpoint but SQLite, where letters beyond
    ASCII must agree in case.
    """
    table = scope.tables[dst]
    columns = table.info.columns
    names = [k.field_on(dst) for k in keys]
    fields = list(dict.fromkeys([scope.mapping.key(dst), *names]))
    positions = [fields.index(n) for n in names]
    norms = [k.normaliser() for k in keys]
    wanted = {}
    lists: dict[str, list[Any]] = {}
    for sid, raw in values.items():
        converted = _filter_values(keys, [columns[n].kind for n in names], raw)
        if converted is not None:
            wanted[sid] = tuple(norm(v) for norm, v in zip(norms, raw))
            lists[sid] = converted
    found: dict[tuple, dict[str, None]] = {}
    ids = list(lists)
    step = max(1, table.filter_values_per_query)
    for start in range(0, len(ids), step):
        chunk = ids[start:start + step]
        keys_asked = {wanted[sid] for sid in chunk}
        where = combine(scope.mapping.filters.get(dst), *_key_filters(keys, names, [columns[n].kind for n in names], [lists[s] for s in chunk]))
        for page in table.scan(fields, where=where, page_size=scope.opts.batch_size):
            for row in page:
                key = tuple(norm(row[pos]) for norm, pos in zip(norms, positions))
                if key in keys_asked:
                    found.setdefault(key, {})[id_text(row[0])] = None
    return {key: list(ids) for key, ids in found.items()}


def _filter_values(keys: list[MatchKey], kinds: list[str], raw: list[Any]) -> list[list[Any]] | None:
    """Per match field, the values a record's key may have on the destination; None when it can have none there."""
    out: list[list[Any]] = []
    for key, kind, value in zip(keys, kinds, raw):
        if kind not in _FILTER_KINDS:
            out.append([])
            continue
        try:
            value = converter(kind)(value)
        except ConversionError:
            return None  # why: a value the destination column cannot hold is held by none of its records
        if kind == "uuid":
            try:
                value = uuid.UUID(str(value))
            except ValueError:
                return None
        if kind == "text" and (key.trim or key.ignore_case):
            base = value.strip() if key.trim else value
            out.append(sorted({base.lower(), base.translate(_ASCII_LOWER)}) if key.ignore_case else [base])
        else:
            out.append([value])
    return out


def _key_filters(keys: list[MatchKey], names: list[str], kinds: list[str], lists: list[list[list[Any]]]) -> list[Any]:
    """One ``in`` filter per match field over the values of the records of a query."""
    filters = []
    for index, (key, name, kind) in enumerate(zip(keys, names, kinds)):
        if kind not in _FILTER_KINDS:
            continue
        values = list(dict.fromkeys(v for per_record in lists for v in per_record[index]))
        folded = kind == "text"
        filters.append(value_in(name, values, fold_case=folded and key.ignore_case, trim=folded and key.trim,
                                context="match_on of %s" % name))
    return filters


def _coupled(scope: MatchScope, dst: str, ids: list[str]) -> dict[str, str]:
    """Id on side ``dst`` -> id of its partner, for the records already coupled (or, in check mode, foreseen to be)."""
    if not ids:
        return {}
    src = OTHER_SIDE[dst]
    out = {i: cp.side_id(src) for i, cp in scope.store.couplings_for(scope.mapping.name, dst, ids).items()} if scope.store.exists else {}
    foreseen = scope.foreseen.get(scope.mapping.name, {}).get(dst, {})
    out.update((i, foreseen[i]) for i in ids if i not in out and foreseen.get(i) is not None)
    return out
