"""Generated scenarios: modified-records syncs as trustworthy as full syncs, judged by an independent model.

Each seed gives a scenario (tests/support/scenario_model.py): a profile (direction, modified-on
forms, matching, policies) and steps (inserts, updates, touches, deletes, bulk updates with one
stamp, late commits behind the watermark, far-future stamps, bad text, duplicate keys, CRM edits,
inserts and deletes, contacts that look their customer up, and full / modified / single-mapping
syncs, some killed with SIGKILL between two store commits). The steps are written to fresh SQLite
files, the engine runs them as the modules do, and after every completed sync the model says what
the two databases and the store must hold.

    TABLESYNC_SCENARIO_SEED=123 pytest tests/unit/scenarios/test_generated_syncs.py   # one seed, shrunk
    TABLESYNC_SCENARIOS=20000 pytest tests/unit/scenarios/test_generated_syncs.py     # ten times as many
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import sqlite3
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.scenario_model import STEP_FUNCTIONS, Model, Profile, Scenario, Sync, Violation, describe_step, generate

BATCHES = 40
TOTAL = int(os.environ.get("TABLESYNC_SCENARIOS", "2000"))
PER_BATCH = math.ceil(TOTAL / BATCHES)
ONLY_SEED = os.environ.get("TABLESYNC_SCENARIO_SEED")
SHRINK_SECONDS = float(os.environ.get("TABLESYNC_SHRINK_SECONDS", "60" if ONLY_SEED else "5"))
THIS_FILE = "tests/unit/scenarios/test_generated_syncs.py"


# -- the databases -----------------------------------------------------------------------------------------
def _writes_trigger(table: str, key: str, columns: str) -> str:
    # why: counts the engine's writes of mapped columns; the test's own edits bump test_edit and are not counted
    return ("CREATE TRIGGER %s_writes AFTER UPDATE OF %s ON %s WHEN NEW.test_edit = OLD.test_edit "
            "BEGIN UPDATE %s SET writes = writes + 1 WHERE %s = NEW.%s; END" % (table, columns, table, table, key, key))


def create_databases(directory: str, profile: Profile) -> None:
    """The ERP and CRM tables of a scenario (modified-on column types from its profile) and an empty store."""
    local_type, crm_type = profile.local_form.column_type, profile.crm_form.column_type
    key = "no TEXT NOT NULL" if profile.no_primary_key else "no TEXT PRIMARY KEY"
    with contextlib.closing(sqlite3.connect(os.path.join(directory, "erp.sqlite"))) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE customer (%s, name TEXT, city TEXT, email TEXT, notes TEXT, extra TEXT, modified_on %s, "
                     "writes INTEGER NOT NULL DEFAULT 0, test_edit INTEGER NOT NULL DEFAULT 0)" % (key, local_type))
        conn.execute(_writes_trigger("customer", "rowid", "no, name, city, email, notes"))
        conn.execute("CREATE TABLE contact (no TEXT PRIMARY KEY, name TEXT, company_no TEXT, modified_on %s)" % local_type)
        conn.commit()
    with contextlib.closing(sqlite3.connect(os.path.join(directory, "crm.sqlite"))) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE account (accountid TEXT PRIMARY KEY, accountnumber TEXT, name TEXT, address1_city TEXT, "
                     "emailaddress1 TEXT, description TEXT, extra TEXT, modifiedon %s, writes INTEGER NOT NULL DEFAULT 0, "
                     "test_edit INTEGER NOT NULL DEFAULT 0)" % crm_type)
        conn.execute(_writes_trigger("account", "accountid", "accountnumber, name, address1_city, emailaddress1, description"))
        conn.execute("CREATE TABLE contact (contactid TEXT PRIMARY KEY, contactnumber TEXT, fullname TEXT, parentcustomerid TEXT, "
                     "modifiedon %s)" % crm_type)
        conn.commit()
    Store(os.path.join(directory, "store.sqlite")).close()


class Templates:
    """Empty databases built once per schema and copied into each scenario's own directory (fresh files, less work)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.built: dict[tuple[str, str, bool], str] = {}

    def copy_into(self, profile: Profile, target: str) -> None:
        variant = (profile.local_form.column_type, profile.crm_form.column_type, profile.no_primary_key)
        source = self.built.get(variant)
        if source is None:
            source = os.path.join(self.directory, "template-%s-%s-%s" % variant)
            os.makedirs(source, exist_ok=True)
            create_databases(source, profile)
            self.built[variant] = source
        for name in FILES:
            shutil.copyfile(os.path.join(source, name), os.path.join(target, name))


