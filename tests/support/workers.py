"""Inventories of local-connection worker hosts for playbooks/distributed_sync.yml, and one application user per worker
on the Dataverse double."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from .odata_service import ODataService


def client_id(worker: int) -> str:
    return "00000000-0000-4000-8000-%012d" % (worker + 1)


def write_inventory(path: str, workers: int, host_vars: Callable[[int], dict[str, Any]], **group_vars: Any) -> None:
    """``workers`` hosts w0, w1, ... in the tablesync_workers group, run on this machine with this Python."""
    hosts = {"w%d" % w: host_vars(w) for w in range(workers)}
    group = dict(group_vars, ansible_connection="local", ansible_python_interpreter=sys.executable)
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"tablesync_workers": {"hosts": hosts, "vars": group}}, out, indent=1)  # why: JSON is YAML, and keeps dicts typed


def application_users(svc: ODataService, endpoint: dict[str, Any], workers: int) -> Callable[[int], dict[str, Any]]:
    """Host vars that give each worker an application user of its own on the double (its client id and secret)."""
    users = {}
    for worker in range(workers):
        secret = "worker-secret-%d" % (worker + 1)
        svc.add_client(client_id(worker), secret)
        users[worker] = dict(endpoint, client_id=client_id(worker), client_secret=secret)
    return lambda worker: {"tablesync_integration": users[worker]}
