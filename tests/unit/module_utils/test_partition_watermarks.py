"""The store's watermarks and run log for a sync split into partitions (SQLite store): a modified-records read
from any of them loses no record, and a run of one partition marks interrupted only the runs its locks exclude."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import execute, rows

T = [datetime.datetime(2026, 3, 1, 12, 0) + datetime.timedelta(hours=n) for n in range(8)]
P = Partition


@pytest.fixture
def store(tmp_path):
    opened = Store(str(tmp_path / "store.sqlite"))
    yield opened
    opened.close()


def stored(store):
    return sorted(rows(store.url.database, "select mapping, side, partition, value from tablesync_watermarks"))


def text(moment):
    """A naive UTC instant as the SQLite store keeps it."""
    return moment.isoformat(sep=" ", timespec="microseconds")


def test_a_partition_reads_from_the_later_of_its_own_and_the_whole_mappings(store):
    assert store.watermark("CUSTOMER", "local", P(0, 2)) is None
    store.set_watermark("CUSTOMER", "local", T[2])
    assert store.watermark("CUSTOMER", "local", P(0, 2)) == T[2], "a first partitioned run continues from the whole mapping's"
    store.set_watermark("CUSTOMER", "local", T[4], P(0, 2))
    store.set_watermark("CUSTOMER", "local", T[1], P(1, 2))
    assert store.watermark("CUSTOMER", "local", P(0, 2)) == T[4]
    assert store.watermark("CUSTOMER", "local", P(1, 2)) == T[2], "an older partition watermark does not move it back"
    assert store.watermark("CUSTOMER", "integration", P(0, 2)) is None and store.watermark("ITEM", "local", P(0, 2)) is None


def test_the_whole_mapping_reads_from_the_earliest_of_a_full_set_of_partitions(store):
    store.set_watermark("CUSTOMER", "local", T[5], P(0, 3))
    store.set_watermark("CUSTOMER", "local", T[6], P(2, 3))
    assert store.watermark("CUSTOMER", "local") is None, "partition 1/3 never ran: its records may be unread"
    store.set_watermark("CUSTOMER", "local", T[3], P(1, 3))
    assert store.watermark("CUSTOMER", "local") == T[3]
    store.set_watermark("CUSTOMER", "local", T[1])
    assert store.watermark("CUSTOMER", "local") == T[3], "the whole mapping's older watermark does not move it back"
    store.set_watermark("CUSTOMER", "local", T[7], P(0, 2))
    assert store.watermark("CUSTOMER", "local") == T[3], "partition 1/2 never ran"
    store.set_watermark("CUSTOMER", "local", T[4], P(1, 2))
    assert store.watermark("CUSTOMER", "local") == T[4], "of two full sets, the later earliest"
    store.set_watermark("CUSTOMER", "local", T[7])
    assert store.watermark("CUSTOMER", "local") == T[7]


def test_a_partitions_watermark_is_written_alone_and_removed_with_its_mapping(store):
    store.set_watermark("CUSTOMER", "local", T[1])
    store.set_watermark("CUSTOMER", "local", T[2], P(0, 2))
    store.set_watermark("CUSTOMER", "local", T[3], P(1, 2))
    store.set_watermark("CUSTOMER", "local", T[4], P(0, 2))
    store.set_watermark("ITEM", "local", T[5], P(0, 2))
    assert stored(store) == [("CUSTOMER", "local", "", text(T[1])), ("CUSTOMER", "local", "0/2", text(T[4])),
                             ("CUSTOMER", "local", "1/2", text(T[3])), ("ITEM", "local", "0/2", text(T[5]))]
    store.delete_mapping("CUSTOMER")
    assert stored(store) == [("ITEM", "local", "0/2", text(T[5]))]
    assert store.watermark("CUSTOMER", "local") is None and store.watermark("CUSTOMER", "local", P(0, 2)) is None


def test_a_run_of_one_partition_marks_interrupted_only_the_runs_its_locks_exclude(store):
    def elsewhere(mappings, partition=None, job=True):
        """A run still logged as running on another host, with a job of the first mapping (of the partition) when ``job``."""
        run_id = store.start_run("modified", mappings, group_id="nightly")
        if job:
            store.start_job(run_id, mappings[0], "modified", "to_integration", partition)
        execute(store.url.database, "update tablesync_runs set host = 'other-host' where id = ?", run_id)
        return run_id

    same = elsewhere(["CUSTOMER", "ITEM"], P(0, 2))
    whole = elsewhere(["CUSTOMER"])
    other = elsewhere(["CUSTOMER"], P(1, 2))
    other_count = elsewhere(["CUSTOMER"], P(0, 3))  # partitions of two counts exclude each other (locking.py)
    ending_alike = elsewhere(["CUSTOMER"], P(1, 12))
    before_its_job = elsewhere(["CUSTOMER"], job=False)
    unrelated = elsewhere(["ITEM"], P(0, 2))
    assert sorted(store.mark_interrupted([], ["CUSTOMER"], P(0, 2))) == sorted([same, whole, other_count, ending_alike])
    status = dict(rows(store.url.database, "select id, status from tablesync_runs"))
    assert [status[r] for r in (same, whole, other, other_count, ending_alike, before_its_job, unrelated)] == [
        "interrupted", "interrupted", "running", "interrupted", "interrupted", "running", "running"]
    assert dict(rows(store.url.database, "select run_id, status from tablesync_jobs"))[same] == "interrupted"
    # a run of the whole mapping excludes every run of it
    assert sorted(store.mark_interrupted(["CUSTOMER"])) == sorted([other, before_its_job])
