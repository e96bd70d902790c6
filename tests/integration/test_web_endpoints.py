"""End to end through ansible-playbook: Business Central -> Dataverse with the default mapping set.

Both services are the protocol test doubles of tests/support, serving real HTTP on 127.0.0.1
from this test process while ansible-playbook runs the modules.
"""

from __future__ import annotations

import json
import os

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
LOOKUPS = {"contacts.parentcustomerid": {"navigation": "parentcustomerid_account", "entity_set": "accounts"}}


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
    assert job_counts(full, "SALESPEOPLE")["inserted"] == 3
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
