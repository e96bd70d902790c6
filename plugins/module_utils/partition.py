# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Partitions of a mapping: one sync split across hosts by a stable hash of the source records' keys.

A record belongs to partition ``index`` of ``count`` when the hash of its key's text (values.id_text)
falls there. The hash is BLAKE2b of the UTF-8 text, not Python's ``hash()`` (which differs per
process), so every host and every run puts a key in the same partition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAX_PARTITIONS = 1024


@dataclass(frozen=True)
class Partition:
    """Partition ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS or not 0 <= self.index < self.count:
            raise ValueError("partition.index must be 0 to partition.count - 1 and partition.count 1 to %d, not index %d of count %d"
                             % (MAX_PARTITIONS, self.index, self.count))

    @property
    def label(self) -> str:
        """How the job log and the store name it: ``index/count``."""
        return "%d/%d" % (self.index, self.count)

    def holds(self, record_id: str) -> bool:
        return partition_of(record_id, self.count) == self.index

    @classmethod
    def parse(cls, label: str) -> Partition:
        index, count = label.split("/")
        return cls(int(index), int(count))


def partition_of(record_id: str, count: int) -> int:
    """The partition of ``count`` that the key text ``record_id`` falls in, the same on every host and in every run."""
    digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count
