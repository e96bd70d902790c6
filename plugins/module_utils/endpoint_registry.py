# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint types: which implementation opens each one, and whether it is a database or a web service.

This is the only list of endpoint types; the modules' ``type`` choices come from it. The
interface (endpoint.py) knows no implementation; the implementations are imported here,
when an endpoint of their type is opened (why: a module start does not load SQLAlchemy and
requests before it needs them, and a missing library is reported by the modules first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import Endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError


def _open_sql(side: str, options: Mapping[str, Any]) -> Endpoint:
    from ansible_collections.tablesync.integration.plugins.module_utils.sql_endpoint import SqlEndpoint

    return SqlEndpoint(side, options)


def _open_web(side: str, options: Mapping[str, Any]) -> Endpoint:
    from ansible_collections.tablesync.integration.plugins.module_utils.odata_endpoint import ODataEndpoint

    return ODataEndpoint(side, options)


@dataclass(frozen=True)
class EndpointType:
    """One endpoint type: ``web`` (an OData service, reached through requests) or a SQL database."""

    name: str
    web: bool
    factory: Callable[[str, Mapping[str, Any]], Endpoint]


REGISTRY: dict[str, EndpointType] = {
    t.name: t
    for t in (
        EndpointType("sqlite", False, _open_sql),
        EndpointType("postgresql", False, _open_sql),
        EndpointType("mysql", False, _open_sql),
        EndpointType("dataverse", True, _open_web),
        EndpointType("business_central", True, _open_web),
        EndpointType("odata", True, _open_web),
    )
}
ENDPOINT_TYPES = tuple(REGISTRY)


def is_web(kind: Any) -> bool:
    """Whether ``kind`` is the type of a web endpoint (False for SQL and unknown types)."""
    found = REGISTRY.get(kind) if isinstance(kind, str) else None
    return found is not None and found.web


def open_endpoint(side: str, options: Mapping[str, Any] | None) -> Endpoint:
    """Create the endpoint an option dict describes (``type`` selects the implementation)."""
    if not options:
        raise ConfigurationError("the %s endpoint is not configured (option '%s')" % (side, side))
    kind = options.get("type")
    found = REGISTRY.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise ConfigurationError("%s: unknown endpoint type %r, expected one of %s" % (side, kind, ", ".join(ENDPOINT_TYPES)))
    return found.factory(side, options)
