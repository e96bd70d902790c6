#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, what the molecule verify step compares in the ERP, the CRM and the store."""

from __future__ import annotations

import argparse
import json
import sqlite3

# mapping: (local table and key, integration table, key and filter)
MAPPINGS = {
    "CURRENCY": ("SELECT code FROM currency", "SELECT transactioncurrencyid FROM transactioncurrency"),
    "SALESPEOPLE": ("SELECT code FROM salesperson", "SELECT systemuserid FROM systemuser"),
    "UNITOFMEASURE": ("SELECT code FROM unit_of_measure", "SELECT uomscheduleid FROM uomschedule"),
    "CUSTOMER": ("SELECT no FROM customer", "SELECT accountid FROM account"),
    "CONTACTS": ("SELECT no FROM contact", "SELECT contactid FROM contact"),
    "RESOURCE-PRODUCT": ("SELECT no FROM resource", "SELECT productid FROM product WHERE producttypecode = 3"),
    "ITEM-PRODUCT": ("SELECT no FROM item", "SELECT productid FROM product WHERE producttypecode = 1"),
}


def column(path: str, sql: str) -> list:
    conn = sqlite3.connect(path)
    try:
        return [str(row[0]) for row in conn.execute(sql)]
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--erp", required=True)
    parser.add_argument("--crm", required=True)
    parser.add_argument("--store", required=True)
    args = parser.parse_args()
    facts = {}
    for name, (local_sql, integration_sql) in MAPPINGS.items():
        couplings = column(args.store, "SELECT local_id || '=' || integration_id FROM tablesync_couplings WHERE mapping = '%s'" % name)
        facts[name] = {
            "local": sorted(column(args.erp, local_sql)),
            "integration": sorted(column(args.crm, integration_sql)),
            "coupled_local": sorted(pair.split("=", 1)[0] for pair in couplings),
            "coupled_integration": sorted(pair.split("=", 1)[1] for pair in couplings),
        }
    conn = sqlite3.connect(args.crm)
    try:
        accounts = dict(conn.execute("SELECT accountnumber, name FROM account").fetchall())
    finally:
        conn.close()
    conn = sqlite3.connect(args.erp)
    try:
        customers = dict(conn.execute("SELECT no, name FROM customer").fetchall())
    finally:
        conn.close()
    facts["customer_names_match"] = accounts == customers
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
