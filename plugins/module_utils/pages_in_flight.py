# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pages whose destination writes are on the wire while the job sends the next ones.

A web service takes seconds to answer a write request and takes many at once (Dataverse's
``x-ms-dop-hint``, Business Central's 5 per user). Sent one page at a time, the service idles
while the job stores a page's couplings and waits for the page's slowest request. Here each
page's writes run on a thread of their own, up to ``room`` pages at once, and the job settles
the pages (results, couplings, one store transaction each) in the order it sent them. What is
committed, and what a killed run leaves to recover (the intents stored before the writes),
stay as they are with one page at a time.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint import MAX_PAGES_IN_FLIGHT

P = TypeVar("P")
R = TypeVar("R")


class PagesInFlight(Generic[P, R]):
    """Send pages' writes, at most ``room()`` at once; ``send`` and ``drain`` give back written pages in order."""

    def __init__(self, room: Callable[[], int]):
        self.room = room
        self._sent: collections.deque[tuple[P, Future[R]]] = collections.deque()
        self._pool: ThreadPoolExecutor | None = None

    def send(self, page: P, write: Callable[[], R]) -> list[tuple[P, R]]:
        """Start ``write`` for ``page``; returns the pages, oldest first, whose writes ended and that are due to be settled."""
        room = max(1, min(self.room(), MAX_PAGES_IN_FLIGHT))
        future: Future[R] = Future()
        if room == 1 and not self._sent:
            future.set_result(write())  # why: one page at a time needs no thread
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=MAX_PAGES_IN_FLIGHT, thread_name_prefix="tablesync-page")
            future = self._pool.submit(write)
        self._sent.append((page, future))
        done = []
        # why: settled in the order sent, as soon as each ends, so couplings are stored early; the oldest is waited for
        # only when more pages are on the wire than there is room for
        while self._sent and (len(self._sent) > room or self._sent[0][1].done()):
            done.append(self._settle())
        return done

    def drain(self) -> list[tuple[P, R]]:
        """Every page still on the wire, once written, oldest first."""
        return [self._settle() for _page in range(len(self._sent))]

    def _settle(self) -> tuple[P, R]:
        page, future = self._sent.popleft()
        return page, future.result()

    def __enter__(self) -> PagesInFlight[P, R]:
        return self

    def __exit__(self, *exc: Any) -> None:
        # why: a failed page ends the job, but the writes already on the wire end first: nothing writes after the job
        wait([future for _page, future in self._sent])
        self._sent.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
