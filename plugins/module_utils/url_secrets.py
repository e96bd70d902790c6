# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets written inside URLs as query parameters (``?password=...``).

Below both the modules' argument handling (which registers them as no-log values) and the SQL support
(which shows them as ``***`` in addresses), so neither imports the other.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

# Query parameters of a URL that carry a secret (libpq and PyMySQL take the password there too), lower case.
SECRET_QUERY_PARAMETERS = frozenset(("password", "passwd", "pwd", "sslpassword", "secret", "client_secret", "token", "access_token",
                                     "api_key", "apikey", "api-key", "subscription-key", "sig"))


def query_secrets(url: str) -> set[str]:
    """The values of the secret query parameters of a URL (``?password=...``), as written and decoded."""
    query = url.partition("?")[2].partition("#")[0]
    found: set[str] = set()
    for part in query.split("&"):
        name, _eq, value = part.partition("=")
        if value and unquote(name).strip().lower() in SECRET_QUERY_PARAMETERS:
            found.update({value, unquote(value), dict(parse_qsl(part)).get(name, value)})
    return found
