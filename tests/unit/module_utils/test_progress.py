"""Progress of running jobs (shared by sync_job_info and the sync_summary callback), and the callback's progress lines."""

from __future__ import annotations

import datetime
import types

from ansible_collections.tablesync.integration.plugins.callback.sync_summary import CallbackModule, Watch
from ansible_collections.tablesync.integration.plugins.module_utils.progress import progress_line, run_progress, running_progress, running_runs
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from ansible_collections.tablesync.integration.plugins.module_utils.values import utcnow


def test_a_line_per_running_mapping():
    figures = {"read": 155000, "total": 200000, "percentage": 77.5, "rate": 5200.4, "eta_seconds": 9, "waiting_mappings": ["CONTACT", "ITEM"]}
    assert progress_line("CUSTOMER", figures) == "CUSTOMER: 155000/200000 (77.5%), 5200 rec/s, ETA 9s; waiting: CONTACT, ITEM"
    unknown = {"read": 12, "total": None, "percentage": None, "rate": 2.54, "eta_seconds": None, "waiting_mappings": []}
    assert progress_line("ITEM", unknown) == "ITEM: 12 read, 2.5 rec/s"


def test_progress_of_the_running_jobs_of_a_run(tmp_path):
    store = Store(str(tmp_path / "store.sqlite"))
    before = utcnow() - datetime.timedelta(seconds=10)
    run_id = store.start_run("full", ["CURRENCY", "CUSTOMER", "CONTACTS"])
    for mapping, status in (("CURRENCY", "success"), ("CUSTOMER", "running")):
        with store.engine.begin() as conn:
            row = {"run_id": run_id, "mapping": mapping, "mode": "full", "direction": "to_integration",
                   "status": status, "started_at": utcnow() - datetime.timedelta(seconds=5), "read": 40, "total": 100}
            conn.execute(store.tables["jobs"].insert(), [row])
    assert running_runs(store, before) == [run_id]
    assert running_runs(store, utcnow() + datetime.timedelta(seconds=60)) == []
    assert running_runs(store, before, mappings=["CURRENCY"]) == []
    [(mapping, figures)] = run_progress(store, [run_id])
    assert mapping == "CUSTOMER"
    assert figures["read"] == 40 and figures["total"] == 100 and figures["percentage"] == 40.0
    assert figures["waiting_mappings"] == ["CONTACTS"] and figures["eta_seconds"] is not None
    rows = store.jobs(run_id=run_id)
    assert set(running_progress(store, rows)) == {r["id"] for r in rows if r["status"] == "running"}
    store.close()


class _Display:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def display(self, text: str, **_options: object) -> None:
        self.lines.append(text)

    def vvvv(self, text: str) -> None:
        self.lines.append("vvvv " + text)


def _callback(watch: Watch) -> tuple[CallbackModule, _Display]:
    callback = CallbackModule()
    callback._display = _Display()  # type: ignore[assignment]
    callback.set_options()
    callback._watches["web1"] = watch
    return callback, callback._display  # type: ignore[return-value]


def _poll(host) -> types.SimpleNamespace:
    return types.SimpleNamespace(host=host)


def test_a_poll_whose_store_cannot_be_read_prints_nothing_and_never_fails(tmp_path):
    host = types.SimpleNamespace(get_name=lambda: "web1")
    corrupted = tmp_path / "store.sqlite"
    corrupted.write_bytes(b"not a database " * 100)
    watch = Watch(task=None, host=host, started_at=utcnow(), location=str(corrupted))
    callback, display = _callback(watch)
    callback.v2_runner_on_async_poll(_poll(host))
    assert display.lines == ["vvvv sync_summary: no progress for the sync task (DatabaseError)"]
    callback.v2_runner_on_async_poll(_poll(host))
    assert len(display.lines) == 1, "a failed watch is not tried again at each poll"
    # a URL with a password: its text never reaches the output, only the error's type
    watch = Watch(task=None, host=host, started_at=utcnow(), location="postgresql://u:Secret-Pw-1@127.0.0.1:1/nothing", password=None)
    callback, display = _callback(watch)
    callback.v2_runner_on_async_poll(_poll(host))
    assert len(display.lines) == 1 and "Secret-Pw-1" not in display.lines[0] and display.lines[0].startswith("vvvv ")
    # a task whose arguments cannot be resolved
    callback, display = _callback(Watch(task=object(), host=host, started_at=utcnow()))
    callback.v2_runner_on_async_poll(_poll(host))
    assert len(display.lines) == 1 and display.lines[0].startswith("vvvv ")


def test_a_poll_before_the_store_exists_prints_nothing(tmp_path):
    host = types.SimpleNamespace(get_name=lambda: "web1")
    callback, display = _callback(Watch(task=None, host=host, started_at=utcnow(), location=str(tmp_path / "later" / "store.sqlite")))
    callback.v2_runner_on_async_poll(_poll(host))
    assert display.lines == [] and not (tmp_path / "later").exists()
