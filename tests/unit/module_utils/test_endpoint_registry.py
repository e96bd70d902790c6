"""The endpoint registry (the only list of endpoint types), the shared chunks() helper and the Table interface's defaults."""

from __future__ import annotations

import sqlite3

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import endpoint as endpoint_module
from ansible_collections.tablesync.integration.plugins.module_utils import module_support
from ansible_collections.tablesync.integration.plugins.module_utils.chunks import chunks
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import ENDPOINT_TYPES, REGISTRY, is_web, open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError


def test_the_registry_lists_every_type_once_and_tells_web_from_sql():
    assert ENDPOINT_TYPES == ("sqlite", "postgresql", "mysql", "dataverse", "business_central", "odata")
    assert [t for t in ENDPOINT_TYPES if is_web(t)] == ["dataverse", "business_central", "odata"]
    assert not is_web("oracle") and not is_web(None) and not is_web(["odata"])
    assert all(name == kind.name for name, kind in REGISTRY.items())
    assert module_support.ENDPOINT_SPEC["type"]["choices"] == list(ENDPOINT_TYPES)


def test_the_interface_module_names_no_implementation():
    # why: endpoint.py is imported by every implementation; naming one of them there closes an import circle
    assert not any(hasattr(endpoint_module, name) for name in ("open_endpoint", "ENDPOINT_TYPES", "SQL_TYPES", "WEB_TYPES"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (None, "the local endpoint is not configured"),
        ({"type": "oracle"}, "local: unknown endpoint type 'oracle', expected one of sqlite, postgresql, mysql, dataverse, business_central, odata"),
        ({"type": ["sqlite"]}, "unknown endpoint type"),
    ],
)
def test_open_endpoint_refuses_what_it_cannot_open(options, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        open_endpoint("local", options)


def test_a_table_without_change_tracking_refuses_track_changes(tmp_path):
    path = tmp_path / "erp.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customer (no TEXT PRIMARY KEY, name TEXT)")
    endpoint = open_endpoint("local", {"type": "sqlite", "path": str(path)})
    try:
        table = endpoint.table("customer", "no")
        assert not table.supports_change_tracking
        with pytest.raises(EndpointError, match="local table customer has no change tracking"):
            table.track_changes(["no", "name"])
    finally:
        endpoint.close()


def test_chunks_slices_in_order_and_never_loops_on_a_size_below_one():
    assert list(chunks(list(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunks((1, 2), 5)) == [[1, 2]]
    assert list(chunks([], 3)) == []
    assert list(chunks([1, 2], 0)) == [[1], [2]]
