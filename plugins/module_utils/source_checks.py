# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source records that break the engine's assumptions, found per page: the message each fails with.

- A key more than one row holds (a table whose key column is not declared unique): every
  row holding it fails, and nothing is written for the key while it is duplicated; once a
  single row holds it again, the record is retried like any failed record.
- Text that is not valid UTF-8 (a SQLite source read again leniently, see sql_endpoint.Select):
  the record holding it fails, naming the field; the page's other records go on.

The checks cost nothing on a clean page of a table with a unique key: one set of the page's
ids, and fingerprints made a record at a time only for a page where the page's could not be made.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Table
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
from ansible_collections.tablesync.integration.plugins.module_utils.record_values import side_fingerprint, side_fingerprints
from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical


def source_fingerprints(mapping: Mapping, side: str, columns: Sequence[Sequence[Any]],
                        positions: dict[str, int]) -> tuple[list[str], dict[int, str]]:
    """Fingerprints of a page's records (given as columns); the records none can be made of, by position, with why."""
    try:
        return side_fingerprints(mapping, side, columns, positions), {}
    except ConversionError:
        pass
    # why: only a page holding a value that has no canonical form (values.Undecodable) is fingerprinted record by record
    names = mapping.side_fields(side)
    fps: list[str] = []
    refused: dict[int, str] = {}
    for index, values in enumerate(zip(*[columns[positions[f]] for f in names])):
        record = dict(zip(names, values))
        try:
            fps.append(side_fingerprint(mapping, side, record))
        except ConversionError:
            refused[index] = _refused_field(side, record)
            fps.append("")
    return fps, refused


def _refused_field(side: str, record: dict[str, Any]) -> str:
    for name, value in record.items():
        try:
            canonical(value)
        except ConversionError as exc:
            return "%s field %s: %s" % (side, name, exc)
    return "%s record: its values cannot be compared" % side  # pragma: no cover - fingerprint refuses only what canonical does


def refused_records(mapping: Mapping, side: str, table: Table, ids: Sequence[str], unreadable: dict[int, str]) -> dict[str, str]:
    """Records of a page that fail before anything is decided for them: the message of each, by id.

    ``unreadable``: records whose values cannot be read, by position (source_fingerprints).
    """
    refused = {ids[index]: "mapping %s, %s record %s: %s; correct the value in %s table %s"
               % (mapping.name, side, ids[index], reason, side, table.info.name) for index, reason in unreadable.items()}
    for record_id, count in duplicate_keys(table, ids).items():
        refused[record_id] = ("mapping %s, %s record %s: %s table %s holds key %s in %d rows; a key must identify one record, "
                              "so nothing is written for it while more than one row holds it"
                              % (mapping.name, side, record_id, side, table.info.name, record_id, count))
    return refused


def duplicate_keys(table: Table, ids: Sequence[str]) -> dict[str, int]:
    """Of a page's ids, those more than one row holds, and how many (the table's count, or the page's when larger)."""
    found = {} if table.key_unique else dict(table.duplicate_keys(ids))
    if len(set(ids)) < len(ids):  # why: a page may hold a key twice even where the table says keys are unique
        for record_id, count in collections.Counter(ids).items():
            if count > 1 and count > found.get(record_id, 0):
                found[record_id] = count
    return found
