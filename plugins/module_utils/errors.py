# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions of the sync engine.

Every error a user can cause names what to fix: the mapping, the field, the record.
Modules turn them into ``fail_json`` messages unchanged.
"""

from __future__ import annotations


class TableSyncError(Exception):
    """Base of every error the engine raises on purpose."""


class ConfigurationError(TableSyncError):
    """Connection options or store settings are wrong."""


class MappingError(TableSyncError):
    """A mapping declaration is invalid; raised before anything is written."""

    def __init__(self, mapping: str | None, message: str, field: str | None = None):
        self.mapping = mapping
        self.field = field
        where = "mapping %s" % mapping if mapping else "mapping"
        if field:
            where += ", field %s" % field
        super().__init__("%s: %s" % (where, message))


class OrderingError(TableSyncError):
    """Dependencies between mappings form a cycle or name an unknown mapping."""


class EndpointError(TableSyncError):
    """An endpoint cannot be reached, or a table or column does not exist."""


class RecordError(TableSyncError):
    """One record cannot be synchronised; the job goes on with the others."""


class LockTimeout(TableSyncError):
    """Another run holds a mapping longer than the lock timeout allows."""


class GuardError(TableSyncError):
    """A run would change more records than a mapping allows; nothing was written."""

    def __init__(self, message: str, plan: dict | None = None):
        self.plan = plan or {}
        super().__init__(message)
