"""Locks of runs of one partition of their mappings, held by other processes, on a PostgreSQL and a SQLite store:
partitions of a mapping run side by side; a partition never runs twice at once, nor beside a run of the whole mapping."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.tablesync.integration.plugins.module_utils.errors import LockTimeout
from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.support.fixtures import ROOT

HOLDER_RUN = "11111111-2222-3333-4444-555555555555"
WAITER_RUN = "99999999-8888-7777-6666-555555555555"
HOLDER = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [%r, %r]
    from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
    from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
    store, label, run_id = Store(sys.argv[1]), sys.argv[2], sys.argv[3] or None
    with mapping_locks(store, ["ITEM", "CUSTOMER"], run_id, timeout=10, partition=Partition.parse(label) if label else None):
        print("locked", flush=True)
        sys.stdin.readline()
    """
) % (os.path.join(ROOT, "collections"), ROOT)


@pytest.fixture(params=["postgresql", "sqlite"])
def location(request, tmp_path):
    return request.getfixturevalue("pg_db").url_text if request.param == "postgresql" else str(tmp_path / "store.sqlite")


@pytest.fixture
def store(location):
    opened = Store(location)
    yield opened
    opened.close()


@contextlib.contextmanager
def holding(location, partition, run_id=HOLDER_RUN):
    """Another process holds the locks of CUSTOMER and ITEM (of one partition of them) until the block ends; yields its pid."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, location, partition.label if partition else "", run_id or ""],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        proc.stdin.close()  # the holder releases its locks and ends
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def refusal(store, partition, names=("CUSTOMER",)):
    """None when a run of the mappings (of the partition) gets its locks at once, else why not."""
    try:
        with mapping_locks(store, list(names), WAITER_RUN, timeout=0.3, partition=partition):
            return None
    except LockTimeout as exc:
        return str(exc)


def test_partitions_of_a_mapping_run_side_by_side_but_never_twice_nor_beside_the_whole_mapping(location, store):
    with holding(location, Partition(0, 2)) as pid:
        assert refusal(store, Partition(1, 2), ["CUSTOMER", "ITEM"]) is None
        same = refusal(store, Partition(0, 2))
        assert same is not None and same.startswith("partition 0/2 of mapping CUSTOMER is locked by run %s (pid %d" % (HOLDER_RUN, pid))
        assert "same partition of a mapping" in same
        whole = refusal(store, None, ["ITEM"])
        assert whole is not None and whole.startswith("mapping ITEM is locked by run %s (pid %d" % (HOLDER_RUN, pid))
        assert refusal(store, None, ["CONTACT"]) is None and refusal(store, Partition(0, 2), ["CONTACT"]) is None
    assert refusal(store, None, ["CUSTOMER", "ITEM"]) is None and refusal(store, Partition(0, 2)) is None


def test_partitions_of_two_counts_of_a_mapping_never_run_at_once(location, store):
    # partition 0 of 2 holds the records of partitions 0 and 2 of 4: both would write them
    with holding(location, Partition(0, 2)) as pid:
        for partition in (Partition(0, 4), Partition(1, 4), Partition(0, 1), Partition(5, 12)):
            refused = refusal(store, partition)
            assert refused is not None and refused.startswith(
                "mapping CUSTOMER is synchronised in 2 partitions by run %s (pid %d" % (HOLDER_RUN, pid)), refused
            assert "to synchronise it in %d." % partition.count in refused
        assert refusal(store, Partition(0, 4), ["CONTACT"]) is None and refusal(store, Partition(1, 2)) is None
        with holding(location, Partition(1, 2), run_id=None):  # a second holder of the count's lock
            assert refusal(store, Partition(3, 4)) is not None
    assert refusal(store, Partition(3, 4)) is None
    with holding(location, Partition(3, 4)):
        assert refusal(store, Partition(1, 2)) is not None and refusal(store, Partition(2, 4)) is None


def test_partitions_of_two_counts_started_together_run_one_count_only_and_all_of_it(location):
    # five runs start at once: the three partitions of 3 and the two of 2 of CUSTOMER and ITEM
    partitions = [Partition(i, 3) for i in range(3)] + [Partition(i, 2) for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, location, p.label, ""], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for p in partitions]
    try:
        won = []
        # why: a run that loses waits 10 s (the holder's lock_timeout), then ends without a line; a winner holds on
        deadline = time.monotonic() + 30
        for partition, proc in zip(partitions, procs):
            ready, _w, _x = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            if ready and proc.stdout.readline().strip() == "locked":
                won.append(partition)
        counts = {p.count for p in won}
        assert len(counts) == 1, won
        assert sorted(p.index for p in won) == list(range(counts.pop())), won
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_run_of_the_whole_mapping_excludes_every_partition(location, store):
    with holding(location, None) as pid:
        for partition in (Partition(0, 2), Partition(1, 2), Partition(3, 4)):
            refused = refusal(store, partition)
            assert refused is not None and refused.startswith("mapping CUSTOMER is locked by run %s (pid %d" % (HOLDER_RUN, pid))
    assert refusal(store, Partition(1, 2)) is None


def test_a_run_of_the_whole_mapping_waiting_for_partitions_names_one_holding_it(location, store):
    with holding(location, Partition(0, 2)) as first, holding(location, Partition(1, 2), run_id=None) as second:
        refused = refusal(store, None)
        assert refused is not None and refused.startswith("mapping CUSTOMER is locked by ")
        assert re.search(r"\(pid (%d|%d)," % (first, second), refused), refused
    if store.url.get_backend_name() == "sqlite":
        directory = store.url.database + ".locks"
        names = os.listdir(directory)
        assert all(re.fullmatch(r"[A-Za-z0-9_.-]+\.lock", n) and os.path.isfile(os.path.join(directory, n)) for n in names), names
        assert len([n for n in names if n.startswith(("CUSTOMER_0_2-", "CUSTOMER_1_2-", "ITEM_0_2-", "ITEM_1_2-"))]) == 4, names


def test_a_killed_holder_of_a_partition_leaves_the_lock_and_is_not_named(location, store):
    with holding(location, Partition(1, 2), run_id=None) as alive, holding(location, Partition(0, 2)) as killed:
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while refusal(store, Partition(0, 2)) is not None:  # the server notices the dead session when its socket closes
            assert time.monotonic() < deadline, "the killed holder's lock was never released"
        refused = refusal(store, None)
        assert refused is not None and refused.startswith("mapping CUSTOMER is locked by a check-mode sync task (pid %d," % alive), refused
        if store.url.get_backend_name() == "sqlite":
            described = [n for n in os.listdir(store.url.database + ".locks") if n.startswith("CUSTOMER-") and n.endswith(".holder")]
            assert len(described) == 1, "the killed holder's file was left: %s" % described
