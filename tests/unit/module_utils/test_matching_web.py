"""Matching before a create when the destination is a web service: the Dataverse test double over real HTTP."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests
import yaml

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support import ODataService
from tests.support.fixtures import ROOT
from tests.support.web_schemas import declare_business_central, declare_dataverse, endpoint_options


def customer_definition(match_on: list) -> dict:
    """The default Business Central -> Dataverse CUSTOMER mapping without its lookups, creating in modified runs."""
    with open(os.path.join(ROOT, "roles", "default_mappings", "defaults", "main.yml")) as handle:
        definition = next(m for m in yaml.safe_load(handle)["default_mappings_business_central_dataverse"] if m["name"] == "CUSTOMER")
    fields = [f for f in definition["fields"] if not f.get("lookup")]
    return dict(definition, fields=fields, dependencies=[], match_on=match_on, synch_only_coupled_records=False)


class Engine:
    def __init__(self, bc: ODataService, dv: ODataService, store_path: str):
        self.bc, self.dv, self.store_path = bc, dv, store_path
        self.opened: list = []

    def open(self):
        store = Store(self.store_path)
        endpoints = {"local": open_endpoint("local", endpoint_options(self.bc)), "integration": open_endpoint("integration", endpoint_options(self.dv))}
        self.opened += [store, *endpoints.values()]
        return store, endpoints

    def declare(self, definition: dict) -> None:
        store, endpoints = self.open()
        clean = normalize(definition)
        Mapping.from_definition(clean).bind(open_tables(Mapping.from_definition(clean), endpoints))
        store.put_mapping(clean)

    def run(self, mode: str, **options):
        store, endpoints = self.open()
        return SyncRunner(store, endpoints, RunOptions(**options)).run(mode).jobs[0]

    def couplings(self) -> dict[str, str]:
        store = self.open()[0]
        return {c.local_id: c.integration_id for page in store.iter_couplings("CUSTOMER") for c in page}

    def close(self) -> None:
        for item in self.opened:
            item.close()


@pytest.fixture
def engine(tmp_path):
    with ODataService("business_central") as bc, ODataService("dataverse") as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        e = Engine(bc, dv, str(tmp_path / "store.sqlite"))
        yield e
        e.close()


@pytest.fixture
def account_lookups(monkeypatch):
    """The $filter of each read of the accounts that asked for account numbers, as sent."""
    sent: list[str] = []
    original = requests.Session.request

    def spy(self, method, url, *args, **kwargs):
        split = urlsplit(url)
        if method == "GET" and split.path.endswith("/accounts"):
            text = unquote(parse_qs(split.query).get("$filter", [""])[0])
            if "accountnumber" in text:
                sent.append(text)
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    return sent


def test_new_customers_are_coupled_to_existing_accounts_in_a_few_reads(engine, account_lookups):
    bc, dv = engine.bc, engine.dv
    bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(10)])
    engine.declare(customer_definition(["number"]))
    assert engine.run("full").counts["inserted"] == 10
    # 60 accounts Dataverse already holds whose customers are new in Business Central; n00007 differs in case only
    dv.insert("accounts", [{"accountnumber": "N%05d" % i, "name": "Old %d" % i} for i in range(60)])
    dv.insert("accounts", [{"accountnumber": "n00007", "name": "Lower case"}])
    bc.insert("customers", [{"number": "N%05d" % i, "displayName": "New %d" % i} for i in range(60)])
    account_lookups.clear()

    job = engine.run("modified", batch_size=100)

    assert job.counts["coupled"] == 60 and job.counts["inserted"] == 0 and job.counts["failed"] == 0
    accounts = {a["accountnumber"]: a for a in dv.rows("accounts")}
    assert len(dv.rows("accounts")) == 71
    assert all(accounts["N%05d" % i]["name"] == "New %d" % i for i in range(60))
    assert accounts["n00007"]["name"] == "Lower case"  # exact by default: not a candidate
    coupled = engine.couplings()
    assert all(coupled["N%05d" % i] == accounts["N%05d" % i]["accountid"] for i in range(60))
    # one read per 50 records to create, each naming their numbers; no read of the whole table
    assert len(account_lookups) == 2 and all("accountnumber eq 'N000" in f for f in account_lookups)


def test_ignore_case_on_a_web_service_couples_one_candidate_and_holds_two(engine, account_lookups):
    bc, dv = engine.bc, engine.dv
    engine.declare(customer_definition([{"field": "number", "integration_field": "accountnumber", "ignore_case": True}]))
    engine.run("full")
    dv.insert("accounts", [{"accountnumber": n, "name": n} for n in ("n00001", "N00002", "n00002")])
    bc.insert("customers", [{"number": n, "displayName": "New " + n} for n in ("N00001", "N00002")])
    account_lookups.clear()
    job = engine.run("modified")
    assert job.counts["coupled"] == 1 and job.counts["failed"] == 1 and job.counts["inserted"] == 0
    accounts = {a["accountnumber"]: a["accountid"] for a in dv.rows("accounts")}
    assert engine.couplings() == {"N00001": accounts["N00001"]}  # n00001, written from Business Central
    (error,) = job.errors
    assert error["record_id"] == "N00002" and error["message"].startswith("ambiguous match in mapping CUSTOMER")
    assert accounts["N00002"] in error["message"] and accounts["n00002"] in error["message"]
    assert account_lookups and all("tolower(accountnumber) eq 'n0000" in f for f in account_lookups)
