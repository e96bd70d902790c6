"""Modified-on values in every stored form, and modified-records reads that lose no record (real SQLite files)."""

from __future__ import annotations

import datetime
import decimal
import os
import random
import sqlite3

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.modified_on import (
    ModifiedOnError,
    StampForm,
    detect_form,
    newest,
    parse_column,
    read_from,
    render,
    to_utc,
    watermark_cutoff,
)
from ansible_collections.tablesync.integration.plugins.module_utils.values import utcnow
from tests.support.fixtures import Demo, customer_account_mapping, execute, rows

SEED = 18
UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1)
INSTANT = datetime.datetime(2025, 3, 1, 12, 0, 36, 861000)


# -- the forms of modified-on values ------------------------------------------------------------------------


@pytest.mark.parametrize("value, declared, expected", [
    ("2025-03-01T12:00:36.861Z", "auto", INSTANT),
    ("2025-03-01 12:00:36.861", "auto", INSTANT),
    ("2025-03-01T12:00:36.861000", "iso", INSTANT),
    ("2025-03-01T12:00:36.861999999Z", "auto", INSTANT.replace(microsecond=861999)),
    ("2025-03-01T12:00:36Z", "auto", INSTANT.replace(microsecond=0)),
    ("2025-03-01T12:00:36.Z", "auto", INSTANT.replace(microsecond=0)),
    ("2025-03-01T14:00:36.861+02:00", "auto", INSTANT),
    ("2025-03-01T07:00:36.861-05:00", "auto", INSTANT),
    ("2025-03-01T14:30:36.861+0230", "auto", INSTANT),
    ("2025-03-01T12:00", "auto", datetime.datetime(2025, 3, 1, 12, 0)),
    ("2025-03-01", "auto", datetime.datetime(2025, 3, 1)),
    (1740830436, "auto", INSTANT.replace(microsecond=0)),
    (1740830436, "epoch_seconds", INSTANT.replace(microsecond=0)),
    (1740830436861, "auto", INSTANT),
    (1740830436861, "epoch_milliseconds", INSTANT),
    ("1740830436861", "auto", INSTANT),
    ("1740830436", "epoch_seconds", INSTANT.replace(microsecond=0)),
    (1740830436.861, "auto", INSTANT),
    (decimal.Decimal("1740830436.861"), "epoch_seconds", INSTANT),
    (INSTANT, "auto", INSTANT),
    (INSTANT.replace(tzinfo=UTC), "native", INSTANT),
    (datetime.datetime(2025, 3, 1, 13, 0, 36, 861000, tzinfo=datetime.timezone(datetime.timedelta(hours=1))), "auto", INSTANT),
    (datetime.date(2025, 3, 1), "auto", datetime.datetime(2025, 3, 1)),
    (None, "auto", None),
])
def test_every_form_parses_to_its_utc_instant(value, declared, expected):
    assert to_utc(value, declared) == expected


@pytest.mark.parametrize("value, declared", [
    ("yesterday", "auto"), ("2025-13-01T00:00:00Z", "auto"), ("2025-03-01T12:00:00+25:00", "auto"), (True, "auto"),
    (1740830436, "iso"), ("2025-03-01T12:00:00Z", "epoch_seconds"), (10 ** 30, "auto"), (b"\xff\xfe", "auto"),
    (float("nan"), "auto"), (float("inf"), "epoch_seconds"), ("NaN", "auto"),
])
def test_unparseable_values_raise_a_conversion_error(value, declared):
    with pytest.raises(ModifiedOnError):
        to_utc(value, declared)


FORMS = [
    StampForm("iso", separator="T"),
    StampForm("iso", separator=" "),
    StampForm("iso", date_only=True),
    StampForm("iso", separator="T", offsets=True),
    StampForm("epoch_seconds"),
    StampForm("epoch_milliseconds"),
    StampForm("epoch_milliseconds", as_text=True),
    StampForm("native"),
    StampForm("native", aware=True),
]


