# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Splitting a list of ids, rows or requests into the slices one statement or request takes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any


def chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items (at least one: a size below 1 counts as 1), in order."""
    size = max(1, size)  # why: a configured page or batch size of 0 must not loop forever
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
