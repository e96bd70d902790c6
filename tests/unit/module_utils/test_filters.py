# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter language: parsing, validation, and agreement of the SQL, OData and Python forms."""

from __future__ import annotations

import datetime
import decimal
import os
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from ansible_collections.tablesync.integration.plugins.module_utils.filters import Filter, FilterError, combine, parse_filter

GUID = "6f9619ff-8b86-d011-b42d-00c04fc964ff"
FIELDS = ("id", "name", "country", "blocked", "credit_limit", "email", "modified_on", "founded", "active", "allow_credit", "guid")
CONTEXT = "mapping CUSTOMER, table_filter"

metadata = sa.MetaData()
customer = sa.Table(
    "customer",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100)),
    sa.Column("country", sa.String(2)),
    sa.Column("blocked", sa.Integer),
    sa.Column("credit_limit", sa.Double),
    sa.Column("email", sa.String(100)),
    sa.Column("modified_on", sa.DateTime),
    sa.Column("founded", sa.Date),
    sa.Column("active", sa.Boolean),
    sa.Column("allow_credit", sa.Boolean),
    sa.Column("guid", sa.String(36)),
    # MariaDB/MySQL compare text case-insensitively unless told otherwise; matches() does not.
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_bin",
)

D = datetime.datetime
ROWS = [
    (1, "Contoso Ltd", "DK", 0, 5000.0, "info@contoso.dk", D(2024, 3, 1, 10, 0), datetime.date(2001, 5, 1), True, True, GUID),
    (2, "contoso west", "SE", 0, 1000.5, None, D(2023, 12, 31, 23, 59, 59), datetime.date(1999, 1, 1), True, False, None),
    (3, "CONTOSO", "NO", 1, 1000.0, "x@contoso.no", D(2024, 1, 1, 0, 0), None, False, None, None),
    (4, "Fabrikam", "DK", 1, None, "f@fabrikam.dk", None, datetime.date(1990, 7, 15), None, True, None),
    (5, "O'Brien & Sons", "IE", 0, 250.25, "ob@sons.ie", D(2024, 1, 1, 0, 0, 1), datetime.date(2010, 2, 2), True, False, None),
    (6, "a%b", "DK", 0, 10.0, None, D(2022, 6, 1), None, True, None, None),
    (7, "axb", "DK", 0, 20.0, None, D(2022, 6, 2), None, False, None, None),
    (8, "a_b", "SE", 0, 30.0, None, D(2022, 6, 3), None, True, None, None),
    (9, "a/b", "SE", 0, 40.0, None, D(2022, 6, 4), None, True, None, None),
    (10, "test account", "DK", 0, 0.0, "test@example.com", D(2021, 1, 1), None, False, False, None),
    (11, "Testing Corp", None, 0, 1500.0, "t@corp.com", D(2024, 6, 1), datetime.date(2000, 1, 1), True, True, None),
    (12, None, "DK", 0, 100.0, None, None, None, None, None, None),
    (13, "  padded  ", "SE", 1, 75.5, None, D(2020, 1, 1), None, True, None, None),
    (14, "Ærø Shop", "DK", 0, 999.99, "shop@aero.dk", D(2024, 2, 29, 12, 0), datetime.date(2015, 3, 3), True, True, None),
    (15, "50% off", "DK", 0, 50.0, None, D(2023, 1, 1), None, False, None, None),
    (16, "Northwind", "US", 0, 0.1, "nw@northwind.com", D(2024, 1, 2), datetime.date(1985, 1, 1), True, True, None),
    (17, "Alpine Ski House", "AT", 0, -5.0, "ski@alpine.at", D(2019, 11, 11), datetime.date(1970, 1, 1), False, False, None),
    (18, "back\\slash", "DK", 0, 1.0, None, D(2018, 1, 1), None, True, None, None),
    (19, "Wide World Importers", None, None, 2500.0, "wwi@example.com", D(2024, 5, 5), None, None, None, None),
    (20, "Coho Winery", "se", 0, 1000.5, "coho@winery.se", D(2024, 1, 1, 0, 0), datetime.date(2024, 1, 1), True, False, GUID.upper()),
]
ALL_IDS = frozenset(r[0] for r in ROWS)

