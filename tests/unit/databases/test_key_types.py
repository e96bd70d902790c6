"""PostgreSQL and MariaDB endpoints: key types, generated keys, schema-qualified tables, type kinds, TLS options."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
import sqlalchemy as sa

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import sql_url
from tests.support.fixtures import Demo

PG_SCHEMA = """
create schema erp;
create table erp.party (id serial primary key, name text not null, active boolean not null, amount numeric(12,2),
                        seen timestamp(6), ref uuid);
create table erp.doc (id uuid primary key default gen_random_uuid(), title varchar(80) not null, pages integer);
create table erp.party_copy (id uuid primary key, name text, active boolean, amount numeric(12,2));
create table erp.party_srv (id uuid primary key default gen_random_uuid(), name text, active boolean, amount numeric(12,2));
create table erp.code (code text primary key, label text);
"""

MY_SCHEMA = """
create table party_auto (id int auto_increment primary key, name varchar(100) not null, active tinyint(1) not null,
                         amount decimal(12,2), seen datetime(6), ref char(36));
create table doc_text (id char(36) primary key, title varchar(80) not null, pages int);
create table code_big (id bigint auto_increment primary key, code varchar(20), label varchar(100))
"""


def mapping(name, local_table, local_key, integration_table, integration_key, direction, fields):
    return {"name": name, "local_table": local_table, "local_key": local_key, "integration_table": integration_table,
            "integration_key": integration_key, "direction": direction, "fields": [{"field": a, "integration_field": b} for a, b in fields]}


MAPPINGS = [
    mapping("PARTY", "erp.party", "id", "party_auto", "id", "to_integration",
            [("name", "name"), ("active", "active"), ("amount", "amount"), ("seen", "seen"), ("ref", "ref")]),
    mapping("DOC", "erp.doc", "id", "doc_text", "id", "to_integration", [("title", "title"), ("pages", "pages")]),
    mapping("PARTY-BACK", "erp.party_copy", "id", "party_auto", "id", "from_integration",
            [("name", "name"), ("active", "active"), ("amount", "amount")]),
    mapping("PARTY-SRV", "party_srv", "id", "party_auto", "id", "from_integration", [("name", "name"), ("active", "active"), ("amount", "amount")]),
    mapping("CODE", "erp.code", "code", "code_big", "id", "to_integration", [("code", "code"), ("label", "label")]),
]


def _run_script(db, script):
    engine = db.engine()
    try:
        with engine.begin() as conn:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def typed(tmp_path, pg_db, my_db):
    _run_script(pg_db, PG_SCHEMA)
    _run_script(my_db, MY_SCHEMA)
    pg_db.execute(
        "insert into erp.party (name, active, amount, seen, ref) select 'party ' || g, g % 2 = 0, g * 1.25, "
        "timestamp '2026-01-02 03:04:05.123456' + g * interval '1 minute', gen_random_uuid() from generate_series(1, 30) g"
    )
    pg_db.execute("insert into erp.doc (title, pages) select 'doc ' || g, g from generate_series(1, 12) g")
    pg_db.execute("insert into erp.code (code, label) select 'C' || g, 'code ' || g from generate_series(1, 7) g")

    class Typed(Demo):
        @property
        def local(self):
            return pg_db.options(schema="erp")

        @property
        def integration(self):
            return my_db.options()

    demo = Typed(str(tmp_path), "", "", str(tmp_path / "store.sqlite"))
    yield demo
    demo.close()


def test_integer_uuid_and_text_keys_server_and_client_generated(typed, pg_db, my_db):
    typed.declare(MAPPINGS)
    run = typed.run("full")
    assert {j.mapping: j.counts["failed"] for j in run.jobs} == dict.fromkeys(["PARTY", "DOC", "PARTY-BACK", "PARTY-SRV", "CODE"], 0), run.errors(10)
    store, _ignored = typed.engine()
    # PARTY: serial key -> AUTO_INCREMENT key chosen by MariaDB, returned by INSERT ... RETURNING
    couplings = {c.local_id: c.integration_id for page in store.iter_couplings("PARTY") for c in page}
    assert len(couplings) == 30 and len(set(couplings.values())) == 30
    by_id = {str(r[0]): r[1:] for r in my_db.rows("select id, name, active, amount, seen, ref from party_auto")}
    assert set(by_id) == set(couplings.values())
    source = {str(r[0]): r[1:] for r in pg_db.rows("select id, name, active, amount, seen, ref::text from erp.party")}
    for local_id, integration_id in couplings.items():
        name, active, amount, seen, ref = source[local_id]
        assert by_id[integration_id] == (name, int(active), amount, seen, ref)
    # DOC: server-generated uuid keys -> client-generated uuid text keys
    docs = {c.local_id: c.integration_id for page in store.iter_couplings("DOC") for c in page}
    assert {str(r[0]) for r in pg_db.rows("select id from erp.doc")} == set(docs)
    assert {r[0] for r in my_db.rows("select id from doc_text")} == set(docs.values())
    assert all(uuid.UUID(v) for v in docs.values())
    # PARTY-BACK: into a uuid key without default (client-generated); PARTY-SRV: uuid default (server-generated)
    for table, mapping_name in (("erp.party_copy", "PARTY-BACK"), ("erp.party_srv", "PARTY-SRV")):
        ids = {str(r[0]) for r in pg_db.rows("select id from %s" % table)}
        coupled = {c.local_id for page in store.iter_couplings(mapping_name) for c in page}
        assert len(ids) == 30 and ids == coupled
    # text key -> bigint AUTO_INCREMENT
    assert my_db.scalar("select count(*) from code_big") == 7
    # values read back from both servers fingerprint the same: nothing to do the second time
    again = typed.run("full")
    assert not again.changed, [j.as_dict() for j in again.jobs if j.changed]
    # an update by fingerprint comparison (no modified-on field declared)
    pg_db.execute("update erp.party set amount = amount + 100, active = not active where id <= 3")
    modified = typed.run("modified", ["PARTY"])
    assert modified.jobs[0].counts["modified"] == 3
    for local_id in ("1", "2", "3"):
        active, amount = pg_db.rows("select active, amount from erp.party where id = :i", i=int(local_id))[0]
        assert my_db.rows("select active, amount from party_auto where id = :i", i=int(couplings[local_id]))[0] == (int(active), amount)


def test_type_kinds_of_reflected_columns(typed):
    local = open_endpoint("local", typed.local)
    integration = open_endpoint("integration", typed.integration)
    try:
        party = local.table("erp.party", "id").info.columns
        assert {n: c.kind for n, c in party.items()} == {
            "id": "integer", "name": "text", "active": "boolean", "amount": "decimal", "seen": "datetime", "ref": "uuid"}
        assert party["id"].server_generated
        assert local.table("party_copy", "id").info.columns["id"].kind == "uuid"  # schema option applies
        assert not local.table("party_copy", "id").info.columns["id"].server_generated
        assert local.table("party_srv", "id").info.columns["id"].server_generated
        auto = integration.table("party_auto", "id").info.columns
        assert {n: c.kind for n, c in auto.items()} == {
            "id": "integer", "name": "text", "active": "boolean", "amount": "decimal", "seen": "datetime", "ref": "text"}
        assert auto["id"].server_generated and auto["name"].max_length == 100
        assert not integration.table("doc_text", "id").info.columns["id"].server_generated
    finally:
        local.close()
        integration.close()


def test_a_missing_schema_qualified_table_is_named(typed):
    with pytest.raises(MappingError, match=r"has no table erp\.nothing"):
        typed.declare([mapping("X", "erp.nothing", "id", "party_auto", "id", "to_integration", [("name", "name")])])


def test_tls_options(pg_db, my_db):
    url = sql_url("postgresql", {"host": "db", "database": "d", "sslmode": "verify-full", "ssl_ca": "/ca.pem"})
    assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": "/ca.pem"}
    url = sql_url("mysql", {"url": "mysql://u@db/d", "sslmode": "verify-full", "ssl_ca": "/ca.pem"})
    assert dict(url.query) == {"ssl_ca": "/ca.pem", "ssl_check_hostname": "true"}
    # the test servers have no TLS: requiring it fails clearly, disabling it connects
    for db in (pg_db, my_db):
        endpoint = open_endpoint("local", db.options(sslmode="require"))
        probe = Mapping.from_definition(mapping("T", "t", "id", "t", "id", "to_integration", [("a", "a")]))
        try:
            with pytest.raises(MappingError) as info:
                open_tables(probe, {"local": endpoint, "integration": endpoint})
            assert "SSL" in str(info.value) or "TLS" in str(info.value), str(info.value)
        finally:
            endpoint.close()
        plain = open_endpoint("local", db.options(sslmode="disable"))
        try:
            with plain.engine.connect() as conn:
                assert conn.execute(sa.text("select 1")).scalar() == 1
        finally:
            plain.close()


def test_decimal_and_datetime_values_round_trip_exactly(typed, my_db):
    typed.declare(MAPPINGS[:1])
    typed.run("full")
    row = my_db.rows("select amount, seen from party_auto order by id limit 1")[0]
    assert isinstance(row[0], decimal.Decimal) and isinstance(row[1], datetime.datetime) and row[1].microsecond == 123456


def test_server_generated_keys_without_insert_returning(typed, my_db):
    """MySQL and MariaDB before 10.5 have no INSERT ... RETURNING: keys come from lastrowid, row by row."""
    typed.declare(MAPPINGS[:1])
    store, endpoints = typed.engine()
    endpoints["integration"].table("party_auto", "id")  # connects: the dialect learns the server's features
    dialect = endpoints["integration"].engine.dialect
    assert dialect.insert_executemany_returning_sort_by_parameter_order  # MariaDB 10.11 has it; pretend it has not
    dialect.insert_executemany_returning_sort_by_parameter_order = False
    dialect.insert_returning = dialect.insert_executemany_returning = False  # as on a server without RETURNING
    from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner

    statements = []
    sa.event.listen(endpoints["integration"].engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    run = SyncRunner(store, endpoints).run("full")
    inserts = [s for s in statements if s.lower().startswith("insert")]
    assert len(inserts) == 30 and not any("returning" in s.lower() for s in inserts)
    assert run.jobs[0].counts["inserted"] == 30
    couplings = {c.local_id: c.integration_id for page in store.iter_couplings("PARTY") for c in page}
    names = dict(my_db.rows("select id, name from party_auto"))
    assert {couplings[str(i)]: "party %d" % i for i in range(1, 31)} == {str(k): v for k, v in names.items()}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_batched_delete_reports_each_record(kind, request):
    db = request.getfixturevalue("pg_db" if kind == "postgresql" else "my_db")
    _run_script(db, "create table parent (id int primary key, name varchar(20)); "
                    "create table child (id int primary key, parent_id int not null references parent (id))")
    db.execute("insert into parent (id, name) values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')")
    db.execute("insert into child (id, parent_id) values (1, 3)")
    endpoint = open_endpoint("integration", db.options())
    try:
        results = endpoint.table("parent", "id").delete(["1", "2", "3", "9"])
    finally:
        endpoint.close()
    outcome = {r.record_id: (r.ok, r.missing) for r in results}
    assert outcome == {"1": (True, False), "2": (True, False), "3": (False, False), "9": (False, True)}
    assert "foreign key" in next(r.error for r in results if r.record_id == "3").lower()
    assert sorted(r[0] for r in db.rows("select id from parent")) == [3, 4]
