"""Field mappings through the engine on real SQLite databases: transforms, value maps, lookups, filters."""

from __future__ import annotations

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.dependencies import dependencies_of, order_mappings
from ansible_collections.tablesync.integration.plugins.module_utils.errors import MappingError
from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping
from tests.support.fixtures import customer_account_mapping, default_mapping_set, execute, rows

ORDER = ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS", "RESOURCE-PRODUCT", "ITEM-PRODUCT"]


def customer_mapping(fields, **options):
    return customer_account_mapping(**dict({"fields": [{"field": "no", "integration_field": "accountnumber"}] + fields}, **options))


def job(run, name="CUSTOMER"):
    return next(j for j in run.jobs if j.mapping == name)


def account_of(demo, number, columns):
    return rows(demo.crm, "select %s from account where accountnumber = ?" % columns, number)[0]


# -- transforms -----------------------------------------------------------------------------------------------


def test_transforms_apply_in_order(demo):
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    execute(demo.erp, "update customer set name = '  acme  ltd ', phone = '+45 (12) 34-56', city = 'Copenhagen', credit_limit = 12345.5, "
                      "modified_on = '2025-03-04 05:06:07.000000' where no = ?", number)
    demo.declare([customer_mapping([
        {"field": "name", "integration_field": "name", "transform": ["trim", "upper"]},
        {"field": "phone", "integration_field": "telephone1", "transform": [{"regex_replace": {"pattern": "[^0-9+]", "replacement": ""}}]},
        {"field": "city", "integration_field": "address1_city", "transform": ["lower", {"truncate": 4}]},
        {"field": "credit_limit", "integration_field": "address1_postalcode", "transform": [{"number_format": ",.2f"}]},
        {"field": "modified_on", "integration_field": "address1_line1", "transform": [{"date_format": "%d.%m.%Y"}]},
    ])])
    run = demo.run("full")
    assert job(run).counts["failed"] == 0
    assert account_of(demo, number, "name, telephone1, address1_city, address1_postalcode, address1_line1") == (
        "ACME  LTD", "+45123456", "cope", "12,345.50", "04.03.2025")
    assert not demo.run("full").changed, "a transformed value written once is not written again"


def test_truncate_cuts_to_the_destination_length(demo):
    execute(demo.crm, "create table short_account (accountid text primary key, name varchar(5))")
    definition = {
        "name": "SHORT", "local_table": "customer", "local_key": "no", "integration_table": "short_account",
        "integration_key": "accountid", "direction": "to_integration",
        "fields": [{"field": "name", "integration_field": "name"}],
    }
    demo.declare([definition])
    refused = job(demo.run("full"), "SHORT")
    assert refused.counts["failed"] == 200 and "holds 5" in refused.errors[0]["message"]
    definition["fields"][0]["transform"] = ["truncate"]
    demo.declare([definition])
    fixed = job(demo.run("modified"), "SHORT")
    assert fixed.counts["inserted"] == 200 and fixed.counts["failed"] == 0
    assert rows(demo.crm, "select max(length(name)) from short_account")[0][0] == 5


@pytest.mark.parametrize("transform, message", [
    (["capitalize"], "unknown transform 'capitalize'"),
    ([{"truncate": -1}], "positive length"),
    ([{"regex_replace": {"pattern": "(", "replacement": ""}}], "invalid pattern"),
    ([{"upper": 1}], "takes no argument"),
    ([{"number_format": "%%"}], "number_format"),
])
def test_bad_transforms_are_validation_errors(demo, transform, message):
    with pytest.raises(MappingError, match="mapping CUSTOMER, field name <-> name: .*%s" % message):
        demo.declare([customer_mapping([{"field": "name", "integration_field": "name", "transform": transform}])])


# -- value maps ------------------------------------------------------------------------------------------------


