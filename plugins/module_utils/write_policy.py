# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which source records a sync job writes: whether it creates uncoupled ones and whether it updates coupled ones.

One decision from the job's options (create_uncoupled, create_only) and the mapping's
synch_only_coupled_records, made here once: every part of a job asks WritePolicy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ansible_collections.tablesync.integration.plugins.module_utils.job_options import JobOptions
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping


@dataclass(frozen=True)
class WritePolicy:
    creates: bool  # an uncoupled source record is created (and coupled) on the destination
    updates: bool  # a coupled source record's changes are written; False for a create-only job (coupled records are skipped)

    @classmethod
    def of(cls, mapping: Mapping, opts: JobOptions) -> WritePolicy:
        # why: a full sync or a sync of chosen records creates whatever synch_only_coupled_records says (create_uncoupled)
        return cls(creates=opts.create_uncoupled or not mapping.synch_only_coupled_records, updates=not opts.create_only)
