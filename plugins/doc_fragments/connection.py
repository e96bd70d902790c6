# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The store and endpoint options shared by every module of the collection."""

    DOCUMENTATION = r"""
options:
  store:
    description:
      - Where mappings, couplings, watermarks and the job log are kept.
      - A path to a SQLite file (the embedded default, created on first use), or a database URL
        such as V(postgresql://sync@db.example.com/tablesync) for a store shared by several controllers.
      - The store never holds passwords or client secrets.
    type: str
    default: ~/.tablesync/store.sqlite
  local:
    description:
      - The local side (the ERP), as a dictionary. Set it once per play with
        C(module_defaults) and the C(group/tablesync.integration.integration) action group.
    type: dict
    suboptions: &endpoint
      type:
        description: Endpoint type.
        type: str
        required: true
        choices: [sqlite, postgresql, mysql, dataverse, business_central, odata]
      path:
        description: SQLite database file, for C(type=sqlite).
        type: path
      url:
        description:
          - Database URL (SQLAlchemy form, for example V(postgresql://user@host/db)) or the service URL of a web endpoint.
        type: str
      host:
        description: Database server host name.
        type: str
      port:
        description: Database server port.
        type: int
      database:
        description: Database name.
        type: str
      user:
        description: Database user.
        type: str
      password:
        description: Database password. Never written to the store, the job log or any output.
        type: str
      schema:
        description: Database schema for table names given without one.
        type: str
      connect_options:
        description: Extra driver options passed in the connection URL query, such as C(sslmode).
        type: dict
  integration:
    description:
      - The integration side (the CRM), as a dictionary with the same keys as O(local).
    type: dict
    suboptions: *endpoint
"""
