"""The execution environment definition: valid for ansible-builder, and naming every package the modules import."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys

import yaml
from ansible_builder.ee_schema import validate_schema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EE_FILE = os.path.join(ROOT, "meta", "execution-environment.yml")
BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")
# why: Python packages every Ansible node has, not dependencies of the collection
PROVIDED = {"ansible", "ansible_collections", "__future__"}


def load_definition() -> dict:
    with open(EE_FILE) as handle:
        return yaml.safe_load(handle)


def requirement_names(path: str) -> set[str]:
    names = set()
    with open(path) as handle:
        for line in handle:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(canonical(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0]))
    return names


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_levels() -> set[str]:
    """Top-level names of every module imported anywhere under plugins/, at module level or inside a function."""
    found = set()
    for directory, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(directory, name)) as handle:
                    tree = ast.parse(handle.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        found.update(alias.name.split(".")[0] for alias in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                        found.add(node.module.split(".")[0])
    return found


def driver_modules() -> set[str]:
    """The DB-API modules SQLAlchemy imports for the database types (``postgresql+psycopg``: psycopg)."""
    from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import DRIVERS

    return {url.partition("+")[2] for url in DRIVERS.values() if "+" in url}


def third_party_distributions() -> set[str]:
    modules = (imported_top_levels() | driver_modules()) - PROVIDED - set(sys.stdlib_module_names)
    providers = importlib.metadata.packages_distributions()
    missing = sorted(m for m in modules if m not in providers)
    assert not missing, "imported but not installed here, cannot map to a distribution: %s" % missing
    return {canonical(dist) for m in modules for dist in providers[m]}


def test_definition_follows_the_version_3_schema():
    definition = load_definition()
    assert definition["version"] == 3
    validate_schema(definition)  # raises DefinitionError naming the offending key
    dependencies = definition["dependencies"]
    # why: ansible-builder reads these two, relative to the collection root, for a collection it installs
    assert dependencies["python"] == "requirements.txt" and dependencies["system"] == "bindep.txt"
    assert os.path.isfile(os.path.join(ROOT, "requirements.txt")) and os.path.isfile(os.path.join(ROOT, "bindep.txt"))
    assert dependencies["ansible_core"]["package_pip"].startswith("ansible-core>=2.19")


def test_every_package_the_modules_import_is_a_requirement():
    distributions = third_party_distributions()
    # the scan finds what the engine is known to need: a scan that finds nothing would pass vacuously
    assert {"sqlalchemy", "jsonschema", "odata-query", "sly", "python-dateutil", "psycopg", "pymysql", "requests"} <= distributions
    declared = requirement_names(os.path.join(ROOT, load_definition()["dependencies"]["python"]))
    assert distributions - declared == set(), "imported by plugins/ but missing from requirements.txt"
    assert "ansible-core" not in declared  # a controller requirement, not one of the node that runs the modules


def test_ansible_builder_creates_a_build_context(tmp_path):
    # The definition as ansible-builder sees it at the collection root: its files beside it.
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(EE_FILE, project / "execution-environment.yml")
    for name in ("requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(ROOT, name), project / name)
    context = tmp_path / "context"
    proc = subprocess.run([BUILDER, "create", "-f", str(project / "execution-environment.yml"), "-c", str(context),
                           "--output-filename", "Containerfile"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (context / "Containerfile").read_text()
    assert "quay.io/centos/centos:stream9" in containerfile
    assert requirement_names(str(context / "_build" / "requirements.txt")) == requirement_names(os.path.join(ROOT, "requirements.txt"))
    assert (context / "_build" / "bindep.txt").read_text() == (project / "bindep.txt").read_text()


def test_ansible_builder_finds_the_requirements_of_the_installed_collection(tmp_path):
    # What a build of an execution environment that lists this collection does: introspect its meta file.
    collections = tmp_path / "collections" / "ansible_collections" / "tablesync"
    collections.mkdir(parents=True)
    shutil.copytree(ROOT, collections / "integration", symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "collections", "tests", "benchmarks", "*.sqlite"))
    proc = subprocess.run([BUILDER, "introspect", str(tmp_path / "collections")], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(proc.stdout)
    python = {canonical(re.split(r"[\[<>=!~; ]", line, maxsplit=1)[0]) for line in data["python"]}
    assert python == requirement_names(os.path.join(ROOT, "requirements.txt"))
    assert all(line.endswith("# from collection tablesync.integration") for line in data["python"] + data["system"])
    assert any(line.startswith("libpq ") for line in data["system"])
