# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sync_summary
short_description: A readable per-mapping table of a sync result
version_added: 0.1.0
description:
  - Turns the result of M(tablesync.integration.sync) into lines of a table, one per sync job with its
    counts and duration, followed by the failed records.
author:
  - tablesync developers (@tablesync)
options:
  _input:
    description: A registered result of M(tablesync.integration.sync).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Print what the sync did
  ansible.builtin.debug:
    msg: "{{ sync_result | tablesync.integration.sync_summary }}"
"""

RETURN = r"""
_value:
  description: Lines of the table.
  type: list
  elements: str
"""

from ansible_collections.tablesync.integration.plugins.module_utils.report import summary_lines


def sync_summary(result: dict) -> list:
    return summary_lines(result.get("jobs") or [], result.get("errors") or [])


class FilterModule(object):
    def filters(self):
        return {"sync_summary": sync_summary}
