"""End to end through ansible-playbook: Business Central -> Dataverse with the default mapping set.

Both services are the protocol test doubles of tests/support, serving real HTTP on 127.0.0.1
from this test process while ansible-playbook runs the modules.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3

import pytest

from tests.integration.conftest import ansible_playbook
from tests.support import ODataService
from tests.support.web_schemas import (
    declare_business_central,
    declare_dataverse,
    endpoint_options,
    seed_business_central,
    seed_dataverse_users,
)

SECRET_BC = "bc-Secret~7Qp2-never-in-output"
SECRET_DV = "dv-Secret~9Xz4-never-in-output"
# Dataverse's ownerid and parentcustomerid are polymorphic: the endpoint option names the target
# (the Web API binds an owner as ownerid@odata.bind: /systemusers(<id>)).
LOOKUPS = {
    "accounts.ownerid": {"navigation": "ownerid", "entity_set": "systemusers"},
    "contacts.parentcustomerid": {"navigation": "parentcustomerid_account", "entity_set": "accounts"},
}


@pytest.fixture
def web(tmp_path):
    with ODataService("business_central", client_secret=SECRET_BC) as bc, ODataService("dataverse", client_secret=SECRET_DV) as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        seed_business_central(bc, customers=30)
        seed_dataverse_users(dv)
        yield bc, dv, tmp_path


def run_playbook(bc, dv, tmp_path, *args, **variables):
    result_file = str(tmp_path / "result.json")
    if os.path.exists(result_file):
        os.remove(result_file)
    values = {
        "store_path": str(tmp_path / "store.sqlite"),
        "local_endpoint": endpoint_options(bc, company="CRONUS USA, Inc."),
        "integration_endpoint": endpoint_options(dv, lookups=LOOKUPS),
        "result_file": result_file,
    }
    values.update(variables)
    proc = ansible_playbook("web_sync.yml", *vars_file(tmp_path, values), *args)
    with open(result_file) as handle:
        return json.load(handle), proc


def vars_file(tmp_path, values) -> list[str]:
    """Secrets go in a variables file, as with a vault: ansible-playbook -vvvv echoes its command line."""
    path = tmp_path / "vars.json"
    path.write_text(json.dumps(values))
    return ["-e", "@%s" % path]


def job_counts(result, name):
    return next(j["counts"] for j in result["sync"]["jobs"] if j["mapping"] == name)


def test_default_set_syncs_business_central_to_dataverse_full_and_modified(web):
    bc, dv, tmp_path = web
    dv.reset_counters()
    full = run_playbook(bc, dv, tmp_path)[0]
    assert full["sync"]["changed"] is True
    # five mappings write to Dataverse: one CreateMultiple each for their 3 to 30 records
    dv_writes = sum(n for (method, kind), n in dv.request_counts().items() if method == "POST" and kind in ("bulk", "batch", "collection"))
    assert dv_writes == 5 and dv.row_writes["create"] == 3 + 3 + 30 + 30 + 10
    assert job_counts(full, "CUSTOMER")["inserted"] == 30
    assert job_counts(full, "CONTACTS")["inserted"] == 30
    assert job_counts(full, "ITEM-PRODUCT")["inserted"] == 10
    assert job_counts(full, "CURRENCY")["inserted"] == 3
    assert job_counts(full, "UNITOFMEASURE")["inserted"] == 3
    # salespeople exist on both sides: coupled on their code, none created twice
    assert job_counts(full, "SALESPEOPLE")["coupled"] == 3 and job_counts(full, "SALESPEOPLE")["inserted"] == 0
    assert len(bc.rows("salespeoplePurchasers")) == 3
    accounts = {a["accountnumber"]: a for a in dv.rows("accounts")}
    assert len(accounts) == 30 and accounts["C00012"]["name"] == "Customer 12"
    assert accounts["C00012"]["address1_city"] == "Springfield"
    assert sorted(c["isocurrencycode"] for c in dv.rows("transactioncurrencies")) == ["EUR", "GBP", "USD"]

    customer = next(c for c in bc.rows("customers") if c["number"] == "C00003")
    bc.update("customers", customer["id"], {"email": "new@example.com"})
    bc.insert("customers", [{"number": "C09999", "displayName": "Late Customer"}])
    dv.reset_counters()
    modified = run_playbook(bc, dv, tmp_path, sync_mode="modified", declare_mappings=False)[0]
    assert job_counts(modified, "CUSTOMER")["modified"] == 1
    assert job_counts(modified, "CONTACTS")["modified"] == 0
    accounts = {a["accountnumber"]: a for a in dv.rows("accounts")}
    assert accounts["C00003"]["emailaddress1"] == "new@example.com"
    assert len(accounts) == 30  # modified runs do not create (synch only coupled records after a full sync)

    unchanged = run_playbook(bc, dv, tmp_path, sync_mode="modified", declare_mappings=False)[0]
    assert unchanged["sync"]["changed"] is False


def test_client_secrets_never_appear_in_output_store_or_job_log(web):
    bc, dv, tmp_path = web
    result, proc = run_playbook(bc, dv, tmp_path, "-vvvv")
    assert job_counts(result, "CUSTOMER")["inserted"] >= 30
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in proc.stdout  # module arguments are shown at -vvvv, masked
    for secret in (SECRET_BC, SECRET_DV):
        assert secret not in proc.stdout and secret not in proc.stderr
        with open(tmp_path / "store.sqlite", "rb") as handle:
            assert secret.encode() not in handle.read()
        assert secret not in json.dumps(result)
    # a wrong secret fails with the identity platform's reason, not the secret
    bad = endpoint_options(bc, company="CRONUS USA, Inc.", client_secret="wrong-" + SECRET_BC)
    values = {"store_path": str(tmp_path / "store2.sqlite"), "local_endpoint": bad, "integration_endpoint": endpoint_options(dv),
              "result_file": str(tmp_path / "r2.json")}
    proc = ansible_playbook("web_sync.yml", *vars_file(tmp_path, values), "-vvvv", check=False)
    assert proc.returncode != 0 and "Invalid client secret" in proc.stdout
    assert SECRET_BC not in proc.stdout and SECRET_BC not in proc.stderr


def couplings(tmp_path, mapping):
    """local id -> integration id of one mapping, read from the store the playbook wrote."""
    with sqlite3.connect(str(tmp_path / "store.sqlite")) as conn:
        rows = conn.execute("SELECT local_id, integration_id FROM tablesync_couplings WHERE mapping = ?", (mapping,)).fetchall()
    return dict(rows)


def write_requests(svc) -> int:
    return sum(n for (method, kind), n in svc.request_counts().items() if method in ("POST", "PATCH", "DELETE") and kind != "token")


def bulk_target(writes_per_mapping) -> int:
    """At most 2 write requests per 1,000 record writes of each mapping."""
    return sum(2 * math.ceil(n / 1000) for n in writes_per_mapping if n)


def assert_lookups_bound(bc, dv, tmp_path):
    users, currencies = couplings(tmp_path, "SALESPEOPLE"), couplings(tmp_path, "CURRENCY")
    accounts_of, units = couplings(tmp_path, "CUSTOMER"), couplings(tmp_path, "UNITOFMEASURE")
    assert set(users.values()) == {u["systemuserid"] for u in dv.rows("systemusers")}
    accounts = {a["accountid"]: a for a in dv.rows("accounts")}
    for customer in bc.rows("customers"):
        account = accounts[accounts_of[customer["number"]]]
        assert account["_ownerid_value"] == users[customer["salespersonCode"]], customer["number"]
        currency = customer["currencyId"] if customer["currencyId"] != "00000000-0000-0000-0000-000000000000" else None
        assert account["_transactioncurrencyid_value"] == (currencies[currency] if currency else None), customer["number"]
    contacts = {c["lastname"]: c for c in dv.rows("contacts")}
    for contact in bc.rows("contacts"):
        assert contacts[contact["displayName"]]["_parentcustomerid_value"] == accounts_of[contact["companyNumber"]]
    products = {p["productnumber"]: p for p in dv.rows("products")}
    for item in bc.rows("items"):
        assert products[item["number"]]["_defaultuomscheduleid_value"] == units[item["baseUnitOfMeasureId"]]


def test_default_set_binds_lookups_and_rebinds_a_moved_owner_in_bulk(tmp_path):
    with ODataService("business_central", client_secret=SECRET_BC) as bc, ODataService("dataverse", client_secret=SECRET_DV) as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        seed = seed_business_central(bc, customers=1200)
        seed_dataverse_users(dv)
        dv.reset_counters()
        full = run_playbook(bc, dv, tmp_path)[0]
        for name, inserted in (("CURRENCY", 3), ("UNITOFMEASURE", 3), ("CUSTOMER", 1200), ("CONTACTS", 1200), ("ITEM-PRODUCT", 10)):
            assert job_counts(full, name)["inserted"] == inserted and job_counts(full, name)["failed"] == 0, name
        assert_lookups_bound(bc, dv, tmp_path)
        owners = {a["_ownerid_value"] for a in dv.rows("accounts")}
        assert len(owners) == 3 and None not in owners
        assert dv.row_writes["create"] == 2416
        assert write_requests(dv) <= bulk_target([3, 3, 1200, 1200, 10])

        # change four customers: one moves to another salesperson, one to another currency
        customers = {c["number"]: c for c in bc.rows("customers")}
        assert customers["C00000"]["salespersonCode"] == "SP00"
        bc.update("customers", customers["C00000"]["id"], {"salespersonCode": "SP02"})
        bc.update("customers", customers["C00001"]["id"], {"currencyId": seed["currencies"]["EUR"], "currencyCode": "EUR"})
        bc.update("customers", customers["C00002"]["id"], {"email": "new2@example.com"})
        bc.update("customers", customers["C00003"]["id"], {"displayName": "Renamed 3"})
        before = {a["accountnumber"]: a for a in dv.rows("accounts")}
        dv.reset_counters()
        modified = run_playbook(bc, dv, tmp_path, sync_mode="modified", declare_mappings=False)[0]
        assert job_counts(modified, "CUSTOMER")["modified"] == 4 and job_counts(modified, "CUSTOMER")["inserted"] == 0
        assert all(job_counts(modified, name)["modified"] == 0 for name in ("CONTACTS", "ITEM-PRODUCT", "CURRENCY", "UNITOFMEASURE"))
        after = {a["accountnumber"]: a for a in dv.rows("accounts")}
        changed = sorted(n for n in after if after[n]["modifiedon"] != before[n]["modifiedon"] or after[n] != before[n])
        assert changed == ["C00000", "C00001", "C00002", "C00003"]
        users = couplings(tmp_path, "SALESPEOPLE")
        assert before["C00000"]["_ownerid_value"] == users["SP00"] and after["C00000"]["_ownerid_value"] == users["SP02"]
        assert after["C00001"]["_transactioncurrencyid_value"] == couplings(tmp_path, "CURRENCY")[seed["currencies"]["EUR"]]
        assert after["C00002"]["emailaddress1"] == "new2@example.com" and after["C00003"]["name"] == "Renamed 3"
        assert dv.row_writes["update"] == 4 and dv.row_writes["create"] == 0
        assert write_requests(dv) <= bulk_target([4])
        assert_lookups_bound(bc, dv, tmp_path)
