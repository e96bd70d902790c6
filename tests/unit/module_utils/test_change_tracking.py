"""Dataverse change tracking in modified runs: delta links, deleted records, the mapping filter on the client.

A Dataverse entity set with change tracking (the OData test double, real HTTP on 127.0.0.1) is the
source of a from_integration mapping into a SQLite table.
"""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import http_client
from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support import ODataService
from tests.support.web_schemas import declare_dataverse, endpoint_options

DELTA_KEY = "delta.ACCOUNTS-IN.integration"


def mapping(**extra) -> dict:
    return {
        "name": "ACCOUNTS-IN",
        "local_table": "crm_account",
        "local_key": "id",
        "integration_table": "accounts",
        "integration_key": "accountid",
        "integration_modified_field": "modifiedon",
        "direction": "from_integration",
        "synch_only_coupled_records": False,
        "fields": [{"field": "name", "integration_field": "name"}, {"field": "number", "integration_field": "accountnumber"}],
        **extra,
    }


class Setup:
    def __init__(self, svc: ODataService, tmp_path, definition: dict):
        self.svc = svc
        self.erp = str(tmp_path / "erp.sqlite")
        self.store_path = str(tmp_path / "store.sqlite")
        with sqlite3.connect(self.erp) as conn:
            conn.execute("CREATE TABLE crm_account (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(160), number VARCHAR(20), modified_on TIMESTAMP)")
        self.ids = svc.insert("accounts", [{"name": "A%d" % i, "accountnumber": "N%d" % i} for i in range(8)])
        store, endpoints = self.engine()
        try:
            clean = normalize(definition)
            Mapping.from_definition(clean).bind(open_tables(Mapping.from_definition(clean), endpoints))
            store.put_mapping(clean)
        finally:
            self.close(store, endpoints)

    def engine(self):
        endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": self.erp}),
                     "integration": open_endpoint("integration", endpoint_options(self.svc))}
        return Store(self.store_path), endpoints

    @staticmethod
    def close(store, endpoints):
        for item in (store, *endpoints.values()):
            item.close()

    def run(self, mode: str, **options):
        store, endpoints = self.engine()
        try:
            return SyncRunner(store, endpoints, RunOptions(**options)).run(mode).jobs[0]
        finally:
            self.close(store, endpoints)

    def setting(self, key: str = DELTA_KEY):
        store = Store(self.store_path)
        try:
            return store.get_setting(key)
        finally:
            store.close()

    def couplings(self) -> int:
        store = Store(self.store_path)
        try:
            return store.count_couplings("ACCOUNTS-IN")
        finally:
            store.close()

    def local_names(self) -> dict[str, str]:
        with sqlite3.connect(self.erp) as conn:
            return dict(conn.execute("SELECT number, name FROM crm_account").fetchall())


@pytest.fixture
def dv():
    with ODataService("dataverse") as svc:
        declare_dataverse(svc, change_tracking=True)
        yield svc


@pytest.fixture
def reads(monkeypatch):
    """The query of every GET the engine sends for the accounts entity set."""
    sent: list[dict] = []
    original = http_client.HttpClient.request

    def spy(self, method, url, *args, **kwargs):
        if method == "GET" and urlsplit(url).path.rstrip("/").endswith("accounts"):
            sent.append(parse_qs(urlsplit(url).query))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(http_client.HttpClient, "request", spy)
    return sent


@pytest.mark.parametrize("policy", ["remove_coupling", "none"])
def test_a_modified_run_reads_changes_and_deletions_through_the_delta_link(dv, tmp_path, reads, policy):
    setup = Setup(dv, tmp_path, mapping(deletion_conflict_resolution=policy))
    full = setup.run("full")
    assert full.counts["inserted"] == 8 and setup.couplings() == 8
    link = setup.setting()
    assert link and "$deltatoken" in link
    for i in range(3):
        dv.update("accounts", setup.ids[i], {"name": "B%d" % i})
    dv.delete("accounts", setup.ids[5])
    reads.clear()
    job = setup.run("modified")
    assert job.counts["modified"] == 3 and job.counts["read"] == 3
    assert any(q.get("$deltatoken") == parse_qs(urlsplit(link).query)["$deltatoken"] for q in reads)
    assert not any("$filter" in q for q in reads)
    assert setup.local_names()["N0"] == "B0" and setup.local_names()["N2"] == "B2"
    if policy == "remove_coupling":
        assert setup.couplings() == 7 and job.counts["uncoupled"] == 1 and job.counts["failed"] == 0
    else:
        assert setup.couplings() == 8 and job.counts["failed"] == 1
        assert "integration record %s was deleted" % setup.ids[5] in job.errors[0]["message"]
    assert setup.setting() not in (None, link)
    again = setup.run("modified")
    assert again.counts["modified"] == 0 and again.counts["read"] == 0