def test_value_map_translates_option_values_and_fails_unmapped_ones(demo):
    numbers = [r[0] for r in rows(demo.erp, "select no from customer order by no limit 3")]
    execute(demo.erp, "update customer set blocked = 0")
    execute(demo.erp, "update customer set blocked = 1 where no = ?", numbers[0])
    execute(demo.erp, "update customer set blocked = 7 where no = ?", numbers[1])
    demo.declare([customer_mapping([{"field": "blocked", "integration_field": "creditonhold", "value_map": {"values": {"0": 10, "1": 20}}}])])
    result = job(demo.run("full"))
    assert result.counts["failed"] == 1 and result.counts["inserted"] == 199
    assert result.errors[0]["record_id"] == numbers[1] and "7" in result.errors[0]["message"] and "value map" in result.errors[0]["message"]
    assert account_of(demo, numbers[0], "creditonhold") == (20,)
    assert account_of(demo, numbers[2], "creditonhold") == (10,)
    demo.declare([customer_mapping([{"field": "blocked", "integration_field": "creditonhold",
                                     "value_map": {"values": {"0": 10, "1": 20}, "default": 99}}])])
    assert job(demo.run("modified")).counts["inserted"] == 1
    assert account_of(demo, numbers[1], "creditonhold") == (99,)


def test_value_map_is_read_in_reverse_by_a_bidirectional_field(demo):
    execute(demo.erp, "update customer set blocked = 0")
    demo.declare([customer_mapping([{"field": "blocked", "integration_field": "creditonhold", "value_map": {"values": {"0": 10, "1": 20}}}],
                                   direction="bidirectional", integration_table_filter="accountnumber ne null")])
    demo.run("full")
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    execute(demo.crm, "update account set creditonhold = 20 where accountnumber = ?", number)
    assert job(demo.run("modified")).counts["modified"] == 1
    assert rows(demo.erp, "select blocked from customer where no = ?", number) == [(1,)]
    assert job(demo.run("modified")).counts["modified"] == 0


def test_value_map_that_is_not_one_to_one_cannot_flow_back(demo):
    with pytest.raises(MappingError, match="not one-to-one"):
        demo.declare([customer_mapping([{"field": "blocked", "integration_field": "creditonhold",
                                         "value_map": {"values": {"0": 1, "1": 1}}}], direction="bidirectional")])


# -- lookups ----------------------------------------------------------------------------------------------------


def test_default_set_translates_references_through_lookups(demo):
    demo.declare()
    run = demo.run("full")
    assert [j.mapping for j in run.jobs] == ORDER and run.failed_records == 0
    owners = rows(demo.crm, "select a.accountnumber, u.nickname from account a left join systemuser u on u.systemuserid = a.ownerid")
    expected = dict(rows(demo.erp, "select no, salesperson_code from customer"))
    assert dict(owners) == expected
    currencies = dict(rows(demo.crm, "select a.accountnumber, c.isocurrencycode from account a "
                                     "left join transactioncurrency c on c.transactioncurrencyid = a.transactioncurrencyid"))
    assert currencies == dict(rows(demo.erp, "select no, nullif(currency_code, '') from customer"))
    parents = rows(demo.crm, "select count(*) from contact c join account a on a.accountid = c.parentcustomerid")[0][0]
    assert parents == rows(demo.erp, "select count(*) from contact where company_no is not null")[0][0] > 0
    units = rows(demo.crm, "select count(*) from product p join uomschedule u on u.uomscheduleid = p.defaultuomscheduleid")[0][0]
    assert units == rows(demo.erp, "select (select count(*) from item) + (select count(*) from resource)")[0][0]


def test_lookups_imply_the_dependency_order(demo):
    definitions = default_mapping_set()
    assert all("dependencies" not in d for d in definitions), "the default order comes from the lookups"
    mappings = [Mapping.from_definition(d) for d in definitions]
    by_name = {m.name: m for m in mappings}
    assert dependencies_of(by_name["CUSTOMER"]) == ["SALESPEOPLE", "CURRENCY"]
    assert dependencies_of(by_name["CONTACTS"]) == ["CUSTOMER"]
    shuffled = order_mappings(list(reversed(mappings)))
    position = {m.name: i for i, m in enumerate(shuffled)}
    for m in mappings:
        assert all(position[d] < position[m.name] for d in dependencies_of(m))
    assert [m.name for m in order_mappings(mappings)] == ORDER