# filter -> expected ids (None: only checked for agreement between SQL and Python).
CASES = {
    "country eq 'DK'": {1, 4, 6, 7, 10, 12, 14, 15, 18},
    "country ne 'DK'": {2, 3, 5, 8, 9, 11, 13, 16, 17, 19, 20},
    "country eq null": {11, 19},
    "email ne null": {1, 3, 4, 5, 10, 11, 14, 16, 17, 19, 20},
    "country in ('SE','NO')": {2, 3, 8, 9, 13},
    "country in ('SE')": {2, 8, 9, 13},
    "country in ('AT', null)": {11, 17, 19},
    "startswith(name, 'Contoso')": {1},
    "startswith(tolower(name), 'contoso')": {1, 2, 3},
    "toupper(name) eq 'CONTOSO'": {3},
    "contains(name, '%')": {6, 15},
    "contains(name, '_')": {8},
    "contains(name, '/')": {9},
    "contains(name, '\\')": {18},
    "endswith(name, 'b')": {6, 7, 8, 9},
    "endswith(name, 'Winery')": {20},
    "not contains(name, 'test')": ALL_IDS - {10},
    "contains(name, '') eq false": {12},
    "trim(name) eq 'padded'": {13},
    "name eq 'O''Brien & Sons'": {5},
    "credit_limit ge 1000.5": {1, 2, 11, 19, 20},
    "credit_limit eq 0.1": {16},
    "credit_limit lt 0": {17},
    "credit_limit le 1000": None,
    "modified_on gt 2024-01-01T00:00:00Z": {1, 5, 11, 14, 16, 19},
    "modified_on ge 2024-01-01": {1, 3, 5, 11, 14, 16, 19, 20},
    "modified_on lt 2024-01-01T01:00:00+01:00": None,
    "founded lt 2000-01-01": {2, 4, 16, 17},
    "founded eq 2024-01-01": {20},
    "founded ge 2024-01-01T00:00:00Z": {20},
    "founded gt 2023-12-31T12:00:00Z": {20},
    "founded le 2000-01-01T08:00:00Z": {2, 4, 11, 16, 17},
    "founded eq 2000-01-01T08:00:00Z": set(),
    "founded in (2000-01-01T00:00:00Z, 2024-01-01T08:00:00Z, 1999-01-01)": {2, 11},
    "blocked eq 0 and (country eq 'DK' or startswith(name, 'Contoso'))": {1, 6, 7, 10, 12, 14, 15, 18},
    "active": {1, 2, 5, 6, 8, 9, 11, 13, 14, 16, 18, 20},
    "not active": {3, 4, 7, 10, 12, 15, 17, 19},
    "active eq false": {3, 7, 10, 15, 17},
    "allow_credit ne true": ALL_IDS - {1, 4, 11, 14, 16},
    "not (blocked eq 1) and email ne null": {1, 5, 10, 11, 14, 16, 17, 19, 20},
    "id in (1, 2, 3) or id gt 18": {1, 2, 3, 19, 20},
    "guid eq 6f9619ff-8b86-d011-b42d-00c04fc964ff": None,
    "contains(email, '.com') and not (country eq 'US')": {10, 11, 19},
    "blocked ne 0 or country ne country": None,
    "name eq 'x''; DROP TABLE customer; --'": set(),
}


@pytest.fixture(scope="module")
def engine():
    eng = sa.create_engine("sqlite://")
    metadata.create_all(eng)
    with eng.begin() as conn:
        conn.execute(customer.insert(), [dict(zip(FIELDS, row)) for row in ROWS])
    yield eng
    eng.dispose()


def select_ids(engine, condition) -> set:
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(customer.c.id).where(condition))}


def python_ids(engine, flt: Filter) -> set:
    with engine.connect() as conn:
        records = [dict(r._mapping) for r in conn.execute(sa.select(customer))]
    return {r["id"] for r in records if flt.matches(r)}


@pytest.mark.parametrize("text", sorted(CASES))
def test_sql_and_python_agree(engine, text):
    flt = parse_filter(text, FIELDS, CONTEXT)
    expr = flt.to_sqlalchemy(customer.c)
    in_sql = select_ids(engine, expr)
    assert in_sql == python_ids(engine, flt)
    if CASES[text] is not None:
        assert in_sql == CASES[text]
    # Never NULL in SQL: the negation selects exactly the other rows.
    assert select_ids(engine, sa.not_(expr)) == ALL_IDS - in_sql


