# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ids the engine generates for new records: version-7 UUIDs in creation order, never repeated, also across a fork."""

from __future__ import annotations

import os
import time
import uuid

from ansible_collections.tablesync.integration.plugins.module_utils.values import new_record_id


def test_generated_ids_are_distinct_version_7_uuids_in_creation_order():
    before = time.time_ns() // 1000000
    ids = [new_record_id() for _ignored in range(20000)]  # several refills of the random buffer, many ids per millisecond
    after = time.time_ns() // 1000000
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "ids created one after another must sort in creation order"
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    stamp = int(ids[-1].replace("-", "")[:12], 16)  # ids are made ahead in small batches: the last one was made in the loop
    assert before <= stamp <= after  # the first 48 bits are the Unix time in milliseconds


def test_a_forked_child_does_not_repeat_the_parents_ids():
    new_record_id()  # the buffer now holds unused random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, "\n".join(new_record_id() for _ignored in range(10)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_record_id() for _ignored in range(10)}
    with os.fdopen(read) as handle:
        child = set(handle.read().split("\n"))
    os.waitpid(pid, 0)
    assert len(child) == 10 and not parent & child
