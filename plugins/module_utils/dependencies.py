# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dependencies between mappings: declared ones and those implied by lookups.

A sync runs mappings in dependency order (``order_mappings``); a sync of named
mappings orders only them and what they depend on (``with_dependencies``), so a
broken mapping it does not need never stops it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from ansible_collections.tablesync.integration.plugins.module_utils.errors import OrderingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping


def dependencies_of(mapping: Mapping) -> list[str]:
    """Declared dependencies plus those implied by lookups (a reference needs its target coupled first)."""
    out = list(mapping.dependencies)
    out.extend(name for name in mapping.lookups() if name not in out)
    return out


def _undeclared(mapping: Mapping, unknown: Sequence[str]) -> OrderingError:
    return OrderingError("mapping %s depends on %s, which %s not declared" % (mapping.name, ", ".join(unknown), "is" if len(unknown) == 1 else "are"))


def order_mappings(mappings: Sequence[Mapping]) -> list[Mapping]:
    """Topological order; among mappings free to run, declaration order decides.

    Raises OrderingError for an unknown dependency or a cycle, naming the mappings.
    """
    by_name = {m.name: m for m in mappings}
    position = {m.name: i for i, m in enumerate(mappings)}
    blockers: dict[str, set[str]] = {}
    dependents_: dict[str, list[str]] = {m.name: [] for m in mappings}
    for m in mappings:
        deps = set(dependencies_of(m))
        unknown = sorted(d for d in deps if d not in by_name)
        if unknown:
            raise _undeclared(m, unknown)
        blockers[m.name] = deps
        for d in deps:
            dependents_[d].append(m.name)
    ready = [(position[n], n) for n, deps in blockers.items() if not deps]
    heapq.heapify(ready)
    ordered: list[Mapping] = []
    while ready:
        name = heapq.heappop(ready)[1]
        ordered.append(by_name[name])
        for child in dependents_[name]:
            blockers[child].discard(name)
            if not blockers[child]:
                heapq.heappush(ready, (position[child], child))
    if len(ordered) != len(mappings):
        stuck = sorted(n for n, deps in blockers.items() if deps)
        raise OrderingError("the dependencies of mappings %s form a cycle" % ", ".join(stuck))
    return ordered


def with_dependencies(names: Sequence[str], declared: Sequence[str], load: Callable[[str], Mapping]) -> list[Mapping]:
    """The named mappings and every mapping they depend on, directly or not, in declaration order.

    ``declared`` lists the store's mapping names in declaration order; ``load`` builds one of
    them. Only the mappings reached are loaded, so an unrelated broken one is never read.
    Raises OrderingError for a dependency that is not declared.
    """
    known = set(declared)
    loaded: dict[str, Mapping] = {}
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in loaded:
            continue
        mapping = loaded[name] = load(name)
        deps = dependencies_of(mapping)
        unknown = sorted(d for d in deps if d not in known)
        if unknown:
            raise _undeclared(mapping, unknown)
        todo.extend(d for d in deps if d not in loaded)
    return [loaded[n] for n in declared if n in loaded]
