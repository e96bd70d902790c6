# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The store: declared mappings, couplings, watermarks, runs, jobs and their errors.

An embedded SQLite file by default, PostgreSQL for shared setups, both through the
same SQLAlchemy Core tables. Everything a batch of a job changes in the store is
committed in one transaction (``commit_batch``), so a process killed between two
batches leaves couplings that agree with the endpoints, and the pending-create intents
let the next run recognise records created just before a crash.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import traceback
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.chunks import chunks
from ansible_collections.tablesync.integration.plugins.module_utils.counters import COUNTERS
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError
from ansible_collections.tablesync.integration.plugins.module_utils.partition import Partition
from ansible_collections.tablesync.integration.plugins.module_utils.values import utcnow

try:
    import sqlalchemy as sa

    from ansible_collections.tablesync.integration.plugins.module_utils.locking import claim_lock, schema_lock
    from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import (
        Select,
        bulk_insert,
        create_sql_engine,
        name_database_errors,
        release_before_fork,
        renew_after_fork,
        safe_address,
        sql_url,
    )

    HAS_SQLALCHEMY = True
    SQLALCHEMY_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - reported by the modules
    HAS_SQLALCHEMY = False
    SQLALCHEMY_IMPORT_ERROR = traceback.format_exc()

# 1: first release. 2: runs record the process (pid, host) that ran them.
# 3: pending-create intents are kept one row per page of creates, not one row per record; partial indexes of the
#    couplings never synchronised.
# 4: failed records count the runs in a row they failed with the same error and may be skipped; jobs count uncouplings
#    and the records they expect to read; runs whose process is gone are marked interrupted.
# 5: partitions of a mapping keep watermarks of their own; jobs name their partition, runs the group of a distributed sync.
SCHEMA_VERSION = 5
WHOLE = ""  # the partition column of a watermark of the whole mapping
DEFAULT_STORE = "~/.tablesync/store.sqlite"
HELD = "ambiguous match"  # how the message of a record held for an ambiguous match begins: never skipped
IDS_PER_QUERY = 500  # ids of one side a coupling query names


@dataclass
class Coupling:
    """A pair of records under one mapping, with what was last synchronised on each side."""

    mapping: str
    local_id: str
    integration_id: str
    local_fp: str | None = None
    integration_fp: str | None = None
    local_modified_on: datetime.datetime | None = None
    integration_modified_on: datetime.datetime | None = None
    last_values: str | None = None

    @classmethod
    def of_flow(cls, mapping: str, src: str, src_id: str, dst_id: str) -> Coupling:
        """The coupling of a record of side ``src`` and its partner on the other side."""
        if src == "local":
            return cls(mapping, local_id=src_id, integration_id=dst_id)
        return cls(mapping, local_id=dst_id, integration_id=src_id)

    def side_id(self, side: str) -> str:
        return self.local_id if side == "local" else self.integration_id

    def __reduce__(self) -> tuple[type, tuple]:
        # why: read-ahead pages carry a coupling per record; pickled by fields, one loads in a fifth of the time
        return (Coupling, (self.mapping, self.local_id, self.integration_id, self.local_fp, self.integration_fp,
                           self.local_modified_on, self.integration_modified_on, self.last_values))

    def values(self, now: datetime.datetime | None = None) -> tuple:
        """The store row of the coupling, in the order of COUPLING_COLUMNS."""
        return (self.mapping, self.local_id, self.integration_id, self.local_fp, self.integration_fp, self.local_modified_on,
                self.integration_modified_on, self.last_values, now or utcnow())

    def row(self, now: datetime.datetime | None = None) -> dict[str, Any]:
        return dict(zip(COUPLING_COLUMNS, self.values(now)))


COUPLING_COLUMNS = ("mapping", "local_id", "integration_id", "local_fp", "integration_fp", "local_modified_on", "integration_modified_on",
                    "last_values", "synced_at")


@dataclass
class PendingCreate:
    """Intent recorded before a record is created, so a crash before coupling is repaired; in a bidirectional
    mapping also before a coupled pair is updated (``fingerprints`` then holds "update", see
    job.SyncJob._recover_updates), so a crash before the commit does not leave the pair looking changed.

    ``page`` is the store row holding the intents of one page (set when read back).
    """

    mapping: str
    source_side: str
    source_id: str
    dest_id: str | None
    dest_values: dict[str, Any]
    fingerprints: dict[str, Any] = field(default_factory=dict)
    page: int | None = None


@dataclass
class PendingPage:
    """The intents of one page of creates as one store row: ``entries`` is their JSON (see _pending_entry)."""

    mapping: str
    source_side: str
    entries: str
    size: int


@dataclass
class BatchCommit:
    """What one batch of a job changes in the store, committed atomically."""

    new_couplings: list[Coupling] = field(default_factory=list)
    changed_couplings: list[Coupling] = field(default_factory=list)
    removed_couplings: list[tuple[str, str]] = field(default_factory=list)  # (local_id, integration_id)
    cleared_pending: list[int] = field(default_factory=list)  # pages of pending-create intents
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (side, record_id, message)
    succeeded: list[tuple[str, str]] = field(default_factory=list)  # (side, record_id)
    counts: dict[str, int] = field(default_factory=dict)