@pytest.mark.parametrize("form", FORMS, ids=repr)
def test_a_rendered_bound_parses_back_to_the_instant_or_just_before_it(form):
    rng = random.Random(SEED)
    for _draw in range(200):
        moment = EPOCH + datetime.timedelta(microseconds=rng.randrange(0, 2 ** 52))
        back = to_utc(render(moment, form), form.form if form.form != "iso" else "auto")
        if form.offsets:
            moment -= datetime.timedelta(hours=14)
        if form.date_only:
            assert back == datetime.datetime(moment.year, moment.month, moment.day), "seed %d" % SEED
        elif form.form == "native":
            assert back == moment, "seed %d" % SEED
        else:
            # why: a lower bound may only be earlier, by less than the form's precision
            precision = datetime.timedelta(milliseconds=1) if form.form == "epoch_milliseconds" else datetime.timedelta(seconds=1)
            assert moment - precision < back <= moment, "seed %d, %s" % (SEED, moment)


def test_a_text_bound_sorts_before_every_stored_text_of_the_same_instant():
    stored = ["2025-03-01T12:00:36.861Z", "2025-03-01T12:00:36Z", "2025-03-01T12:00:36.000000", "2025-03-01T12:00:36"]
    bound = render(INSTANT, StampForm("iso", separator="T"))
    assert all(bound <= text for text in stored)
    assert bound > "2025-03-01T12:00:35.999Z"


def test_detection_from_kind_and_sample():
    assert detect_form("datetime", [], native_dates=True, aware=True) == StampForm("native", aware=True)
    assert detect_form("date", [], native_dates=True) == StampForm("native", date_only=True)
    assert detect_form("text", ["2025-03-01T12:00:36.861Z", "2025-03-02T12:00:36.861Z"]) == StampForm("iso", separator="T")
    assert detect_form("datetime", ["2025-03-01 12:00:36.861000"], native_dates=False) == StampForm("iso", separator=" ")
    assert detect_form("text", ["2025-03-01T12:00:36.861+02:00", "2025-03-01T12:00:36Z"]).offsets
    assert detect_form("text", ["2025-03-01T12:00:36Z", "2025-03-01T12:00:36+00:00"]).offsets is False
    assert detect_form("text", ["2025-03-01"]).date_only
    assert detect_form("integer", [1740830436861, 1740830436000]) == StampForm("epoch_milliseconds")
    assert detect_form("integer", [1740830436, 1740830437]) == StampForm("epoch_seconds")
    # a far-future sentinel does not turn a column of seconds into milliseconds
    assert detect_form("integer", [1740830436, 1740830437, 253402300799]) == StampForm("epoch_seconds")
    assert detect_form("integer", [253402300799, 1740830436]) == StampForm("epoch_seconds")  # as many sentinels as stamps
    assert detect_form("integer", [253402300799000, 1740830436000]) == StampForm("epoch_milliseconds")
    assert detect_form("text", ["1740830436861"]) == StampForm("epoch_milliseconds", as_text=True)
    assert detect_form("integer", [5], declared="epoch_milliseconds") == StampForm("epoch_milliseconds")
    assert detect_form("datetime", [], native_dates=False) == StampForm("iso", separator=" ")


def test_watermark_helpers():
    start = datetime.datetime(2025, 3, 1, 12, 0, 0)
    cutoff = watermark_cutoff(start, 60)
    assert start < cutoff <= start + datetime.timedelta(seconds=60)
    assert watermark_cutoff(start, 0) == start
    values = ["2025-03-01T11:00:00Z", "9999-12-31T23:59:59Z", None, "garbage", "2025-03-01T11:30:00Z"]
    assert newest(values, "auto", cutoff) == datetime.datetime(2025, 3, 1, 11, 30)
    naive = [datetime.datetime(2025, 3, 1, 11, 0), None, datetime.datetime(9999, 12, 31), datetime.datetime(2025, 3, 1, 11, 30)]
    assert newest(naive, "auto", cutoff) == datetime.datetime(2025, 3, 1, 11, 30)
    aware = naive + [datetime.datetime(2025, 3, 1, 12, 40, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))]
    assert newest(aware, "auto", cutoff) == datetime.datetime(2025, 3, 1, 11, 40)
    assert parse_column(aware + ["2025-03-01T12:00:00Z"], "auto")[-2:] == [datetime.datetime(2025, 3, 1, 11, 40), start]
    assert isinstance(parse_column(["soon"], "auto")[0], ModifiedOnError)
    assert read_from(start, 60) == datetime.datetime(2025, 3, 1, 11, 59)
    assert read_from(None, 60) is None


# -- small ERP and CRM databases --------------------------------------------------------------------------


def iso_z(moment):
    return moment.isoformat(timespec="milliseconds") + "Z"


def sqlalchemy_text(moment):
    return moment.isoformat(sep=" ", timespec="milliseconds")


