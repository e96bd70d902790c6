# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Mapping locks: two runs that touch the same mapping never interleave.

A run takes one exclusive lock per mapping, all before its first job and in sorted
order (so two runs cannot deadlock), and releases them when it ends. A run of one
partition of its mappings (partition.py) takes a shared lock per mapping, a shared one on
its count of partitions of it, and an exclusive one on that partition of it: the
partitions of a mapping run side by side, two runs of one partition never do, nor a run
of the whole mapping and a run of a partition, nor runs of partitions of two counts
(partition 0 of 2 holds the records of partitions 0 and 2 of 4). A run that finds a lock
held retries until ``lock_timeout`` seconds have passed, then fails naming the mapping
(and partition) and a run that holds it.

The locks die with the process that holds them, so a run killed with SIGKILL leaves
nothing to clean up:

* PostgreSQL store: session-level advisory locks on a connection held for the run; the
  server releases them when the session ends. The holder's run id and pid are the
  connection's ``application_name``, which ``pg_stat_activity`` shows to the waiter.
* SQLite store: an ``flock`` on ``<store>.locks/<mapping>.lock``; the kernel releases it
  when the process dies. The holder writes its run id and pid into the file; a holder of a
  shared lock into a file of its own next to it (``<lock file>.<token>.holder``), locked
  while it holds the lock, so that a waiter names a holder that still holds it.

Runs of several partitions claiming couplings of one mapping take turns (``claim_lock``).
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import hashlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, LockTimeout
from ansible_collections.tablesync.integration.plugins.module_utils.partition import MAX_PARTITIONS, Partition

try:
    import fcntl

    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not on POSIX
    HAS_FCNTL = False

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover - reported by the modules (only server stores take these locks)
    pass

DEFAULT_LOCK_TIMEOUT = 300.0
POLL_SECONDS = 0.2
GATE_POLL_SECONDS, GATE_ATTEMPTS = 0.005, 40
# First key of the two-key advisory locks: keeps them apart from other applications' locks.
PG_LOCK_SPACE = 0x7453  # "tS"
SCHEMA_LOCK_NAME = "@schema"
CLAIM_LOCK_NAME = "@claim %s"  # of a mapping; '@' and ' ' keep it apart from the partition locks ("<mapping>#<index>/<count>")
COUNT_LOCK_NAME = "%s@%d"  # of a count of partitions of a mapping
GATE_LOCK_NAME = "%s@counts"  # taken while a run checks that no other count's lock is held and takes its own


class Holder:
    """Who holds (or wants) a lock: the run id (or, without a run, the task), the process and the host."""

    def __init__(self, run_id: str | None, pid: int | None = None, host: str | None = None, since: str | None = None,
                 task: str = "check-mode sync"):
        self.run_id = run_id
        self.task = task
        self.pid = os.getpid() if pid is None else pid
        self.host = socket.gethostname() if host is None else host
        self.since = since or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()

    def describe(self) -> str:
        run = "run %s" % self.run_id if self.run_id else "a %s task" % self.task
        where = ", ".join(x for x in ("pid %s" % self.pid if self.pid else "", "host %s" % self.host if self.host else "",
                                      "since %s" % self.since if self.since else "") if x)
        return "%s (%s)" % (run, where) if where else run

    def as_json(self) -> str:
        return json.dumps({"run_id": self.run_id, "task": self.task, "pid": self.pid, "host": self.host, "since": self.since})

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(data.get("run_id"), data.get("pid") or 0, data.get("host") or "", data.get("since") or "", data.get("task") or "")
        except (ValueError, AttributeError):
            return None


def lock_key(name: str) -> int:
    """A stable positive 31-bit key for a mapping name (the second advisory-lock key)."""
    return int(hashlib.sha256(name.encode("utf-8")).hexdigest()[:8], 16) & 0x7FFFFFFF


