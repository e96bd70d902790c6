"""Declarations that cannot poison a store: dependency checks, named syncs that ignore unrelated
mappings, filters type-checked when declared, and clear_value_on_failed_lookup, on the SQLite demo."""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import declaration_problem, removal_problem
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError, OrderingError
from ansible_collections.tablesync.integration.plugins.module_utils.filters import FilterError, parse_filter
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import customer_account_mapping, default_mapping_set, execute, rows

SALESPERSON = {"field": "salesperson_code", "integration_field": "ownerid", "lookup": "SALESPEOPLE"}


def by_name(name: str) -> dict:
    return next(d for d in default_mapping_set() if d["name"] == name)


def customer(fields: list | None = None, **options) -> dict:
    base = [{"field": "no", "integration_field": "accountnumber"}, {"field": "name", "integration_field": "name"}]
    return customer_account_mapping(fields=base + (fields or []), **options)


def force(demo, *definitions: dict) -> None:
    """Write declarations straight into the store, as an older version or a hand edit could have left them."""
    store = Store(demo.store_path)
    try:
        for definition in definitions:
            store.put_mapping(normalize(definition))
    finally:
        store.close()


def job(run, name: str):
    return next(j for j in run.jobs if j.mapping == name)


# -- what table_mapping refuses ------------------------------------------------------------------------------


def _declared(*definitions: dict) -> list[Mapping]:
    return [Mapping.from_definition(d) for d in definitions]


def test_an_undeclared_dependency_is_refused_naming_the_mapping_and_field():
    problem = declaration_problem(Mapping.from_definition(customer(dependencies=["PRICE-GROUPS"])), _declared(by_name("CURRENCY")))
    assert isinstance(problem, MappingError)
    assert str(problem).startswith("mapping CUSTOMER, field dependencies: depends on mapping PRICE-GROUPS, which is not declared")
    assert "declared: CURRENCY" in str(problem)


def test_a_lookup_through_an_undeclared_mapping_is_refused_naming_the_field():
    problem = declaration_problem(Mapping.from_definition(customer([SALESPERSON])), _declared(by_name("CURRENCY")))
    assert str(problem).startswith("mapping CUSTOMER, field salesperson_code <-> ownerid: lookup through mapping SALESPEOPLE, which is not declared")


def test_a_cycle_through_a_lookup_is_refused_with_its_path():
    currency = dict(by_name("CURRENCY"), dependencies=["CONTACTS"])
    declared = _declared(by_name("SALESPEOPLE"), by_name("CUSTOMER"), by_name("CONTACTS"))
    problem = declaration_problem(Mapping.from_definition(currency), declared)
    assert str(problem) == ("mapping CURRENCY, field dependencies: the dependencies would form a cycle: "
                            "CURRENCY -> CONTACTS -> CUSTOMER -> CURRENCY (a lookup implies a dependency)")
    # the same mapping declared in dependency order, and a self-reference, are fine
    assert declaration_problem(Mapping.from_definition(by_name("CURRENCY")), declared) is None
    parent = customer([{"field": "salesperson_code", "integration_field": "ownerid", "lookup": "CUSTOMER"}])
    assert declaration_problem(Mapping.from_definition(parent), []) is None


def test_a_cycle_starting_at_a_lookup_names_the_lookup_field():
    units = dict(by_name("UNITOFMEASURE"), fields=[{"field": "code", "integration_field": "name"},
                                                   {"field": "description", "integration_field": "description", "lookup": "ITEM-PRODUCT"}])
    problem = declaration_problem(Mapping.from_definition(units), _declared(by_name("ITEM-PRODUCT")))
    assert str(problem).startswith("mapping UNITOFMEASURE, field description <-> description: the dependencies would form a cycle: "
                                   "UNITOFMEASURE -> ITEM-PRODUCT -> UNITOFMEASURE")