def epoch_ms(moment):
    return (moment - EPOCH) // datetime.timedelta(milliseconds=1)


def number(n):
    return "C%04d" % n


def make_demo(directory, column_type, stamp, customers=200, first=None):
    """An ERP customer table whose modified-on column ``modified`` is of ``column_type`` holding ``stamp(moment)``, and a CRM."""
    os.makedirs(directory, exist_ok=True)
    demo = Demo(directory, os.path.join(directory, "erp.sqlite"), os.path.join(directory, "crm.sqlite"), os.path.join(directory, "store.sqlite"))
    first = first or utcnow().replace(microsecond=0) - datetime.timedelta(days=3)
    erp = sqlite3.connect(demo.erp)
    erp.execute("create table customer (no text primary key, name text not null, phone text, note text, modified %s)" % column_type)
    erp.executemany("insert into customer values (?, ?, ?, ?, ?)",
                    [(number(n), "Customer %d" % n, "555-%04d" % n, None, stamp(first + datetime.timedelta(minutes=n)))
                     for n in range(1, customers + 1)])
    erp.commit()
    erp.close()
    crm = sqlite3.connect(demo.crm)
    crm.execute("create table account (accountid text primary key, accountnumber text, name text, telephone1 text, modifiedon datetime)")
    crm.commit()
    crm.close()
    return demo


def declare(demo, **options):
    demo.declare([customer_account_mapping(
        local_modified_field="modified", synch_only_coupled_records=False,
        fields=[{"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"},
                {"field": "phone", "integration_field": "telephone1"}], **options)])


def job(run):
    (only,) = run.jobs
    return only


def in_step(demo):
    """The CRM accounts are the ERP customers (deleted customers keep their accounts)."""
    customers = set(rows(demo.erp, "select no, name, phone from customer"))
    accounts = set(rows(demo.crm, "select accountnumber, name, telephone1 from account"))
    return customers <= accounts and len(accounts) == len(rows(demo.crm, "select accountid from account"))


def update(demo, sql, numbers, *params):
    marks = ",".join("?" * len(numbers))
    execute(demo.erp, sql % marks, *params, *[number(n) for n in numbers])


@pytest.fixture
def make(tmp_path):
    made = []

    def build(column_type, stamp, **kwargs):
        demo = make_demo(str(tmp_path / ("demo%d" % len(made))), column_type, stamp, **kwargs)
        made.append(demo)
        return demo

    yield build
    for demo in made:
        demo.close()


# -- the cases -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column_type, stamp", [("TEXT", iso_z), ("INTEGER", epoch_ms)], ids=["iso-text-z", "epoch-milliseconds"])
def test_one_statements_changes_are_written_exactly_once(make, column_type, stamp):
    demo = make(column_type, stamp)
    declare(demo)
    full = job(demo.run("full", batch_size=7))
    assert full.counts["inserted"] == 200 and full.counts["failed"] == 0
    rng = random.Random(SEED)
    picked = rng.sample(range(1, 201), 85)
    modified, touched, unmapped, deleted = picked[:50], picked[50:70], picked[70:80], picked[80:]
    now = stamp(utcnow().replace(microsecond=123000) - datetime.timedelta(minutes=10))
    update(demo, "update customer set phone = phone || '-1', modified = ? where no in (%s)", modified, now)
    update(demo, "update customer set modified = ? where no in (%s)", touched, now)
    update(demo, "update customer set note = 'unmapped', modified = ? where no in (%s)", unmapped, now)
    update(demo, "delete from customer where no in (%s)", deleted)
    for n in range(201, 211):
        execute(demo.erp, "insert into customer values (?, ?, ?, null, ?)", number(n), "New %d" % n, "555-%04d" % n, now)
    run = job(demo.run("modified", batch_size=7))
    assert (run.counts["modified"], run.counts["inserted"], run.counts["failed"]) == (50, 10, 0), "seed %d: %s" % (SEED, run.counts)
    assert run.counts["unchanged"] == 30, "touched and unmapped-column updates change nothing (seed %d)" % SEED
    assert in_step(demo), "seed %d" % SEED
    again = job(demo.run("modified", batch_size=7))
    assert not again.changed and again.counts["read"] == 0, "seed %d: %s" % (SEED, again.counts)


