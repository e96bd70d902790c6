"""Match-based full sync between real database servers: the ERP on MariaDB, the CRM on PostgreSQL.

Each test creates uniquely named databases and drops them afterwards; an unreachable server
fails the test (tests/ci/ensure-services.sh starts them).
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.job_options import RunOptions
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.shared_customers import customer_mapping, load_shared_customers

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/%s"
MY = "mysql+pymysql://root@127.0.0.1:3306/%s"


@pytest.fixture
def databases():
    name = "tablesync_match_%s" % uuid.uuid4().hex[:10]
    pg_admin = sa.create_engine(PG % "test", isolation_level="AUTOCOMMIT")
    my_admin = sa.create_engine(MY % "test")
    with pg_admin.connect() as conn:
        conn.execute(sa.text('CREATE DATABASE "%s"' % name))
    with my_admin.begin() as conn:
        conn.execute(sa.text("CREATE DATABASE `%s`" % name))
    try:
        yield name
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name))
        with my_admin.begin() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS `%s`" % name))
        pg_admin.dispose()
        my_admin.dispose()


def emails(url: str, table: str, column: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            out: dict[str, int] = {}
            for (email,) in conn.execute(sa.text("SELECT %s FROM %s" % (column, table))):
                if email is not None:
                    out[email.strip().casefold()] = out.get(email.strip().casefold(), 0) + 1
            return out
    finally:
        engine.dispose()


def test_bidirectional_full_sync_with_match_on_between_mariadb_and_postgresql(databases, tmp_path):
    erp_url, crm_url = MY % databases, PG % databases
    data = load_shared_customers(erp_url, crm_url)
    endpoints = {"local": open_endpoint("local", {"type": "mysql", "url": erp_url}),
                 "integration": open_endpoint("integration", {"type": "postgresql", "url": crm_url})}
    store = Store(str(tmp_path / "store.sqlite"))
    try:
        folded = {"field": "email", "integration_field": "emailaddress1", "ignore_case": True, "trim": True}
        definition = normalize(customer_mapping("bidirectional", match_on=[folded]))
        mapping = Mapping.from_definition(definition)
        mapping.bind(open_tables(mapping, endpoints))
        store.put_mapping(definition)
        run = SyncRunner(store, endpoints, RunOptions(batch_size=40)).run("full")
        job = run.jobs[0]
        assert job.counts["coupled"] == 150 and job.counts["inserted"] == 100
        assert job.matching["counts"]["ambiguous"] == 5
        # the 15 records of the ambiguous e-mails are held on their sides, failed with the reason
        assert job.counts["failed"] == 15 and all(e["message"].startswith("ambiguous match") for e in job.errors)
        for url, table, column in ((erp_url, "customer", "email"), (crm_url, "account", "emailaddress1")):
            counts = emails(url, table, column)
            assert [e for e, n in counts.items() if n != 1 and e not in data.ambiguous] == []
            assert set(counts) == set(data.shared) | set(data.erp_only) | set(data.crm_only) | set(data.ambiguous)
        assert store.count_couplings("CUSTOMER") == 250
        again = SyncRunner(store, endpoints, RunOptions(batch_size=40)).run("full")
        assert not again.changed
        # a modified run looks them up again on the servers: still ambiguous, nothing is created
        modified = SyncRunner(store, endpoints, RunOptions(batch_size=40)).run("modified")
        assert modified.jobs[0].counts["failed"] == 15 and modified.jobs[0].counts["inserted"] == 0
        assert store.count_couplings("CUSTOMER") == 250
    finally:
        store.close()
        for endpoint in endpoints.values():
            endpoint.close()