def test_reference_to_an_uncoupled_record_fails_until_the_target_is_coupled(demo):
    demo.declare()
    early = job(demo.run("full", names=["CUSTOMER"]))
    referencing = rows(demo.erp, "select count(*) from customer where salesperson_code is not null or nullif(currency_code, '') is not null")[0][0]
    assert early.counts["failed"] == referencing and early.counts["inserted"] == 200 - referencing
    message = next(e["message"] for e in early.errors if "SALESPEOPLE" in e["message"] or "CURRENCY" in e["message"])
    assert "not coupled in mapping" in message
    demo.run("full", names=["CURRENCY", "SALESPEOPLE"])
    later = job(demo.run("modified", names=["CUSTOMER"]))
    assert later.counts["inserted"] == referencing and later.counts["failed"] == 0
    assert rows(demo.crm, "select count(*) from account")[0][0] == 200


# -- filters ----------------------------------------------------------------------------------------------------


def test_filters_apply_on_both_sides_in_both_directions_and_in_check_mode(demo):
    execute(demo.crm, "insert into account (accountid, accountnumber, name, address1_country) values "
                      "('a0000000-0000-0000-0000-00000000000d', 'CRM-DK', 'Dansk', 'DK'), "
                      "('a0000000-0000-0000-0000-00000000000e', 'CRM-SE', 'Svensk', 'SE')")
    demo.declare([customer_mapping([{"field": "name", "integration_field": "name"}, {"field": "country", "integration_field": "address1_country"}],
                                   direction="bidirectional", table_filter="country eq 'DK'", integration_table_filter="address1_country eq 'DK'")])
    danish = rows(demo.erp, "select count(*) from customer where country = 'DK'")[0][0]
    plan = demo.run("full", dry_run=True)
    real = demo.run("full")
    assert job(plan).counts == job(real).counts
    assert job(real).counts["inserted"] == danish + 1
    assert rows(demo.erp, "select no from customer where no like 'CRM-%'") == [("CRM-DK",)]
    assert rows(demo.crm, "select count(*) from account")[0][0] == danish + 2


@pytest.mark.parametrize("side", ["table_filter", "integration_table_filter"])
def test_filter_errors_name_the_mapping(demo, side):
    with pytest.raises(MappingError, match="mapping CUSTOMER, field %s" % side):
        demo.declare([customer_mapping([{"field": "name", "integration_field": "name"}], **{side: "name eq"})])
    with pytest.raises(MappingError, match="mapping CUSTOMER, field %s.*nope" % side):
        demo.declare([customer_mapping([{"field": "name", "integration_field": "name"}], **{side: "nope eq 1"})])


def test_sql_in_a_filter_is_rejected_or_matched_literally(demo):
    before = rows(demo.erp, "select count(*) from customer")[0][0]
    with pytest.raises(MappingError, match="mapping CUSTOMER, field table_filter"):
        demo.declare([customer_mapping([{"field": "name", "integration_field": "name"}], table_filter="name eq 'x'; DROP TABLE customer")])
    literal = "x'; DROP TABLE customer; --"
    execute(demo.erp, "insert into customer (no, name) values ('LIT', ?)", literal)
    demo.declare([customer_mapping([{"field": "name", "integration_field": "name"}],
                                   table_filter="name eq 'x''; DROP TABLE customer; --'")])
    result = job(demo.run("full"))
    assert result.counts["read"] == 1 and result.counts["inserted"] == 1
    assert rows(demo.crm, "select name from account") == [(literal,)]
    assert rows(demo.erp, "select count(*) from customer")[0][0] == before + 1