def test_a_tie_longer_than_a_page_is_read_whole(make):
    demo = make("DATETIME", sqlalchemy_text, first=datetime.datetime(2025, 2, 1, 8, 0))
    declare(demo)
    demo.run("full")
    tied = list(range(40, 70))
    update(demo, "update customer set phone = phone || '-2', modified = '2025-03-01 12:00:36.861' where no in (%s)", tied)
    run = job(demo.run("modified", batch_size=7))
    assert run.counts["modified"] == 30 and run.counts["failed"] == 0, run.counts
    assert in_step(demo)


def test_rows_committed_late_are_read_by_the_next_run(make):
    demo = make("DATETIME", sqlalchemy_text, first=datetime.datetime(2025, 2, 1, 8, 0))
    declare(demo)
    demo.run("full")
    newest_read = datetime.datetime(2025, 3, 1, 12, 0, 36, 861000)
    update(demo, "update customer set phone = phone || '-3', modified = ? where no in (%s)", [5], sqlalchemy_text(newest_read))
    assert job(demo.run("modified", batch_size=7)).counts["modified"] == 1
    # two transactions that stamped their rows before that read and committed after it
    update(demo, "update customer set phone = phone || '-4', modified = ? where no in (%s)", [6], sqlalchemy_text(newest_read))
    update(demo, "update customer set phone = phone || '-5', modified = ? where no in (%s)", [7],
           sqlalchemy_text(newest_read - datetime.timedelta(seconds=1)))
    run = job(demo.run("modified", batch_size=7))
    assert run.counts["modified"] == 2 and run.counts["read"] == 2, run.counts
    assert in_step(demo)


def test_a_far_future_sentinel_does_not_stop_later_changes(make):
    demo = make("DATETIME", sqlalchemy_text)
    declare(demo)
    execute(demo.erp, "update customer set modified = '9999-12-31 23:59:59' where no = ?", number(3))
    demo.run("full")
    store = demo.engine()[0]
    assert store.watermark("CUSTOMER", "local") < utcnow()
    for n, minutes in ((8, 30), (9, 20)):
        stamp = sqlalchemy_text(utcnow() - datetime.timedelta(minutes=minutes))
        update(demo, "update customer set phone = phone || '-6', modified = ? where no in (%s)", [n], stamp)
        run = job(demo.run("modified", batch_size=7))
        assert run.counts["modified"] == 1 and run.counts["unchanged"] == 1, run.counts  # the sentinel, read again
    assert store.watermark("CUSTOMER", "local") < utcnow()
    assert in_step(demo)


def test_time_zone_aware_values_sync_without_a_naive_aware_crash(make):
    demo = make("DATETIME", iso_z, first=datetime.datetime(2025, 2, 1, 8, 0))
    declare(demo)
    assert job(demo.run("full", batch_size=7)).status == "success"
    update(demo, "update customer set phone = phone || '-7', modified = '2025-03-01T12:00:36.861Z' where no in (%s)", [11, 12])
    # 13:00:36+02:00 is 11:00:36 UTC, later than every other stamp
    update(demo, "update customer set phone = phone || '-7', modified = '2025-03-01T13:00:36.861+02:00' where no in (%s)", [13])
    run = job(demo.run("modified", batch_size=7))
    assert run.status == "success" and run.counts["modified"] == 3, (run.message, run.counts)
    store = demo.engine()[0]
    assert store.watermark("CUSTOMER", "local") == datetime.datetime(2025, 3, 1, 12, 0, 36, 861000)
    assert in_step(demo)


def test_an_unparseable_stamp_fails_only_its_record(make):
    demo = make("TEXT", iso_z, customers=20)
    declare(demo)
    execute(demo.erp, "update customer set modified = 'last tuesday' where no = ?", number(5))
    run = job(demo.run("full", batch_size=7))
    assert run.counts["inserted"] == 19 and run.counts["failed"] == 1
    (error,) = run.errors
    assert error["record_id"] == number(5)
    for part in ("CUSTOMER", number(5), "modified", "last tuesday"):
        assert part in error["message"], error["message"]


# -- declaration ---------------------------------------------------------------------------------------------


def bind(demo, **options):
    definition = customer_account_mapping(local_modified_field="modified", fields=[{"field": "name", "integration_field": "name"}], **options)
    mapping = Mapping.from_definition(definition)
    endpoints = {"local": open_endpoint("local", demo.local), "integration": open_endpoint("integration", demo.integration)}
    try:
        return mapping.bind(open_tables(mapping, endpoints))
    finally:
        for endpoint in endpoints.values():
            endpoint.close()