def test_removing_a_mapping_others_depend_on_is_refused_naming_them():
    declared = _declared(*default_mapping_set())
    problem = removal_problem("UNITOFMEASURE", declared)
    assert str(problem) == ("mapping UNITOFMEASURE: not removed: RESOURCE-PRODUCT, ITEM-PRODUCT depend on it (through dependencies "
                            "or lookups); remove those mappings or their dependency on UNITOFMEASURE first")
    assert removal_problem("ITEM-PRODUCT", declared) is None


def test_a_filter_comparing_a_number_column_with_text_is_refused_when_bound(demo):
    store, endpoints = demo.engine()
    for text, message in (("blocked eq 'yes'", "blocked holds integer values, it cannot be compared with 'yes'"),
                          ("credit_limit gt '100'", "credit_limit holds decimal values"),
                          ("contains(blocked, '1')", "contains works on text; blocked holds integer values"),
                          ("no_such_column eq 1", "unknown field 'no_such_column'")):
        mapping = Mapping.from_definition(customer(table_filter=text))
        with pytest.raises(MappingError, match="mapping CUSTOMER, field table_filter: .*%s" % message.replace("(", r"\(").replace(")", r"\)")):
            mapping.bind(open_tables(mapping, endpoints))
    fine = Mapping.from_definition(customer(table_filter="blocked eq 0 and credit_limit gt 100.5 and country in ('DK', null)"))
    fine.bind(open_tables(fine, endpoints))


@pytest.mark.parametrize("text, kinds, message", [
    ("statecode eq 'active'", {"statecode": "integer"}, "statecode holds integer values, it cannot be compared with 'active'"),
    ("name eq 5", {"name": "text"}, "name holds text values, it cannot be compared with 5"),
    ("statecode in (0, 'x')", {"statecode": "integer"}, "cannot be compared with 'x'"),
    ("tolower(amount) eq 'x'", {"amount": "decimal"}, "tolower works on text; amount holds decimal values"),
    ("active", {"active": "date"}, "active holds date values, it cannot be compared with true"),
    ("ownerid eq 'x'", {"ownerid": "uuid"}, "ownerid holds GUID values"),
])
def test_a_web_table_filter_is_type_checked_from_the_field_kinds(text, kinds, message):
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filter(text, context="mapping X, integration_table_filter").check_kinds(kinds)


def test_web_table_filters_whose_values_fit_their_fields_pass():
    kinds = {"statecode": "integer", "name": "text", "ownerid": "uuid", "createdon": "datetime", "day": "date", "ok": "boolean"}
    text = ("statecode in (0, 1, null) and (tolower(name) eq 'a' or startswith(name, 'b')) and ownerid eq 5f2e1a3c-7d0e-4c8a-9b1f-0a2b3c4d5e6f "
            "and createdon ge 2024-01-01T00:00:00Z and day lt 2024-02-01 and ok and statecode ne 2.5 and ok eq false and name ne null")
    parse_filter(text).check_kinds(kinds)


# -- a sync of named mappings -----------------------------------------------------------------------------


BROKEN = (
    customer(name="LOOP-A", dependencies=["LOOP-B"]),  # a cycle
    customer(name="LOOP-B", dependencies=["LOOP-A"]),
    dict(by_name("CONTACTS"), dependencies=["PRICE-GROUPS"]),  # an undeclared dependency
    customer([{"field": "city", "integration_field": "address1_city", "lookup": "TERRITORY"}], name="CUSTOMER-LOOKUP"),  # an undeclared lookup
    dict(by_name("RESOURCE-PRODUCT"), table_filter="unit_price eq 'cheap'"),  # a number compared with text
)