FILES = ("erp.sqlite", "crm.sqlite", "store.sqlite")


def _read(path: str, queries: list[str]) -> list[list[sqlite3.Row]]:
    conn = sqlite3.connect(path)
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")  # why: a record with bad bytes is part of the scenario
    conn.row_factory = sqlite3.Row
    try:
        return [conn.execute(sql).fetchall() for sql in queries]
    finally:
        conn.close()


class Databases:
    """Writes of the test's steps (each committed at once) and snapshots of everything the model judges."""

    def __init__(self, directory: str, profile: Profile, templates: Templates):
        templates.copy_into(profile, directory)
        self.erp, self.crm, self.store_path = (os.path.join(directory, name) for name in FILES)

    def run(self, database: str, sql: str, *params: Any) -> None:
        conn = sqlite3.connect(self.erp if database == "erp" else self.crm)
        try:
            conn.execute("PRAGMA synchronous=OFF")  # why: the test's own writes need no durability
            conn.execute(sql, params)
            conn.commit()
        finally:
            conn.close()

    def snapshot(self, store: Store, mappings: list[str]) -> dict[str, Any]:
        [customers] = _read(self.erp, ["SELECT rowid, no, name, city, email, notes, writes FROM customer"])
        accounts, contacts = _read(self.crm, ["SELECT accountid, accountnumber, name, address1_city, emailaddress1, description, writes "
                                              "FROM account", "SELECT contactid, contactnumber, fullname, parentcustomerid FROM contact"])
        customer = {r["rowid"]: dict(r) for r in customers}
        account = {r["accountid"]: dict(r) for r in accounts}
        ccontact = {r["contactid"]: dict(r) for r in contacts}
        couplings = {name: {} for name in ("CUSTOMER", "CONTACT")}
        for name in mappings:
            for page in store.iter_couplings(name):
                couplings[name].update((c.local_id, c.integration_id) for c in page)
        failed: dict[str, dict[tuple[str, str], str]] = {"CUSTOMER": {}, "CONTACT": {}}
        for r in _read(self.store_path, ["SELECT mapping, side, record_id, message FROM tablesync_failed_records"])[0]:
            failed[r["mapping"]][(r["side"], r["record_id"])] = r["message"]
        return {"customer": customer, "account": account, "ccontact": ccontact, "couplings": couplings, "failed": failed}


