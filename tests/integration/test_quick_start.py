"""The README's install steps and quick start, as a new user runs them: a fresh virtualenv, the built
tarball installed with ansible-galaxy, the collection's requirements.txt installed with pip, then the
quick start's commands and playbook pasted as they are, against SQLite files in an empty directory.

pip runs with this machine's own configuration (its package indexes), as `make venv` does."""

from __future__ import annotations

import glob
import os
import re
import sqlite3
import subprocess
import sys
import venv

from tests.integration.conftest import ROOT

BIN = os.path.dirname(sys.executable)
# why: the user's file requires no ansible-core (a controller requirement); this is the controller too
CONTROLLER = "ansible-core>=2.19"


def readme_quick_start() -> list[tuple[str, str]]:
    """The fenced blocks of the README's quick start section: (language, text)."""
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    section = readme[readme.index("## Quick start"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"^```(\w+)\n(.*?)^```", section, flags=re.S | re.M)


def run(cmd: list[str] | str, env: dict[str, str], cwd: str, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, shell=isinstance(cmd, str))
    assert proc.returncode == 0, "%s failed (%d):\n%s\n%s" % (cmd, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:])
    return proc


def test_readme_quick_start_runs_from_the_tarball_in_a_fresh_virtualenv(tmp_path):
    blocks = readme_quick_start()
    assert [lang for lang, _text in blocks] == ["bash", "yaml", "bash"], "the quick start is: create databases, playbook, run"
    (_sh, create_databases), (_yaml, playbook), (_sh2, commands) = blocks
    playbook_name = playbook.splitlines()[0].lstrip("# ").strip()
    assert playbook_name == "sync.yml" and "ansible-playbook sync.yml" in commands

    # A user's machine: a virtualenv of its own, no checkout on any path, no project ansible.cfg.
    home = tmp_path / "home"
    home.mkdir()
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    user_bin = str(env_dir / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(HOME=str(home), PATH=user_bin + os.pathsep + env.get("PATH", ""), ANSIBLE_FORCE_COLOR="0")

    # the tarball, as `make build` makes it
    run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "dist"), ROOT], env, str(tmp_path))
    (tarball,) = glob.glob(str(tmp_path / "dist" / "tablesync-integration-*.tar.gz"))

    # the README's install steps: ansible-core for the controller, the collection, its requirements
    run([os.path.join(user_bin, "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", CONTROLLER], env, str(tmp_path))
    run([os.path.join(user_bin, "ansible-galaxy"), "collection", "install", tarball], env, str(tmp_path))
    installed = home / ".ansible" / "collections" / "ansible_collections" / "tablesync" / "integration"
    run([os.path.join(user_bin, "python"), "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
         "-r", str(installed / "requirements.txt")], env, str(tmp_path))

    work = tmp_path / "work"
    work.mkdir()
    run(["bash", "-euc", create_databases], env, str(work))
    (work / playbook_name).write_text(playbook)
    first = run([os.path.join(user_bin, "ansible-playbook"), playbook_name], env, str(work))
    assert "changed=2" in first.stdout and "failed=0" in first.stdout, first.stdout
    assert "CUSTOMER" in first.stdout  # the summary the playbook shows
    with sqlite3.connect(str(work / "crm.sqlite")) as crm:
        accounts = crm.execute("select accountnumber, name, emailaddress1 from account order by accountnumber").fetchall()
    assert accounts == [("C0001", "Alpine Ski House", "info@alpineskihouse.example"), ("C0002", "Fabrikam", "sales@fabrikam.example")]

    second = run([os.path.join(user_bin, "ansible-playbook"), playbook_name], env, str(work))
    assert "changed=0" in second.stdout and "failed=0" in second.stdout, second.stdout

    # and the playbook is one ansible-lint's production profile accepts
    lint_env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(home / ".ansible" / "collections"))
    run([os.path.join(BIN, "ansible-lint"), "--offline", "--profile", "production", "--nocolor", playbook_name], lint_env, str(work))
