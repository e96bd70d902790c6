"""Helpers to run ansible-playbook against the checkout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "playbooks")


def playbook_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "collections")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("ANSIBLE_FORCE_COLOR", "0")
    return env


def ansible_playbook(playbook: str, *args: str, check: bool = True, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess:
    """Run ansible-playbook on the checkout; ``env`` overrides variables of playbook_env() (None removes one)."""
    path = playbook if os.path.isabs(playbook) else os.path.join(PLAYBOOKS, playbook)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), path, *args]
    environ = playbook_env()
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run(cmd, env=environ, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    if check and proc.returncode != 0:
        raise AssertionError("ansible-playbook failed (%d):\n%s\n%s" % (proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
    return proc


def extra_vars(**values: object) -> list[str]:
    return ["-e", json.dumps(values)]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: Ansible's worker calls setsid, so a process-group kill misses the module."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the sync's whole process tree, the module process first, and wait until it is gone."""
    for pid in reversed([proc.pid, *descendants(proc.pid)]):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while descendants(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def play(demo, tmp_path):
    """Run a test playbook on the demo databases (or ``databases``); returns the result it wrote to ``result_file``
    (an empty dict when it wrote none) with the run's output as ``stdout`` and its exit status as ``rc``.

    ``check`` False lets the playbook fail (the test looks at ``rc``)."""

    def run(playbook: str, *args: str, check: bool = True, databases=None, **variables: object) -> dict:
        target = databases or demo
        result_file = str(tmp_path / "result.json")
        if os.path.exists(result_file):
            os.remove(result_file)
        values = {"store_path": target.store_path, "erp": target.erp, "crm": target.crm, "result_file": result_file}
        values.update(variables)
        proc = ansible_playbook(playbook, *extra_vars(**values), *args, check=check)
        result = {}
        if os.path.exists(result_file):
            with open(result_file) as handle:
                result = json.load(handle)
        result.update(stdout=proc.stdout + proc.stderr, rc=proc.returncode)
        return result

    return run


@pytest.fixture
def run_sync(play):
    """Run the sync task through ansible-playbook on the demo databases; returns its result."""

    def run(*args: str, **variables: object) -> dict:
        return play("sync.yml", *args, **variables)

    return run
