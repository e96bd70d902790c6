# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One field pair of a mapping's ``match_on``, and how its values are compared.

Below both ``mapping`` (which reads a declaration's match entries into these) and
``matching`` (which pairs records on them), so neither imports the other's module
for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.values import ConversionError, canonical


@dataclass(frozen=True)
class MatchKey:
    """One field pair of a match, with how its values are normalised before comparing."""

    local_field: str
    integration_field: str
    ignore_case: bool = False
    trim: bool = False

    def field_on(self, side: str) -> str:
        return self.local_field if side == "local" else self.integration_field

    def normaliser(self) -> Callable[[Any], str | None]:
        ignore_case, trim = self.ignore_case, self.trim

        def run(value: Any) -> str | None:
            if value is None:
                return None
            try:
                text = value if isinstance(value, str) else str(canonical(value))
            except ConversionError:
                return None  # why: a value that has no canonical form (text that is not valid UTF-8) identifies nothing; its record fails in the flow

            if trim:
                text = text.strip()
            if ignore_case:
                text = text.casefold()
            return text or None  # why: an empty value identifies nothing

        return run
