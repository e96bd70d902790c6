"""Requests per 1,000 record writes, counted by the protocol test doubles over real HTTP."""

from __future__ import annotations

import pytest

from tests.support import ODataService
from tests.support.web_load import WebLoad
from tests.support.web_schemas import declare_business_central, declare_dataverse
from tests.unit.module_utils.test_odata_endpoint import Pair, alone, bc_dataverse_set, counts, writes


def api_requests(svc: ODataService) -> int:
    """Every request of the sync but the token, $metadata and the company list (made once per run)."""
    return sum(1 for r in svc.request_log if r.kind not in ("token", "other") and not r.path.endswith("/companies"))


def test_business_central_updates_take_at_most_eleven_requests_per_thousand(tmp_path):
    with ODataService("business_central") as bc:
        load = WebLoad(bc, str(tmp_path), customers=2000)
        assert load.run("full").counts["inserted"] == 2000
        load.change_all()
        bc.reset_counters()
        job = load.run("modified")
        assert job.counts["modified"] == 2000 and job.counts["failed"] == 0
        assert bc.row_writes["update"] == 2000
        # 20 $batch of 100 PATCHes, the ETags of each 1,000 records read in one $batch of GETs, and the source read
        assert api_requests(bc) <= 2 * 11
        assert load.problems()["wrong"] == []


@pytest.mark.parametrize("source_page_size", [250, 1000])
def test_dataverse_writes_fill_the_batch_whatever_the_source_page_size(tmp_path, source_page_size):
    with ODataService("business_central") as bc, ODataService("dataverse") as dv:
        declare_business_central(bc)
        declare_dataverse(dv)
        bc.insert("customers", [{"number": "C%05d" % i, "displayName": "Customer %d" % i} for i in range(2000)])
        pair = Pair(bc, dv, str(tmp_path / "store.sqlite"), local={"page_size": source_page_size})
        try:
            pair.declare([alone(m) for m in bc_dataverse_set() if m["name"] == "CUSTOMER"])
            dv.reset_counters()
            assert counts(pair.run("full"), "CUSTOMER")["inserted"] == 2000
            assert writes(dv) <= 2 * 2 and dv.row_writes["create"] == 2000
            for row in bc.rows("customers"):
                bc.update("customers", row["id"], {"displayName": row["displayName"] + " v2"})
            dv.reset_counters()
            bc.reset_counters()
            assert counts(pair.run("modified"), "CUSTOMER")["modified"] == 2000
            assert writes(dv) <= 2 * 2 and dv.row_writes["update"] == 2000
            # the source was really read in pages of its own size
            assert sum(1 for r in bc.request_log if r.kind == "collection" and "customers" in r.path) >= 2000 // source_page_size
        finally:
            pair.close()
