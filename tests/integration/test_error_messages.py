"""What a user sees when something is wrong: passwords in URLs never shown, the failing database named."""

from __future__ import annotations

import contextlib
import json
import subprocess

import pytest

from tests.integration.conftest import ansible_playbook

PLAY = """
- name: One task of the collection
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: The task under test
      {module}: {args}
      register: task_result
      ignore_errors: true

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{{{ task_result | to_nice_json }}}}"
        dest: {result_file}
        mode: "0644"
"""


def run_task(tmp_path, module: str, args: dict, *options: str) -> subprocess.CompletedProcess:
    """Run the task (its failure ignored); its registered result is kept in result.json."""
    playbook, result_file = tmp_path / "task.yml", tmp_path / "result.json"
    if result_file.exists():
        result_file.unlink()
    playbook.write_text(PLAY.format(module="tablesync.integration." + module, args=json.dumps(args), result_file=json.dumps(str(result_file))))
    return ansible_playbook(str(playbook), *options)


def task_result(tmp_path, module: str, args: dict) -> dict:
    run_task(tmp_path, module, args)
    return json.loads((tmp_path / "result.json").read_text())


@contextlib.contextmanager
def immutable(path: str):
    """The file cannot be written even by root (the tests run as root, for whom a mode of 0444 means nothing)."""
    subprocess.run(["chattr", "+i", path], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


def pg_url(password: str, database: str) -> str:
    return "postgresql://postgres:%s@127.0.0.1:5432/%s" % (password, database)


@pytest.mark.parametrize("module", ["sync_verify", "sync", "coupling", "table_mapping_info"])
def test_a_password_inside_a_url_is_masked_at_any_verbosity(tmp_path, demo, module):
    # The store's database does not exist: every module fails opening it, after Ansible has the arguments.
    args: dict = {"store": pg_url("Store%2FPw-2218", "tablesync_no_such_store")}
    if module != "table_mapping_info":
        args.update(local={"type": "postgresql", "url": pg_url("Endpoint-Pw-7391", "postgres")},
                    integration={"type": "sqlite", "path": demo.crm})
    if module == "coupling":
        args.update(mapping="NOPE", match=True)
    for verbosity in ("-v", "-vvvv"):
        proc = run_task(tmp_path, module, args, verbosity)
        output = proc.stdout + proc.stderr
        assert "Endpoint-Pw" not in output and "Store%2FPw" not in output and "Store/Pw" not in output, output[-3000:]
        assert "ignored=1" in output and "tablesync_no_such_store" in output
        assert "Endpoint-Pw" not in (tmp_path / "result.json").read_text()
        # the message names the store with its password shown as ***
        assert "postgres:***@127.0.0.1:5432/tablesync_no_such_store" in json.loads((tmp_path / "result.json").read_text())["msg"]
        if verbosity == "-vvvv":  # the invocation: the URLs are shown with the passwords masked
            assert "postgres:********@127.0.0.1:5432/tablesync_no_such_store" in output


@pytest.mark.parametrize("module", ["sync", "sync_job_info"])
def test_a_password_in_a_url_query_parameter_is_masked_at_any_verbosity(tmp_path, demo, module):
    # libpq takes the password as a query parameter too; the store's database does not exist, so the task fails naming it
    args: dict = {"store": "postgresql://postgres@127.0.0.1:5432/tablesync_no_such_store?password=Query%2BPw-4471&sslmode=disable"}
    if module == "sync":
        args.update(local={"type": "mysql", "url": "mysql://root@127.0.0.1:3306/test?passwd=Endpoint-QPw-9022"},
                    integration={"type": "dataverse", "url": "https://org.example.com/api/data/v9.2/?client_secret=Web-QPw-3310"})
    for verbosity in ("-v", "-vvvv"):
        proc = run_task(tmp_path, module, args, verbosity)
        output = proc.stdout + proc.stderr + (tmp_path / "result.json").read_text()
        for secret in ("Query%2BPw", "Query+Pw", "Endpoint-QPw", "Web-QPw"):
            assert secret not in output, output[-3000:]
        assert "ignored=1" in output and "tablesync_no_such_store" in output
        if verbosity == "-vvvv":  # the invocation: the URLs are shown with the passwords masked
            assert "tablesync_no_such_store?password=********&sslmode=disable" in output
    result = json.loads((tmp_path / "result.json").read_text())
    # the message names the store with the parameter shown as ***, as a userinfo password is
    assert "store postgresql+psycopg://postgres@127.0.0.1:5432/tablesync_no_such_store?password=***&sslmode=disable" in result["msg"], result["msg"]


def test_a_password_inside_a_url_is_masked_when_the_arguments_are_rejected(tmp_path, demo):
    args = {"store": demo.store_path, "no_such_option": 1,
            "local": {"type": "mysql", "url": "mysql://root:Rejected-Pw-55@127.0.0.1/test"},
            "integration": {"type": "sqlite", "path": demo.crm}}
    proc = run_task(tmp_path, "sync", args, "-vvvv")
    assert "ignored=1" in proc.stdout and "Unsupported parameters" in proc.stdout
    assert "Rejected-Pw-55" not in proc.stdout + proc.stderr


def test_a_read_only_store_is_named(tmp_path, demo):
    endpoints = {"local": {"type": "sqlite", "path": demo.erp}, "integration": {"type": "sqlite", "path": demo.crm}}
    demo.declare()
    assert not task_result(tmp_path, "sync", {"store": demo.store_path, **endpoints}).get("failed")
    with immutable(demo.store_path):
        result = task_result(tmp_path, "sync", {"store": demo.store_path, **endpoints})
    assert result["failed"]
    assert result["msg"] == "database error in the store sqlite:///%s: attempt to write a readonly database (the file or its directory is read-only)" \
        % demo.store_path


@pytest.mark.parametrize("module", ["sync", "sync_job_info", "table_mapping_info"])
def test_a_corrupted_store_is_named(tmp_path, demo, module):
    store = tmp_path / "store.sqlite"
    store.write_bytes(b"this is not a SQLite database " * 200)
    args: dict = {"store": str(store)}
    if module == "sync":
        args.update(local={"type": "sqlite", "path": demo.erp}, integration={"type": "sqlite", "path": demo.crm})
    result = task_result(tmp_path, module, args)
    assert result["failed"]
    assert result["msg"] == "database error in the store sqlite:///%s: file is not a database (the file is not a SQLite database or is corrupted)" \
        % store


def test_a_corrupted_endpoint_database_is_named(tmp_path, demo):
    crm = tmp_path / "crm.sqlite"
    crm.write_bytes(b"garbage " * 1000)
    demo.declare()
    result = task_result(tmp_path, "sync", {"store": demo.store_path, "local": {"type": "sqlite", "path": demo.erp},
                                            "integration": {"type": "sqlite", "path": str(crm)}})
    assert result["failed"]
    assert "integration database sqlite:///%s: file is not a database" % crm in result["msg"]


@pytest.mark.parametrize("module", ["sync_job_info", "table_mapping_info"])
def test_info_modules_fail_on_a_store_that_does_not_exist(tmp_path, demo, module):
    missing = tmp_path / "mistyped" / "store.sqlite"
    result = task_result(tmp_path, module, {"store": str(missing)})
    assert result["failed"]
    assert result["msg"] == "store sqlite:///%s does not exist yet (no task has written to it): check the store option" % missing
    assert not missing.parent.exists()  # reading never creates it


def test_info_modules_read_a_store_once_a_task_has_used_it(tmp_path, demo, run_sync):
    run_sync(check=False)  # nothing declared: the task fails, but the store now exists
    for module in ("sync_job_info", "table_mapping_info"):
        result = task_result(tmp_path, module, {"store": demo.store_path})
        assert not result.get("failed"), result
        assert result["mappings" if module == "table_mapping_info" else "jobs"] == []
