"""Every module's EXAMPLES can be pasted into a task list as they are."""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

MODULES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "plugins", "modules")
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith(".py") and name != "__init__.py")
PLAY_KEYWORDS = {"hosts", "tasks", "roles", "pre_tasks", "post_tasks", "handlers", "gather_facts"}


@pytest.mark.parametrize("module", MODULES)
def test_examples_are_named_tasks_of_the_collection(module):
    examples = importlib.import_module("ansible_collections.tablesync.integration.plugins.modules.%s" % module).EXAMPLES
    tasks = yaml.safe_load(examples)
    assert isinstance(tasks, list) and tasks
    for task in tasks:
        assert not PLAY_KEYWORDS & set(task), "%s: an example is a play, not a task: %s" % (module, task.get("name"))
        assert task.get("name"), "%s: an example task has no name" % module
        assert any(key.startswith("tablesync.integration.") or key.startswith("ansible.builtin.") for key in task), task["name"]
