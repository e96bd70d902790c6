"""table_mapping waits for the lock of the mapping it changes, like a sync run does."""

from __future__ import annotations

from ansible_collections.tablesync.integration.plugins.module_utils.locking import mapping_locks
from ansible_collections.tablesync.integration.plugins.module_utils.store import Store
from tests.integration.conftest import ansible_playbook, extra_vars

HOLDER_RUN = "12345678-1234-1234-1234-123456789abc"


def test_changing_a_mapping_that_a_run_holds_fails_with_the_lock_message(demo):
    variables = {"store_path": demo.store_path, "erp": demo.erp, "crm": demo.crm}
    ansible_playbook("declare.yml", *extra_vars(**variables))
    store = Store(demo.store_path)
    try:
        with mapping_locks(store, ["CUSTOMER"], HOLDER_RUN, timeout=5):
            proc = ansible_playbook("declare.yml", *extra_vars(synch_only=False, lock_timeout=1, **variables), check=False)
            assert proc.returncode != 0
            assert "mapping CUSTOMER is locked by run %s" % HOLDER_RUN in proc.stdout, proc.stdout[-3000:]
        # the held mapping kept its setting; the others were changed
        settings = {m["name"]: m["synch_only_coupled_records"] for m in store.list_mappings()}
        assert settings.pop("CUSTOMER") is True and set(settings.values()) == {False}
    finally:
        store.close()
    # released: the change goes through
    ansible_playbook("declare.yml", *extra_vars(synch_only=False, lock_timeout=1, **variables))
    store = Store(demo.store_path, read_only=True)
    try:
        assert store.get_mapping("CUSTOMER")["synch_only_coupled_records"] is False
    finally:
        store.close()
