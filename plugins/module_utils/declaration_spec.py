# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of a mapping declaration: one table, from which the rest is built.

``OPTIONS`` lists every option once: its Ansible type, its default, its choices (the
tuples below or those of the module that owns them), and the JSON Schema constraints on
its value. From it come ``table_mapping``'s argument spec (``declaration_argument_spec``)
and its required options (``REQUIRED``), the options ``table_mapping_info`` exports
(``exported``), the JSON Schema of a stored declaration and the defaults a declaration
that leaves an option out gets (``declaration_schema``, ``declaration_defaults``: used
by ``mapping``, whose ``Mapping`` has one field per option).

The options are documented in the ``tablesync.integration.declaration`` doc fragment,
which stays static YAML (ansible-doc and ansible-test read it without running code); a
unit test compares it with this table. A new option is an entry here, its text in the
doc fragment and a field of ``Mapping``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import FORMATS as MODIFIED_FORMATS

DIRECTIONS = ("to_integration", "from_integration", "bidirectional")
UPDATE_CONFLICT_RESOLUTIONS = ("none", "local_wins", "integration_wins", "merge")
MERGE_FALLBACKS = ("none", "local_wins", "integration_wins")
DELETION_CONFLICT_RESOLUTIONS = ("none", "remove_coupling", "restore_records")
INITIAL_DIRECTIONS = ("to_integration", "from_integration")
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"

# Ansible option types and the JSON Schema types of their values
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "list": "array", "dict": "object", "raw": None}


@dataclass(frozen=True)
class Option:
    """One option of a declaration (or of one of its field mappings)."""

    name: str
    type: str  # the Ansible type: str, int, float, bool, list, dict or raw
    description: str  # one line, for the JSON Schema; the doc fragment has the full text
    default: Any = None  # what a declaration that leaves the option out gets
    required: bool = False  # every stored declaration holds it
    choices: Sequence[Any] | None = None
    elements: str | None = None
    suboptions: tuple[Option, ...] = ()
    constraints: dict[str, Any] = field(default_factory=dict)  # JSON Schema keywords besides type and choices
    # why: false where table_mapping must tell an option left out from one given (synch_only_coupled_records keeps an
    # existing mapping's setting), or where its documentation gives the default in its notes; mapping.normalize fills it in
    spec_default: bool = True
    no_log: bool | None = None  # why: ansible-test flags options whose names look like secrets (a key field is not one)

    @property
    def nullable(self) -> bool:
        """Whether a stored declaration may hold null (none) for it."""
        return not self.required and self.default is None

    def argument_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": self.type}
        if self.no_log is not None:
            spec["no_log"] = self.no_log
        if self.spec_default and self.default is not None:
            spec["default"] = copy.deepcopy(self.default)
        if self.choices is not None:
            spec["choices"] = list(self.choices)
        if self.elements is not None:
            spec["elements"] = self.elements
        if self.suboptions:
            spec["options"] = {o.name: o.argument_spec() for o in self.suboptions}
        return spec

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the option's stored value."""
        out: dict[str, Any] = {"description": self.description}
        if self.choices is not None:
            out["enum"] = list(self.choices) + ([None] if self.nullable else [])
        elif _JSON_TYPES[self.type] is not None:
            out["type"] = [_JSON_TYPES[self.type], "null"] if self.nullable else _JSON_TYPES[self.type]
        out.update(copy.deepcopy(self.constraints))
        if self.suboptions:
            out["items"] = object_schema(self.suboptions)
        return out


