# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module of the collection shares: connection options and engine set-up.

The options here are documented once, in the ``tablesync.integration.connection`` doc
fragment, and can be set once per play through the ``group/tablesync.integration.integration``
action group in ``module_defaults``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import ENDPOINT_TYPES, is_web
from ansible_collections.tablesync.integration.plugins.module_utils.errors import TableSyncError
from ansible_collections.tablesync.integration.plugins.module_utils.url_secrets import query_secrets

ENDPOINT_SPEC: dict[str, Any] = {
    "type": {"type": "str", "required": True, "choices": list(ENDPOINT_TYPES)},
    "path": {"type": "path"},
    "url": {"type": "str"},
    "host": {"type": "str"},
    "port": {"type": "int"},
    "database": {"type": "str"},
    "user": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "schema": {"type": "str"},
    "connect_options": {"type": "dict"},
    "sslmode": {"type": "str", "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]},
    "ssl_ca": {"type": "path"},
    "ssl_cert": {"type": "path"},
    "ssl_key": {"type": "path", "no_log": False},
    # web endpoints (dataverse, business_central, odata)
    "tenant_id": {"type": "str"},
    "client_id": {"type": "str"},
    "client_secret": {"type": "str", "no_log": True},
    "token": {"type": "str", "no_log": True},
    "scope": {"type": "str"},
    "authority": {"type": "str"},
    "token_url": {"type": "str", "no_log": False},
    "api_key": {"type": "str", "no_log": True},
    "api_key_header": {"type": "str", "no_log": False},
    "company": {"type": "str"},
    "validate_certs": {"type": "bool"},
    "ca_bundle": {"type": "path"},
    "page_size": {"type": "int"},
    "batch_size": {"type": "int"},
    "bulk_operations": {"type": "bool"},
    "timeout": {"type": "float"},
    "max_retry_seconds": {"type": "float"},
    "max_parallel_requests": {"type": "int"},
    "lookups": {"type": "dict"},
}


def common_argument_spec() -> dict[str, Any]:
    """Options every module takes: where the store is and the two endpoints."""
    return {
        "store": {"type": "str", "default": "~/.tablesync/store.sqlite"},
        "store_password": {"type": "str", "no_log": True},
        "local": {"type": "dict", "options": dict(ENDPOINT_SPEC)},
        "integration": {"type": "dict", "options": dict(ENDPOINT_SPEC)},
        "lock_timeout": {"type": "float", "default": 300.0},
    }


def url_passwords(params: dict[str, Any]) -> set[str]:
    """The passwords written inside the store URL and the endpoints' ``url`` options (userinfo or query parameters)."""
    endpoints = [params.get(side) for side in ("local", "integration")]
    urls = [params.get("store")] + [endpoint.get("url") for endpoint in endpoints if isinstance(endpoint, dict)]
    found: set[str] = set()
    for url in urls:
        if not isinstance(url, str) or "://" not in url:
            continue
        try:
            password = urlsplit(url).password
        except ValueError:  # why: an unparsable URL is reported later; its text is masked below
            password = url.partition("://")[2].rpartition("@")[0].partition(":")[2]
        if password:
            found.update({password, unquote(password)})
        found.update(query_secrets(url))
    return found


class IntegrationModule(AnsibleModule):
    """``AnsibleModule`` that also hides passwords written inside URLs.

    why: ``no_log`` hides whole option values; a password inside ``store`` or an endpoint's
    ``url`` (``user:password@`` or ``?password=``) is part of one. Ansible masks every no-log value wherever it appears in the
    result, the invocation and the logged arguments, so the parsed passwords are added as
    soon as the arguments are loaded, before validation can fail or the invocation is logged.
    """

    def _load_params(self) -> None:
        super()._load_params()
        self.no_log_values.update(url_passwords(self.params))


def require_libraries(module: AnsibleModule) -> None:
    """Fail with Ansible's usual message when a Python library the engine needs is missing."""
    from ansible_collections.tablesync.integration.plugins.module_utils import mapping, sql_support

    if not sql_support.HAS_SQLALCHEMY:
        module.fail_json(msg=missing_required_lib("SQLAlchemy"), exception=sql_support.SQLALCHEMY_IMPORT_ERROR)
    if not mapping.HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib("jsonschema"), exception=mapping.JSONSCHEMA_IMPORT_ERROR)
    web = [side for side in ("local", "integration") if is_web((module.params.get(side) or {}).get("type"))]
    if web:
        from ansible_collections.tablesync.integration.plugins.module_utils import http_client

        if not http_client.HAS_REQUESTS:
            module.fail_json(msg=missing_required_lib("requests"), exception=http_client.REQUESTS_IMPORT_ERROR)


def _first_line(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement, parameters and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# why: SQLite's own words for a file it cannot write or read, said the way a user fixes it
SQLITE_HINTS = {
    "readonly database": "the file or its directory is read-only",
    "file is not a database": "the file is not a SQLite database or is corrupted",
    "database disk image is malformed": "the file is corrupted",
    "unable to open database file": "the file or its directory cannot be opened",
}


def database_error(exc: BaseException) -> str:
    """The message of a database error: which database (store or endpoint), the driver's reason, a hint."""
    from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import DATABASE_ATTRIBUTE

    reason = _first_line(exc)
    hints = [hint for words, hint in SQLITE_HINTS.items() if words in reason]
    database = getattr(exc, DATABASE_ATTRIBUTE, None)
    if database is None:
        return "database error (check the store, local and integration options and the servers): %s" % reason
    return "database error in the %s: %s" % (database, reason) + (" (%s)" % hints[0] if hints else "")


@contextlib.contextmanager
def engine_session(module: AnsibleModule, sides: tuple[str, ...] = ("local", "integration"), read_only: bool = False,
                   existing_store: bool = False) -> Iterator[Any]:
    """Open the store and the requested endpoints; engine errors become ``fail_json``.

    ``existing_store`` fails when the store has not been created yet (a mistyped path or
    database), instead of reading it as empty.
    """
    require_libraries(module)
    from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
    from ansible_collections.tablesync.integration.plugins.module_utils.sql_support import sa_exc
    from ansible_collections.tablesync.integration.plugins.module_utils.store import Store

    store = None
    endpoints: dict[str, Any] = {}
    try:
        store = Store(module.params["store"], read_only=read_only, password=module.params.get("store_password"))
        if existing_store and not store.exists:
            module.fail_json(msg="store %s does not exist yet (no task has written to it): check the store option" % store.address)
        for side in sides:
            endpoints[side] = open_endpoint(side, module.params.get(side))
        yield store, endpoints
    except TableSyncError as exc:
        module.fail_json(msg=str(exc))
    except sa_exc.SQLAlchemyError as exc:
        module.fail_json(msg=database_error(exc))
    finally:
        for endpoint in endpoints.values():
            endpoint.close()
        if store is not None:
            store.close()
