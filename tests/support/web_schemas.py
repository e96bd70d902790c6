"""Entity sets of the standard tables the default mappings use, declared on the OData test double.

Dataverse: accounts, contacts, products, transactioncurrencies, uomschedules, systemusers
(column names of the Dataverse table reference). Business Central API v2.0: customers,
contacts, items, currencies, unitsOfMeasure, salespeoplePurchasers (api-reference/v2.0 resource
pages); only the properties the mappings and tests use are declared.
"""

from __future__ import annotations

from typing import Any

from .odata_service import ODataService


def declare_dataverse(svc: ODataService, change_tracking: bool = True) -> None:
    svc.add_entity_set("systemusers", fields={"fullname": "string(200)", "nickname": "string(50)",
                                              "internalemailaddress": "string(100)", "mobilephone": "string(64)"})
    svc.add_entity_set("transactioncurrencies", fields={"isocurrencycode": "string(5)", "currencyname": "string(100)",
                                                        "currencysymbol": "string(10)", "exchangerate": "decimal"})
    svc.add_entity_set("uomschedules", fields={"name": "string(200)", "description": "string(2000)"})
    svc.add_entity_set(
        "accounts",
        fields={"accountnumber": "string(20)", "name": "string(160)", "address1_line1": "string(250)", "address1_city": "string(80)",
                "address1_postalcode": "string(20)", "address1_country": "string(80)", "telephone1": "string(50)",
                "emailaddress1": "string(100)", "creditlimit": "money", "creditonhold": "bool"},
        change_tracking=change_tracking,
        lookups={"ownerid": ("ownerid", "systemusers"), "transactioncurrencyid": ("transactioncurrencyid", "transactioncurrencies")},
    )
    svc.add_entity_set(
        "contacts",
        fields={"firstname": "string(50)", "lastname": "string(50)", "emailaddress1": "string(100)", "telephone1": "string(50)",
                "jobtitle": "string(100)"},
        change_tracking=change_tracking,
        lookups={"parentcustomerid": [("parentcustomerid_account", "accounts"), ("parentcustomerid_contact", "contacts")]},
    )
    svc.add_entity_set("products", fields={"productnumber": "string(100)", "name": "string(100)", "price": "money",
                                           "standardcost": "money", "producttypecode": "int"}, change_tracking=change_tracking,
                       lookups={"defaultuomscheduleid": ("defaultuomscheduleid", "uomschedules")})


def declare_business_central(svc: ODataService) -> None:
    svc.add_entity_set("currencies", fields={"code": "string(10)", "displayName": "string(30)", "symbol": "string(10)"})
    svc.add_entity_set("salespeoplePurchasers", fields={"code": "string(20)", "displayName": "string(50)", "email": "string(80)",
                                                        "phoneNo": "string(30)"})
    svc.add_entity_set("unitsOfMeasure", fields={"code": "string(10)", "displayName": "string(50)"})
    svc.add_entity_set(
        "customers",
        fields={"number": "string(20)", "displayName": "string(100)", "addressLine1": "string(100)", "city": "string(30)",
                "postalCode": "string(20)", "country": "string(10)", "phoneNumber": "string(30)", "email": "string(80)",
                "creditLimit": "decimal", "salespersonCode": "string(20)", "currencyId": "guid", "currencyCode": "string(10)"},
    )
    svc.add_entity_set(
        "contacts",
        fields={"number": "string(20)", "type": "string(10)", "displayName": "string(100)", "companyNumber": "string(20)",
                "email": "string(80)", "phoneNumber": "string(30)"},
    )
    svc.add_entity_set("items", fields={"number": "string(20)", "displayName": "string(100)", "unitPrice": "decimal",
                                        "unitCost": "decimal", "baseUnitOfMeasureId": "guid",
                                        "baseUnitOfMeasureCode": "string(10)"})


def seed_business_central(svc: ODataService, customers: int = 20) -> dict[str, Any]:
    """A small ERP: currencies, units, salespeople, customers with contacts, items."""
    currencies = dict(zip(("EUR", "USD", "GBP"), svc.insert("currencies", [
        {"code": c, "displayName": n, "symbol": s} for c, n, s in (("EUR", "Euro", "€"), ("USD", "US Dollar", "$"), ("GBP", "Pound Sterling", "£"))])))
    units = dict(zip(("PCS", "BOX", "HOUR"), svc.insert("unitsOfMeasure", [
        {"code": c, "displayName": n} for c, n in (("PCS", "Piece"), ("BOX", "Box"), ("HOUR", "Hour"))])))
    svc.insert("salespeoplePurchasers", [{"code": "SP%02d" % i, "displayName": "Sales Person %d" % i, "email": "sp%d@example.com" % i}
                                         for i in range(3)])
    svc.insert("customers", [
        {"number": "C%05d" % i, "displayName": "Customer %d" % i, "addressLine1": "%d Main Street" % i, "city": "Springfield",
         "postalCode": "%05d" % (10000 + i), "country": "US", "phoneNumber": "+1 555 %04d" % i, "email": "c%d@example.com" % i,
         "creditLimit": 1000 + i * 10.5, "salespersonCode": "SP%02d" % (i % 3),
         # every fifth customer is in the local currency: Business Central leaves its currency blank
         **({} if i % 5 == 4 else {"currencyId": currencies["USD"], "currencyCode": "USD"})}
        for i in range(customers)
    ])
    svc.insert("contacts", [
        {"number": "CT%05d" % i, "type": "Person", "displayName": "Contact %d" % i, "companyNumber": "C%05d" % i,
         "email": "ct%d@example.com" % i, "phoneNumber": "+1 555 9%03d" % i}
        for i in range(customers)
    ])
    items = [
        {"number": "I%04d" % i, "displayName": "Item %d" % i, "unitPrice": 10 + i, "unitCost": 5 + i / 4,
         "baseUnitOfMeasureId": units["BOX" if i % 2 else "PCS"], "baseUnitOfMeasureCode": "BOX" if i % 2 else "PCS"}
        for i in range(10)
    ]
    svc.insert("items", items)
    return {"customers": customers, "contacts": customers, "items": 10, "currencies": currencies, "units": units}


def seed_dataverse_users(svc: ODataService) -> list[str]:
    return svc.insert("systemusers", [{"fullname": "Sales Person %d" % i, "nickname": "SP%02d" % i,
                                       "internalemailaddress": "sp%d@example.com" % i} for i in range(3)])


def endpoint_options(svc: ODataService, **extra: Any) -> dict[str, Any]:
    """Endpoint options that authenticate with client credentials against the double's token endpoint."""
    options: dict[str, Any] = {
        "type": svc.flavour,
        "url": svc.api_root,
        "tenant_id": svc.tenant_id,
        "client_id": svc.client_id,
        "client_secret": svc.client_secret,
        "authority": svc.url,
    }
    options.update(extra)
    return options
