"""The demo flow with the ERP in PostgreSQL, the CRM in MariaDB and the store in PostgreSQL."""

from __future__ import annotations

import os

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils import read_ahead
from tests.support.databases import server_demo

ORDER = ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"]


def counts(run, mapping):
    return next(j.counts for j in run.jobs if j.mapping == mapping)


@pytest.fixture
def sdemo(tmp_path, pg_db, my_db, pg_db2):
    demo = server_demo(str(tmp_path / "demo"), pg_db, my_db, pg_db2.url_text)
    yield demo
    demo.close()


@pytest.mark.parametrize("batch_size", [1000, 7], ids=["one-page", "planned-ahead"])
def test_demo_flow_erp_postgresql_crm_mariadb_store_postgresql(sdemo, pg_db, my_db, pg_db2, batch_size, monkeypatch):
    """With batches of 7 records every flow has several pages, planned ahead by a second process."""
    forks = []
    real_fork = os.fork
    monkeypatch.setattr(read_ahead.os, "fork", lambda: forks.append(1) or real_fork())
    sdemo.declare()
    run = sdemo.run("full", batch_size=batch_size)
    assert bool(forks) == (batch_size == 7)
    assert [j.mapping for j in run.jobs] == ORDER
    customers = pg_db.scalar("select count(*) from customer")
    assert counts(run, "CUSTOMER")["inserted"] == customers
    assert my_db.rows("select count(*), count(distinct accountnumber) from account")[0] == (customers, customers)
    coupled = dict(pg_db2.rows("select local_id, integration_id from tablesync_couplings where mapping = 'CUSTOMER'"))
    assert coupled == dict(my_db.rows("select accountnumber, accountid from account"))
    # salespeople come from the CRM (from_integration) into the PostgreSQL ERP
    assert sorted(r[0] for r in pg_db.rows("select code from salesperson")) == sorted(r[0] for r in my_db.rows("select nickname from systemuser"))
    # a second full run changes nothing: values read back from both servers give the same fingerprints
    again = sdemo.run("full", batch_size=batch_size)
    assert not again.changed, [j.as_dict() for j in again.jobs if j.changed]
    changed = sdemo.change_customers(5)
    modified = sdemo.run("modified", batch_size=batch_size)
    assert counts(modified, "CUSTOMER")["modified"] == 5
    assert counts(modified, "CUSTOMER")["read"] == 5
    phones = dict(pg_db.rows("select no, phone from customer"))
    limits = dict(pg_db.rows("select no, credit_limit from customer"))
    for number in changed:
        phone, limit = my_db.rows("select telephone1, creditlimit from account where accountnumber = :n", n=number)[0]
        assert phone == phones[number] and limit == limits[number]
    assert not sdemo.run("modified", batch_size=batch_size).changed
