# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A page's values converted, fingerprinted and bound a column at a time give what one record at a time gives."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import prepare_rows
from ansible_collections.tablesync.integration.plugins.module_utils.values import (
    ConversionError,
    convert_column,
    converter,
    fingerprint,
    fingerprints,
)

RECORDS = [
    ("C1", "Anna", 1, decimal.Decimal("10.50"), datetime.datetime(2025, 1, 2, 3, 4, 5, 6), True, None),
    ("C2", "Ben", 2, decimal.Decimal("7"), datetime.datetime(2025, 1, 2, tzinfo=datetime.timezone.utc), False, uuid.UUID(int=5)),
    ("C3", "", 0, 7.25, datetime.date(2025, 5, 6), 1, b"\x00\x01"),
    ("C4", None, None, None, None, None, None),
]


def test_fingerprints_of_columns_are_the_fingerprints_of_the_records():
    columns = [list(c) for c in zip(*RECORDS)]
    assert fingerprints(columns) == [fingerprint(r) for r in RECORDS]
    assert len(set(fingerprints(columns))) == len(RECORDS)


def test_a_column_of_the_right_classes_is_kept_as_it_is():
    column = ["a", None, "b"]
    converted, refused = convert_column(converter("text"), column)
    assert converted is column and refused == {}


def test_values_a_column_cannot_take_are_refused_by_position():
    converted, refused = convert_column(converter("integer"), [1, "2", "three", True, None])
    assert converted[:2] == [1, 2] and converted[4] is None
    assert sorted(refused) == [2]
    assert isinstance(refused[2], ConversionError) and "three" in str(refused[2])


def test_a_text_longer_than_its_column_is_refused_even_when_every_class_fits():
    converted, refused = convert_column(converter("text", max_length=3), ["abc", None, "abcd", ""])
    assert sorted(refused) == [2] and "4 characters" in str(refused[2])
    assert converted[0] == "abc" and converted[3] == ""


@pytest.mark.parametrize("value", [
    datetime.datetime(2025, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2025, 1, 1),
    datetime.datetime(999, 12, 31, 23, 59, 59, 999999),
    datetime.datetime(2025, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
    datetime.date(2025, 5, 6),
    None,
])
def test_sqlite_datetimes_are_bound_as_sqlalchemy_binds_them(value):
    table = sa.Table("t", sa.MetaData(), sa.Column("at", sa.DateTime), sa.Column("n", sa.Integer))
    dialect = sqlite.dialect()
    prepared = prepare_rows(dialect, table, ("at", "n"), [(value, 1), (value, 2)])
    expected = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)(value)
    assert [r[prepared.columns.index("at")] for r in prepared.rows] == [expected, expected]