@pytest.mark.parametrize("column_type, declared", [("TEXT", "auto"), ("TEXT", "iso"), ("TEXT", "epoch_milliseconds"), ("INTEGER", "auto"),
                                                   ("INTEGER", "epoch_seconds"), ("DATETIME", "native"), ("NUMERIC", "epoch_seconds")])
def test_text_and_number_modified_on_columns_are_accepted(make, column_type, declared):
    bind(make(column_type, iso_z, customers=1), local_modified_format=declared)


@pytest.mark.parametrize("column_type, declared, message", [
    ("BOOLEAN", "auto", "type boolean, which cannot hold a date-time"),
    ("BLOB", "auto", "type binary, which cannot hold a date-time"),
    ("INTEGER", "iso", "type integer, which cannot hold iso values"),
    ("TEXT", "native", "type text, which cannot hold native values"),
    ("DATETIME", "epoch_seconds", "type datetime, which cannot hold epoch_seconds values"),
])
def test_a_column_that_cannot_hold_the_stamp_is_refused_naming_mapping_and_field(make, column_type, declared, message):
    with pytest.raises(MappingError) as caught:
        bind(make(column_type, iso_z, customers=1), local_modified_format=declared)
    assert "CUSTOMER" in str(caught.value) and "modified" in str(caught.value) and message in str(caught.value)


def test_an_unknown_format_is_refused():
    with pytest.raises(MappingError, match="local_modified_format"):
        Mapping.from_definition(customer_account_mapping(fields=[{"field": "name", "integration_field": "name"}], local_modified_format="julian"))


# -- paging over keys that repeat --------------------------------------------------------------------------


def test_paging_reads_every_row_of_a_key_that_repeats(tmp_path):
    path = str(tmp_path / "dup.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("create table party (no text, modified text, name text)")  # no primary key, no unique constraint
    rng = random.Random(SEED)
    data = [("K%02d" % rng.randrange(12), "2025-03-01T12:00:%02d.000Z" % rng.randrange(4), "row %d" % n) for n in range(60)]
    conn.executemany("insert into party values (?, ?, ?)", data)
    conn.commit()
    conn.close()
    endpoint = open_endpoint("local", {"type": "sqlite", "path": path})
    try:
        table = endpoint.table("party", "no")
        for size in (1, 2, 3, 5, 7):
            by_key = [r for page in table.scan(["no", "modified", "name"], page_size=size) for r in page]
            assert sorted(by_key) == sorted(data), "seed %d, page size %d" % (SEED, size)
            since = datetime.datetime(2025, 3, 1, 12, 0, 1)
            by_modified = [r for page in table.scan(["no", "modified", "name"], modified_field="modified", modified_since=since, page_size=size)
                           for r in page]
            assert sorted(by_modified) == sorted(r for r in data if r[1] >= "2025-03-01T12:00:01"), "seed %d, page size %d" % (SEED, size)
    finally:
        endpoint.close()


# -- web sources ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("since", [datetime.datetime(2020, 1, 1, 0, 0, 0, 861000),
                                   datetime.datetime(2020, 1, 1, 2, 0, 0, 861000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
                                   datetime.datetime(2019, 12, 31, 19, 0, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))],
                         ids=["naive", "plus-two", "minus-five"])
def test_a_web_source_is_read_from_a_utc_bound_whatever_its_time_zone(monkeypatch, since):
    from tests.support import ODataService
    from tests.support.web_schemas import declare_dataverse, endpoint_options

    with ODataService("dataverse") as dv:
        declare_dataverse(dv)
        dv.insert("accounts", [{"name": "A", "accountnumber": "N1"}])
        endpoint = open_endpoint("integration", endpoint_options(dv))
        sent = []
        original = endpoint.client.session.request
        monkeypatch.setattr(endpoint.client.session, "request", lambda method, url, **kw: sent.append(url) or original(method, url, **kw))
        try:
            table = endpoint.table("accounts", "accountid")
            read = [r for page in table.scan(["accountid", "name", "modifiedon"], modified_field="modifiedon", modified_since=since) for r in page]
        finally:
            endpoint.close()
    assert [r[1] for r in read] == ["A"]
    assert any("modifiedon%20ge%202020-01-01T00:00:00Z" in url or "modifiedon ge 2020-01-01T00:00:00Z" in url for url in sent), sent
