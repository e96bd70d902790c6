"""The built collection tarball, installed into a clean collections path, runs the demo on its own."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tarfile

from tests.integration.conftest import ROOT
from tests.support.fixtures import rows

BIN = os.path.dirname(sys.executable)
USER_FILES = {"MANIFEST.json", "FILES.json", "README.md", "COPYING", "CHANGELOG.rst", "requirements.txt", "bindep.txt",
              "meta", "plugins", "roles", "playbooks", "docs", "changelogs"}


def _run(cmd: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd[0], proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc


def test_tarball_installs_and_runs_the_demo(tmp_path):
    # Only the installed copy is visible: no checkout on any collections path, no project ansible.cfg.
    collections = tmp_path / "collections"
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nretry_files_enabled = False\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=BIN + os.pathsep + env.get("PATH", ""),
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_CALLBACKS_ENABLED="tablesync.integration.sync_summary",
    )
    env.pop("PYTHONPATH", None)

    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "dist"), ROOT], env, str(tmp_path))
    (tarball,) = glob.glob(str(tmp_path / "dist" / "tablesync-integration-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/sync.py" in names and "playbooks/demo.yml" in names and "roles/full_sync/meta/argument_specs.yml" in names
    # only what users need: no development, CI, test or local files
    assert {n.split("/")[0] for n in names} == USER_FILES
    for needed in ("meta/runtime.yml", "meta/execution-environment.yml", "changelogs/changelog.yaml",
                   "docs/docsite/links.yml", "docs/docsite/extra-docs.yml", "docs/docsite/rst/guide_install.rst"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith("changelogs/fragments/") or n.endswith((".sqlite", ".pyc")) or "__pycache__" in n]

    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--collections-path", str(collections), tarball], env, str(tmp_path))
    installed = collections / "ansible_collections" / "tablesync" / "integration"
    with open(installed / "MANIFEST.json") as handle:
        assert json.load(handle)["collection_info"]["version"]

    demo_dir = tmp_path / "demo"
    playbook = str(installed / "playbooks" / "demo.yml")
    proc = _run(
        [os.path.join(BIN, "ansible-playbook"), playbook, "-e", json.dumps({"demo_dir": str(demo_dir), "demo_customers": 120})],
        env, str(tmp_path),
    )
    assert "failed=0" in proc.stdout and "SYNC SUMMARY" in proc.stdout
    customers = sorted(r[0] for r in rows(str(demo_dir / "erp.sqlite"), "select no from customer"))
    assert len(customers) == 120
    assert sorted(r[0] for r in rows(str(demo_dir / "crm.sqlite"), "select accountnumber from account")) == customers

    doc = _run([os.path.join(BIN, "ansible-doc"), "tablesync.integration.sync"], env, str(tmp_path)).stdout
    assert str(installed / "plugins" / "modules" / "sync.py") in doc.splitlines()[0]
    for expected in ("OPTIONS", "after_full_sync", "EXAMPLES", "RETURN VALUES", "synch_only_coupled_records", "password"):
        assert expected in doc