@pytest.mark.parametrize("text", sorted(CASES))
def test_odata_round_trip(text):
    flt = parse_filter(text, FIELDS, CONTEXT)
    again = parse_filter(flt.to_odata(), FIELDS, CONTEXT)
    assert again.tree == flt.tree
    assert again.to_odata() == flt.to_odata()
    expanded = parse_filter(flt.to_odata(expand_in=True), FIELDS, CONTEXT)
    assert " in (" not in expanded.to_odata()


def test_expand_in_keeps_meaning(engine):
    flt = parse_filter("blocked eq 0 and country in ('DK', 'SE', null)", FIELDS)
    expanded = parse_filter(flt.to_odata(expand_in=True), FIELDS)
    assert expanded.to_odata() == "blocked eq 0 and (country eq 'DK' or country eq 'SE' or country eq null)"
    assert select_ids(engine, flt.to_sqlalchemy(customer.c)) == select_ids(engine, expanded.to_sqlalchemy(customer.c))


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("blocked eq 0 and (country eq 'DK' or startswith(name,'Contoso'))", "blocked eq 0 and (country eq 'DK' or startswith(name, 'Contoso'))"),
        ("a eq 1 and b eq 2 and (c eq 3 and d eq 4)", "a eq 1 and b eq 2 and (c eq 3 and d eq 4)"),
        ("(a eq 1 or b eq 2) and c eq 3", "(a eq 1 or b eq 2) and c eq 3"),
        ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
        ("not (a eq 1)", "not (a eq 1)"),
        ("not(active)", "not active"),
        ("x eq TRUE", "x eq true"),
        ("x eq +007", "x eq 7"),
        ("name eq 'it''s'", "name eq 'it''s'"),
        ("country in ('DK',)", "country in ('DK')"),
        ("contains(name,'x') eq false", "contains(name, 'x') eq false"),
        ("(not contains(name, 'x')) eq true", "(not contains(name, 'x')) eq true"),
        ("  email   ne   null ", "email ne null"),
        ("nullable eq null and allow_credit and true_up ne false and any_x eq 1 and all2 eq 2", None),
    ],
)
def test_canonical_text(text, canonical):
    flt = parse_filter(text)
    assert flt.text == text.strip()
    if canonical is not None:
        assert flt.to_odata() == canonical
    assert parse_filter(flt.to_odata()).tree == flt.tree


def test_keyword_prefixed_field_names():
    flt = parse_filter("nullable eq null and allow_credit and true_up ne false and any_x eq 1 and all2 eq 2")
    assert flt.fields == {"nullable", "allow_credit", "true_up", "any_x", "all2"}


def test_blank_and_none():
    assert parse_filter(None) is None
    assert parse_filter("   \n ") is None
    assert combine(None, None) is None


def test_combine(engine):
    mapping = parse_filter("country eq 'DK' or country eq 'SE'", FIELDS, "mapping CUSTOMER, table_filter")
    own = parse_filter("blocked eq 0 and active", FIELDS, "endpoint condition")
    both = combine(mapping, None, own)
    assert both.to_odata() == "(country eq 'DK' or country eq 'SE') and blocked eq 0 and active"
    assert both.fields == mapping.fields | own.fields
    assert combine(None, mapping) is mapping
    assert parse_filter(both.to_odata()).tree == both.tree
    expected = select_ids(engine, mapping.to_sqlalchemy(customer.c)) & select_ids(engine, own.to_sqlalchemy(customer.c))
    assert select_ids(engine, both.to_sqlalchemy(customer.c)) == expected == python_ids(engine, both)


def test_unknown_field_names_field_and_allowed_fields():
    with pytest.raises(FilterError) as info:
        parse_filter("contry eq 'DK'", ["name", "country", "blocked"], CONTEXT)
    message = str(info.value)
    assert message.startswith(CONTEXT + ": ")
    assert "'contry'" in message
    assert "blocked, country, name" in message
    assert "did you mean 'country'" in message


