# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dependencies between mappings: declared ones and those implied by lookups.

A sync runs mappings in dependency order (``order_mappings``); a sync of named
mappings orders only them and what they depend on (``with_dependencies``), so a
broken mapping it does not need never stops it. ``table_mapping`` refuses a
declaration whose dependencies are undeclared or close a cycle (``declaration_problem``)
and the removal of a mapping others depend on (``removal_problem``).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError, OrderingError
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


def dependency_levels(mappings: Sequence[Mapping]) -> list[list[str]]:
    """The mappings (ordered) in levels: each depends only on mappings of earlier levels, so the partitions of a
    distributed sync run one level at a time (the playbook's barrier between tasks)."""
    level: dict[str, int] = {}
    for m in order_mappings(mappings):
        level[m.name] = 1 + max((level[d] for d in dependencies_of(m) if d in level), default=-1)
    levels: list[list[str]] = [[] for _index in range(1 + max(level.values(), default=-1))]
    for name, index in level.items():
        levels[index].append(name)
    return levels


def loadable(definitions: Sequence[dict[str, Any]], skip: str) -> list[Mapping]:
    """The stored mappings other than ``skip``; one whose stored declaration is no longer valid is left out
    (it is its own problem, reported when it runs)."""
    out = []
    for definition in definitions:
        if definition.get("name") != skip:
            try:
                out.append(Mapping.from_definition(definition))
            except MappingError:
                continue
    return out


def export_order(definitions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored definitions in the order they can be declared again: dependencies first, declaration order otherwise
    (as stored when the dependencies cannot be ordered: the re-declaration then names the problem)."""
    by_name = {d.get("name"): d for d in definitions}
    try:
        return [by_name[m.name] for m in order_mappings([Mapping.from_definition(d) for d in definitions])]
    except (MappingError, OrderingError):
        return list(definitions)


def dependents(name: str, declared: Sequence[Mapping]) -> list[str]:
    """Mappings that depend on ``name``, declared or through a lookup."""
    return [m.name for m in declared if m.name != name and name in dependencies_of(m)]


def removal_problem(name: str, declared: Sequence[Mapping]) -> MappingError | None:
    """Why mapping ``name`` cannot be removed (others depend on it), or None."""
    users = dependents(name, declared)
    if not users:
        return None
    one = len(users) == 1
    return MappingError(name, "not removed: %s %s on it (through dependencies or lookups); remove %s or %s dependency on %s first"
                        % (", ".join(users), "depends" if one else "depend", "that mapping" if one else "those mappings",
                           "its" if one else "their", name))


def declaration_problem(mapping: Mapping, declared: Sequence[Mapping]) -> MappingError | None:
    """Why storing ``mapping`` beside the ``declared`` ones would stop its syncs, or None.

    Its dependencies and lookups must name declared mappings (a re-declared mapping
    replaces its old version), and no chain of dependencies may lead back to it.
    Problems among the other mappings are theirs, not this declaration's.
    """
    return undeclared_problem(mapping, declared) or cycle_problem(mapping, declared)


def undeclared_problem(mapping: Mapping, declared: Sequence[Mapping]) -> MappingError | None:
    """The first dependency or lookup of ``mapping`` that names no declared mapping, as an error, or None."""
    others = sorted(m.name for m in declared if m.name != mapping.name)
    for dep in mapping.dependencies:
        if dep not in others:
            return MappingError(mapping.name, "depends on mapping %s, which is not declared (declared: %s); declare %s first"
                                % (dep, ", ".join(others) or "none", dep), field="dependencies")
    for fm in mapping.fields:
        if fm.lookup and fm.lookup != mapping.name and fm.lookup not in others:
            return MappingError(mapping.name, "lookup through mapping %s, which is not declared (declared: %s); declare %s first"
                                % (fm.lookup, ", ".join(others) or "none", fm.lookup), field=fm.describe())
    return None


def cycle_problem(mapping: Mapping, declared: Sequence[Mapping]) -> MappingError | None:
    """A chain of dependencies from ``mapping`` through the ``declared`` ones back to it, as an error naming its path, or None."""
    others = {m.name: m for m in declared if m.name != mapping.name}
    for first in dependencies_of(mapping):
        path = _path_back(first, mapping.name, others)
        if path is not None:
            via = "dependencies" if first in mapping.dependencies else next(fm.describe() for fm in mapping.fields if fm.lookup == first)
            return MappingError(mapping.name, "the dependencies would form a cycle: %s (a lookup implies a dependency)"
                                % " -> ".join([mapping.name, first, *path]), field=via)
    return None


def _path_back(start: str, target: str, others: dict[str, Mapping]) -> list[str] | None:
    """The mappings after ``start`` on a chain of dependencies from ``start`` to ``target``, or None."""
    trail: dict[str, str | None] = {start: None}
    todo = [start]
    while todo:
        name = todo.pop()
        mapping = others.get(name)
        if mapping is None:
            continue  # why: an undeclared dependency of another mapping leads nowhere
        for dep in dependencies_of(mapping):
            if dep == target:
                path = [target]
                step: str | None = name
                while step is not None and step != start:
                    path.append(step)
                    step = trail[step]
                return list(reversed(path))
            if dep not in trail:
                trail[dep] = name
                todo.append(dep)
    return None
