"""A bidirectional mapping through real ansible-playbook runs, with a conflict under each resolution."""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import ansible_playbook, extra_vars
from tests.support.fixtures import execute, rows


def play(demo, tmp_path, **variables):
    result_file = str(tmp_path / "result.json")
    values = {"store_path": demo.store_path, "erp": demo.erp, "crm": demo.crm, "result_file": result_file}
    values.update(variables)
    ansible_playbook("bidirectional.yml", *extra_vars(**values))
    with open(result_file) as handle:
        return json.load(handle)


@pytest.mark.parametrize("resolution", ["none", "local_wins", "integration_wins", "merge"])
def test_conflict_under_each_resolution(demo, tmp_path, resolution):
    first = play(demo, tmp_path, resolution=resolution, sync_mode="full")
    assert first["declared_changed"] is True and first["totals"]["inserted"] == 200
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    accountid = rows(demo.crm, "select accountid from account where accountnumber = ?", number)[0][0]
    # both sides change the phone; the CRM also changes the city
    execute(demo.erp, "update customer set phone = 'erp phone' where no = ?", number)
    execute(demo.crm, "update account set telephone1 = 'crm phone', address1_city = 'Crm City' where accountid = ?", accountid)
    result = play(demo, tmp_path, resolution=resolution, sync_mode="modified")
    assert result["declared_changed"] is False
    phones = (rows(demo.erp, "select phone from customer where no = ?", number)[0][0],
              rows(demo.crm, "select telephone1 from account where accountid = ?", accountid)[0][0])
    city = rows(demo.erp, "select city from customer where no = ?", number)[0][0]
    if resolution in ("none", "merge"):  # merge_fallback none: the phone changed on both sides is a conflict
        assert result["failed"] is True and result["totals"]["failed"] == 1
        message = result["errors"][0]["message"]
        assert number in message and accountid in message and "phone <-> telephone1" in message
        assert ("city" in message) is (resolution == "none")
        assert phones == ("erp phone", "crm phone") and city != "Crm City"
    else:
        winner = "erp phone" if resolution == "local_wins" else "crm phone"
        assert result["failed"] is False and result["changed"] is True
        assert result["totals"]["modified"] == 1
        assert phones == (winner, winner)
        assert city == ("Crm City" if resolution == "integration_wins" else rows(
            demo.crm, "select address1_city from account where accountid = ?", accountid)[0][0])
        again = play(demo, tmp_path, resolution=resolution, sync_mode="modified")
        assert again["changed"] is False and again["totals"]["modified"] == 0


def test_merge_keeps_both_sides_edits_through_the_module(demo, tmp_path):
    play(demo, tmp_path, resolution="merge", fallback="integration_wins", sync_mode="full")
    number = rows(demo.erp, "select min(no) from customer")[0][0]
    accountid = rows(demo.crm, "select accountid from account where accountnumber = ?", number)[0][0]
    execute(demo.erp, "update customer set phone = 'erp phone', name = 'Erp Name' where no = ?", number)
    execute(demo.crm, "update account set address1_city = 'Crm City', name = 'Crm Name' where accountid = ?", accountid)
    result = play(demo, tmp_path, resolution="merge", fallback="integration_wins", sync_mode="modified")
    assert result["failed"] is False and result["totals"]["modified"] == 1
    assert rows(demo.erp, "select phone, city, name from customer where no = ?", number) == [("erp phone", "Crm City", "Crm Name")]
    assert rows(demo.crm, "select telephone1, address1_city, name from account where accountid = ?", accountid) == [
        ("erp phone", "Crm City", "Crm Name")]