@dataclass(frozen=True)
class _Lock:
    """One lock a run takes: ``name`` is the lock's (the mapping's, or ``<mapping>#<index>/<count>``)."""

    name: str
    shared: bool = False
    mapping: str = ""
    partition: str | None = None  # the label of the partition whose lock it is
    count: int | None = None  # of the lock on a count of partitions: that count, whose lock no other count's may share

    def describe(self) -> str:
        return "partition %s of mapping %s" % (self.partition, self.mapping) if self.partition else "mapping %s" % (self.mapping or self.name)

    def other_counts(self) -> dict[str, int]:
        """The locks of the other counts of partitions of the mapping, by name: none may be held when this one is taken."""
        return {COUNT_LOCK_NAME % (self.mapping, n): n for n in range(1, MAX_PARTITIONS + 1) if n != self.count}


def _locks(names: Sequence[str], partition: Partition | None) -> list[_Lock]:
    """The locks a run of the mappings (of one partition of them) takes, in the order it takes them.

    Why: every run takes its locks in one global order, mapping by mapping in sorted order and a mapping's own
    lock before its partition's, so two runs cannot deadlock.
    """
    locks = []
    for name in sorted(set(names)):
        locks.append(_Lock(name, shared=partition is not None, mapping=name))
        if partition is not None:
            locks.append(_Lock(COUNT_LOCK_NAME % (name, partition.count), shared=True, mapping=name, count=partition.count))
            locks.append(_Lock("%s#%s" % (name, partition.label), mapping=name, partition=partition.label))
    return locks


def _timeout_error(lock: _Lock, holder: Holder | None, timeout: float, count: int | None = None) -> LockTimeout:
    who = holder.describe() if holder else "another run"
    if count is not None:
        return LockTimeout(
            "mapping %s is synchronised in %d partitions by %s; gave up after waiting %g s (lock_timeout) to synchronise "
            "it in %s. Partitions of a mapping run side by side only when they are partitions of one count: retry "
            "when it has finished" % (lock.mapping, count, who, timeout, lock.count)
        )
    what = "the same partition of a mapping" if lock.partition else "the same mapping"
    return LockTimeout(
        "%s is locked by %s; gave up after waiting %g s (lock_timeout). "
        "Two runs never synchronise %s at once: retry when it has finished" % (lock.describe(), who, timeout, what)
    )


