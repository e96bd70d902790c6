#!/usr/bin/env python
"""Build the two SQLite demo databases of the tablesync.integration collection.

* ERP ("local" side, Dynamics NAV-like): currency, salesperson (empty), unit_of_measure,
  customer, contact, item and resource, filled with realistic demo data.
* CRM ("integration" side, Dynamics 365 Sales / Dataverse-like): systemuser (12 sales
  people whose ``nickname`` values are the ERP customers' ``salesperson_code``) and the empty
  tables transactioncurrency, uomschedule, account, contact and product that a sync fills.

Usage::

    build_demo_databases.py --erp PATH --crm PATH [--customers 2000] [--contacts-per-customer 2]
                            [--items 300] [--resources 40] [--seed 42] [--as-of YYYY-MM-DD] [--force]

Without ``--force`` nothing is touched when both files already hold all demo tables; a file
that exists but is not such a database (and is not empty) is only replaced with ``--force``.
The result is printed as one line of JSON: ``{"changed": true, "erp": {table: rows},
"crm": {table: rows}}`` (``"changed": false`` plus ``"msg"`` when nothing was done, and
``"failed": true`` with exit status 1 on errors).

The output depends only on the arguments: one ``random.Random`` per data set is derived from
``--seed`` (UUIDs included). Modification timestamps are spread over the two years before
``--as-of`` (default: today, UTC), all earlier than 00:00 UTC of the day before it, so they
are at least a day old. Timestamps are naive UTC text in SQLAlchemy's SQLite ``DateTime``
format ``YYYY-MM-DD HH:MM:SS.ffffff``. Every modified-on column has an index, a DEFAULT of the
current time and an AFTER UPDATE trigger that sets it to the current time whenever an UPDATE
leaves it unchanged, like an ERP/CRM would. Money is generated as two-decimal ``Decimal``
values and bound as text; SQLite's NUMERIC affinity stores it as INTEGER/REAL.
Exchange rates are units of the currency per 1 USD (the local currency, rate 1).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from random import Random
from typing import Any, NamedTuple

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
# Current UTC time with six fractional digits (SQLite only has milliseconds).
SQL_NOW = "(strftime('%Y-%m-%d %H:%M:%f', 'now') || '000')"
HISTORY_DAYS = 730
CENT = Decimal("0.01")
SQLITE_MAGIC = b"SQLite format 3\x00"
SYSTEM_USER_COUNT = 12
OWN_DOMAIN = "contoso.com"

ERP_MODIFIED = f"DATETIME NOT NULL DEFAULT {SQL_NOW}"
CRM_MODIFIED = f"DATETIME DEFAULT {SQL_NOW}"


# --------------------------------------------------------------------------- schema


class Table(NamedTuple):
    """A demo table: name, primary-key column, modified-on column and column declarations."""

    name: str
    key: str
    modified: str
    columns: tuple[tuple[str, str], ...]


ERP_TABLES: tuple[Table, ...] = (
    Table("currency", "code", "modified_on", (
        ("code", "TEXT PRIMARY KEY"), ("description", "TEXT NOT NULL"), ("symbol", "TEXT"),
        ("exchange_rate", "NUMERIC NOT NULL"), ("modified_on", ERP_MODIFIED),
    )),
    Table("salesperson", "code", "modified_on", (
        ("code", "TEXT PRIMARY KEY"), ("name", "TEXT NOT NULL"), ("email", "TEXT"), ("phone", "TEXT"),
        ("modified_on", ERP_MODIFIED),
    )),
    Table("unit_of_measure", "code", "modified_on", (
        ("code", "TEXT PRIMARY KEY"), ("description", "TEXT NOT NULL"), ("modified_on", ERP_MODIFIED),
    )),
    Table("customer", "no", "modified_on", (
        ("no", "TEXT PRIMARY KEY"), ("name", "TEXT NOT NULL"), ("address", "TEXT"), ("city", "TEXT"),
        ("post_code", "TEXT"), ("country", "TEXT"), ("phone", "TEXT"), ("email", "TEXT"),
        ("credit_limit", "NUMERIC NOT NULL DEFAULT 0"), ("blocked", "INTEGER NOT NULL DEFAULT 0"),
        ("salesperson_code", "TEXT"), ("currency_code", "TEXT"), ("modified_on", ERP_MODIFIED),
    )),
    Table("contact", "no", "modified_on", (
        ("no", "TEXT PRIMARY KEY"), ("first_name", "TEXT"), ("surname", "TEXT NOT NULL"), ("email", "TEXT"),
        ("phone", "TEXT"), ("job_title", "TEXT"), ("company_no", "TEXT"), ("modified_on", ERP_MODIFIED),
    )),
    Table("item", "no", "modified_on", (
        ("no", "TEXT PRIMARY KEY"), ("description", "TEXT NOT NULL"), ("unit_price", "NUMERIC NOT NULL"),
        ("unit_cost", "NUMERIC NOT NULL"), ("base_unit_of_measure", "TEXT"), ("blocked", "INTEGER NOT NULL DEFAULT 0"),
        ("modified_on", ERP_MODIFIED),
    )),
    Table("resource", "no", "modified_on", (
        ("no", "TEXT PRIMARY KEY"), ("name", "TEXT NOT NULL"), ("unit_price", "NUMERIC NOT NULL"),
        ("base_unit_of_measure", "TEXT"), ("modified_on", ERP_MODIFIED),
    )),
)

CRM_TABLES: tuple[Table, ...] = (
    Table("systemuser", "systemuserid", "modifiedon", (
        ("systemuserid", "TEXT PRIMARY KEY"), ("fullname", "TEXT NOT NULL"), ("nickname", "TEXT"),
        ("internalemailaddress", "TEXT"), ("mobilephone", "TEXT"), ("modifiedon", f"DATETIME NOT NULL DEFAULT {SQL_NOW}"),
    )),
    Table("transactioncurrency", "transactioncurrencyid", "modifiedon", (
        ("transactioncurrencyid", "TEXT PRIMARY KEY"), ("isocurrencycode", "TEXT"), ("currencyname", "TEXT"),
        ("currencysymbol", "TEXT"), ("exchangerate", "NUMERIC"), ("modifiedon", CRM_MODIFIED),
    )),
    Table("uomschedule", "uomscheduleid", "modifiedon", (
        ("uomscheduleid", "TEXT PRIMARY KEY"), ("name", "TEXT"), ("description", "TEXT"), ("modifiedon", CRM_MODIFIED),
    )),
    Table("account", "accountid", "modifiedon", (
        ("accountid", "TEXT PRIMARY KEY"), ("accountnumber", "TEXT"), ("name", "TEXT"), ("address1_line1", "TEXT"),
        ("address1_city", "TEXT"), ("address1_postalcode", "TEXT"), ("address1_country", "TEXT"), ("telephone1", "TEXT"),
        ("emailaddress1", "TEXT"), ("creditlimit", "NUMERIC"), ("creditonhold", "INTEGER"), ("ownerid", "TEXT"),
        ("transactioncurrencyid", "TEXT"), ("modifiedon", CRM_MODIFIED),
    )),
    Table("contact", "contactid", "modifiedon", (
        ("contactid", "TEXT PRIMARY KEY"), ("firstname", "TEXT"), ("lastname", "TEXT"), ("emailaddress1", "TEXT"),
        ("telephone1", "TEXT"), ("jobtitle", "TEXT"), ("parentcustomerid", "TEXT"), ("modifiedon", CRM_MODIFIED),
    )),
    Table("product", "productid", "modifiedon", (
        ("productid", "TEXT PRIMARY KEY"), ("productnumber", "TEXT"), ("name", "TEXT"), ("price", "NUMERIC"),
        ("standardcost", "NUMERIC"), ("defaultuomscheduleid", "TEXT"), ("producttypecode", "INTEGER"), ("modifiedon", CRM_MODIFIED),
    )),
)


def schema_statements(table: Table) -> list[str]:
    """CREATE TABLE, modified-on index and touch trigger for one table."""
    columns = ",\n    ".join(f"{name} {decl}" for name, decl in table.columns)
    name, key, col = table.name, table.key, table.modified
    # The WHEN clause skips UPDATEs that set the column themselves; the extra WHERE condition keeps
    # the trigger's own UPDATE from touching the row again, so it cannot recurse even with
    # PRAGMA recursive_triggers=ON ('now' is fixed for one statement).
    trigger = (
        f"CREATE TRIGGER trg_{name}_{col}_touch AFTER UPDATE ON {name}\n"
        f"FOR EACH ROW WHEN NEW.{col} IS OLD.{col}\n"
        f"BEGIN\n"
        f"    UPDATE {name} SET {col} = {SQL_NOW}\n"
        f"    WHERE {key} = NEW.{key} AND {col} IS NOT {SQL_NOW};\n"
        f"END"
    )
    return [
        f"CREATE TABLE {name} (\n    {columns}\n)",
        f"CREATE INDEX ix_{name}_{col} ON {name} ({col})",
        trigger,
    ]


# --------------------------------------------------------------------------- word lists


class City(NamedTuple):
    """A city with its phone area code and post code range (or GB outward codes)."""

    name: str
    area: str
    post_lo: int = 0
    post_hi: int = 0
    outward: tuple[str, ...] = ()


class Country(NamedTuple):
    """Locale data used to generate names, addresses and phone numbers of one country."""

    code: str
    weight: int
    tld: str
    currency: str
    cities: tuple[City, ...]
    streets: tuple[str, ...]
    street_kinds: tuple[str, ...]
    first_names: tuple[str, ...]
    surnames: tuple[str, ...]
    company_forms: tuple[str, ...]
    trades: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US", 35, "com", "USD",
        (
            City("New York", "212", 10001, 10040), City("Chicago", "312", 60601, 60661), City("Seattle", "206", 98101, 98134),
            City("Atlanta", "404", 30303, 30334), City("Boston", "617", 2108, 2137), City("Denver", "303", 80202, 80239),
            City("Austin", "512", 78701, 78759), City("Redmond", "425", 98052, 98053), City("Miami", "305", 33101, 33139),
            City("San Francisco", "415", 94102, 94134), City("Portland", "503", 97201, 97233), City("Phoenix", "602", 85003, 85054),
        ),
        ("Main", "Oak", "Maple", "Cedar", "Washington", "Lake", "Hill", "Park", "Pine", "Elm", "Sunset", "Lincoln",
         "Madison", "Jefferson", "River", "Market", "Franklin", "Highland"),
        ("Street", "Avenue", "Boulevard", "Road", "Drive", "Lane", "Parkway"),
        ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William",
         "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Christopher", "Karen", "Daniel", "Emily",
         "Matthew", "Ashley", "Anthony", "Amanda", "Kevin", "Nicole"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Wilson",
         "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis",
         "Walker", "Hall", "Young", "Allen", "King", "Wright"),
        ("Inc.", "LLC", "Corp.", "Co."),
        ("Office Supply", "Furniture", "Systems", "Logistics", "Consulting", "Interiors", "Technologies", "Trading",
         "Distribution", "Manufacturing", "Design", "Solutions", "Workspace", "Electronics"),
    ),
    Country(
        "GB", 20, "co.uk", "GBP",
        (
            City("London", "20", outward=("EC1A", "EC2M", "WC2N", "SE1", "SW1E", "N1", "E14", "W1D")),
            City("Manchester", "161", outward=("M1", "M2", "M3", "M4")), City("Birmingham", "121", outward=("B1", "B2", "B3", "B4")),
            City("Leeds", "113", outward=("LS1", "LS2", "LS11")), City("Bristol", "117", outward=("BS1", "BS2", "BS8")),
            City("Glasgow", "141", outward=("G1", "G2", "G3")), City("Edinburgh", "131", outward=("EH1", "EH2", "EH3")),
            City("Liverpool", "151", outward=("L1", "L2", "L3")), City("Cambridge", "1223", outward=("CB1", "CB2", "CB4")),
            City("Reading", "118", outward=("RG1", "RG2", "RG30")),
        ),
        ("Victoria", "Church", "Station", "Park", "Mill", "King", "Queen", "London", "Albert", "York", "Manor", "Bridge",
         "Castle", "Chapel", "Grange", "Windsor"),
        ("Road", "Street", "Lane", "Avenue", "Close", "Way", "Square"),
        ("Oliver", "Amelia", "George", "Isla", "Harry", "Olivia", "Jack", "Emily", "Charlie", "Sophie", "Thomas", "Lucy",
         "Oscar", "Grace", "William", "Chloe", "James", "Hannah", "Alfie", "Poppy"),
        ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "Roberts", "Walker", "Wright",
         "Robinson", "Thompson", "Hughes", "Edwards", "Green", "Hall", "Wood", "Harris", "Clarke"),
        ("Ltd", "Ltd", "plc", "LLP"),
        ("Office Supplies", "Furnishings", "Systems", "Logistics", "Consulting", "Interiors", "Technology", "Trading",
         "Distribution", "Engineering", "Design", "Services"),
    ),
    Country(
        "DE", 15, "de", "EUR",
        (
            City("Berlin", "30", 10115, 14199), City("Hamburg", "40", 20095, 22769), City("München", "89", 80331, 81929),
            City("Köln", "221", 50667, 51149), City("Frankfurt am Main", "69", 60306, 60599), City("Stuttgart", "711", 70173, 70629),
            City("Düsseldorf", "211", 40210, 40629), City("Leipzig", "341", 4103, 4357), City("Hannover", "511", 30159, 30669),
            City("Bremen", "421", 28195, 28779),
        ),
        ("Haupt", "Bahnhof", "Schiller", "Goethe", "Garten", "Linden", "Kirch", "Schul", "Wald", "Berg", "Markt", "Rosen",
         "Post", "Industrie", "Mühlen", "Friedrich"),
        ("straße", "weg", "allee", "ring"),
        ("Lukas", "Anna", "Leon", "Lea", "Paul", "Hannah", "Jonas", "Lena", "Felix", "Marie", "Maximilian", "Sophie",
         "Jan", "Katharina", "Tobias", "Julia", "Stefan", "Sabine", "Jürgen", "Petra"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Koch",
         "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Zimmermann", "Braun", "Krüger", "Hartmann"),
        ("GmbH", "GmbH", "AG", "KG", "GmbH & Co. KG"),
        ("Büromöbel", "Logistik", "Maschinenbau", "Handel", "Elektro", "Bau", "Systemhaus", "Möbelwerk", "Druckerei",
         "Einrichtungen", "Bürotechnik", "IT-Service"),
    ),
    Country(
        "DK", 10, "dk", "DKK",
        (
            City("København K", "33", 1050, 1473), City("Aarhus C", "86", 8000, 8000), City("Odense C", "66", 5000, 5000),
            City("Aalborg", "98", 9000, 9000), City("Esbjerg", "75", 6700, 6705), City("Randers", "86", 8900, 8960),
            City("Kolding", "75", 6000, 6000), City("Horsens", "75", 8700, 8700), City("Vejle", "75", 7100, 7100),
            City("Roskilde", "46", 4000, 4000),
        ),
        ("Vester", "Nørre", "Søndre", "Øster", "Kongens", "Park", "Skov", "Strand", "Havne", "Kirke", "Mølle", "Industri",
         "Enghave", "Rosen"),
        ("gade", "vej", "allé"),
        ("Mads", "Sofie", "Frederik", "Emma", "Lars", "Ida", "Søren", "Freja", "Anders", "Mette", "Jens", "Anne",
         "Rasmus", "Camilla", "Niels", "Louise", "Henrik", "Karen", "Mikkel", "Line"),
        ("Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen",
         "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Poulsen", "Johansen", "Møller",
         "Mortensen", "Knudsen"),
        ("A/S", "ApS", "ApS", "I/S"),
        ("Møbler", "Byg", "Handel", "Data", "Kontorforsyning", "Transport", "Indretning", "Elektronik", "Rådgivning",
         "Engros", "Teknik"),
    ),
    Country(
        "FR", 10, "fr", "EUR",
        (
            City("Paris", "1", 75001, 75020), City("Lyon", "4", 69001, 69009), City("Marseille", "4", 13001, 13016),
            City("Toulouse", "5", 31000, 31500), City("Nice", "4", 6000, 6300), City("Nantes", "2", 44000, 44300),
            City("Strasbourg", "3", 67000, 67200), City("Bordeaux", "5", 33000, 33800), City("Lille", "3", 59000, 59800),
            City("Montpellier", "4", 34000, 34090),
        ),
        ("de la République", "Victor Hugo", "Jean Jaurès", "du Général de Gaulle", "Pasteur", "de la Paix", "des Lilas",
         "Gambetta", "Voltaire", "de la Gare", "du Commerce", "Saint-Honoré", "des Écoles", "Foch"),
        ("rue", "rue", "avenue", "boulevard", "place", "allée"),
        ("Louis", "Camille", "Gabriel", "Léa", "Hugo", "Manon", "Arthur", "Chloé", "Jules", "Inès", "Lucas", "Sarah",
         "Nathan", "Juliette", "Antoine", "Élise", "Pierre", "Margaux", "Julien", "Céline"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
         "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"),
        ("SARL", "SAS", "SA", "SAS"),
        ("Mobilier", "Bureautique", "Informatique", "Distribution", "Logistique", "Équipements", "Conseil", "Industries",
         "Agencement", "Fournitures"),
    ),
    Country(
        "NL", 10, "nl", "EUR",
        (
            City("Amsterdam", "20", 1011, 1109), City("Rotterdam", "10", 3011, 3089), City("Den Haag", "70", 2491, 2597),
            City("Utrecht", "30", 3511, 3585), City("Eindhoven", "40", 5611, 5658), City("Groningen", "50", 9711, 9747),
            City("Tilburg", "13", 5011, 5049), City("Breda", "76", 4811, 4839), City("Nijmegen", "24", 6511, 6546),
            City("Haarlem", "23", 2011, 2037),
        ),
        ("Keizers", "Heren", "Prinsen", "Kerk", "Molen", "Dorps", "Stations", "Hoofd", "Wilhelmina", "Oranje",
         "Industrie", "Beuken", "Linden", "Haven"),
        ("straat", "weg", "laan", "gracht", "plein"),
        ("Daan", "Emma", "Sem", "Julia", "Lucas", "Sophie", "Milan", "Tess", "Levi", "Zoë", "Bram", "Anna", "Thijs",
         "Fleur", "Ruben", "Lotte", "Jeroen", "Sanne", "Pieter", "Marieke"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Janssen", "Visser", "Smit", "Meijer",
         "de Boer", "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker", "Brouwer"),
        ("B.V.", "B.V.", "B.V.", "N.V.", "V.O.F."),
        ("Kantoormeubelen", "Handel", "Techniek", "Logistiek", "Bouw", "Installatie", "Automatisering", "Interieur",
         "Groothandel", "Advies"),
    ),
)

BRAND_WORDS = (
    "Northwind", "Summit", "Evergreen", "Pioneer", "Atlas", "Horizon", "Keystone", "Silverline", "Redwood", "Harbor",
    "Granite", "Apex", "Cascade", "Meridian", "Lakeside", "Oakwood", "Sterling", "Beacon", "Bluestone", "Nordic",
)
GB_DRAMA_AREAS = ("20", "113", "117", "121", "131", "141", "151", "161", "118")
DK_MOBILE = ("20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "40", "41", "42", "50", "51", "52", "53", "60", "61")
DE_MOBILE = ("151", "152", "160", "162", "170", "171", "172", "176", "178")
GB_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
NL_POSTCODE_LETTERS = "ABCDEFGHJKLMNPRSTVWXZ"
MAIL_BOXES = ("info", "sales", "purchasing", "accounts", "orders", "office", "contact")
EMAIL_PATTERNS = ("{first}.{last}", "{first}.{last}", "{f}{last}", "{f}.{last}", "{first}")
JOB_TITLES = (
    "Purchasing Manager", "Chief Executive Officer", "Chief Financial Officer", "Office Manager", "IT Manager",
    "Sales Director", "Accountant", "Facility Manager", "Operations Manager", "Procurement Specialist",
    "Managing Director", "Head of Finance", "Executive Assistant", "Purchasing Agent", "Logistics Coordinator",
    "Project Manager", "Accounts Payable Clerk", "Workplace Manager",
)
CURRENCIES = (
    ("USD", "US Dollar", "$", "1"), ("EUR", "Euro", "€", "0.9215"), ("GBP", "Pound Sterling", "£", "0.7893"),
    ("DKK", "Danish Krone", "kr.", "6.8742"), ("SEK", "Swedish Krona", "kr", "10.6120"), ("NOK", "Norwegian Krone", "kr", "10.7935"),
    ("CHF", "Swiss Franc", "CHF", "0.8812"), ("CAD", "Canadian Dollar", "CA$", "1.3678"), ("JPY", "Japanese Yen", "¥", "151.34"),
    ("AUD", "Australian Dollar", "A$", "1.5234"),
)
LOCAL_CURRENCY = "USD"
UNITS_OF_MEASURE = (
    ("PCS", "Piece"), ("BOX", "Box"), ("HOUR", "Hour"), ("DAY", "Day"), ("KG", "Kilogram"), ("L", "Litre"),
    ("M", "Metre"), ("PACK", "Pack"),
)
CREDIT_LIMITS = (5000, 7500, 10000, 15000, 20000, 25000, 30000, 40000, 50000, 75000, 100000, 150000, 250000)


class ProductType(NamedTuple):
    """A kind of item: noun, base unit of measure, price range and variants."""

    noun: str
    uom: str
    low: float
    high: float
    variants: tuple[str, ...]


SERIES = (
    "ATHENS", "PARIS", "ROME", "ANTWERP", "LONDON", "BERLIN", "SYDNEY", "AMSTERDAM", "TOKYO", "OSLO", "MADRID",
    "VIENNA", "LISBON", "SEOUL", "TORONTO", "CHICAGO", "DUBLIN", "HELSINKI", "PRAGUE", "ZURICH", "MUNICH", "GENEVA",
)
PRODUCT_BRANDS = ("Contoso", "Fabrikam", "Litware", "Proseware", "Northwind", "Tailspin", "Woodgrove", "Adatum")
WOODS = ("Oak", "Walnut", "White", "Black", "Beech", "Grey", "Birch")
FABRICS = ("Black", "Grey", "Blue", "Red", "Green", "Anthracite")
FURNITURE = (
    ProductType("Desk", "PCS", 249, 1290, WOODS),
    ProductType("Height-Adjustable Desk", "PCS", 449, 1890, ("White", "Black", "Oak", "Walnut")),
    ProductType("Office Chair", "PCS", 129, 890, FABRICS),
    ProductType("Guest Chair", "PCS", 59, 290, FABRICS),
    ProductType("Conference Table", "PCS", 590, 3490, WOODS),
    ProductType("Bookcase", "PCS", 149, 690, WOODS),
    ProductType("Filing Cabinet", "PCS", 179, 649, ("Grey", "White", "Black")),
    ProductType("Storage Cabinet", "PCS", 229, 890, WOODS),
    ProductType("Mobile Pedestal", "PCS", 149, 399, ("Grey", "White", "Black", "Oak")),
    ProductType("Lounge Sofa", "PCS", 890, 3290, ("Grey", "Blue", "Green", "Black leather", "Cognac leather")),
    ProductType("Coat Rack", "PCS", 39, 149, ("Black", "Chrome", "Oak")),
    ProductType("Desk Lamp", "PCS", 29, 189, ("Black", "White", "Brass")),
    ProductType("Whiteboard", "PCS", 59, 399, ("90 x 60 cm", "120 x 90 cm", "180 x 120 cm")),
    ProductType("Acoustic Screen", "PCS", 189, 590, ("Grey", "Blue", "Green", "Anthracite")),
)
IT_GOODS = (
    ProductType('Laptop 14"', "PCS", 749, 2390, ("i5, 16 GB, 512 GB SSD", "i7, 32 GB, 1 TB SSD", "Ryzen 7, 16 GB, 1 TB SSD")),
    ProductType('Laptop 16"', "PCS", 999, 2890, ("i7, 32 GB, 1 TB SSD", "Ryzen 9, 32 GB, 2 TB SSD")),
    ProductType('Monitor 24"', "PCS", 159, 449, ("Full HD", "QHD")),
    ProductType('Monitor 27"', "PCS", 219, 899, ("QHD", "4K UHD", "4K UHD, USB-C hub")),
    ProductType("Docking Station", "PCS", 129, 349, ("USB-C", "Thunderbolt 4")),
    ProductType("Wireless Keyboard", "PCS", 29, 149, ("US layout", "UK layout", "DE layout", "Nordic layout", "FR layout")),
    ProductType("Wireless Mouse", "PCS", 19, 99, ("Black", "Grey", "Ergonomic")),
    ProductType("Headset", "PCS", 49, 349, ("Stereo", "Noise-cancelling", "Bluetooth")),
    ProductType("Webcam", "PCS", 49, 249, ("Full HD", "4K")),
    ProductType("Network Switch", "PCS", 149, 1890, ("8-port", "24-port", "48-port PoE")),
    ProductType("Wi-Fi Access Point", "PCS", 119, 590, ("Wi-Fi 6", "Wi-Fi 6E")),
    ProductType("Laser Printer", "PCS", 189, 1490, ("Mono", "Colour", "Multifunction")),
    ProductType("Projector", "PCS", 449, 2290, ("Full HD", "4K", "Short-throw")),
    ProductType("UPS", "PCS", 149, 990, ("1000 VA", "1500 VA", "3000 VA")),
    ProductType("External SSD", "PCS", 79, 349, ("1 TB", "2 TB", "4 TB")),
    ProductType("Network Cable Cat6", "M", 0.79, 2.49, ("grey", "blue", "shielded")),
)
OFFICE_SUPPLIES = (
    ProductType("Copy Paper A4 80 g", "BOX", 24, 44, ("white, 5 x 500 sheets", "recycled, 5 x 500 sheets")),
    ProductType("Ballpoint Pens", "PACK", 4.5, 14.9, ("blue, 10 pcs", "black, 10 pcs", "assorted, 20 pcs")),
    ProductType("Sticky Notes 76 x 76 mm", "PACK", 3.9, 11.9, ("yellow, 12 pads", "neon, 6 pads")),
    ProductType("Ring Binder A4", "BOX", 12, 39, ("50 mm, 10 pcs", "80 mm, 10 pcs")),
    ProductType("Printer Toner", "PCS", 45, 189, ("black", "cyan", "magenta", "yellow")),
    ProductType("Envelopes C5", "BOX", 8.9, 24.9, ("500 pcs", "1000 pcs")),
    ProductType("Whiteboard Markers", "PACK", 5.9, 17.9, ("4 colours", "8 colours")),
    ProductType("Stapler", "PCS", 6.9, 39, ("compact", "heavy duty")),
    ProductType("Laminating Pouches A4", "PACK", 9.9, 29.9, ("100 pcs", "250 pcs")),
    ProductType("Desk Organizer", "PCS", 9.9, 44.9, ("black", "white", "bamboo")),
)
CONSUMABLES = (
    ProductType("Coffee Beans", "KG", 14.9, 39.9, ("Espresso", "Medium roast", "Organic")),
    ProductType("Surface Cleaner", "L", 2.9, 11.9, ("concentrate", "ready to use")),
    ProductType("Hand Sanitizer", "L", 4.9, 14.9, ("gel", "liquid")),
    ProductType("Cable Ties", "PACK", 3.9, 12.9, ("200 mm, 100 pcs", "300 mm, 100 pcs")),
    ProductType("Packing Tape", "PACK", 6.9, 19.9, ("brown, 6 rolls", "clear, 6 rolls")),
    ProductType("Stretch Film", "KG", 3.5, 8.9, ("23 micron", "17 micron")),
)
# (catalogue, weight, series or brand names put in front of the noun)
CATALOGUES = ((FURNITURE, 40, SERIES), (IT_GOODS, 35, PRODUCT_BRANDS), (OFFICE_SUPPLIES, 18, PRODUCT_BRANDS), (CONSUMABLES, 7, PRODUCT_BRANDS))
MACHINES = (
    "Forklift Truck 2.5 t", "Delivery Van", "Service Van", "Scissor Lift", "Pallet Jack", "3D Printer",
    "Laser Cutter", "CNC Router", "Projector Rental Kit", "Conference AV Kit", "Mobile Crane", "Test Lab Workstation",
)

_TRANSLITERATION = str.maketrans({
    "ß": "ss", "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue",
    "æ": "ae", "Æ": "Ae", "ø": "oe", "Ø": "Oe", "å": "aa", "Å": "Aa",
})


def ascii_words(text: str) -> list[str]:
    """Lower-case ASCII words of a text (umlauts transliterated, accents dropped)."""
    plain = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION)).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", plain.lower())


def money(value: float | Decimal) -> Decimal:
    """Round to two decimals."""
    return Decimal(str(value)).quantize(CENT)


# --------------------------------------------------------------------------- generator


class Company(NamedTuple):
    """A generated customer, with the data its contacts are derived from."""

    row: dict[str, Any]
    country: Country
    city: City
    domain: str
    email_pattern: str


class DemoFactory:
    """Draws demo values from one random generator; remembers what must stay unique."""

    def __init__(self, rng: Random, newest: datetime) -> None:
        self.rng = rng
        self.newest = newest
        self.span_us = HISTORY_DAYS * 86_400 * 1_000_000
        self.used: dict[str, set[str]] = {}

    def unique(self, kind: str, candidate: str, separator: str = " ", suffix: str = "") -> str:
        """candidate + suffix, or with a number inserted before suffix, not used so far for kind."""
        used = self.used.setdefault(kind, set())
        result, number = candidate + suffix, 2
        while result in used:
            result = f"{candidate}{separator}{number}{suffix}"
            number += 1
        used.add(result)
        return result

    def is_used(self, kind: str, value: str) -> bool:
        """Whether value was already handed out for kind."""
        return value in self.used.get(kind, ())

    def uuid(self) -> str:
        """A random (version 4) UUID drawn from the generator."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def timestamp(self) -> str:
        """A modification time within HISTORY_DAYS before (and strictly earlier than) self.newest."""
        moment = self.newest - timedelta(microseconds=self.rng.randint(1, self.span_us))
        return moment.strftime(TIMESTAMP_FORMAT)

    def country(self) -> Country:
        """A country, weighted by COUNTRIES' weights."""
        return self.rng.choices(COUNTRIES, weights=[c.weight for c in COUNTRIES])[0]

    def digits(self, count: int) -> str:
        """count random decimal digits."""
        return "".join(self.rng.choice("0123456789") for _digit in range(count))

    def post_code(self, country: Country, city: City) -> str:
        """A post code of the city in the country's format."""
        rng = self.rng
        if country.code == "GB":
            letters = rng.choice(GB_INWARD_LETTERS) + rng.choice(GB_INWARD_LETTERS)
            return f"{rng.choice(city.outward)} {rng.randint(1, 9)}{letters}"
        number = rng.randint(city.post_lo, city.post_hi)
        if country.code == "NL":
            letters = rng.choice(NL_POSTCODE_LETTERS) + rng.choice(NL_POSTCODE_LETTERS)
            return f"{number:04d} {letters}"
        return f"{number:04d}" if country.code == "DK" else f"{number:05d}"

    def street_address(self, country: Country) -> str:
        """A street address line in the country's style."""
        rng = self.rng
        street, kind = rng.choice(country.streets), rng.choice(country.street_kinds)
        if country.code == "US":
            suite = f", Suite {rng.randint(1, 30)}00" if rng.random() < 0.15 else ""
            return f"{rng.randint(100, 9899)} {street} {kind}{suite}"
        if country.code == "GB":
            return f"{rng.randint(1, 250)} {street} {kind}"
        if country.code == "FR":
            return f"{rng.randint(1, 180)} {kind} {street}"
        return f"{street}{kind} {rng.randint(1, 220)}"

    def phone(self, country: Country, city: City, mobile: bool = False) -> str:
        """A phone number in international format (fictional ranges where a country reserves them)."""
        rng, digits = self.rng, self.digits
        code = country.code
        if code == "US":
            return f"+1 ({city.area}) 555-01{digits(2)}"
        if code == "GB":
            if mobile:
                return f"+44 7700 900{digits(3)}"
            if city.area == "20":
                return f"+44 20 7946 0{digits(3)}"
            if city.area in GB_DRAMA_AREAS:
                return f"+44 {city.area} 496 0{digits(3)}"
            return f"+44 {city.area} {rng.randint(2, 9)}{digits(5)}"
        if code == "DE":
            if mobile:
                return f"+49 {rng.choice(DE_MOBILE)} {rng.randint(1, 9)}{digits(7)}"
            return f"+49 {city.area} {rng.randint(2, 9)}{digits(6 if len(city.area) == 2 else 5)}"
        if code == "DK":
            first = rng.choice(DK_MOBILE) if mobile else city.area
            return f"+45 {first} {digits(2)} {digits(2)} {digits(2)}"
        if code == "FR":
            first = rng.choice("67") if mobile else city.area
            return f"+33 {first} {digits(2)} {digits(2)} {digits(2)} {digits(2)}"
        if mobile:
            return f"+31 6 {rng.randint(1, 9)}{digits(3)} {digits(4)}"
        return f"+31 {city.area} {rng.randint(2, 9)}{digits(2)} {digits(4)}"

    def person(self, country: Country) -> tuple[str, str]:
        """(first name, surname) from the country's lists."""
        return self.rng.choice(country.first_names), self.rng.choice(country.surnames)

    def company_name(self, country: Country) -> tuple[str, str]:
        """A unique (full company name, name without legal form)."""
        rng = self.rng
        for attempt in range(60):
            surname, other = rng.sample(country.surnames, 2)
            trade, brand = rng.choice(country.trades), rng.choice(BRAND_WORDS)
            pattern = rng.randrange(4)
            if pattern == 0:
                base = f"{trade} {surname}" if country.code == "FR" else f"{surname} {trade}"
            elif pattern == 1:
                base = f"{surname} & {other}"
            else:
                base = f"{brand} {trade}"
            if attempt >= 30:  # many customers: branch-style names keep them unique
                base = f"{base} {rng.choice(country.cities).name}"
            if not self.is_used("company", base):
                break
        base = self.unique("company", base)
        form = rng.choice(country.company_forms)
        return f"{base} {form}", base

    def domain(self, country: Country, base_name: str) -> str:
        """A unique internet domain derived from a company name."""
        words = [w for w in ascii_words(base_name) if w not in ("and", "co")]
        label = "-".join(words) if len(words) <= 3 else "".join(words[:3])
        return self.unique("domain", label, separator="", suffix=f".{country.tld}")

    def email(self, pattern: str, first: str, last: str, domain: str) -> str:
        """An e-mail address from a person's name following the company's address pattern."""
        first_words, last_words = ascii_words(first), ascii_words(last)
        local = pattern.format(first="".join(first_words), last="".join(last_words), f="".join(first_words)[:1])
        return self.unique("email", local, separator="", suffix=f"@{domain}")

    def price(self, low: float, high: float) -> Decimal:
        """A list price between low and high with a shop-like ending (…9.00, ….95, ….x9)."""
        value = self.rng.uniform(low, high)
        if value >= 100:
            return money(int(value) // 10 * 10 + 9)
        if value >= 10:
            return money(int(value) + 0.95)
        return money(Decimal(str(value)).quantize(Decimal("0.1"), ROUND_DOWN) + Decimal("0.09"))


# --------------------------------------------------------------------------- data sets


def system_users(factory: DemoFactory, count: int) -> list[dict[str, Any]]:
    """CRM sales people with unique 2-3 letter upper-case nicknames."""
    rng, users = factory.rng, []
    for _user in range(count):
        country = factory.country()
        while True:
            first, last = factory.person(country)
            fullname = f"{first} {last}"
            if not factory.is_used("user", fullname):
                factory.unique("user", fullname)
                break
        f_word, l_word = "".join(ascii_words(first)).upper(), ascii_words(last)[-1].upper()
        candidates = [f_word[0] + l_word[0], f_word[0] + l_word[:2], f_word[:2] + l_word[0], f_word[0] + l_word[0] + l_word[-1]]
        nickname = next((c for c in candidates if not factory.is_used("nickname", c)), None)
        while nickname is None:
            candidate = f_word[0] + l_word[0] + rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            nickname = None if factory.is_used("nickname", candidate) else candidate
        factory.unique("nickname", nickname)
        users.append({
            "systemuserid": factory.uuid(),
            "fullname": fullname,
            "nickname": nickname,
            "internalemailaddress": factory.email("{first}.{last}", first, last, OWN_DOMAIN),
            "mobilephone": factory.phone(country, rng.choice(country.cities), mobile=True),
            "modifiedon": factory.timestamp(),
        })
    return users


def currencies(factory: DemoFactory) -> list[dict[str, Any]]:
    """The currency table (exchange rate = units per 1 USD)."""
    return [
        {"code": code, "description": name, "symbol": symbol, "exchange_rate": str(Decimal(rate)), "modified_on": factory.timestamp()}
        for code, name, symbol, rate in CURRENCIES
    ]


def units_of_measure(factory: DemoFactory) -> list[dict[str, Any]]:
    """The unit_of_measure table."""
    return [{"code": code, "description": text, "modified_on": factory.timestamp()} for code, text in UNITS_OF_MEASURE]


def customers(factory: DemoFactory, count: int, nicknames: Sequence[str]) -> list[Company]:
    """Customers C00010, C00020, ... with address, contact data, credit limit and salesperson."""
    rng, result = factory.rng, []
    foreign = [currency[0] for currency in CURRENCIES if currency[0] != LOCAL_CURRENCY]
    for index in range(1, count + 1):
        country = factory.country()
        city = rng.choice(country.cities)
        name, base = factory.company_name(country)
        domain = factory.domain(country, base)
        currency = None
        if rng.random() >= 0.6:
            home = country.currency
            currency = home if home != LOCAL_CURRENCY and rng.random() < 0.85 else rng.choice(foreign)
        limit = money(0) if rng.random() < 0.12 else money(rng.choice(CREDIT_LIMITS))
        row = {
            "no": f"C{index * 10:05d}",
            "name": name,
            "address": factory.street_address(country),
            "city": city.name,
            "post_code": factory.post_code(country, city),
            "country": country.code,
            "phone": factory.phone(country, city),
            "email": f"{rng.choice(MAIL_BOXES)}@{domain}",
            "credit_limit": str(limit),
            "blocked": 1 if rng.random() < 0.03 else 0,
            "salesperson_code": rng.choice(nicknames) if nicknames and rng.random() < 0.9 else None,
            "currency_code": currency,
            "modified_on": factory.timestamp(),
        }
        result.append(Company(row, country, city, domain, rng.choice(EMAIL_PATTERNS)))
    return result


def contacts(factory: DemoFactory, companies: Sequence[Company], per_customer: int) -> list[dict[str, Any]]:
    """0..2*per_customer contacts per customer (per_customer on average), CT000001, ..."""
    rng, rows = factory.rng, []
    for company in companies:
        for _contact in range(rng.randint(0, 2 * per_customer)):
            first, last = factory.person(company.country)
            rows.append({
                "no": f"CT{len(rows) + 1:06d}",
                "first_name": first if rng.random() >= 0.02 else None,
                "surname": last,
                "email": factory.email(company.email_pattern, first, last, company.domain) if rng.random() >= 0.05 else None,
                "phone": factory.phone(company.country, company.city, mobile=rng.random() < 0.5) if rng.random() >= 0.1 else None,
                "job_title": rng.choice(JOB_TITLES) if rng.random() >= 0.1 else None,
                "company_no": company.row["no"],
                "modified_on": factory.timestamp(),
            })
    return rows


def items(factory: DemoFactory, count: int) -> list[dict[str, Any]]:
    """Items 1000, 1001, ... from the furniture, IT, office and consumables catalogues."""
    rng, rows = factory.rng, []
    weights = [catalogue[1] for catalogue in CATALOGUES]
    for index in range(count):
        catalogue, _weight, prefixes = rng.choices(CATALOGUES, weights=weights)[0]
        for _attempt in range(20):
            kind = rng.choice(catalogue)
            candidate = f"{rng.choice(prefixes)} {kind.noun}, {rng.choice(kind.variants)}"
            if not factory.is_used("item", candidate):
                break
        description = factory.unique("item", candidate)
        price = factory.price(kind.low, kind.high)
        cost = money(price * Decimal(str(round(rng.uniform(0.45, 0.72), 3))))
        rows.append({
            "no": str(1000 + index),
            "description": description,
            "unit_price": str(price),
            "unit_cost": str(cost),
            "base_unit_of_measure": kind.uom,
            "blocked": 1 if rng.random() < 0.02 else 0,
            "modified_on": factory.timestamp(),
        })
    return rows


def resources(factory: DemoFactory, count: int) -> list[dict[str, Any]]:
    """Resources R0001, ...: consultants (mostly per hour) and machines (mostly per day)."""
    rng, rows = factory.rng, []
    for index in range(1, count + 1):
        if rng.random() < 0.7:
            for _attempt in range(20):
                first, last = factory.person(factory.country())
                if not factory.is_used("resource", f"{first} {last}"):
                    break
            name = factory.unique("resource", f"{first} {last}")
            per_day = rng.random() < 0.15
            hourly = rng.randrange(65, 230, 5)
            price = hourly * 8 if per_day else hourly
        else:
            name = factory.unique("resource", rng.choice(MACHINES), separator=" #")
            per_day = rng.random() < 0.7
            price = rng.randrange(90, 1200, 10) if per_day else rng.randrange(25, 180, 5)
        rows.append({
            "no": f"R{index:04d}",
            "name": name,
            "unit_price": str(money(price)),
            "base_unit_of_measure": "DAY" if per_day else "HOUR",
            "modified_on": factory.timestamp(),
        })
    return rows


def generate(args: argparse.Namespace, newest: datetime) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """All demo rows: (erp rows by table, crm rows by table).

    Each data set gets its own generator seeded from the master one, so e.g. --items does not
    change the customers.
    """
    master = Random(args.seed)
    sections = ("users", "reference", "customers", "contacts", "items", "resources")
    factories = {name: DemoFactory(Random(master.getrandbits(64)), newest) for name in sections}
    users = system_users(factories["users"], SYSTEM_USER_COUNT)
    companies = customers(factories["customers"], args.customers, [u["nickname"] for u in users])
    erp = {
        "currency": currencies(factories["reference"]),
        "salesperson": [],
        "unit_of_measure": units_of_measure(factories["reference"]),
        "customer": [company.row for company in companies],
        "contact": contacts(factories["contacts"], companies, args.contacts_per_customer),
        "item": items(factories["items"], args.items),
        "resource": resources(factories["resources"], args.resources),
    }
    crm: dict[str, list[dict[str, Any]]] = {table.name: [] for table in CRM_TABLES}
    crm["systemuser"] = users
    return erp, crm


# --------------------------------------------------------------------------- files


def sidecar_files(path: Path) -> list[Path]:
    """SQLite journal files that belong to a database file."""
    return [path.with_name(path.name + suffix) for suffix in ("-journal", "-wal", "-shm")]


def count_rows(conn: sqlite3.Connection, tables: Sequence[Table]) -> dict[str, int]:
    """Row count of each table."""
    return {table.name: conn.execute(f"SELECT COUNT(*) FROM {table.name}").fetchone()[0] for table in tables}


def inspect_database(path: Path, tables: Sequence[Table]) -> str:
    """'missing' (absent, empty file or database without tables), 'complete' (all demo tables and
    columns present) or 'foreign' (anything else)."""
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        return "missing"
    if not path.is_file():
        return "foreign"
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            return "foreign"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not names:
                return "missing"
            for table in tables:
                if table.name not in names:
                    return "foreign"
                present = {row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")}
                if not {column[0] for column in table.columns} <= present:
                    return "foreign"
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "foreign"
    return "complete"


def existing_counts(path: Path, tables: Sequence[Table]) -> dict[str, int]:
    """Row counts of an existing complete database (read-only)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return count_rows(conn, tables)
    finally:
        conn.close()


def write_database(path: Path, tables: Sequence[Table], rows: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """Create a fresh database at path (built next to it, then moved into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.building")
    for stale in [scratch, *sidecar_files(scratch)]:
        stale.unlink(missing_ok=True)
    conn = sqlite3.connect(scratch)
    try:
        with conn:
            for table in tables:
                for statement in schema_statements(table):
                    conn.execute(statement)
                table_rows = rows.get(table.name, [])
                if table_rows:
                    columns = list(table_rows[0])
                    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                    conn.executemany(sql, [tuple(row[c] for c in columns) for row in table_rows])
        counts = count_rows(conn, tables)
    finally:
        conn.close()
    for stale in sidecar_files(path):
        stale.unlink(missing_ok=True)
    os.replace(scratch, path)
    return counts


def newest_timestamp(as_of: date) -> datetime:
    """Exclusive upper bound of the generated timestamps: 00:00 UTC of the day before as_of."""
    return datetime.combine(as_of, time()) - timedelta(days=1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--erp", required=True, help="path of the ERP (local side) SQLite file")
    parser.add_argument("--crm", required=True, help="path of the CRM (integration side) SQLite file")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--contacts-per-customer", type=int, default=2, help="average; each customer gets 0..2*N")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--resources", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="YYYY-MM-DD the history ends at (default: today, UTC); fixes the output completely")
    parser.add_argument("--force", action="store_true", help="rebuild even if both databases exist")
    args = parser.parse_args(argv)
    for option in ("customers", "contacts_per_customer", "items", "resources"):
        if getattr(args, option) < 0:
            parser.error(f"--{option.replace('_', '-')} must not be negative")
    today = datetime.now(timezone.utc).date()
    if args.as_of is None:
        args.as_of = today
    elif args.as_of > today:
        parser.error("--as-of must not be in the future")
    return args


def emit(result: dict[str, Any]) -> None:
    """Print the result as one JSON line."""
    print(json.dumps(result))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    erp_path, crm_path = Path(args.erp), Path(args.crm)
    if erp_path.resolve() == crm_path.resolve():
        emit({"changed": False, "failed": True, "msg": "--erp and --crm must be different files"})
        return 1
    if not args.force:
        states = {"erp": inspect_database(erp_path, ERP_TABLES), "crm": inspect_database(crm_path, CRM_TABLES)}
        if states == {"erp": "complete", "crm": "complete"}:
            emit({
                "changed": False,
                "msg": "both demo databases already exist; use --force to rebuild them",
                "erp": existing_counts(erp_path, ERP_TABLES),
                "crm": existing_counts(crm_path, CRM_TABLES),
            })
            return 0
        foreign = [f"{side} ({erp_path if side == 'erp' else crm_path})" for side, state in states.items() if state == "foreign"]
        if foreign:
            emit({"changed": False, "failed": True,
                  "msg": f"not a demo database: {', '.join(foreign)}; use --force to replace it"})
            return 1
    erp_rows, crm_rows = generate(args, newest_timestamp(args.as_of))
    try:
        erp_counts = write_database(erp_path, ERP_TABLES, erp_rows)
        crm_counts = write_database(crm_path, CRM_TABLES, crm_rows)
    except (OSError, sqlite3.Error) as exc:
        emit({"changed": True, "failed": True, "msg": f"cannot write the demo databases: {exc}"})
        return 1
    emit({"changed": True, "erp": erp_counts, "crm": crm_counts})
    return 0


if __name__ == "__main__":
    sys.exit(main())