def test_syntax_error_has_position():
    with pytest.raises(FilterError) as info:
        parse_filter("name eq 'x' andd country eq 'DK'", None, CONTEXT)
    assert str(info.value).startswith(CONTEXT + ": syntax error at position ")
    with pytest.raises(FilterError, match=r"syntax error at position 11 near '; DROP TABLE customer'"):
        parse_filter("name eq 'x'; DROP TABLE customer", None, CONTEXT)
    with pytest.raises(FilterError, match=r"position 9: unexpected end"):
        parse_filter("  (x eq 1", None, CONTEXT)
    with pytest.raises(FilterError, match="single quotes"):
        parse_filter('name eq "x"')


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a add 1 eq 2", "arithmetic ('add'"),
        ("a mul 2 gt 1", "arithmetic ('mul'"),
        ("- a eq 1", "arithmetic"),
        ("tags/any(t: t eq 'x')", "lambda operator 'any'"),
        ("tags/all(t: t eq 'x')", "lambda operator 'all'"),
        ("length(name) eq 3", "function 'length' is not supported"),
        ("substring(name, 1) eq 'a'", "function 'substring' is not supported"),
        ("foo(name) eq 3", "unknown function 'foo'"),
        ("my.func(name) eq 3", "function 'my.func' is not supported"),
        ("a/b eq 1", "navigation path 'a/b'"),
        ("a.b eq 1", "qualified name 'a.b'"),
        ("x eq 12:00:00", "time-of-day"),
        ("x eq duration'P1D'", "duration"),
        ("x gt null", "null can only be compared with eq or ne"),
        ("not x eq 1", "write not (x eq 1)"),
        ("not 5", "'not' applies to a condition"),
        ("name", None),
        ("5", "is a value, not a condition"),
        ("tolower(name)", "is a value, not a condition"),
        ("startswith(name, country)", "must be a 'string' literal"),
        ("contains(5, 'x')", "works on text"),
        ("contains(name, 'x') eq 1", "only be compared with eq/ne true or false"),
        ("x eq 2024-02-30", "invalid date"),
        ("x eq 99999999999999999999", "out of range"),
        ("x in (y, z)", "'in' lists may hold only values"),
        ("(a eq 1) gt 2", "only be compared with eq/ne true or false"),
    ],
)
def test_rejected_constructs(text, fragment):
    if fragment is None:  # a bare field is a boolean field: accepted
        assert parse_filter(text).fields == {"name"}
        return
    with pytest.raises(FilterError) as info:
        parse_filter(text, None, CONTEXT)
    assert str(info.value).startswith(CONTEXT + ": ")
    assert fragment in str(info.value)


def test_nesting_and_length_limits():
    with pytest.raises(FilterError, match="nests deeper"):
        parse_filter("(" * 200 + "a eq 1" + ")" * 200 + " and " + "not (" * 100 + "a eq 1" + ")" * 100)
    with pytest.raises(FilterError, match="characters long"):
        parse_filter("a eq '" + "x" * 20000 + "'")
    # Long flat chains are fine: they are not nested.
    long_chain = parse_filter(" or ".join("id eq %d" % i for i in range(1000)))
    assert long_chain.matches({"id": 999})
    assert "id eq 999" in long_chain.to_odata()


def test_sql_injection_is_literal(engine):
    flt = parse_filter("name eq 'x''; DROP TABLE customer; --'", FIELDS, CONTEXT)
    assert flt.tree.right.val == "x'; DROP TABLE customer; --"
    assert select_ids(engine, flt.to_sqlalchemy(customer.c)) == set()
    flt = parse_filter("contains(name, ''') or 1 eq 1; --')", FIELDS, CONTEXT)
    assert select_ids(engine, flt.to_sqlalchemy(customer.c)) == set()
    with pytest.raises(FilterError):
        parse_filter("name eq 'x'; DROP TABLE customer", FIELDS, CONTEXT)
    with pytest.raises(FilterError):
        parse_filter("name eq 'x' -- comment", FIELDS, CONTEXT)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(customer)).scalar() == len(ROWS)


def test_like_wildcards_are_escaped(engine):
    pct = parse_filter("contains(name, '%')", FIELDS).to_sqlalchemy(customer.c)
    ids = select_ids(engine, pct)
    assert 6 in ids and 7 not in ids
    assert select_ids(engine, parse_filter("startswith(name, 'a_')", FIELDS).to_sqlalchemy(customer.c)) == {8}
    # Databases other than SQLite get LIKE with the wildcards and the escape character escaped.
    for dialect in (postgresql.dialect(), mysql.dialect()):
        for text, pattern in (("contains(name, '50%')", "%50/%%"), ("startswith(name, 'a_/b')", "a/_//b%"), ("endswith(name, '%')", "%/%")):
            compiled = sa.select(customer.c.id).where(parse_filter(text).to_sqlalchemy(customer.c)).compile(dialect=dialect)
            assert "LIKE" in str(compiled) and "ESCAPE '/'" in str(compiled)
            assert pattern in compiled.params.values()