# The granted advisory locks of the collection's space in this database (pg_locks lists every database's): ``l``.
_GRANTED = ("l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = :s "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")


class _PgLocks:
    """Session-level advisory locks on one dedicated PostgreSQL connection."""

    def __init__(self, engine: Any, holder: Holder):
        self.holder = holder
        self.conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        # why: the waiter reads the holder's run id from pg_stat_activity (63 characters at most)
        label = "tablesync:%s:%s" % (holder.run_id or holder.task.replace(":", " "), holder.pid)
        self.conn.execute(sa.text("SELECT set_config('application_name', :v, false)"), {"v": label[:63]})

    def try_lock(self, name: str, shared: bool = False) -> bool:
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        return bool(self.conn.execute(sa.text("SELECT %s(:s, :k)" % function), {"s": PG_LOCK_SPACE, "k": lock_key(name)}).scalar())

    def release(self, name: str) -> None:
        self.conn.execute(sa.text("SELECT pg_advisory_unlock(:s, :k)"), {"s": PG_LOCK_SPACE, "k": lock_key(name)})

    def held(self, names: Sequence[str]) -> str | None:
        """One of the named locks that a session holds, or None."""
        keys = {lock_key(name): name for name in names}
        found = self.conn.execute(
            sa.text(
                "SELECT l.objid FROM pg_locks l WHERE %s AND l.objid = ANY(:keys) LIMIT 1" % _GRANTED
            ),
            {"s": PG_LOCK_SPACE, "keys": list(keys)},
        ).scalar()
        return None if found is None else keys.get(int(found))

    def holder_of(self, name: str) -> Holder | None:
        row = self.conn.execute(
            sa.text(
                "SELECT a.application_name, a.backend_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE %s AND l.objid = :k" % _GRANTED
            ),
            {"s": PG_LOCK_SPACE, "k": lock_key(name)},
        ).first()
        if row is None:
            return None
        parts = (row[0] or "").split(":")
        if len(parts) == 3 and parts[0] == "tablesync":
            is_run = len(parts[1]) == 36 and parts[1].count("-") == 4
            return Holder(parts[1] if is_run else None, int(parts[2]) if parts[2].isdigit() else 0, "",
                          row[1].isoformat() if row[1] else "", task="" if is_run else parts[1])
        return Holder(None, 0, "", "")

    def close(self) -> None:
        # why: ending the session releases every advisory lock it holds, even when the
        # connection broke (then the server has already released them)
        try:
            self.conn.invalidate()
        finally:
            self.conn.close()


class _FileLocks:
    """``flock`` on one file per mapping next to a SQLite store."""

    def __init__(self, store_path: str, holder: Holder):
        self.holder = holder
        self.directory = store_path + ".locks"
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError("cannot create the lock directory %s next to the store: %s" % (self.directory, exc.strerror)) from None
        self.fds: list[int] = []
        self.names: dict[str, int] = {}  # the descriptor of each lock held, by name
        self.described: list[tuple[int, str]] = []  # the holder files of the shared locks held, and their paths

    def _path(self, name: str) -> str:
        # why: mapping names may hold any character; keep them readable and distinct
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return os.path.join(self.directory, "%s-%08x.lock" % (safe[:64], lock_key(name)))

    def try_lock(self, name: str, shared: bool = False) -> bool:
        fd = os.open(self._path(name), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fds.append(fd)
        self.names[name] = fd
        if shared:
            self._describe_shared(self._path(name))
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, self.holder.as_json().encode("utf-8"), 0)
        return True

    def _describe_shared(self, path: str) -> None:
        """Write who holds the shared lock of ``path`` into a holder file of its own, locked until it is released.

        Why: the holders of a shared lock cannot take turns writing one file, and the last one to write it
        may have released the lock long before. A holder file is locked before it gets its name, so a file
        found unlocked is one its holder left when killed.
        """
        final = "%s.%s.holder" % (path, uuid.uuid4().hex[:12])
        fd = os.open(final + ".new", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, self.holder.as_json().encode("utf-8"))
        os.rename(final + ".new", final)
        self.described.append((fd, final))

    def release(self, name: str) -> None:
        """Release an exclusive lock held (a shared one's holder file would stay)."""
        fd = self.names.pop(name)
        self.fds.remove(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def held(self, names: Sequence[str]) -> str | None:
        """One of the named locks that a process holds, or None; a file that does not exist was never locked."""
        for name in names:
            try:
                fd = os.open(self._path(name), os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return name
            finally:
                os.close(fd)  # why: closing the descriptor releases the lock taken to test
        return None

    def holder_of(self, name: str) -> Holder | None:
        path = self._path(name)
        live = [h for h in map(_live_holder, sorted(glob.glob(glob.escape(path) + ".*.holder"))) if h is not None]
        if live:
            return live[0]
        try:
            with open(path, encoding="utf-8") as handle:
                return Holder.from_json(handle.read())
        except OSError:
            return None

    def close(self) -> None:
        for fd, path in self.described:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)
        self.described = []
        for fd in self.fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self.fds = []
        self.names = {}


def _live_holder(path: str) -> Holder | None:
    """Who holds a shared lock, from a holder file its holder still locks; a file left by a killed holder is removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # why: its holder released the lock meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder.from_json(os.read(fd, 65536).decode("utf-8", "replace"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return None
    finally:
        os.close(fd)


def _backend(store: Any, holder: Holder) -> Any:
    if store.url.get_backend_name() == "postgresql":
        return _PgLocks(store.engine, holder)
    if store.url.get_backend_name() == "sqlite":
        if not HAS_FCNTL:  # pragma: no cover
            return None
        return _FileLocks(store.url.database, holder)
    return None


def _acquire(backend: Any, locks: Sequence[_Lock], timeout: float, store: Any = None) -> None:
    for lock in locks:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            other = _take(backend, lock)
            if other is None:
                break
            if time.monotonic() >= deadline:
                held = other or lock.name
                raise _timeout_error(lock, _completed(backend.holder_of(held), store), timeout, lock.other_counts().get(held))
            time.sleep(POLL_SECONDS)


def _take(backend: Any, lock: _Lock) -> str | None:
    """Take ``lock`` if it is free: None when taken, else the name of the lock in the way ("" for its own).

    Why: the lock on a count of partitions is shared by that count's runs and must exclude the other counts'. No
    lock mode says so; the gate makes checking that no other count's is held and taking it one step.
    """
    if lock.count is None:
        return None if backend.try_lock(lock.name, lock.shared) else ""
    gate = GATE_LOCK_NAME % lock.mapping
    if not _take_gate(backend, gate):
        return ""
    try:
        other = backend.held(list(lock.other_counts()))
        if other is not None:
            return other
        return None if backend.try_lock(lock.name, lock.shared) else ""
    finally:
        backend.release(gate)


def _take_gate(backend: Any, gate: str) -> bool:
    """Take a gate lock, trying again at short intervals for a moment.

    Why: a gate is held only while its holder checks a few locks; the runs of every partition, started together,
    would otherwise wait a whole poll each.
    """
    for _attempt in range(GATE_ATTEMPTS):
        if backend.try_lock(gate):
            return True
        time.sleep(GATE_POLL_SECONDS)
    return False


def _completed(holder: Holder | None, store: Any) -> Holder | None:
    """Fill in the host and start of the holder's run from the job log, when the lock did not say."""
    if holder is None or not holder.run_id or holder.host or store is None:
        return holder
    info = store.run_info(holder.run_id)
    if info:
        holder.host = info.get("host") or ""
        holder.since = info["started_at"].isoformat(sep=" ", timespec="seconds") + " UTC" if info.get("started_at") else holder.since
    return holder


@contextlib.contextmanager
def mapping_locks(store: Any, names: Sequence[str], run_id: str | None, timeout: float = DEFAULT_LOCK_TIMEOUT,
                  task: str = "check-mode sync", partition: Partition | None = None) -> Iterator[None]:
    """Hold an exclusive lock on each named mapping of ``store`` for the duration of the block; with a
    ``partition``, a shared lock on each and an exclusive lock on that partition of each.

    ``run_id`` names the holder in other runs' timeout messages; without one, ``task`` does.

    A read-only SQLite store that does not exist yet has nothing to protect: no lock is taken.
    """
    if not names or (store.url.get_backend_name() == "sqlite" and not store.exists):
        yield
        return
    backend = _backend(store, Holder(run_id, task=task))
    if backend is None:
        yield
        return
    try:
        _acquire(backend, _locks(names, partition), timeout, store)
        yield
    finally:
        backend.close()


@contextlib.contextmanager
def schema_lock(url: Any, engine: Any, timeout: float = 120.0) -> Iterator[Any]:
    """Serialise creating and migrating a store's schema between processes.

    Yields a connection inside a transaction (PostgreSQL: with a transaction-level advisory
    lock) or None (SQLite: the caller uses its own connections under a file lock).
    """
    backend_name = url.get_backend_name()
    if backend_name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:s, 0)"), {"s": PG_LOCK_SPACE})
            yield conn
        return
    if backend_name == "sqlite" and HAS_FCNTL and url.database and url.database != ":memory:":
        backend = _FileLocks(url.database, Holder(None))
        try:
            _acquire(backend, [_Lock(SCHEMA_LOCK_NAME)], timeout)
            yield None
        finally:
            backend.close()
        return
    yield None


def claim_lock(conn: Any, mapping: str) -> None:
    """Make the coupling claims of one mapping take turns until the transaction of ``conn`` ends.

    Why: on PostgreSQL, two transactions inserting rows that clash on both sides' unique keys in different
    orders each wait for the other's rows: a deadlock. SQLite writes one transaction at a time anyway.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:s, :k)"), {"s": PG_LOCK_SPACE, "k": lock_key(CLAIM_LOCK_NAME % mapping)})
