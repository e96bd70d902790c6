# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The options of a mapping declaration, as table_mapping takes them and table_mapping_info exports them.

    Static YAML, so ansible-doc and ansible-test read it without running code: the names, types, defaults and
    choices here are those of the options table (module_utils.declaration_spec.OPTIONS), which a unit test
    (test_options_table) checks."""

    DOCUMENTATION = r"""
options:
  local_table:
    description: Table on the local side. Required with O(state=present).
    type: str
  local_key:
    description: Key field of O(local_table).
    type: str
  local_modified_field:
    description: Modified-on field of O(local_table); modified-records runs then read only records changed since the last run.
    type: str
  local_modified_format:
    description:
      - How O(local_modified_field) stores its values. V(auto) detects it from the column's type and, for text and
        number columns (and SQLite, which has no date type), from the values stored.
      - V(iso) is ISO-8601 text (C(2025-03-01T12:00:00.000Z), C(2025-03-01 12:00:00), with or without fraction and
        offset), V(epoch_seconds) and V(epoch_milliseconds) the Unix epoch as numbers or numeric text, V(native)
        the database's own date-time type. Values without a time zone are taken as UTC.
      - Set it where V(auto) cannot tell, for example epoch seconds in a column that holds only values before 1973
        in milliseconds. A format the column's type cannot hold is refused when the mapping is declared.
    type: str
    choices: [auto, iso, epoch_seconds, epoch_milliseconds, native]
    default: auto
  integration_table:
    description: Table or entity set on the integration side. Required with O(state=present).
    type: str
  integration_key:
    description: Key field of O(integration_table).
    type: str
  integration_modified_field:
    description: Modified-on field of O(integration_table).
    type: str
  integration_modified_format:
    description: How O(integration_modified_field) stores its values; see O(local_modified_format).
    type: str
    choices: [auto, iso, epoch_seconds, epoch_milliseconds, native]
    default: auto
  direction:
    description: Which way records flow.
    type: str
    choices: [to_integration, from_integration, bidirectional]
    default: to_integration
  fields:
    description: Field mappings.
    type: list
    elements: dict
    suboptions:
      field:
        description: Local field.
        type: str
      integration_field:
        description: Integration field.
        type: str
      direction:
        description: Direction of this field; defaults to the mapping's and may only narrow it.
        type: str
        choices: [to_integration, from_integration, bidirectional]
      constant:
        description: A value always written to the one field named (O(fields[].field) or O(fields[].integration_field)).
        type: raw
      transform:
        description:
          - Transforms applied, in order, to the value written to the other side (after O(fields[].value_map) or
            O(fields[].lookup), before the conversion to the destination field's type).
          - "Each entry is a name or a one-key dict of a name and its argument: V(trim), V(upper), V(lower);
            V(truncate) (to the destination field's length) or C({truncate: 40});
            C({regex_replace: {pattern: '[^0-9+]', replacement: ''}});
            C({date_format: '%Y-%m-%d'}) (strftime); C({number_format: ',.2f'}) (a Python format specification)."
          - Text rules leave other values as they are. An unknown name is a validation error.
        type: list
        elements: raw
      value_map:
        description:
          - Option values translated between the sides, for example an ERP blocked flag to a CRM state code.
          - C(values) maps local values to integration values (keys are compared as text, so V(1), V(1.0) and V(true) are one key);
            a field that flows from the integration side reads it in reverse, so it must then be one-to-one.
          - C(default) is written to the integration side for a value C(values) does not list, C(local_default) to the local side;
            without them such a value fails its record. A null stays null.
        type: dict
      lookup:
        description:
          - Name of another mapping whose couplings translate this reference, for example V(SALESPEOPLE) for
            C(customer.salesperson_code -> account.ownerid). The value is an id of that mapping's records on the source side and
            becomes the coupled id on the other side.
          - The lookup makes this mapping depend on the other one, which must be declared first. A reference to a record
            that is not coupled yet fails its record, which is retried by later runs, unless
            O(fields[].clear_value_on_failed_lookup) is set.
        type: str
      clear_value_on_failed_lookup:
        description:
          - With O(fields[].lookup), a reference that cannot be translated (its record is not coupled in the lookup's
            mapping) empties the destination field and the record is written, instead of failing the record
            (Business Central's "clear value on failed sync").
          - A modified-records run writes the reference once the record changes again; a full synchronisation writes
            it as soon as the record it refers to is coupled.
          - Refused for a destination field that cannot be empty (not nullable). On a field mapped both ways the emptied value
            flows back when the record changes on the other side, like any other value; a one-way O(fields[].direction) avoids that.
        type: bool
        default: false
  table_filter:
    description:
      - Which local records the mapping sees, in the OData C($filter) language, for example V(blocked eq 0 and country in ('DK','SE')).
      - Checked against the table's columns when the mapping is declared; an unknown column or a value of another type than
        its column (a number column compared with text) is refused.
    type: str
  integration_table_filter:
    description: Which integration records the mapping sees, in the same language as O(table_filter).
    type: str
  synch_only_coupled_records:
    description:
      - Whether modified-records runs only synchronise coupled records (true), or also create and couple
        records for uncoupled ones (false). A full synchronisation always creates them.
      - When omitted, a new mapping gets V(true) and an existing mapping keeps its setting.
    type: bool
  dependencies:
    description:
      - Mappings that must be synchronised before this one. They must be declared already (declare mappings in dependency
        order), and no chain of dependencies (lookups included) may lead back to this mapping.
    type: list
    elements: str
    default: []
  update_conflict_resolution:
    description:
      - What a bidirectional mapping does with a record changed on both sides since the last synchronisation.
      - V(none) fails the record with a conflict error naming both ids and the fields that differ, and overwrites nothing.
      - V(local_wins) and V(integration_wins) write the winner's values to the other side.
      - V(merge) merges field by field against the values last synchronised (kept per coupling for such mappings),
        so edits of different fields on the two sides both survive; a field changed on both sides is resolved by O(merge_fallback).
        Records synchronised before V(merge) was chosen have no such values yet; every field that differs is then resolved by
        O(merge_fallback) once.
    type: str
    choices: [none, local_wins, integration_wins, merge]
  merge_fallback:
    description: How O(update_conflict_resolution=merge) resolves a field changed differently on both sides.
    type: str
    choices: [none, local_wins, integration_wins]
  deletion_conflict_resolution:
    description:
      - What happens when one record of a coupling was deleted and the deletion is not propagated.
      - V(none) fails the record; V(remove_coupling) forgets the coupling (a later full synchronisation creates the record again);
        V(restore_records) recreates the deleted record from its partner and couples the two.
      - Full synchronisations check every coupling; modified-records runs notice a deleted destination when its source changed.
    type: str
    choices: [none, remove_coupling, restore_records]
  propagate_deletions:
    description:
      - Delete the partner of a record deleted on a side whose records flow to the other side (full synchronisations),
        reported as C(deleted). Only when the partner did not change since the last synchronisation; otherwise
        O(deletion_conflict_resolution) applies.
    type: bool
  max_deletes:
    description: Stop a job before it writes anything when it would delete more records than this.
    type: int
  max_deletes_percent:
    description: Stop a job before it writes anything when it would delete more than this share (0-100) of the coupled records.
    type: float
  max_changes:
    description: Stop a job before it writes anything when it would overwrite or delete more coupled records than this.
    type: int
  max_changes_percent:
    description: Stop a job before it writes anything when it would overwrite or delete more than this share (0-100) of the coupled records.
    type: float
  match_on:
    description:
      - Fields that identify the same record on both sides. Wherever a synchronisation would create a record, in
        every mode, it first looks for the record of the other side (within its filter) with the same values. A
        single match, not coupled yet, is coupled and synchronised in the mapping's direction instead of
        duplicated; a full synchronisation matches all uncoupled records before it starts.
      - A key held by several records on either side, or by a record already coupled to another, is ambiguous;
        nothing is created, the record fails with an error starting with C(ambiguous match) that names the key and
        the records, and every later run retries it until the data is unambiguous.
      - Each entry is a field name of one of the field mappings (either side), or a dictionary with C(field),
        C(integration_field) and the normalisation options C(ignore_case) and C(trim). Values compare exactly
        unless C(ignore_case=true) (letter case is ignored) or C(trim=true) (surrounding spaces are ignored) is set;
        with them, two records whose values differ only in case or spaces hold the same key.
    type: list
    elements: raw
  initial_direction:
    description:
      - For a bidirectional mapping, which side wins the first synchronisation of a pair coupled but never
        synchronised (by matching or M(tablesync.integration.coupling)). Defaults to V(to_integration).
    type: str
    choices: [to_integration, from_integration]
"""