# -- the engine, driven as the modules drive it ----------------------------------------------------------------
class Engine:
    def __init__(self, dbs: Databases, profile: Profile):
        self.profile = profile
        self.store = Store(dbs.store_path)
        self.endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": dbs.erp}),
                          "integration": open_endpoint("integration", {"type": "sqlite", "path": dbs.crm})}

    def declare(self) -> None:
        for definition in self.profile.mappings():
            clean = normalize(definition)
            mapping = Mapping.from_definition(clean)
            mapping.bind(open_tables(mapping, self.endpoints))
            self.store.put_mapping(clean)

    def sync(self, step: Sync, records: int) -> None:
        # why: the model retries a failed record every run; skipping after repeated failures has tests of its own
        options = RunOptions(batch_size=step.batch_size, watermark_overlap=self.profile.overlap, read_ahead=self.profile.read_ahead,
                             skip_after_failures=0)
        runner = SyncRunner(self.store, self.endpoints, options)
        with _bounded_commits(self.store, 50 * (records + 2)):
            runner.run(step.mode, step.names)

    def sync_killed(self, step: Sync, records: int, directory: str) -> str:
        """Run the sync in a forked child that SIGKILLs itself at its step.kill-th store batch commit.

        Returns "killed", "completed" (the run had fewer commits) or the child's exception.
        """
        self.store.release_before_fork()
        for endpoint in self.endpoints.values():
            endpoint.release_before_fork()
        errors = os.path.join(directory, "child-error.txt")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                self.store.renew_after_fork()
                for endpoint in self.endpoints.values():
                    endpoint.renew_after_fork()
                _kill_at_commit(step.kill, step.before)  # type: ignore[arg-type]
                self.sync(step, records)
            except BaseException:
                with open(errors, "w") as handle:
                    handle.write(traceback.format_exc())
                code = 1
            finally:
                os._exit(code)
        _pid, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            return "killed"
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return "completed"
        with open(errors) as handle:
            lines = handle.read().strip().splitlines()
        # why: the exception's own line, not the notes a library prints after it
        return next((line for line in reversed(lines) if line[:1].isalpha() and ": " in line), lines[-1])

    def close(self) -> None:
        self.store.close()
        for endpoint in self.endpoints.values():
            endpoint.close()


class SyncNeverEnds(Exception):
    """A run committed far more store batches than its records can need: a read that never ends."""


@contextlib.contextmanager
def _bounded_commits(store: Store, limit: int) -> Iterator[None]:
    """Fail a run that commits more than ``limit`` store batches (every page commits one) instead of looping forever."""
    calls = [0]

    def commit_batch(*args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] > limit:
            raise SyncNeverEnds("more than %d store batch commits in one run of a few dozen records: a read that never ends" % limit)
        type(store).commit_batch(store, *args, **kwargs)  # why: the class method, which a kill may have replaced

    store.commit_batch = commit_batch  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store.commit_batch