def test_compiled_statement_cache_uses_new_values(engine):
    # Same statement shape, different literals: SQLAlchemy's compiled cache must not reuse values.
    for needle, expected in (("%", {6, 15}), ("_", {8}), ("x", {7}), ("Contoso", {1})):
        for func in ("contains", "startswith", "endswith"):
            flt = parse_filter("%s(name, '%s')" % (func, needle), FIELDS)
            assert select_ids(engine, flt.to_sqlalchemy(customer.c)) == python_ids(engine, flt)
        assert select_ids(engine, parse_filter("contains(name, '%s')" % needle, FIELDS).to_sqlalchemy(customer.c)) == expected


def test_literals_are_bound_parameters():
    text = (
        "name eq 'Contoso Ltd' or contains(email, 'contoso.dk') or startswith(name, 'Fabri') or endswith(name, 'Sons')"
        " or country in ('DK', 'SE') or credit_limit gt 1234.5 or modified_on gt 2024-01-01T00:00:00Z or guid eq %s" % GUID
    )
    flt = parse_filter(text, FIELDS)
    stmt = sa.select(customer.c.id).where(flt.to_sqlalchemy(customer.c))
    for dialect in (None, sqlite.dialect(), postgresql.dialect(), mysql.dialect()):
        sql = str(stmt.compile(dialect=dialect)) if dialect is not None else str(stmt)
        for literal in ("Contoso", "contoso.dk", "Fabri", "Sons", "'DK'", "'SE'", "1234.5", "2024", GUID):
            assert literal not in sql


def test_missing_column_is_reported():
    flt = parse_filter("country eq 'DK' and region eq 'EU'", None, CONTEXT)
    with pytest.raises(FilterError, match=r"mapping CUSTOMER, table_filter: field 'region' has no column"):
        flt.to_sqlalchemy(customer.c)


def test_columns_mapping_is_used():
    # Field names of the mapping resolve through the given mapping, not the table's column names.
    flt = parse_filter("land eq 'DK'", ["land"])
    sql = str(flt.to_sqlalchemy({"land": customer.c.country}))
    assert "customer.country" in sql


def test_matches_python_semantics():
    flt = parse_filter("amount ge 1000.5")
    assert flt.matches({"amount": decimal.Decimal("1000.50")})
    assert flt.matches({"amount": 1001})
    assert flt.matches({"amount": 1000.5})
    assert not flt.matches({"amount": None})
    assert not flt.matches({})
    assert not flt.matches({"amount": "2000"})  # text is not a number
    assert parse_filter("amount eq 0.1").matches({"amount": 0.1})
    assert parse_filter("amount eq 1").matches({"amount": decimal.Decimal("1.000")})

    when = parse_filter("modified_on gt 2024-01-01T00:00:00Z")
    assert when.matches({"modified_on": D(2024, 1, 1, 0, 0, 1)})
    assert when.matches({"modified_on": "2024-01-01T01:00:00+00:00"})  # ISO text from a web record
    assert not when.matches({"modified_on": D(2024, 1, 1, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))})
    assert when.matches({"modified_on": datetime.date(2024, 1, 2)})
    assert not when.matches({"modified_on": "not a date"})
    day = parse_filter("modified_on ge 2024-01-01")
    assert day.matches({"modified_on": D(2024, 1, 1, 10)})
    assert not day.matches({"modified_on": D(2023, 12, 31, 23)})

    names = parse_filter("startswith(name, 'Con')")
    assert names.matches({"name": "Contoso"})
    assert not names.matches({"name": "contoso"})
    assert not names.matches({"name": None})
    assert not names.matches({"name": 123})
    assert parse_filter("not startswith(name, 'Con')").matches({"name": None})

    assert parse_filter("country ne 'DK'").matches({"country": None})
    assert not parse_filter("country eq 'DK'").matches({"country": None})
    assert parse_filter("country eq null").matches({"country": None})
    assert not parse_filter("tolower(country) eq null").matches({"country": 5})
    assert parse_filter("id eq %s" % GUID.upper()).matches({"id": GUID})
    assert parse_filter("id eq %s" % GUID).matches({"id": uuid.UUID(GUID)})
    assert parse_filter("flag").matches({"flag": 1})
    assert parse_filter("flag eq false").matches({"flag": 0})