def test_a_broken_unrelated_mapping_never_blocks_a_sync_of_named_mappings(demo):
    demo.declare([by_name(n) for n in ("CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT")])
    force(demo, *BROKEN)

    run = demo.run("full", names=["CUSTOMER", "SALESPEOPLE"])
    assert [j.mapping for j in run.jobs] == ["SALESPEOPLE", "CUSTOMER"]
    assert job(run, "CUSTOMER").counts["failed"] > 0, "customers whose currency is not coupled yet fail their lookup"
    run = demo.run("full", names=["CURRENCY"])
    assert job(run, "CURRENCY").counts["inserted"] == rows(demo.crm, "select count(*) from transactioncurrency")[0][0] > 0
    run = demo.run("modified", names=["CUSTOMER"])
    assert job(run, "CUSTOMER").counts["failed"] == 0
    accounts = rows(demo.crm, "select count(*) from account")[0][0]
    assert accounts == rows(demo.erp, "select count(*) from customer")[0][0]

    # a full sync of everything, and a named sync of a broken one, still say what is wrong
    with pytest.raises(OrderingError, match="depends on PRICE-GROUPS, which is not declared"):
        demo.run("full")
    with pytest.raises(OrderingError, match="the dependencies of mappings LOOP-A, LOOP-B form a cycle"):
        demo.run("full", names=["LOOP-A"])
    with pytest.raises(MappingError, match="mapping RESOURCE-PRODUCT, field table_filter: .*unit_price holds decimal values"):
        demo.run("full", names=["RESOURCE-PRODUCT"])
    with pytest.raises(OrderingError, match="mapping CUSTOMER-LOOKUP depends on TERRITORY, which is not declared"):
        demo.run("modified", names=["CUSTOMER-LOOKUP"])
    assert rows(demo.crm, "select count(*) from account")[0][0] == accounts


def test_named_mappings_run_in_dependency_order_through_mappings_not_named(demo):
    demo.declare([by_name(n) for n in ("CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACTS")])
    contacts_first = demo.run("full", names=["CONTACTS", "CURRENCY"])
    assert [j.mapping for j in contacts_first.jobs] == ["CURRENCY", "CONTACTS"]


# -- clear_value_on_failed_lookup ---------------------------------------------------------------------------


def _customers_with_salesperson(demo) -> list[tuple[str, str]]:
    return rows(demo.erp, "select no, salesperson_code from customer where salesperson_code is not null and salesperson_code != '' order by no")


def test_an_unresolved_lookup_fails_its_record_without_the_option(demo):
    demo.declare([by_name("SALESPEOPLE"), customer([SALESPERSON])])
    run = demo.run("full", names=["CUSTOMER"])
    referencing = _customers_with_salesperson(demo)
    assert referencing and job(run, "CUSTOMER").counts["failed"] == len(referencing)
    assert "not coupled in mapping SALESPEOPLE" in job(run, "CUSTOMER").errors[0]["message"]
    written = {n for (n,) in rows(demo.crm, "select accountnumber from account")}
    assert not written & {no for no, _code in referencing}


def test_clear_value_on_failed_lookup_writes_the_record_with_the_field_emptied(demo):
    demo.declare([by_name("SALESPEOPLE"), customer([dict(SALESPERSON, clear_value_on_failed_lookup=True)])])
    referencing = _customers_with_salesperson(demo)
    run = demo.run("full", names=["CUSTOMER"])
    counts = job(run, "CUSTOMER").counts
    assert counts["failed"] == 0 and counts["inserted"] == rows(demo.erp, "select count(*) from customer")[0][0]
    owners = dict(rows(demo.crm, "select accountnumber, ownerid from account"))
    assert all(owners[no] is None for no, _code in referencing)

    # once the salespeople are coupled, a full sync writes the references the records hold
    demo.run("full", names=["SALESPEOPLE"])
    users = dict(rows(demo.crm, "select nickname, systemuserid from systemuser"))
    rewritten = job(demo.run("full", names=["CUSTOMER"]), "CUSTOMER")
    assert rewritten.counts["failed"] == 0 and rewritten.counts["modified"] == len(referencing)
    owners = dict(rows(demo.crm, "select accountnumber, ownerid from account"))
    assert all(owners[no] == users[code] for no, code in referencing)


