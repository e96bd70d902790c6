# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chosen records: what a sync of a few named records of one mapping reads (Business Central's "Synchronize Now").

Each id is looked up on both sides. A record of a side the mapping synchronises from is read
from that side; a record only on the other side is synchronised through its coupled partner
(the account of a customer, for a mapping to the integration side) and refused when it has
none, since the mapping's direction cannot create it from there. An id on neither side is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import OTHER_SIDE, SIDES
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.values import id_text


def source_ids(mapping: Mapping, tables: dict[str, Any], store: Any, ids: Sequence[str]) -> dict[str, list[str]]:
    """By source side, the ids of the records each flow of ``mapping`` reads for the chosen ``ids``; raises MappingError
    naming the records the mapping cannot synchronise (unknown, or uncoupled on a side it does not read)."""
    sources = [src for src, _dst in mapping.flow_pairs()]
    found = {side: {id_text(r[0]) for r in tables[side].read_by_ids(list(ids), [mapping.key(side)])} for side in SIDES}
    out: dict[str, list[str]] = {side: [] for side in SIDES}
    unknown, refused = [], []
    for rid in dict.fromkeys(ids):
        readable = [side for side in sources if rid in found[side]]
        if readable:
            out[readable[0]].append(rid)
            continue
        other = next((side for side in SIDES if rid in found[side]), None)
        if other is None:
            unknown.append(rid)
            continue
        partner = store.couplings_for(mapping.name, other, [rid]).get(rid) if store.exists else None
        if partner is None:
            refused.append((other, rid))
        else:
            out[OTHER_SIDE[other]].append(partner.side_id(OTHER_SIDE[other]))
    if unknown:
        raise MappingError(mapping.name, "records %s are in neither the local table %s nor the integration table %s"
                           % (", ".join(unknown), tables["local"].info.name, tables["integration"].info.name), field="records")
    if refused:
        raise MappingError(mapping.name, "%s: the mapping synchronises %s, so it never reads the %s side; nothing was synchronised"
                           % ("; ".join("%s record %s is not coupled" % pair for pair in refused), mapping.direction, refused[0][0]),
                           field="records")
    return out
