"""Shared test set-up: the checkout importable as ansible_collections.tablesync.integration."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "tablesync", "integration")

if not os.path.exists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    try:
        os.symlink("../../..", LINK)
    except FileExistsError:  # why: pytest-xdist workers start together; another one made it first
        pass
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

pytest_plugins = ["tests.support.fixtures", "tests.support.databases", "tests.support.shared_customers"]

if TYPE_CHECKING:
    from tests.support.fixtures import Demo

DemoTemplate = Callable[..., str]


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> DemoTemplate:
    """The directory of a pristine demo of the given size, built once per test process.

    why: build_demo_databases.py's output depends only on its arguments (and the day), so a copy of
    one build is the same database as a fresh build, without a Python process per test."""
    # why: imported here, not at the top, so that pytest rewrites the plugin module's asserts
    from tests.support.fixtures import build_demo

    built: dict[tuple[int, int, int], str] = {}

    def template(customers: int = 200, items: int = 30, resources: int = 5) -> str:
        key = (customers, items, resources)
        if key not in built:
            directory = tmp_path_factory.mktemp("demo-template-%d-%d-%d" % key)
            build_demo(str(directory), customers=customers, items=items, resources=resources)
            built[key] = str(directory)
        return built[key]

    return template


def copy_demo(template: str, directory: str) -> Demo:
    """A demo in ``directory`` holding copies of a template's ERP and CRM (no store yet)."""
    from tests.support.fixtures import Demo

    os.makedirs(directory, exist_ok=True)
    demo = Demo(directory, os.path.join(directory, "erp.sqlite"), os.path.join(directory, "crm.sqlite"), os.path.join(directory, "store.sqlite"))
    shutil.copyfile(os.path.join(template, "erp.sqlite"), demo.erp)
    shutil.copyfile(os.path.join(template, "crm.sqlite"), demo.crm)
    return demo


@pytest.fixture
def demo(tmp_path, demo_template: DemoTemplate) -> Iterator[Demo]:
    """Small demo databases (200 customers) with the default mappings not yet declared.

    Same databases as tests.support.fixtures' ``demo``, copied from a template built once."""
    d = copy_demo(demo_template(), str(tmp_path / "demo"))
    yield d
    d.close()
