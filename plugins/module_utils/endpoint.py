# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The endpoint interface: one side of a mapping, a database or a web API.

It is shaped so that both SQL tables and OData services fit: reads are streamed in
pages (keyset or server-driven paging), optionally only records modified since a
watermark; writes are batches whose result is reported per record, so one refused
record fails alone. Record ids cross this interface as text. Which implementation serves
which endpoint type is in endpoint_registry.py; this module imports none of them.
"""

from __future__ import annotations

import abc
import datetime
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible_collections.tablesync.integration.plugins.module_utils.errors import EndpointError

SIDES = ("local", "integration")
OTHER_SIDE = {"local": "integration", "integration": "local"}


@dataclass(frozen=True)
class Column:
    """What the sync engine needs to know of one column or attribute."""

    name: str
    kind: str
    nullable: bool = True
    max_length: int | None = None
    primary_key: bool = False
    server_generated: bool = False


@dataclass
class TableInfo:
    name: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...] = ()


@dataclass
class WriteResult:
    """Outcome of one record of a batched write."""

    ok: bool
    record_id: str | None = None
    error: str | None = None
    missing: bool = False


class ChangeRead(abc.ABC):
    """One change-tracking read (``Table.track_changes``): iterate ``pages()``, then keep ``delta_link`` for the next read."""

    # why: without a delta link, or when the service let it expire, the read is a full one
    full: bool
    # why: False when the table turns out to have no change tracking: nothing was read, the caller scans instead
    enabled: bool
    # why: set once ``pages()`` is exhausted; None when the service gave none
    delta_link: str | None

    @abc.abstractmethod
    def pages(self) -> Iterator[tuple[list[tuple], list[str]]]:
        """(changed rows in the requested fields' order, ids of deleted records) per page."""


# pages whose writes may be on the wire at once (Table.pages_in_flight, pages_in_flight.py)
MAX_PAGES_IN_FLIGHT = 32


class Table(abc.ABC):
    """A table or entity set of an endpoint, bound to its key field."""

    info: TableInfo
    key: str
    endpoint: Endpoint
    # why: a table with change tracking (Dataverse) answers "what changed or was deleted since" without a full read
    supports_change_tracking: bool = False
    # why: a table whose pages another process can read while this one writes (see read_ahead)
    supports_read_ahead: bool = False
    # why: a table whose key column is not declared unique may hold one key in several rows (see duplicate_keys)
    key_unique: bool = True
    # why: records whose values one look-up query lists (page_matching.py); a web service's filter travels in its URL
    filter_values_per_query: int = 1000

    @abc.abstractmethod
    def scan(
        self,
        fields: Sequence[str],
        where: Any = None,
        modified_field: str | None = None,
        modified_since: datetime.datetime | None = None,
        page_size: int = 1000,
        modified_format: str = "auto",
    ) -> Iterator[list[tuple]]:
        """Yield pages of rows (tuples in ``fields`` order), in a stable order.

        With ``modified_since`` (naive UTC) only rows whose ``modified_field`` is the same or
        later are read, ordered by (modified, key), so the read's cost follows the number of
        changes; ``modified_format`` is how that field stores its values (modified_on.FORMATS).
        ``where`` is a parsed mapping filter (filters.Filter) or None.
        """

    def count(self, where: Any = None, modified_field: str | None = None, modified_since: datetime.datetime | None = None,
              modified_format: str = "auto") -> int | None:
        """How many rows a scan with these arguments would read, or None when the table cannot tell cheaply."""
        return None

    def track_changes(self, fields: Sequence[str], delta_link: str | None = None, where: Any = None,
                      page_size: int = 1000) -> ChangeRead:
        """Records changed and deleted since ``delta_link`` (a full read without it), ``where`` applied.

        Only tables with ``supports_change_tracking`` implement it; the others raise EndpointError.
        """
        raise EndpointError("%s table %s has no change tracking" % (self.endpoint.side, self.info.name))

    @abc.abstractmethod
    def read_by_ids(self, ids: Sequence[str], fields: Sequence[str]) -> list[tuple]:
        """Rows for the given ids (those that exist), ``fields`` must start with the key."""

    @abc.abstractmethod
    def insert(self, rows: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        """Create records; each result carries the new record's id."""

    def prepare_insert(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        """``rows`` made ready ahead of their insert (another process may do it, see read_ahead), or None
        when this table inserts them as they are."""
        return None

    def insert_prepared(self, prepared: Any, ids: Sequence[str]) -> list[WriteResult]:
        """Create what ``prepare_insert`` made ready; ``ids`` are the records' keys, in order."""
        raise NotImplementedError("%s prepares no inserts" % type(self).__name__)

    def pages_in_flight(self, records: int) -> int:
        """How many pages of ``records`` records may be written at once (at most MAX_PAGES_IN_FLIGHT): 1 where writing
        them side by side gains nothing, as on one database connection."""
        return 1

    @abc.abstractmethod
    def update(self, changes: Sequence[tuple[str, Mapping[str, Any]]]) -> list[WriteResult]:
        """Update records by id; a missing record gives ``missing=True``, never an insert."""

    @abc.abstractmethod
    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        """Delete records by id."""

    @abc.abstractmethod
    def find(self, values: Mapping[str, Any], fields: Sequence[str], limit: int = 10) -> list[tuple]:
        """Rows whose fields equal ``values`` exactly (nulls match nulls)."""

    def new_id(self) -> str | None:
        """An id chosen by the client before an insert, or None when the service assigns it."""
        return None

    def check_filter(self, where: Any) -> None:
        """Raise filters.FilterError when a parsed filter's values do not fit this table's fields."""
        where.check_kinds({name: col.kind for name, col in self.info.columns.items()})

    def duplicate_keys(self, ids: Sequence[str]) -> dict[str, int]:
        """Of ``ids``, those more than one row holds, with how many rows hold each (web tables' keys are unique)."""
        return {}


class Endpoint(abc.ABC):
    """One side of the integration: a database or a web service."""

    def __init__(self, side: str, options: Mapping[str, Any]):
        self.side = side
        self.options = dict(options)

    @property
    @abc.abstractmethod
    def type(self) -> str:
        """Endpoint type, e.g. ``sqlite`` or ``dataverse``."""

    @abc.abstractmethod
    def address(self) -> str:
        """Where the endpoint is, without credentials (recorded in the store)."""

    @abc.abstractmethod
    def table(self, name: str, key: str) -> Table:
        """The named table bound to its key; raises EndpointError if it does not exist."""

    def close(self) -> None:  # noqa: B027 - most endpoints hold nothing to release
        """Release connections."""

    def release_before_fork(self) -> bool:
        """Make the process safe to fork (see read_ahead); False when it cannot be. Web endpoints need nothing."""
        return True

    def renew_after_fork(self) -> None:  # noqa: B027 - most endpoints hold nothing a child must renew
        """In a forked child: open connections of its own from now on."""

    def throttling(self) -> tuple[int, float]:
        """Answers the service refused by service protection (429) so far, and the seconds spent waiting them out."""
        return 0, 0.0

    def describe(self) -> dict[str, str]:
        return {"side": self.side, "type": self.type, "address": self.address()}
