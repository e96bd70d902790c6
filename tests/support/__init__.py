"""Test support code.

``tests.support.fixtures`` holds the shared pytest fixtures. ``tests.support.odata_service``
is an HTTP test double of Dataverse Web API v9.2 and Business Central API v2.0; its main names
are re-exported lazily (importing this package does not start or import the double):

    from tests.support import ODataService, FaultPlan
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ODataService": "odata_service",
    "RequestRecord": "odata_service",
    "FaultPlan": "faults",
    "BatchChangeSet": "batch_codec",
    "BatchRequestPart": "batch_codec",
    "encode_json_request": "batch_codec",
    "encode_multipart_request": "batch_codec",
    "flatten_responses": "batch_codec",
    "parse_multipart_response": "batch_codec",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