def _kill_at_commit(kill: int, before: bool) -> None:
    """In the child only: SIGKILL this process before or right after its kill-th Store.commit_batch."""
    original = Store.commit_batch
    calls = [0]

    def commit_batch(self: Store, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if before and calls[0] == kill:
            os.kill(os.getpid(), signal.SIGKILL)
        original(self, *args, **kwargs)
        if calls[0] == kill:
            os.kill(os.getpid(), signal.SIGKILL)

    Store.commit_batch = commit_batch  # type: ignore[method-assign]


# -- one scenario ------------------------------------------------------------------------------------------------
class Outcome:
    """The first completed sync that broke the contract: its step and what it broke."""

    def __init__(self, index: int, violations: list[Violation]):
        self.index = index
        self.violations = violations

    @property
    def kind(self) -> str:
        return self.violations[0].kind


def run_scenario(scenario: Scenario, directory: str, templates: Templates) -> Outcome | None:
    os.makedirs(directory, exist_ok=True)
    try:
        return _run(scenario, directory, templates)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(scenario: Scenario, directory: str, templates: Templates) -> Outcome | None:
    profile = scenario.profile
    model = Model(profile)
    dbs = Databases(directory, profile, templates)
    engine = Engine(dbs, profile)
    try:
        try:
            engine.declare()
        except Exception as exc:
            return Outcome(-1, [Violation("declaration-refused", "%s: %s" % (type(exc).__name__, exc))])
        names = ["CUSTOMER", "CONTACT"] if profile.contacts else ["CUSTOMER"]
        now = scenario.start_us
        for index, step in enumerate(scenario.steps):
            now += step.dt
            if not isinstance(step, Sync):
                STEP_FUNCTIONS[type(step)](model, dbs, step, now)
                continue
            before = dbs.snapshot(engine.store, names)
            model.attempted(step)
            status = "completed"
            records = len(model.customers) + len(model.contacts) + len(model.test_accounts)
            try:
                if step.kill is None:
                    engine.sync(step, records)
                else:
                    status = engine.sync_killed(step, records, directory)
            except Exception as exc:
                status = "%s: %s" % (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            if status not in ("completed", "killed"):
                kind = "sync-never-ends" if status.startswith(SyncNeverEnds.__name__) else "sync-raised"
                return Outcome(index, [Violation(kind, status)])
            after = dbs.snapshot(engine.store, names)
            model.next_rowid = max([model.next_rowid] + [rid + 1 for rid in after["customer"]])
            if status == "completed":
                violations = model.check(step, before, after)
                if violations:
                    return Outcome(index, violations)
            model.adopt(step, before, after, killed=status == "killed")
        return None
    finally:
        engine.close()


# -- shrinking and reporting ---------------------------------------------------------------------------------------
def shrink(scenario: Scenario, outcome: Outcome, directory: str, templates: Templates, budget: float) -> list[Any]:
    """Delta debugging over the steps: the shortest sequence found within ``budget`` seconds that breaks the same invariant."""
    kind = outcome.kind
    steps = list(scenario.steps[:outcome.index + 1])  # why: steps after the failing sync play no part
    deadline = time.monotonic() + budget
    parts = 2
    attempt = 0
    while len(steps) >= 2 and time.monotonic() < deadline:
        size = math.ceil(len(steps) / parts)
        for start in range(0, len(steps), size):
            candidate = steps[:start] + steps[start + size:]
            attempt += 1
            found = run_scenario(scenario.with_steps(candidate), os.path.join(directory, "shrink-%d" % attempt), templates)
            if found is not None and found.kind == kind:
                steps = candidate
                parts = max(parts - 1, 2)
                break
            if time.monotonic() >= deadline:
                break
        else:
            if parts >= len(steps):
                break
            parts = min(len(steps), parts * 2)
    return steps


def report(failures: list[tuple[Scenario, Outcome]], total: int, directory: str, templates: Templates) -> str:
    scenario, outcome = failures[0]
    shrunk = shrink(scenario, outcome, directory, templates, SHRINK_SECONDS)
    again = run_scenario(scenario.with_steps(shrunk), os.path.join(directory, "shrunk"), templates)
    shown = again if again is not None and again.kind == outcome.kind else outcome
    lines = ["%d of %d generated scenarios broke the sync contract." % (len(failures), total), "",
             "seed %d: %s" % (scenario.seed, scenario.profile.describe()),
             "first broken invariant (at step %d of %d): %s" % (outcome.index, len(scenario.steps), outcome.violations[0])]
    lines.extend("  also: %s" % v for v in outcome.violations[1:4])
    lines.append("shrunk to %d of %d steps (broken at step %d):" % (len(shrunk), len(scenario.steps), shown.index))
    lines.extend("  %2d %s" % (i, describe_step(step)) for i, step in enumerate(shrunk))
    lines.append("  -> %s" % shown.violations[0])
    lines.append("rerun: TABLESYNC_SCENARIO_SEED=%d python -m pytest %s -p no:cacheprovider" % (scenario.seed, THIS_FILE))
    if len(failures) > 1:
        lines.append("")
        lines.append("other seeds:")
        lines.extend("  %d: %s" % (s.seed, str(o.violations[0])[:200]) for s, o in failures[1:40])
    return "\n".join(lines)


def seeds_of(batch: int) -> list[int]:
    if ONLY_SEED is not None:
        return [int(ONLY_SEED)] if batch == 0 else []
    return list(range(batch * PER_BATCH, min(TOTAL, (batch + 1) * PER_BATCH)))


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    return Templates(str(tmp_path_factory.mktemp("templates")))


@pytest.mark.parametrize("batch", range(BATCHES))
def test_generated_scenarios_keep_both_systems_in_step(batch, tmp_path, templates):
    seeds = seeds_of(batch)
    if not seeds:
        pytest.skip("TABLESYNC_SCENARIO_SEED runs one seed")
    failures = []
    for seed in seeds:
        scenario = generate(seed)
        outcome = run_scenario(scenario, str(tmp_path / str(seed)), templates)
        if outcome is not None:
            failures.append((scenario, outcome))
    if failures:
        pytest.fail(report(failures, len(seeds), str(tmp_path), templates), pytrace=False)