def _tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    ts = sa.DateTime()
    text = sa.String(255)
    t = {}
    t["schema_info"] = sa.Table(
        "tablesync_schema_info", metadata, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False)
    )
    t["mappings"] = sa.Table(
        "tablesync_mappings",
        metadata,
        sa.Column("name", text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("synch_only_coupled_records", sa.Boolean, nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.Column("updated_at", ts, nullable=False),
    )
    t["watermarks"] = sa.Table(
        "tablesync_watermarks",
        metadata,
        sa.Column("mapping", text, primary_key=True),
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("partition", sa.String(16), primary_key=True),  # a Partition label, or WHOLE
        sa.Column("value", ts, nullable=False),
    )
    t["couplings"] = sa.Table(
        "tablesync_couplings",
        metadata,
        sa.Column("mapping", text, primary_key=True),
        sa.Column("local_id", text, primary_key=True),
        sa.Column("integration_id", text, nullable=False),
        sa.Column("local_fp", sa.String(64)),
        sa.Column("integration_fp", sa.String(64)),
        sa.Column("local_modified_on", ts),
        sa.Column("integration_modified_on", ts),
        sa.Column("last_values", sa.Text),
        sa.Column("synced_at", ts, nullable=False),
        sa.UniqueConstraint("mapping", "integration_id", name="uq_tablesync_couplings_integration"),
    )
    c = t["couplings"].c
    for side in ("local", "integration"):
        # why: couplings never synchronised are few; a modified run asks for them, and without these
        # partial indexes that question read every coupling of the mapping (0.14 s at 1,000,000)
        unsynced = c[side + "_fp"].is_(None)
        sa.Index("ix_tablesync_couplings_%s_unsynced" % side, c.mapping, c[side + "_id"], sqlite_where=unsynced, postgresql_where=unsynced)
    # why: one row per page of creates; a row per record cost a full sync as much as its couplings
    t["pending"] = sa.Table(
        "tablesync_pending_pages",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mapping", text, nullable=False, index=True),
        sa.Column("source_side", sa.String(16), nullable=False),
        sa.Column("entries", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    t["failed"] = sa.Table(
        "tablesync_failed_records",
        metadata,
        sa.Column("mapping", text, primary_key=True),
        sa.Column("side", sa.String(16), primary_key=True),
        sa.Column("record_id", text, primary_key=True),
        sa.Column("job_id", sa.Integer),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("failed_at", ts, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),  # runs in a row it failed with this message
        sa.Column("skipped", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    t["runs"] = sa.Table(
        "tablesync_runs",
        metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("ended_at", ts),
        sa.Column("mappings", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer),
        sa.Column("host", sa.String(255)),
        sa.Column("group_id", sa.String(64), index=True),  # shared by the runs of the partitions of one distributed sync
    )
    t["jobs"] = sa.Table(
        "tablesync_jobs",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False, index=True),
        sa.Column("mapping", text, nullable=False, index=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("ended_at", ts),
        sa.Column("message", sa.Text),
        *[sa.Column(c, sa.Integer, nullable=False, default=0, server_default="0") for c in COUNTERS],
        sa.Column("total", sa.Integer),  # records the job expects to read, when its source could count them
        sa.Column("partition", sa.String(16)),  # the Partition label of a job of one partition, None for the whole mapping
    )
    t["errors"] = sa.Table(
        "tablesync_job_errors",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, nullable=False, index=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("mapping", text, nullable=False),
        sa.Column("side", sa.String(16), nullable=False),
        sa.Column("record_id", text),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", ts, nullable=False),
    )
    return t


# Columns a migration added: (table, column) -> (the version that added it, what a row of an older store reads as).
# why: read-only tasks (check mode, sync_job_info) read a store as an older collection left it; the next writing task migrates it
ADDED_COLUMNS: dict[tuple[str, str], tuple[int, Any]] = {
    ("jobs", "uncoupled"): (4, 0), ("jobs", "total"): (4, None), ("jobs", "partition"): (5, None), ("runs", "group_id"): (5, None),
}


class Store:
    """Access to the store; one instance per module invocation."""

    def __init__(self, location: str | None = None, read_only: bool = False, password: str | None = None):
        if not HAS_SQLALCHEMY:
            raise ConfigurationError("the python library SQLAlchemy is required: %s" % SQLALCHEMY_IMPORT_ERROR)
        location = location or DEFAULT_STORE
        self.read_only = read_only
        if "://" in location:
            try:
                self.url = sql_url("url", {"url": location, "password": password})
            except sa.exc.ArgumentError:
                raise ConfigurationError("store: %r is not a database URL" % location.split("@")[-1]) from None
            if self.url.get_backend_name() not in ("postgresql", "sqlite"):
                raise ConfigurationError("store: a store is a SQLite file or a postgresql:// URL, not %s" % self.url.get_backend_name())
        else:
            path = os.path.abspath(os.path.expanduser(location))
            if not read_only:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            self.url = sa.engine.URL.create("sqlite", database=path)
        self.address = safe_address(self.url)
        self.engine = create_sql_engine(self.url)
        name_database_errors(self.engine, "store %s" % self.address)
        self.metadata = sa.MetaData()
        self.tables = _tables(self.metadata)
        self._selects: dict[str, Select] = {}
        self.version = SCHEMA_VERSION  # an older one only when read-only (the next writing task migrates it)
        self.exists = self._check_schema()

    # -- schema --------------------------------------------------------------------------
    def _check_schema(self) -> bool:
        """Create the schema on first use, migrate an older one, refuse a newer one.

        Returns whether the schema exists. Several processes may open a new store at once:
        creation and migration run under a schema lock. A read-only store is neither created
        nor migrated (the next writing task migrates it; migrations keep every table and column
        read-only tasks read: they add, and version 3 replaces only the pending-create intents).
        """
        if self.url.get_backend_name() == "sqlite" and self.read_only and not os.path.exists(self.url.database or ""):
            return False
        if self.read_only:
            version = self._read_version(self.engine)
            self.version = SCHEMA_VERSION if version is None else version
            return version is not None
        try:
            with schema_lock(self.url, self.engine) as conn:
                if conn is not None:
                    self._prepare_schema(conn)
                elif self._read_version(self.engine) != SCHEMA_VERSION:
                    # why: only creating or migrating takes the write lock; opening a current store only reads
                    with _sqlite_ddl_transaction(self.engine) as own:
                        self._prepare_schema(own)
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None
        return True

    def _unreachable(self, exc: Exception) -> ConfigurationError:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        return ConfigurationError("store %s cannot be opened (check the store option and that its server is reachable): %s" % (self.address, reason))

    def _read_version(self, bind: Any) -> int | None:
        """The schema version of the store, None when it has no schema; refuses a newer one."""
        try:
            if not sa.inspect(bind).has_table(self.tables["schema_info"].name):
                return None
        except sa.exc.OperationalError as exc:
            raise self._unreachable(exc) from None
        si = self.tables["schema_info"]
        if isinstance(bind, sa.engine.Engine):
            with bind.connect() as conn:
                row = conn.execute(sa.select(si.c.value).where(si.c.key == "schema_version")).first()
        else:
            row = bind.execute(sa.select(si.c.value).where(si.c.key == "schema_version")).first()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                "store %s has schema version %d, newer than this collection supports (%d): upgrade tablesync.integration"
                % (self.address, version, SCHEMA_VERSION)
            )
        return version

    def _prepare_schema(self, conn: Any) -> None:
        version = self._read_version(conn)
        si = self.tables["schema_info"]
        if version is None:
            self.metadata.create_all(conn)
            conn.execute(si.insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])
            return
        if version == SCHEMA_VERSION:
            return
        for target in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[target](conn, self.tables)
        if conn.execute(sa.update(si).where(si.c.key == "schema_version").values(value=str(SCHEMA_VERSION))).rowcount == 0:
            conn.execute(si.insert(), [{"key": "schema_version", "value": str(SCHEMA_VERSION)}])

    def close(self) -> None:
        self.engine.dispose()

    def release_before_fork(self) -> bool:
        return release_before_fork(self.engine)

    def renew_after_fork(self) -> None:
        renew_after_fork(self.engine)

    def _write(self) -> Any:
        if self.read_only:
            raise ConfigurationError("internal error: write to a read-only store")
        return self.engine.begin()

    def _columns(self, key: str) -> dict[str, Any]:
        """The columns of a table by name as this store has them: one its version lacks reads as in ADDED_COLUMNS."""
        out = {}
        for column in self.tables[key].c:
            since, before = ADDED_COLUMNS.get((key, column.name), (0, None))
            out[column.name] = column if self.version >= since else sa.literal(before, column.type).label(column.name)
        return out

    # -- settings --------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        if not self.exists:
            return None
        si = self.tables["schema_info"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(si.c.value).where(si.c.key == key)).first()
        return row[0] if row else None

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as conn:
            _upsert(conn, self.tables["schema_info"], {"key": key}, {"value": value})

    # -- endpoint binding ------------------------------------------------------------------
    def check_binding(self, endpoints: dict[str, Any], rebind: bool = False, record: bool = True) -> bool:
        """Refuse to serve another pair of endpoints than the one the couplings belong to.

        The first run records each side's type and address (never credentials); a later run
        against a different pair fails before anything is written, unless ``rebind`` accepts
        the new pair. Returns whether the recorded pair changed (or would, with ``record`` off).
        """
        wanted = {side: endpoint_identity(ep) for side, ep in endpoints.items()}
        recorded = {side: self._binding(side) for side in wanted}
        differ = [side for side in wanted if recorded[side] is not None and recorded[side] != wanted[side]]
        if differ and not rebind:
            raise ConfigurationError(
                "store %s holds the couplings of %s; this task points %s. Couplings of one environment must never be "
                "applied to another: use a store of its own for this pair, or set rebind=true if these are the same "
                "databases at a new address"
                % (
                    self.address,
                    " and ".join("%s %s" % (side, _describe(recorded[side] or wanted[side])) for side in sorted(wanted)),
                    " and ".join("%s at %s" % (side, _describe(wanted[side])) for side in differ),
                )
            )
        changes = {side: ident for side, ident in wanted.items() if recorded[side] != ident}
        if changes and record:
            for side, ident in changes.items():
                self.set_setting("endpoint.%s" % side, json.dumps(ident, sort_keys=True))
        return bool(changes)

    def _binding(self, side: str) -> dict[str, str] | None:
        text = self.get_setting("endpoint.%s" % side)
        return json.loads(text) if text else None

    # -- mappings --------------------------------------------------------------------------
    def list_mappings(self) -> list[dict[str, Any]]:
        """Declared mappings in declaration order, each with its definition and settings."""
        if not self.exists:
            return []
        m = self.tables["mappings"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(m).order_by(m.c.position)).mappings().all()
        return [self._mapping_row(r) for r in rows]

    def get_mapping(self, name: str) -> dict[str, Any] | None:
        if not self.exists:
            return None
        m = self.tables["mappings"]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(m).where(m.c.name == name)).mappings().first()
        return self._mapping_row(row) if row else None

    @staticmethod
    def _mapping_row(row: Any) -> dict[str, Any]:
        definition = json.loads(row["definition"])
        definition["synch_only_coupled_records"] = bool(row["synch_only_coupled_records"])
        return definition

    def put_mapping(self, definition: dict[str, Any]) -> None:
        m = self.tables["mappings"]
        now = utcnow()
        body = dict(definition)
        synch_only = bool(body.pop("synch_only_coupled_records", True))
        values = {"definition": json.dumps(body, sort_keys=True), "synch_only_coupled_records": synch_only, "updated_at": now}
        with self._write() as conn:
            if conn.execute(sa.update(m).where(m.c.name == body["name"]).values(**values)).rowcount == 0:
                position = conn.execute(sa.select(sa.func.coalesce(sa.func.max(m.c.position), 0))).scalar() + 1
                conn.execute(m.insert(), [dict(values, name=body["name"], position=position, created_at=now)])

    def delete_mapping(self, name: str) -> None:
        """Remove a mapping with its couplings, watermarks (its partitions' too) and retry list."""
        with self._write() as conn:
            for key in ("couplings", "watermarks", "pending", "failed"):
                table = self.tables[key]
                conn.execute(table.delete().where(table.c.mapping == name))
            conn.execute(self.tables["mappings"].delete().where(self.tables["mappings"].c.name == name))

    def set_synch_only(self, name: str, value: bool) -> None:
        m = self.tables["mappings"]
        with self._write() as conn:
            conn.execute(sa.update(m).where(m.c.name == name).values(synch_only_coupled_records=value, updated_at=utcnow()))

    # -- couplings -------------------------------------------------------------------------
    def couplings_for(self, mapping: str, side: str, ids: Sequence[str]) -> dict[str, Coupling]:
        """Couplings of the given records of one side, keyed by that side's id."""
        out: dict[str, Coupling] = {}
        key = 1 if side == "local" else 2
        select = self._couplings_by_ids(side)
        with self.engine.connect() as conn:
            for chunk in chunks(ids, IDS_PER_QUERY):
                chunk += [None] * (IDS_PER_QUERY - len(chunk))  # why: one statement for every chunk; NULL matches no id
                params = {"id%d" % n: value for n, value in enumerate(chunk)}
                params["_m"] = mapping
                # why: plain rows into the dataclass by position; no per-row mapping view
                for r in select.rows(conn, params):
                    out[r[key]] = Coupling(*r)
        return out

    def _couplings_by_ids(self, side: str) -> Select:
        """The SELECT of one chunk of a side's ids, compiled once (id IN a fixed number of parameters).

        Why: a full sync asks for the couplings of every page; an expanding IN was compiled again
        for each, and its rows built through SQLAlchemy's result objects (a fifth of a full re-run).
        """
        select = self._selects.get(side)
        if select is None:
            c = self.tables["couplings"]
            col = c.c.local_id if side == "local" else c.c.integration_id
            ids = [sa.bindparam("id%d" % n, type_=col.type) for n in range(IDS_PER_QUERY)]
            select = self._selects[side] = Select(sa.select(*_coupling_columns(c)).where(c.c.mapping == sa.bindparam("_m"), col.in_(ids)))
        return select

    def iter_couplings(self, mapping: str, batch: int = 5000) -> Iterator[list[Coupling]]:
        """All couplings of a mapping in pages (keyset on local id)."""
        c = self.tables["couplings"]
        base = sa.select(*_coupling_columns(c)).where(c.c.mapping == mapping).order_by(c.c.local_id).limit(batch)
        first, following = Select(base), Select(base.where(c.c.local_id > sa.bindparam("_last")))  # why: compiled once
        last = None
        while True:
            with self.engine.connect() as conn:
                rows = first.rows(conn) if last is None else following.rows(conn, {"_last": last})
            if not rows:
                return
            last = rows[-1][1]
            yield [Coupling(*r) for r in rows]

    def has_couplings(self, mapping: str) -> bool:
        c = self.tables["couplings"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(c.c.local_id).where(c.c.mapping == mapping).limit(1)).first() is not None

    def count_couplings(self, mapping: str) -> int:
        if not self.exists:
            return 0
        c = self.tables["couplings"]
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(c).where(c.c.mapping == mapping)).scalar() or 0

    def change_couplings(self, mapping: str, add: Sequence[tuple[str, str]] = (), remove: Sequence[tuple[str, str]] = (),
                         reset: Sequence[tuple[str, str]] = ()) -> None:
        """Remove, reset, then add couplings (local id, integration id) in one transaction.

        New and reset couplings carry no fingerprints: the next sync sees the source as changed
        and writes it in the mapping's direction, so the two records agree.
        """
        if not add and not remove and not reset:
            return
        c = self.tables["couplings"]
        with self._write() as conn:
            for local_id, integration_id in remove:
                conn.execute(c.delete().where(c.c.mapping == mapping, c.c.local_id == local_id, c.c.integration_id == integration_id))
            for local_id, integration_id in reset:
                conn.execute(sa.update(c).where(c.c.mapping == mapping, c.c.local_id == local_id, c.c.integration_id == integration_id)
                             .values(local_fp=None, integration_fp=None, last_values=None))
            if add:
                conn.execute(c.insert(), [Coupling(mapping, local_id=lid, integration_id=iid).row() for lid, iid in add])

    def unsynced_ids(self, mapping: str, side: str) -> list[str]:
        """Ids of one side whose coupling has no fingerprint there yet (coupled, never synchronised)."""
        c = self.tables["couplings"]
        col, fp = (c.c.local_id, c.c.local_fp) if side == "local" else (c.c.integration_id, c.c.integration_fp)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(col).where(c.c.mapping == mapping, fp.is_(None)).order_by(col))]

    def lookup_ids(self, mapping: str, side: str, ids: Iterable[str]) -> dict[str, str]:
        """Translate ids of one side to the coupled ids of the other side."""
        return {k: v.side_id("integration" if side == "local" else "local") for k, v in self.couplings_for(mapping, side, list(ids)).items()}

    def claim_couplings(self, mapping: str, couplings: Sequence[Coupling]) -> list[Coupling]:
        """Couple each pair unless its local or its integration record is coupled already in the mapping; the pairs
        left out (another claimer, such as another partition's run, coupled one of their records first).

        Each row is inserted or left out by the database itself (INSERT ... ON CONFLICT DO NOTHING), so of runs
        claiming the same record at the same moment exactly one wins.
        """
        if not couplings:
            return []
        c = self.tables["couplings"]
        stmt = _insert(self.engine.dialect.name, c).on_conflict_do_nothing().returning(c.c.local_id, c.c.integration_id)
        now = utcnow()
        with self._write() as conn:
            claim_lock(conn, mapping)
            won = {(r[0], r[1]) for r in conn.execute(stmt, [dict(cp.row(now), mapping=mapping) for cp in couplings])}
        return [cp for cp in couplings if (cp.local_id, cp.integration_id) not in won]

    # -- watermarks ------------------------------------------------------------------------
    def watermark(self, mapping: str, side: str, partition: Partition | None = None) -> datetime.datetime | None:
        """The modified-on up to which every record of a side (of one partition) was read: None when unknown.

        A partition's is the later of its own and the whole mapping's. The whole mapping's is the later of
        its own and, of each count whose partitions all have one, the earliest of theirs.
        """
        w = self.tables["watermarks"]
        label = w.c.partition if self.version >= 5 else sa.literal(WHOLE)  # why: read-only, before partitions
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(label, w.c.value).where(w.c.mapping == mapping, w.c.side == side)).all()
        return _watermark_of({r[0]: r[1] for r in rows}, partition)

    def set_watermark(self, mapping: str, side: str, value: datetime.datetime, partition: Partition | None = None) -> None:
        """Keep the watermark of a side of the whole mapping or of one partition (the others' stay as they are)."""
        key = {"mapping": mapping, "side": side, "partition": partition.label if partition else WHOLE}
        with self._write() as conn:
            _upsert(conn, self.tables["watermarks"], key, {"value": value})

    # -- pending creates and retries --------------------------------------------------------
    def add_pending(self, page: PendingPage) -> int:
        """Record the intents of one page of creates in one row; returns the row's id."""
        with self._write() as conn:
            return conn.execute(self.tables["pending"].insert(), _pending_row(page)).inserted_primary_key[0]

    def pending(self, mapping: str) -> list[PendingCreate]:
        """The intents of pages of creates a killed run left behind."""
        p = self.tables["pending"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(p.c.id, p.c.source_side, p.c.entries).where(p.c.mapping == mapping).order_by(p.c.id)).all()
        return [PendingCreate(mapping, side, source_id, dest_id, values or {}, fps or {}, page)
                for page, side, entries in rows for source_id, dest_id, values, fps in json.loads(entries)]

    def failed_ids(self, mapping: str, side: str, skipped: bool = False) -> list[str]:
        """Ids of a side's records on the retry list (``skipped``: of those skipped instead)."""
        f = self.tables["failed"]
        if self.version < 4:  # why: read-only, before the migration that added skipping
            return [] if skipped else self._column(sa.select(f.c.record_id).where(f.c.mapping == mapping, f.c.side == side))
        stmt = sa.select(f.c.record_id).where(f.c.mapping == mapping, f.c.side == side, f.c.skipped.is_(skipped)).order_by(f.c.record_id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def _column(self, stmt: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def skipped_records(self, mappings: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Skipped records with their last error, by mapping, side and id."""
        f = self.tables["failed"]
        if self.version < 4:
            return []
        stmt = sa.select(f.c.mapping, f.c.side, f.c.record_id, f.c.message, f.c.attempts, f.c.failed_at, f.c.job_id).where(f.c.skipped.is_(True))
        if mappings:
            stmt = stmt.where(f.c.mapping.in_(list(mappings)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt.order_by(f.c.mapping, f.c.side, f.c.record_id)).mappings()]

    def restore_skipped(self, mapping: str, records: Sequence[tuple[str, str]] | None = None) -> None:
        """Put skipped records (all of a mapping's, or the given (side, id)) back on the retry list with no attempts counted."""
        f = self.tables["failed"]
        with self._write() as conn:
            restore = sa.update(f).where(f.c.mapping == mapping, f.c.skipped.is_(True)).values(skipped=False, attempts=0)
            if records is None:
                conn.execute(restore)
                return
            for side, ids in _by_side(list(records)):
                conn.execute(restore.where(f.c.side == side, f.c.record_id.in_(ids)))

    # -- runs and jobs -----------------------------------------------------------------------
    def start_run(self, mode: str, mappings: Sequence[str], run_id: str | None = None, group_id: str | None = None) -> str:
        """Log a run of the mappings; ``group_id``: the id the runs of the partitions of one distributed sync share."""
        run_id = run_id or str(uuid.uuid4())
        row = {"id": run_id, "mode": mode, "status": "running", "started_at": utcnow(), "mappings": json.dumps(list(mappings)),
               "pid": os.getpid(), "host": socket.gethostname()[:255], "group_id": group_id}
        with self._write() as conn:
            conn.execute(self.tables["runs"].insert(), [row])
        return run_id

    def run_info(self, run_id: str) -> dict[str, Any] | None:
        if not self.exists:
            return None
        r = self.tables["runs"]
        try:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(*self._columns("runs").values()).where(r.c.id == run_id)).mappings().first()
        except sa.exc.DBAPIError:  # a read-only store not migrated yet
            return None
        return dict(row) if row else None

    def mark_interrupted(self, locked: Sequence[str], split: Sequence[str] = (), partition: Partition | None = None) -> list[str]:
        """Mark the runs still ``running`` whose process is gone, and their running jobs, ``interrupted``; their ids.

        A run of this host is gone when its process no longer exists. Of another host's, one of a mapping
        in ``locked`` is gone: the caller holds those mappings' locks, which a live run would hold. Of the
        mappings in ``split`` the caller holds the locks of one ``partition``, which exclude only whole-mapping
        runs, runs of that partition and runs of partitions of another count: of another host's runs, those
        with such a job on a mapping in ``split`` are gone. Their jobs keep the counts last committed.
        """
        r, j = self.tables["runs"], self.tables["jobs"]
        with self.engine.connect() as conn:
            running = conn.execute(sa.select(r.c.id, r.c.mappings, r.c.pid, r.c.host).where(r.c.status == "running")).all()
        host = socket.gethostname()[:255]
        gone, maybe = [], []
        for run_id, mappings, pid, run_host in running:
            if run_host == host and pid:
                if not _alive(pid):
                    gone.append(run_id)
            elif set(json.loads(mappings or "[]")) & set(locked):
                gone.append(run_id)
            elif set(json.loads(mappings or "[]")) & set(split):
                maybe.append(run_id)
        if partition is not None and maybe:
            # why: runs of the other partitions of its count hold no lock the caller holds: alive or not, they stay
            excludes = sa.or_(j.c.partition.is_(None), j.c.partition == partition.label, j.c.partition.not_like("%%/%d" % partition.count))
            stmt = sa.select(j.c.run_id).distinct().where(j.c.run_id.in_(maybe), j.c.mapping.in_(list(split)), excludes)
            with self.engine.connect() as conn:
                gone += [row[0] for row in conn.execute(stmt)]
        if gone:
            with self._write() as conn:
                conn.execute(sa.update(r).where(r.c.id.in_(gone), r.c.status == "running").values(status="interrupted", ended_at=utcnow()))
                conn.execute(sa.update(j).where(j.c.run_id.in_(gone), j.c.status == "running").values(status="interrupted", ended_at=utcnow()))
        return gone

    def record_job(self, mapping: str, mode: str, direction: str, counts: dict[str, int], errors: Sequence[tuple[str, str, str]]) -> int:
        """A job done outside a sync (coupling by match) written to the job log at once, with a run of its own: its row
        and its records' errors (side, id, why), in the log only (they join no retry list); the job's id."""
        run_id = self.start_run(mode, [mapping])
        job_id = self.start_job(run_id, mapping, mode, direction)
        status = "partial" if errors else "success"
        now = utcnow()
        with self._write() as conn:
            if errors:
                rows = [{"job_id": job_id, "run_id": run_id, "mapping": mapping, "side": side, "record_id": rid, "message": why,
                         "created_at": now} for side, rid, why in errors]
                conn.execute(self.tables["errors"].insert(), rows)
        self.end_job(job_id, status, {c: counts.get(c, 0) for c in COUNTERS})
        self.end_run(run_id, status)
        return job_id

    def end_run(self, run_id: str, status: str) -> None:
        r = self.tables["runs"]
        with self._write() as conn:
            conn.execute(sa.update(r).where(r.c.id == run_id).values(status=status, ended_at=utcnow()))

    def start_job(self, run_id: str, mapping: str, mode: str, direction: str, partition: Partition | None = None) -> int:
        """Log a job of a mapping (of one ``partition`` of its records, or all); its id."""
        row = {"run_id": run_id, "mapping": mapping, "mode": mode, "direction": direction, "status": "running", "started_at": utcnow(),
               "partition": partition.label if partition else None}
        row.update({c: 0 for c in COUNTERS})
        with self._write() as conn:
            return int(conn.execute(self.tables["jobs"].insert().values(**row)).inserted_primary_key[0])

    def end_job(self, job_id: int, status: str, counts: dict[str, int], message: str | None = None) -> None:
        j = self.tables["jobs"]
        with self._write() as conn:
            conn.execute(sa.update(j).where(j.c.id == job_id).values(status=status, ended_at=utcnow(), message=message, **counts))

    def commit_batch(self, mapping: str, run_id: str, job_id: int, batch: BatchCommit, skip_after: int = 0) -> None:
        """Apply one batch's couplings, retries, errors and progress in one transaction.

        A record failing with the message it failed with last time counts one more attempt; at
        ``skip_after`` attempts (0: never) it is skipped by later runs until restored (a held
        ambiguous match never is: it resolves when the other side changes).
        """
        c, p, f, j, e = (self.tables[k] for k in ("couplings", "pending", "failed", "jobs", "errors"))
        now = utcnow()
        with self._write() as conn:
            # why: a statement per 500 records, not a round trip per record
            for chunk in chunks([pair[0] for pair in batch.removed_couplings], IDS_PER_QUERY):
                conn.execute(c.delete().where(c.c.mapping == mapping, c.c.local_id.in_(chunk)))
            if batch.new_couplings:
                bulk_insert(conn, c, COUPLING_COLUMNS, [cp.values(now) for cp in batch.new_couplings])
            if batch.changed_couplings:
                stmt = (
                    sa.update(c)
                    .where(c.c.mapping == sa.bindparam("_m"), c.c.local_id == sa.bindparam("_l"))
                    .values(
                        integration_id=sa.bindparam("integration_id"),
                        local_fp=sa.bindparam("local_fp"),
                        integration_fp=sa.bindparam("integration_fp"),
                        local_modified_on=sa.bindparam("local_modified_on"),
                        integration_modified_on=sa.bindparam("integration_modified_on"),
                        last_values=sa.bindparam("last_values"),
                        synced_at=sa.bindparam("synced_at"),
                    )
                )
                params = []
                for cp in batch.changed_couplings:
                    row = cp.row(now)
                    row["_m"] = row.pop("mapping")
                    row["_l"] = row.pop("local_id")
                    params.append(row)
                conn.execute(stmt, params)
            for chunk in chunks(sorted(set(batch.cleared_pending)), IDS_PER_QUERY):
                conn.execute(p.delete().where(p.c.id.in_(chunk)))
            # why: most pages have no failed records to clear; one cheap probe spares the deletes
            known = (batch.succeeded or batch.failed) and self._has_failed(conn, mapping)
            succeeded = list(batch.succeeded) if known else []
            latest = {(side, rid): message for side, rid, message in batch.failed}  # why: one row per record
            before = self._failures(conn, mapping, list(latest)) if known and latest else {}
            for side, ids in _by_side(succeeded + list(latest)):
                conn.execute(f.delete().where(f.c.mapping == mapping, f.c.side == side, f.c.record_id.in_(ids)))
            if latest:
                rows = []
                for (side, rid), message in latest.items():
                    last = before.get((side, rid))
                    attempts = 1
                    if last is not None and last[0] == message:
                        attempts = last[1] + (last[2] != job_id)  # why: attempts count runs; a record may fail on two pages of one
                    rows.append({"mapping": mapping, "side": side, "record_id": rid, "job_id": job_id, "message": message, "failed_at": now,
                                 "attempts": attempts, "skipped": 0 < skip_after <= attempts and not message.startswith(HELD)})
                conn.execute(f.insert(), rows)
            if batch.failed:
                conn.execute(
                    e.insert(),
                    [
                        {"job_id": job_id, "run_id": run_id, "mapping": mapping, "side": side, "record_id": rid, "message": msg, "created_at": now}
                        for side, rid, msg in batch.failed
                    ],
                )
            if batch.counts:
                conn.execute(sa.update(j).where(j.c.id == job_id).values(**batch.counts))

    def _failures(self, conn: Any, mapping: str, records: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int, int]]:
        """(side, id) -> (message, attempts, job id) of the given records' stored failures."""
        f = self.tables["failed"]
        out = {}
        for side, ids in _by_side(records):
            stmt = (sa.select(f.c.record_id, f.c.message, f.c.attempts, f.c.job_id)
                    .where(f.c.mapping == mapping, f.c.side == side, f.c.record_id.in_(ids)))
            out.update({(side, r[0]): (r[1], r[2], r[3]) for r in conn.execute(stmt)})
        return out

    def _has_failed(self, conn: Any, mapping: str) -> bool:
        """Whether the mapping has records on its retry list (most pages of most runs have none)."""
        f = self.tables["failed"]
        return conn.execute(sa.select(f.c.record_id).where(f.c.mapping == mapping).limit(1)).first() is not None

    # -- job log queries ---------------------------------------------------------------------
    def jobs(
        self,
        run_id: str | None = None,
        mappings: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        limit: int = 100,
        group_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """The last ``limit`` jobs that match, oldest first, each with its partition's label (None: the whole
        mapping) and the ``group_id`` of its run (None outside a distributed sync)."""
        if not self.exists:
            return []
        j, r = self.tables["jobs"], self.tables["runs"]
        group = self._columns("runs")["group_id"]
        stmt = sa.select(*self._columns("jobs").values(), group).select_from(j.outerjoin(r, r.c.id == j.c.run_id))
        if group_id:
            stmt = stmt.where(group == group_id)
        if run_id:
            stmt = stmt.where(j.c.run_id == run_id)
        if mappings:
            stmt = stmt.where(j.c.mapping.in_(list(mappings)))
        if status:
            stmt = stmt.where(j.c.status.in_(list(status)))
        if since:
            stmt = stmt.where(j.c.started_at >= since)
        if until:
            stmt = stmt.where(j.c.started_at <= until)
        stmt = stmt.order_by(j.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(stmt).mappings()]
        rows.reverse()
        return rows

    def waiting_mappings(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """By run, the mappings of the run (in its order) no job of which has started yet."""
        if not run_ids or not self.exists:
            return {}
        r, j = self.tables["runs"], self.tables["jobs"]
        with self.engine.connect() as conn:
            runs = conn.execute(sa.select(r.c.id, r.c.mappings).where(r.c.id.in_(list(run_ids)))).all()
            started = conn.execute(sa.select(j.c.run_id, j.c.mapping).where(j.c.run_id.in_(list(run_ids))).distinct()).all()
        begun: dict[str, set[str]] = {}
        for run_id, mapping in started:
            begun.setdefault(run_id, set()).add(mapping)
        return {run_id: [m for m in json.loads(names or "[]") if m not in begun.get(run_id, set())] for run_id, names in runs}

    def job_errors(self, job_ids: Sequence[int], limit: int = 1000) -> list[dict[str, Any]]:
        if not job_ids or not self.exists:
            return []
        e = self.tables["errors"]
        stmt = sa.select(e).where(e.c.job_id.in_(list(job_ids))).order_by(e.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]


def _watermark_of(rows: dict[str, datetime.datetime], partition: Partition | None) -> datetime.datetime | None:
    """The watermark of a partition (or of the whole mapping) from the stored ones of a side, by partition label.

    Why: a modified-records read from it must lose no record. A partition's records were all read up to its
    own and up to the whole mapping's; the whole mapping's up to its own and up to the earliest of a full set
    of partitions (one of each index of a count).
    """
    known = [rows.get(WHOLE)]
    if partition is not None:
        known.append(rows.get(partition.label))
    else:
        by_count: dict[int, list[datetime.datetime]] = {}
        for label, value in rows.items():
            if label != WHOLE:
                by_count.setdefault(Partition.parse(label).count, []).append(value)
        known += [min(values) for count, values in by_count.items() if len(values) == count]
    found = [value for value in known if value is not None]
    return max(found) if found else None


def _by_side(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    """(side, ids) groups of at most 500 ids, from (side, id) pairs."""
    groups: dict[str, list[str]] = {}
    for side, rid in pairs:
        groups.setdefault(side, []).append(rid)
    for side, ids in sorted(groups.items()):
        for chunk in chunks(sorted(set(ids)), IDS_PER_QUERY):
            yield side, chunk


def _alive(pid: int) -> bool:
    """Whether a process of this host exists (signal 0 checks without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # why: it exists, under another user
    return True


def endpoint_identity(endpoint: Any) -> dict[str, str]:
    """Type and address of an endpoint as the store records them (no user, no password)."""
    address = getattr(endpoint, "binding_address", endpoint.address)()
    return {"type": endpoint.type, "address": address}


def _describe(identity: dict[str, str]) -> str:
    return "%s %s" % (identity.get("type"), identity.get("address"))


def _insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT of the store's database kind, which takes ON CONFLICT clauses."""
    from sqlalchemy.dialects import postgresql, sqlite  # why: not at the top: a SQLite store need not load PostgreSQL's (40 ms)

    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _upsert(conn: Any, table: sa.Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert the row of ``key`` or update the one there, in one statement.

    Why: an update, then an insert when it found no row, lets two runs that start together (the partitions of a
    distributed sync recording the endpoints of a new store) both insert, and one fail on the primary key.
    """
    conn.execute(_insert(conn.dialect.name, table).values(**key, **values).on_conflict_do_update(index_elements=list(key), set_=values))


@contextlib.contextmanager
def _sqlite_ddl_transaction(engine: Any) -> Iterator[Any]:
    """A SQLite connection in one transaction that holds DDL too: a schema created or migrated wholly or not at all.

    Why: Python's sqlite3 begins a transaction only before INSERT, UPDATE and DELETE, so a migration killed midway
    would leave its DDL done (a table dropped and rebuilt) and the rows it was copying lost. Without its own
    transaction handling (isolation_level None), the driver runs the BEGIN given here, and COMMIT or ROLLBACK.
    """
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        previous = dbapi.isolation_level
        dbapi.isolation_level = None
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
        finally:
            conn.rollback()  # why: ends SQLAlchemy's own record of the transaction (the driver has none left)
            dbapi.isolation_level = previous


def _migrate_2(conn: Any, tables: dict[str, Any]) -> None:
    """Runs record the process that ran them (named by lock-timeout messages)."""
    existing = {c["name"] for c in sa.inspect(conn).get_columns(tables["runs"].name)}
    for column in ("pid", "host"):
        if column not in existing:
            ddl = tables["runs"].c[column].type.compile(dialect=conn.dialect)
            conn.execute(sa.text("ALTER TABLE %s ADD COLUMN %s %s" % (tables["runs"].name, column, ddl)))


def _migrate_3(conn: Any, tables: dict[str, Any]) -> None:
    """Pending-create intents move from one row per record to one row per page; couplings never synchronised are indexed."""
    for index in tables["couplings"].indexes:
        index.create(conn, checkfirst=True)
    pages = tables["pending"]
    pages.create(conn, checkfirst=True)
    if not sa.inspect(conn).has_table("tablesync_pending_creates"):
        return
    old = sa.Table("tablesync_pending_creates", sa.MetaData(), autoload_with=conn)
    grouped: dict[tuple[str, str], list] = {}
    for r in conn.execute(sa.select(old)).mappings():
        create = (r["source_id"], r["dest_id"], json.loads(r["dest_values"]), json.loads(r["fingerprints"]))
        grouped.setdefault((r["mapping"], r["source_side"]), []).append(create)
    for (mapping, side), creates in grouped.items():
        conn.execute(pages.insert(), _pending_row(pending_page(mapping, side, creates)))
    old.drop(conn)


def _migrate_4(conn: Any, tables: dict[str, Any]) -> None:
    """Failed records count their attempts and may be skipped; jobs count uncouplings."""
    for table, columns in ((tables["failed"], ("attempts", "skipped")), (tables["jobs"], ("uncoupled", "total"))):
        existing = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        for column in columns:
            if column not in existing:
                col = table.c[column]
                ddl = col.type.compile(dialect=conn.dialect)
                if col.server_default is not None:
                    default = col.server_default.arg
                    default = default.compile(dialect=conn.dialect) if hasattr(default, "compile") else "'%s'" % default
                    ddl += " NOT NULL DEFAULT %s" % default
                conn.execute(sa.text("ALTER TABLE %s ADD COLUMN %s %s" % (table.name, column, ddl)))


def _migrate_5(conn: Any, tables: dict[str, Any]) -> None:
    """Watermarks are kept per partition (the existing ones are the whole mapping's); jobs name their partition,
    runs the group of a distributed sync."""
    watermarks = tables["watermarks"]
    if "partition" not in {c["name"] for c in sa.inspect(conn).get_columns(watermarks.name)}:
        # why: the partition joins the primary key, which SQLite cannot change in place; the table is rebuilt on every
        # kind of store, its rows (two per mapping) kept in memory meanwhile
        old = sa.Table(watermarks.name, sa.MetaData(), autoload_with=conn)
        kept = [dict(r, partition=WHOLE) for r in conn.execute(sa.select(old.c.mapping, old.c.side, old.c.value)).mappings()]
        old.drop(conn)
        watermarks.create(conn)
        if kept:
            conn.execute(watermarks.insert(), kept)
    for key, column in (("jobs", "partition"), ("runs", "group_id")):
        table = tables[key]
        if column not in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
            quote = conn.dialect.identifier_preparer.quote
            conn.execute(sa.text("ALTER TABLE %s ADD COLUMN %s %s" % (table.name, quote(column), table.c[column].type.compile(dialect=conn.dialect))))
    for index in tables["runs"].indexes:
        index.create(conn, checkfirst=True)


# Schema version -> the step that brings the previous version to it (steps add; 3 replaces a table, 5 rebuilds one).
MIGRATIONS = {2: _migrate_2, 3: _migrate_3, 4: _migrate_4, 5: _migrate_5}


def _coupling_columns(c: sa.Table) -> list:
    """The couplings table columns in the order of the Coupling dataclass fields."""
    return [c.c[name] for name in COUPLING_COLUMNS if name != "synced_at"]


def pending_page(mapping: str, source_side: str, creates: Sequence[tuple[str, str | None, dict[str, Any], dict[str, Any]]]) -> PendingPage:
    """The intents of one page of creates, each (source id, destination id, destination values, fingerprints),
    encoded as the store keeps them."""
    entries = [_pending_entry(*create) for create in creates]
    return PendingPage(mapping, source_side, json.dumps(entries, default=str, separators=(",", ":")), len(entries))


def _pending_row(page: PendingPage) -> dict[str, Any]:
    return {"mapping": page.mapping, "source_side": page.source_side, "entries": page.entries, "created_at": utcnow()}


def _pending_entry(source_id: str, dest_id: str | None, dest_values: dict[str, Any], fingerprints: dict[str, Any]) -> list:
    """One intent as a page row keeps it: [source id, destination id, destination values, fingerprints].

    Why: recovery finds a record by its id when the id is known beforehand; the values are
    kept only to find a record whose key the destination generates.
    """
    return [source_id, dest_id, None if dest_id is not None else dest_values, fingerprints]
