# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ids the engine generates for new records: random version-4 UUIDs, never repeated, also across a fork."""

from __future__ import annotations

import os
import uuid

from ansible_collections.tablesync.integration.plugins.module_utils.sql_endpoint import _uuid4_text


def test_generated_ids_are_distinct_version_4_uuids_in_canonical_text():
    ids = [_uuid4_text() for _ignored in range(5000)]  # several refills of the random buffer
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_a_forked_child_does_not_repeat_the_parents_ids():
    _uuid4_text()  # the buffer now holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, "\n".join(_uuid4_text() for _ignored in range(10)).encode())
        os._exit(0)
    os.close(write)
    parent = {_uuid4_text() for _ignored in range(10)}
    with os.fdopen(read) as handle:
        child = set(handle.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(child) == 10 and not parent & child
