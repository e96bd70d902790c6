# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of a mapping declaration, listed once.

``table_mapping`` takes them (``declaration_argument_spec``), the store keeps them, and
``table_mapping_info`` exports exactly them, so an export declared again in another store
gives the same mapping. They are documented in the ``tablesync.integration.declaration``
doc fragment; ``mapping.SCHEMA`` checks their values.
"""

from __future__ import annotations

import copy
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import FORMATS as MODIFIED_FORMATS

DIRECTIONS = ("to_integration", "from_integration", "bidirectional")
UPDATE_CONFLICT_RESOLUTIONS = ("none", "local_wins", "integration_wins", "merge")
MERGE_FALLBACKS = ("none", "local_wins", "integration_wins")
DELETION_CONFLICT_RESOLUTIONS = ("none", "remove_coupling", "restore_records")
INITIAL_DIRECTIONS = ("to_integration", "from_integration")

FIELD_OPTIONS: dict[str, Any] = {
    "field": {"type": "str"},
    "integration_field": {"type": "str"},
    "direction": {"type": "str", "choices": list(DIRECTIONS)},
    "constant": {"type": "raw"},
    "transform": {"type": "list", "elements": "raw"},
    "value_map": {"type": "dict"},
    "lookup": {"type": "str"},
    "clear_value_on_failed_lookup": {"type": "bool", "default": False},
}

DECLARATION_OPTIONS: dict[str, Any] = {
    "local_table": {"type": "str"},
    "local_key": {"type": "str", "no_log": False},
    "local_modified_field": {"type": "str"},
    "local_modified_format": {"type": "str", "default": "auto", "choices": list(MODIFIED_FORMATS)},
    "integration_table": {"type": "str"},
    "integration_key": {"type": "str", "no_log": False},
    "integration_modified_field": {"type": "str"},
    "integration_modified_format": {"type": "str", "default": "auto", "choices": list(MODIFIED_FORMATS)},
    "direction": {"type": "str", "default": "to_integration", "choices": list(DIRECTIONS)},
    "fields": {"type": "list", "elements": "dict", "options": FIELD_OPTIONS},
    "table_filter": {"type": "str"},
    "integration_table_filter": {"type": "str"},
    "synch_only_coupled_records": {"type": "bool"},
    "dependencies": {"type": "list", "elements": "str", "default": []},
    "update_conflict_resolution": {"type": "str", "choices": list(UPDATE_CONFLICT_RESOLUTIONS)},
    "merge_fallback": {"type": "str", "choices": list(MERGE_FALLBACKS)},
    "deletion_conflict_resolution": {"type": "str", "choices": list(DELETION_CONFLICT_RESOLUTIONS)},
    "propagate_deletions": {"type": "bool"},
    "max_deletes": {"type": "int"},
    "max_deletes_percent": {"type": "float"},
    "max_changes": {"type": "int"},
    "max_changes_percent": {"type": "float"},
    "match_on": {"type": "list", "elements": "raw"},
    "initial_direction": {"type": "str", "choices": list(INITIAL_DIRECTIONS)},
}

# what a declaration needs besides its name; table_mapping requires them with state=present
REQUIRED = ("local_table", "local_key", "integration_table", "integration_key", "fields")


def declaration_argument_spec() -> dict[str, Any]:
    """The argument spec of a declaration's options (a copy: AnsibleModule fills in the specs it is given)."""
    return copy.deepcopy(DECLARATION_OPTIONS)


def exported(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as table_mapping input: its name and the options that are set."""
    return {k: v for k, v in definition.items() if v is not None and (k == "name" or k in DECLARATION_OPTIONS)}