def object_schema(options: Sequence[Option], required: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON Schema of a dict holding the options given, and no others."""
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    if required:
        out["required"] = list(required)
    out["properties"] = {o.name: o.schema() for o in options}
    return out


_MATCH_ENTRY = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["field", "integration_field"],
            "properties": {
                "field": {"type": "string", "minLength": 1},
                "integration_field": {"type": "string", "minLength": 1},
                "ignore_case": {"type": ["boolean", "null"]},
                "trim": {"type": ["boolean", "null"]},
            },
        },
    ]
}

FIELD_SUBOPTIONS: tuple[Option, ...] = (
    Option("field", "str", "Local field.", constraints={"minLength": 1}),
    Option("integration_field", "str", "Integration field.", constraints={"minLength": 1}),
    Option("direction", "str", "Direction of this field; defaults to the mapping's.", choices=DIRECTIONS),
    Option("constant", "raw", "A value always written to the one field named."),
    Option("transform", "list", "Transforms applied to the value written.", elements="raw",
           constraints={"items": {"oneOf": [{"type": "string"}, {"type": "object", "minProperties": 1, "maxProperties": 1}]}}),
    Option("value_map", "dict", "Values translated between the sides.",
           constraints={"additionalProperties": False, "required": ["values"],
                        "properties": {"values": {"type": "object", "minProperties": 1}, "default": {}, "local_default": {}}}),
    Option("lookup", "str", "Mapping whose couplings translate this reference.", constraints={"pattern": NAME_PATTERN}),
    Option("clear_value_on_failed_lookup", "bool", "Empty the field when its lookup fails.", default=False),
)

OPTIONS: tuple[Option, ...] = (
    Option("local_table", "str", "Table on the local side.", required=True, constraints={"minLength": 1}),
    Option("local_key", "str", "Key field of the local table.", required=True, no_log=False, constraints={"minLength": 1}),
    Option("local_modified_field", "str", "Modified-on field of the local table.", constraints={"minLength": 1}),
    Option("local_modified_format", "str", "How the local modified-on field stores its values.", default="auto", choices=MODIFIED_FORMATS),
    Option("integration_table", "str", "Table or entity set on the integration side.", required=True, constraints={"minLength": 1}),
    Option("integration_key", "str", "Key field of the integration table.", required=True, no_log=False, constraints={"minLength": 1}),
    Option("integration_modified_field", "str", "Modified-on field of the integration table.", constraints={"minLength": 1}),
    Option("integration_modified_format", "str", "How the integration modified-on field stores its values.", default="auto",
           choices=MODIFIED_FORMATS),
    Option("direction", "str", "Which way records flow.", default="to_integration", required=True, choices=DIRECTIONS),
    Option("fields", "list", "Field mappings.", required=True, elements="dict", suboptions=FIELD_SUBOPTIONS, constraints={"minItems": 1}),
    Option("table_filter", "str", "Which local records the mapping sees."),
    Option("integration_table_filter", "str", "Which integration records the mapping sees."),
    Option("synch_only_coupled_records", "bool", "Whether modified-records runs only synchronise coupled records.", default=True,
           spec_default=False),
    Option("dependencies", "list", "Mappings synchronised before this one.", default=[], elements="str",
           constraints={"items": {"type": "string", "pattern": NAME_PATTERN}, "uniqueItems": True}),
    Option("update_conflict_resolution", "str", "What a record changed on both sides gets.", default="none",
           choices=UPDATE_CONFLICT_RESOLUTIONS, spec_default=False),
    Option("merge_fallback", "str", "How a merge resolves a field changed on both sides.", default="none", choices=MERGE_FALLBACKS,
           spec_default=False),
    Option("deletion_conflict_resolution", "str", "What a coupling whose record was deleted gets.", default="none",
           choices=DELETION_CONFLICT_RESOLUTIONS, spec_default=False),
    Option("propagate_deletions", "bool", "Delete the partner of a deleted record.", default=False, spec_default=False),
    Option("max_deletes", "int", "Most records a job may delete.", constraints={"minimum": 0}),
    Option("max_deletes_percent", "float", "Largest share of the coupled records a job may delete.", constraints={"minimum": 0, "maximum": 100}),
    Option("max_changes", "int", "Most coupled records a job may overwrite or delete.", constraints={"minimum": 0}),
    Option("max_changes_percent", "float", "Largest share of the coupled records a job may overwrite or delete.",
           constraints={"minimum": 0, "maximum": 100}),
    Option("match_on", "list", "Fields that identify the same record on both sides.", elements="raw", constraints={"minItems": 1, "items": _MATCH_ENTRY}),
    Option("initial_direction", "str", "Which side wins the first synchronisation of a matched pair.", choices=INITIAL_DIRECTIONS),
)

# the job's limits: checked before a job writes anything (job.py)
GUARDS = ("max_deletes", "max_deletes_percent", "max_changes", "max_changes_percent")

# what a declaration needs besides its name; table_mapping requires them with state=present
REQUIRED = tuple(o.name for o in OPTIONS if o.required and o.default is None)

DECLARATION_OPTIONS: dict[str, Any] = {o.name: o.argument_spec() for o in OPTIONS}
FIELD_OPTIONS: dict[str, Any] = {o.name: o.argument_spec() for o in FIELD_SUBOPTIONS}

# the mapping's own name: table_mapping documents and takes it with its state, outside the declaration's options
_NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN, "maxLength": 128}


def declaration_argument_spec() -> dict[str, Any]:
    """The argument spec of a declaration's options (a copy: AnsibleModule fills in the specs it is given)."""
    return copy.deepcopy(DECLARATION_OPTIONS)


def declaration_schema() -> dict[str, Any]:
    """The JSON Schema of a stored declaration (defaults filled in by mapping.normalize)."""
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    out.update(object_schema(OPTIONS, required=["name"] + [o.name for o in OPTIONS if o.required]))
    out["properties"] = {"name": dict(_NAME_SCHEMA), **out["properties"]}
    return out


def declaration_defaults() -> dict[str, Any]:
    """What a declaration that leaves an option out gets (the required options have none)."""
    return {o.name: copy.deepcopy(o.default) for o in OPTIONS if not o.required}


def exported(definition: dict[str, Any]) -> dict[str, Any]:
    """A stored definition as table_mapping input: its name and the options that are set."""
    return {k: v for k, v in definition.items() if v is not None and (k == "name" or k in DECLARATION_OPTIONS)}