def test_thread_safe_parsing():
    texts = sorted(CASES)
    expected = {t: parse_filter(t, FIELDS).tree for t in texts}
    errors = []

    def work():
        try:
            for _round in range(5):
                for t in texts:
                    assert parse_filter(t, FIELDS).tree == expected[t]
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _thread in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors


def test_filter_is_hashable_and_comparable():
    a = parse_filter("contains(name, 'x') and country in ('DK', 'SE')", None, "one")
    b = parse_filter("contains(name, 'x') and country in ('DK', 'SE')", None, "two")
    assert a == b and hash(a) == hash(b)


def test_import_without_third_party_libraries():
    code = (
        "import sys\n"
        "for name in ('sqlalchemy', 'odata_query', 'odata_query.grammar', 'sly', 'sly.lex', 'dateutil', 'dateutil.parser'):\n"
        "    sys.modules[name] = None\n"
        "from ansible_collections.tablesync.integration.plugins.module_utils import filters\n"
        "assert not filters.HAS_ODATA_QUERY and filters.ODATA_QUERY_IMPORT_ERROR\n"
        "assert filters.parse_filter(None) is None and filters.parse_filter(' ') is None\n"
        "try:\n"
        "    filters.parse_filter('a eq 1', context='mapping X, table_filter')\n"
        "except filters.FilterError as exc:\n"
        "    assert 'mapping X, table_filter' in str(exc) and 'odata-query' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_column_types_are_checked():
    for text, fragment in (
        ("blocked eq 'x'", "blocked holds integer values, it cannot be compared with 'x'"),
        ("modified_on gt '2024-01-01'", "modified_on holds datetime values"),
        ("'DK' eq credit_limit", "credit_limit holds float values"),
        ("founded in (2024-01-01, 5)", "founded holds date values"),
        ("contains(blocked, '1')", "contains works on text; blocked holds integer values"),
        ("tolower(modified_on) eq 'x'", "tolower works on text"),
        ("name", "name holds text values, it cannot be compared with true"),
    ):
        flt = parse_filter(text, FIELDS, CONTEXT)
        with pytest.raises(FilterError) as info:
            flt.to_sqlalchemy(customer.c)
        assert str(info.value).startswith(CONTEXT + ": ")
        assert fragment in str(info.value)
    # Compatible kinds are fine: numbers across types, dates with datetimes, GUIDs with text, booleans with integers.
    for text in ("credit_limit gt 5", "blocked lt 1.5", "founded lt 2024-01-01T10:00:00Z", "modified_on ge 2024-01-01", "guid eq %s" % GUID, "active eq 1"):
        parse_filter(text, FIELDS).to_sqlalchemy(customer.c)


SERVERS = {
    "postgresql": os.environ.get("TABLESYNC_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test?connect_timeout=3"),
    "mysql": os.environ.get("TABLESYNC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test?connect_timeout=3"),
}


@pytest.mark.parametrize("server", [pytest.param(name, marks=getattr(pytest.mark, name)) for name in SERVERS])
def test_cases_on_database_servers(server):
    """The LIKE path (escaped wildcards) and typed binds on real PostgreSQL and MariaDB/MySQL."""
    try:
        eng = sa.create_engine(SERVERS[server])
        with eng.connect():
            pass
    except Exception as exc:  # why: CI starts both servers; a missing one is a failure, never a skip
        pytest.fail("%s server not reachable (make services starts it): %s" % (server, str(exc).splitlines()[0]))
    md = sa.MetaData()
    table = customer.to_metadata(md, name="tablesync_filters_%s" % uuid.uuid4().hex[:12])
    try:
        md.create_all(eng)
        with eng.begin() as conn:
            conn.execute(table.insert(), [dict(zip(FIELDS, row)) for row in ROWS])
        with eng.connect() as conn:
            records = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            failures = []
            for text, expected in sorted(CASES.items()):
                flt = parse_filter(text, FIELDS, CONTEXT)
                expr = flt.to_sqlalchemy(table.c)
                in_sql = {r[0] for r in conn.execute(sa.select(table.c.id).where(expr))}
                negated = {r[0] for r in conn.execute(sa.select(table.c.id).where(sa.not_(expr)))}
                in_python = {r["id"] for r in records if flt.matches(r)}
                if in_sql != in_python or negated != ALL_IDS - in_sql or (expected is not None and in_sql != expected):
                    failures.append((text, sorted(in_sql), sorted(in_python), expected and sorted(expected)))
            assert not failures
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == len(ROWS)
    finally:
        md.drop_all(eng)
        eng.dispose()
