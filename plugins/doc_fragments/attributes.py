# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """How the collection's modules run: on the controller's POSIX host, as ordinary tasks (async too).

    Each module still says what check mode and --diff do for it, unless it only reads (INFO_MODULE)."""

    DOCUMENTATION = r"""
options: {}
attributes:
  platform:
    platforms: posix
  async:
    support: full
  action:
    support: none
  bypass_host_loop:
    support: none
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Reads only; the module never reports C(changed).
  diff_mode:
    support: none
"""
