"""One contender doing one step of the benchmark, in its own process.

    python benchmarks/contenders.py CONTENDER STEP WORKDIR

CONTENDER: limit | plain | dlt | engine | ansible; STEP: setup | full | modified | full_rerun.
WORKDIR holds src.sqlite (ERP customer), dst.sqlite (CRM account) and whatever the contender
keeps (store, coupling table, dlt state). The last line printed is JSON:
``{"seconds": ..., "cpu_seconds": ..., "rows": ...}`` where seconds is the wall time of the
work itself, measured inside the process (interpreter start and imports excluded), except
for ``ansible`` where it is the ansible-playbook command's wall time (and its CPU time, of
the controller and the module process), since that is what the user waits for.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from data import FIELD_MAP, MAPPING  # noqa: E402

SRC_COLS = [s for s, _ignored in FIELD_MAP]
DST_COLS = [d for _ignored, d in FIELD_MAP]
BATCH = 1000
EPOCH = "0000-00-00 00:00:00"


def paths(workdir: str) -> tuple[str, str, str]:
    return (os.path.join(workdir, "src.sqlite"), os.path.join(workdir, "dst.sqlite"), os.path.join(workdir, "store.sqlite"))


# --------------------------------------------------------------------------- 1. the limit


def limit(step: str, workdir: str) -> int:
    """SQLite copying between attached databases in one transaction: no Python per row."""
    src, dst, _ignored = paths(workdir)
    conn = sqlite3.connect(dst, isolation_level=None)
    try:
        conn.execute("ATTACH DATABASE ? AS src", (src,))
        conn.execute("CREATE TABLE IF NOT EXISTS sync_state (watermark TEXT NOT NULL)")
        conn.execute("BEGIN")
        watermark = (conn.execute("SELECT max(watermark) FROM sync_state").fetchone()[0]) or EPOCH
        newest = conn.execute("SELECT max(modified_on) FROM src.customer").fetchone()[0]
        if step == "full":
            cur = conn.execute(
                "INSERT INTO account (accountid, %s) SELECT lower(hex(randomblob(16))), %s FROM src.customer"
                % (", ".join(DST_COLS), ", ".join(SRC_COLS))
            )
            conn.execute("CREATE INDEX IF NOT EXISTS ix_account_number ON account (accountnumber)")
            count = cur.rowcount
        elif step == "modified":
            sets = ", ".join("%s = c.%s" % (d, s) for s, d in FIELD_MAP if d != "accountnumber")
            cur = conn.execute(
                "UPDATE account SET %s FROM (SELECT * FROM src.customer WHERE modified_on > ?) AS c WHERE account.accountnumber = c.no" % sets,
                (watermark,),
            )
            count = cur.rowcount
        else:
            raise SystemExit("limit: no step %s" % step)
        conn.execute("DELETE FROM sync_state")
        conn.execute("INSERT INTO sync_state VALUES (?)", (newest,))
        conn.execute("COMMIT")
        return count
    finally:
        conn.close()


# --------------------------------------------------------------------------- 2. plain Python


def plain(step: str, workdir: str) -> int:
    """What one writes by hand: stream with sqlite3, executemany into the destination and a coupling table."""
    src, dst, store = paths(workdir)
    s = sqlite3.connect(src)
    d = sqlite3.connect(dst)
    c = sqlite3.connect(store)
    try:
        c.execute("CREATE TABLE IF NOT EXISTS coupling (local_id TEXT PRIMARY KEY, integration_id TEXT NOT NULL, synced_at TEXT NOT NULL)")
        c.execute("CREATE TABLE IF NOT EXISTS watermark (value TEXT NOT NULL)")
        watermark = c.execute("SELECT max(value) FROM watermark").fetchone()[0] or EPOCH
        cols = ", ".join(SRC_COLS + ["modified_on"])
        if step == "full":
            cur = s.execute("SELECT %s FROM customer ORDER BY no" % cols)
        elif step == "modified":
            cur = s.execute("SELECT %s FROM customer WHERE modified_on > ? ORDER BY modified_on, no" % cols, (watermark,))
        else:
            raise SystemExit("plain: no step %s" % step)
        insert = "INSERT INTO account (accountid, %s) VALUES (%s)" % (", ".join(DST_COLS), ", ".join("?" * (len(DST_COLS) + 1)))
        update = "UPDATE account SET %s WHERE accountid = ?" % ", ".join("%s = ?" % d_ for d_ in DST_COLS[1:])
        count, newest = 0, watermark
        while True:
            rows = cur.fetchmany(BATCH)
            if not rows:
                break
            now = time.strftime("%Y-%m-%d %H:%M:%S")
            newest = max(newest, max(r[-1] for r in rows))
            ids = [r[0] for r in rows]
            known = dict(c.execute("SELECT local_id, integration_id FROM coupling WHERE local_id IN (%s)" % ",".join("?" * len(ids)), ids))
            new = [(uuid.uuid4().hex,) + r[:-1] for r in rows if r[0] not in known]
            changed = [r[1:-1] + (known[r[0]],) for r in rows if r[0] in known]
            d.executemany(insert, new)
            d.executemany(update, changed)
            d.commit()
            c.executemany("INSERT INTO coupling VALUES (?, ?, ?)", [(r[1], r[0], now) for r in new])
            c.executemany("UPDATE coupling SET synced_at = ? WHERE local_id = ?", [(now, r[0]) for r in rows if r[0] in known])
            c.commit()
            count += len(rows)
        c.execute("DELETE FROM watermark")
        c.execute("INSERT INTO watermark VALUES (?)", (newest,))
        c.commit()
        return count
    finally:
        s.close()
        d.close()
        c.close()


# --------------------------------------------------------------------------- 3. dlt


def dlt_run(step: str, workdir: str) -> int:
    """dlt: incremental cursor on modified-on, merge on the primary key, sqlalchemy destination (SQLite)."""
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt

    src, dst, _ignored = paths(workdir)
    renames = dict(FIELD_MAP)
    cols = SRC_COLS + ["modified_on"]

    @dlt.resource(name="account", primary_key="accountnumber", write_disposition="merge")
    def customers(modified_on=dlt.sources.incremental("modifiedon", initial_value=EPOCH)):  # noqa: B008 - dlt's documented idiom
        conn = sqlite3.connect(src)
        try:
            cur = conn.execute("SELECT %s FROM customer WHERE modified_on >= ? ORDER BY modified_on" % ", ".join(cols), (modified_on.last_value,))
            names = [renames.get(c, "modifiedon") for c in cols]
            while True:
                rows = cur.fetchmany(BATCH * 5)
                if not rows:
                    return
                yield [dict(zip(names, r)) for r in rows]
        finally:
            conn.close()

    if step not in ("full", "modified"):
        raise SystemExit("dlt: no step %s" % step)
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        destination=dlt.destinations.sqlalchemy("sqlite:///" + dst),
        dataset_name="crm",
        pipelines_dir=os.path.join(workdir, "dlt"),
    )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.run(customers())
    info = pipeline.last_trace.last_normalize_info
    return info.row_counts.get("account", 0) if info else 0


# --------------------------------------------------------------------------- 4. this engine


def _engine_parts(workdir: str):
    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

    src, dst, store_path = paths(workdir)
    store = Store(store_path)
    endpoints = {"local": open_endpoint("local", {"type": "sqlite", "path": src}), "integration": open_endpoint("integration", {"type": "sqlite", "path": dst})}
    return store, endpoints


def _close(store, endpoints) -> None:
    for e in endpoints.values():
        e.close()
    store.close()


def engine_setup(workdir: str) -> None:
    """Declare the mapping (validated against the tables), as table_mapping does."""
    from ansible_collections.tablesync.integration.plugins.module_utils.mapping import Mapping, normalize, open_tables

    store, endpoints = _engine_parts(workdir)
    clean = normalize(MAPPING)
    mapping = Mapping.from_definition(clean)
    mapping.bind(open_tables(mapping, endpoints))
    store.put_mapping(clean)
    _close(store, endpoints)


def engine(step: str, workdir: str) -> int:
    from ansible_collections.tablesync.integration.plugins.module_utils.runner import SyncRunner

    store, endpoints = _engine_parts(workdir)
    try:
        mode = "full" if step in ("full", "full_rerun") else "modified"
        run = SyncRunner(store, endpoints).run(mode)
        counts = run.jobs[0].counts
        if counts["failed"]:
            raise SystemExit("engine: %d records failed" % counts["failed"])
        return counts["inserted"] + counts["modified"] if step != "full_rerun" else counts["read"]
    finally:
        _close(store, endpoints)


def ansible(step: str, workdir: str) -> tuple[int, float]:
    """The same job as one ansible-playbook task; the counts are read back from the store's job log."""
    src, dst, store = paths(workdir)
    mode = "full" if step in ("full", "full_rerun") else "modified"
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(ROOT, "collections")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    variables = {"store_path": store, "erp": src, "crm": dst, "sync_mode": mode}
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), os.path.join(HERE, "sync.yml"), "-e", json.dumps(variables)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit("ansible-playbook failed:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-2000:]))
    conn = sqlite3.connect(store)
    try:
        read, inserted, modified = conn.execute('SELECT "read", inserted, modified FROM tablesync_jobs ORDER BY id DESC LIMIT 1').fetchone()
    finally:
        conn.close()
    return (inserted + modified if step != "full_rerun" else read), seconds


def _cpu() -> float:
    """CPU seconds of this process and of the processes it started and waited for (the engine's read-ahead)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def preload(contender: str) -> None:
    """Import what a contender needs before its clock starts: start-up is not sync time."""
    if contender == "dlt":
        import dlt  # noqa: F401
    elif contender == "engine":
        from ansible_collections.tablesync.integration.plugins.module_utils import endpoint, mapping, runner, store  # noqa: F401


def main(argv: list[str]) -> None:
    contender, step, workdir = argv
    if os.path.isdir(os.path.join(ROOT, "collections")):
        sys.path.insert(0, os.path.join(ROOT, "collections"))
    if step == "setup":
        if contender in ("engine", "ansible"):
            engine_setup(workdir)
        print(json.dumps({"seconds": 0.0, "cpu_seconds": 0.0, "rows": 0}))
        return
    preload(contender)
    if contender == "ansible":
        rows, seconds = ansible(step, workdir)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = children.ru_utime + children.ru_stime
    else:
        work = {"limit": limit, "plain": plain, "dlt": dlt_run, "engine": engine}[contender]
        started, cpu_started = time.perf_counter(), _cpu()
        rows = work(step, workdir)
        seconds, cpu = time.perf_counter() - started, _cpu() - cpu_started
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": rows}))


if __name__ == "__main__":
    main(sys.argv[1:])