def test_the_mapping_filter_applies_on_the_client_to_changed_rows(dv, tmp_path, reads):
    setup = Setup(dv, tmp_path, mapping(integration_table_filter="accountnumber ne 'N7'"))
    assert setup.run("full").counts["inserted"] == 7
    dv.update("accounts", setup.ids[7], {"name": "OUT"})
    dv.update("accounts", setup.ids[1], {"name": "IN"})
    reads.clear()
    job = setup.run("modified")
    assert job.counts["modified"] == 1 and job.counts["inserted"] == 0
    assert "N7" not in setup.local_names() and setup.local_names()["N1"] == "IN"
    assert any("$deltatoken" in q for q in reads) and not any("$filter" in q for q in reads)


def test_an_expired_delta_link_falls_back_to_a_full_read_and_stores_a_new_link(dv, tmp_path, reads):
    setup = Setup(dv, tmp_path, mapping())
    setup.run("full")
    first = setup.setting()
    dv.update("accounts", setup.ids[4], {"name": "C4"})
    dv.expire_delta_tokens()
    job = setup.run("modified")
    assert job.counts["modified"] == 1 and job.counts["failed"] == 0 and setup.local_names()["N4"] == "C4"
    fresh = setup.setting()
    assert fresh and fresh != first
    dv.update("accounts", setup.ids[6], {"name": "C6"})
    reads.clear()
    job = setup.run("modified")
    assert job.counts["modified"] == 1 and job.counts["read"] == 1
    assert any(q.get("$deltatoken") == parse_qs(urlsplit(fresh).query)["$deltatoken"] for q in reads)


def test_check_mode_stores_no_delta_link(dv, tmp_path):
    setup = Setup(dv, tmp_path, mapping(deletion_conflict_resolution="remove_coupling"))
    setup.run("full", dry_run=True)
    assert setup.setting() is None
    setup.run("full")
    link = setup.setting()
    dv.update("accounts", setup.ids[0], {"name": "D0"})
    dv.delete("accounts", setup.ids[1])
    plan = setup.run("modified", dry_run=True)
    assert plan.counts["modified"] == 1 and plan.counts["uncoupled"] == 1
    assert setup.setting() == link and setup.couplings() == 8 and setup.local_names()["N0"] == "A0"
    job = setup.run("modified")
    assert job.counts["modified"] == 1 and job.counts["uncoupled"] == 1 and setup.couplings() == 7


def test_an_entity_set_without_change_tracking_is_read_by_the_watermark(tmp_path, reads):
    with ODataService("dataverse") as svc:
        declare_dataverse(svc, change_tracking=False)
        setup = Setup(svc, tmp_path, mapping())
        setup.run("full")
        svc.update("accounts", setup.ids[2], {"name": "E2"})
        reads.clear()
        job = setup.run("modified")
        assert job.counts["modified"] == 1 and setup.setting() is None
        assert any("modifiedon ge" in q.get("$filter", [""])[0] for q in reads), reads


def test_a_bidirectional_record_changed_locally_whose_partner_was_deleted_fails_once(dv, tmp_path):
    setup = Setup(dv, tmp_path, mapping(direction="bidirectional", local_modified_field="modified_on"))
    setup.run("full")
    with sqlite3.connect(setup.erp) as conn:
        conn.execute("UPDATE crm_account SET name = 'L3', modified_on = '2099-01-01 00:00:00' WHERE number = 'N3'")
    dv.delete("accounts", setup.ids[3])
    job = setup.run("modified")
    assert job.counts["failed"] == 1 and len(job.errors) == 1 and setup.couplings() == 8


def test_a_full_change_tracking_read_reports_its_total_and_a_delta_read_none(dv, tmp_path, monkeypatch):
    """Progress of a Dataverse source read by change tracking: the first (full) read is counted, a delta read is not."""
    from ansible_collections.tablesync.integration.plugins.module_utils.progress import running_progress

    setup = Setup(dv, tmp_path, mapping())
    seen: list[dict] = []
    real_commit = Store.commit_batch

    def commit_and_look(store, *args, **kwargs):
        done = real_commit(store, *args, **kwargs)
        seen.extend(running_progress(store, store.jobs(status=["running"])).values())
        return done

    monkeypatch.setattr(Store, "commit_batch", commit_and_look)
    assert setup.run("modified", batch_size=3).counts["inserted"] == 8
    assert seen and {p["total"] for p in seen} == {8}, seen
    dv.update("accounts", setup.ids[0], {"name": "renamed"})
    seen.clear()
    assert setup.run("modified", batch_size=3).counts["modified"] == 1
    assert seen and {p["total"] for p in seen} == {None}, seen