def test_clear_value_on_failed_lookup_clears_a_reference_that_no_longer_resolves(demo):
    demo.declare([by_name("SALESPEOPLE"), customer([dict(SALESPERSON, clear_value_on_failed_lookup=True)])])
    demo.run("full", names=["SALESPEOPLE"])
    demo.run("full", names=["CUSTOMER"])
    no, _code = _customers_with_salesperson(demo)[0]
    execute(demo.erp, "update customer set salesperson_code = 'NOBODY' where no = ?", no)
    counts = job(demo.run("modified", names=["CUSTOMER"]), "CUSTOMER").counts
    assert counts["failed"] == 0 and counts["modified"] == 1
    assert rows(demo.crm, "select ownerid from account where accountnumber = ?", no) == [(None,)]


@pytest.mark.parametrize("field, message", [
    ({"field": "name", "integration_field": "name", "clear_value_on_failed_lookup": True}, "applies to a field with a lookup"),
    ({"field": "salesperson_code", "integration_field": "ownerid", "lookup": "SALESPEOPLE", "clear_value_on_failed_lookup": "yes"},
     "is not of type 'boolean'"),
])
def test_clear_value_on_failed_lookup_needs_a_lookup(field, message):
    with pytest.raises(MappingError, match=message):
        Mapping.from_definition(customer_account_mapping(fields=[{"field": "no", "integration_field": "accountnumber"}, field]))


def test_clear_value_on_failed_lookup_is_refused_for_a_field_that_cannot_be_empty(demo):
    store, endpoints = demo.engine()
    mapping = Mapping.from_definition(dict(by_name("CONTACTS"), direction="from_integration", fields=[
        {"field": "first_name", "integration_field": "firstname"},
        {"field": "surname", "integration_field": "parentcustomerid", "lookup": "CUSTOMER", "clear_value_on_failed_lookup": True}]))
    with pytest.raises(MappingError, match="mapping CONTACTS, field surname <-> parentcustomerid: clear_value_on_failed_lookup: "
                                           "local field surname cannot be cleared, it is not nullable"):
        mapping.bind(open_tables(mapping, endpoints))


# -- the options of a declaration, listed once ------------------------------------------------------------


def test_the_schema_of_a_stored_declaration_covers_exactly_the_options_table_mapping_takes():
    from ansible_collections.tablesync.integration.plugins.module_utils.declaration_spec import DECLARATION_OPTIONS, FIELD_OPTIONS, exported
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import DEFAULTS, SCHEMA

    assert set(SCHEMA["properties"]) == {"name", *DECLARATION_OPTIONS}
    assert set(SCHEMA["properties"]["fields"]["items"]["properties"]) == set(FIELD_OPTIONS)
    assert set(DEFAULTS) <= set(DECLARATION_OPTIONS)
    stored = normalize(dict(by_name("CUSTOMER"), table_filter=None))
    assert exported(dict(stored, unknown="x")) == {k: v for k, v in stored.items() if v is not None}


def test_a_web_table_filter_is_type_checked_when_the_mapping_is_bound():
    import yaml

    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
    from tests.support import ODataService
    from tests.support.fixtures import DEFAULTS
    from tests.support.web_schemas import declare_business_central, declare_dataverse, endpoint_options

    with open(DEFAULTS) as handle:
        definition = next(d for d in yaml.safe_load(handle)["default_mappings_business_central_dataverse"] if d["name"] == "CUSTOMER")
    definition = dict(definition, fields=[f for f in definition["fields"] if not f.get("lookup")])
    with ODataService("business_central") as bc, ODataService("dataverse") as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        endpoints = {"local": open_endpoint("local", endpoint_options(bc)), "integration": open_endpoint("integration", endpoint_options(dv))}
        try:
            refused = Mapping.from_definition(dict(definition, integration_table_filter="creditonhold eq false and creditlimit gt 'high'"))
            with pytest.raises(MappingError, match="mapping CUSTOMER, field integration_table_filter: .*creditlimit holds decimal values, "
                                                   "it cannot be compared with 'high'"):
                refused.bind(open_tables(refused, endpoints))
            fine = Mapping.from_definition(dict(definition, integration_table_filter="creditonhold eq false and creditlimit gt 1000"))
            fine.bind(open_tables(fine, endpoints))
        finally:
            for endpoint in endpoints.values():
                endpoint.close()