def test_a_lookup_translates_references_in_both_directions(demo):
    definitions = [d for d in default_mapping_set() if d["name"] in ("CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACTS")]
    contacts = next(d for d in definitions if d["name"] == "CONTACTS")
    contacts["direction"] = "bidirectional"
    demo.declare(definitions)
    assert demo.run("full").failed_records == 0
    contact_no, company = rows(demo.erp, "select no, company_no from contact where company_no is not null order by no limit 1")[0]
    other = rows(demo.erp, "select min(no) from customer where no <> ?", company)[0][0]
    store = demo.engine()[0]
    contactid = store.couplings_for("CONTACTS", "local", [contact_no])[contact_no].integration_id
    other_account = store.couplings_for("CUSTOMER", "local", [other])[other].integration_id
    execute(demo.crm, "update contact set parentcustomerid = ? where contactid = ?", other_account, contactid)
    run = demo.run("modified", names=["CONTACTS"])
    assert job(run, "CONTACTS").counts["modified"] == 1
    assert rows(demo.erp, "select company_no from contact where no = ?", contact_no) == [(other,)]
    execute(demo.crm, "update contact set parentcustomerid = 'no-such-account' where contactid = ?", contactid)
    failed = job(demo.run("modified", names=["CONTACTS"]), "CONTACTS")
    assert failed.counts["failed"] == 1 and "not coupled in mapping CUSTOMER" in failed.errors[0]["message"]
    assert rows(demo.erp, "select company_no from contact where no = ?", contact_no) == [(other,)]


def test_a_lookup_of_an_undeclared_mapping_is_an_ordering_error(demo):
    from ansible_collections.tablesync.integration.plugins.module_utils.errors import OrderingError

    demo.declare([customer_mapping([{"field": "salesperson_code", "integration_field": "ownerid", "lookup": "SALES"}])])
    with pytest.raises(OrderingError, match="CUSTOMER depends on SALES"):
        demo.run("full")
    assert rows(demo.crm, "select count(*) from account")[0][0] == 0


@pytest.mark.parametrize("change, message", [
    ({"update_conflict_resolution": "newest_wins"}, "mapping CUSTOMER, field update_conflict_resolution: 'newest_wins' is not one of"),
    ({"deletion_conflict_resolution": "ignore"}, "mapping CUSTOMER, field deletion_conflict_resolution"),
    ({"max_deletes": -1}, "mapping CUSTOMER, field max_deletes"),
    ({"max_changes_percent": 150}, "mapping CUSTOMER, field max_changes_percent"),
    ({"fields": [{"field": "blocked", "integration_field": "creditonhold", "value_map": {"0": 1}}]}, "fields.0.value_map"),
    ({"fields": [{"field": "salesperson_code", "integration_field": "ownerid", "lookup": "SALESPEOPLE", "value_map": {"values": {"a": "b"}}}]},
     "value_map or a lookup, not both"),
    ({"fields": [{"integration_field": "ownerid", "constant": "x", "lookup": "SALESPEOPLE"}]}, "a constant takes no value_map or lookup"),
])
def test_new_options_are_validated_before_anything_is_written(demo, change, message):
    definition = customer_mapping([{"field": "name", "integration_field": "name"}])
    definition.update(change)
    with pytest.raises(MappingError, match=message.replace(".", r"\.").replace("(", r"\(")):
        demo.declare([definition])
    assert demo.engine()[0].list_mappings() == []


# -- a direction without fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize("direction, fields, refused", [
    ("to_integration", [{"integration_field": "name", "constant": "x"}], "direction to_integration: no field flows from local to integration"),
    ("from_integration", [{"field": "name", "constant": "x"}], "direction from_integration: no field flows from integration to local"),
    ("bidirectional", [{"field": "no", "integration_field": "accountnumber", "direction": "to_integration"}],
     "direction bidirectional: no field flows from integration to local"),
    ("bidirectional", [{"field": "name", "integration_field": "name", "direction": "from_integration"},
                       {"integration_field": "telephone1", "constant": "n/a"}],
     "direction bidirectional: no field flows from local to integration"),
])
def test_a_direction_without_fields_is_refused_when_declared(demo, direction, fields, refused):
    definition = customer_account_mapping(direction=direction, fields=fields)
    with pytest.raises(MappingError, match="mapping CUSTOMER, field direction: %s" % refused):
        Mapping.from_definition(definition)
    with pytest.raises(MappingError, match=refused):
        demo.declare([definition])
    assert demo.engine()[0].get_mapping("CUSTOMER") is None, "nothing is stored"


def test_every_default_mapping_has_fields_for_its_direction():
    for definition in default_mapping_set():
        Mapping.from_definition(definition)
    Mapping.from_definition(customer_account_mapping(direction="bidirectional", fields=[
        {"field": "no", "integration_field": "accountnumber", "direction": "to_integration"},
        {"field": "name", "integration_field": "name", "direction": "from_integration"}]))
