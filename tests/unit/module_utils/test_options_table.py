"""The options table of a mapping declaration (declaration_spec.OPTIONS) against what is built from it or kept beside it,
and the options of a run (job_options.RunOptions)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from ansible_collections.tablesync.integration.plugins.doc_fragments.declaration import ModuleDocFragment
from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import (
    DECLARATION_OPTIONS,
    OPTIONS,
    REQUIRED,
    Option,
    declaration_defaults,
)
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import JobOptions, RunOptions, job_options
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import DEFAULTS, SCHEMA, Mapping, normalize
from tests.support.fixtures import customer_account_mapping

# what the doc fragment states of an option, as ansible-doc reads it
_DOCUMENTED = ("type", "default", "choices", "elements")


def _documented(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in _DOCUMENTED if k in doc}
    if "suboptions" in doc:
        out["options"] = {name: _documented(sub) for name, sub in doc["suboptions"].items()}
    return out


def _stated(spec: dict[str, Any]) -> dict[str, Any]:
    out = {k: spec[k] for k in _DOCUMENTED if k in spec}
    if "options" in spec:
        out["options"] = {name: _stated(sub) for name, sub in spec["options"].items()}
    return out


def test_the_doc_fragment_documents_the_table_names_types_defaults_and_choices():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert list(documented) == [o.name for o in OPTIONS]  # the same options, in the same order
    for option in OPTIONS:
        assert _documented(documented[option.name]) == _stated(option.argument_spec()), option.name


def test_a_disagreeing_doc_fragment_is_noticed():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    changed = dataclasses.replace(next(o for o in OPTIONS if o.name == "merge_fallback"), choices=("none", "local_wins"))
    assert _documented(documented["merge_fallback"]) != _stated(changed.argument_spec())


def test_the_mapping_model_has_a_field_per_option_with_its_default():
    fields = {f.name: f for f in dataclasses.fields(Mapping)}
    for option in OPTIONS:
        assert option.name in fields, option.name
        f = fields[option.name]
        if option.required:
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, option.name
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            assert default == option.default, option.name
    declared = customer_account_mapping(fields=[{"field": "name", "integration_field": "name"}], max_deletes=5, match_on=["name"],
                                        dependencies=["CURRENCY"])
    built, stored = Mapping.from_definition(declared), normalize(declared)
    assert {o.name: getattr(built, o.name) for o in OPTIONS if o.name != "fields"} == {o.name: stored[o.name] for o in OPTIONS if o.name != "fields"}
    assert built.guards == {"max_deletes": 5}
    built.dependencies.append("SALESPEOPLE")
    assert built.definition["dependencies"] == ["CURRENCY"]  # the model's lists are its own


def test_the_schema_defaults_and_argument_spec_come_from_the_table():
    names = [o.name for o in OPTIONS]
    assert list(SCHEMA["properties"]) == ["name", *names]
    assert SCHEMA["required"] == ["name", *[o.name for o in OPTIONS if o.required]]
    assert list(DECLARATION_OPTIONS) == names
    assert DEFAULTS == declaration_defaults() and set(DEFAULTS) == {o.name for o in OPTIONS if not o.required}
    # table_mapping requires what has no default; direction has one (to_integration)
    assert REQUIRED == ("local_table", "local_key", "integration_table", "integration_key", "fields")


@pytest.mark.parametrize("option, value, stored", [
    (Option("x", "str", "x", choices=("a", "b")), None, {"enum": ["a", "b", None]}),
    (Option("x", "str", "x", default="a", choices=("a", "b")), "a", {"enum": ["a", "b"]}),
    (Option("x", "int", "x", constraints={"minimum": 0}), None, {"type": ["integer", "null"], "minimum": 0}),
    (Option("x", "bool", "x", default=False), False, {"type": "boolean"}),
    (Option("x", "raw", "x"), None, {}),
])
def test_an_option_schema_is_nullable_only_when_it_defaults_to_none(option, value, stored):
    assert {k: v for k, v in option.schema().items() if k != "description"} == stored
    assert option.default == value


def test_a_run_takes_its_options_from_module_parameters_once():
    params = {"batch_size": 40, "max_reported_records": 7, "watermark_overlap": 5, "lock_timeout": 2.0, "rebind": True,
              "read_ahead": False, "skip_after_failures": 0, "mode": "full", "store": "x", "records": None}
    run = RunOptions.from_params(params, check_mode=True, diff=True)
    assert run == RunOptions(dry_run=True, batch_size=40, max_records=7, watermark_overlap=5, lock_timeout=2.0, rebind=True,
                             read_ahead=False, skip_after_failures=0, field_diff=True)
    assert RunOptions.from_params({"batch_size": 10}) == RunOptions(batch_size=10)  # what a module does not take keeps its default
    job = job_options(run, mode="full", create_uncoupled=True)
    assert (job.mode, job.create_uncoupled, job.dry_run, job.batch_size, job.max_records, job.watermark_overlap, job.read_ahead,
            job.skip_after_failures, job.field_diff) == ("full", True, True, 40, 7, 5, False, 0, True)
    # the defaults of a run are a job's defaults
    assert job_options(RunOptions()) == JobOptions()
