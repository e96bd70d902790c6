# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many requests a web client keeps in flight, within the service's protection limits.

Dataverse says how many parallel requests it wants (``x-ms-dop-hint``, at most 52 per user) and
what is left of the user's 5-minute window (``x-ms-ratelimit-burst-remaining-xrm-requests``,
``x-ms-ratelimit-time-remaining-xrm-requests``); Business Central allows 5 concurrent requests
per user. A 429 pauses every request of the client for the whole ``Retry-After`` and halves the
number in flight, which then grows by one after twice as many answers as are in flight.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping

DATAVERSE_MAX_PARALLEL = 52  # api-limits: concurrent requests per user
BUSINESS_CENTRAL_MAX_PARALLEL = 5  # operational-limits-online: max concurrent requests per user
DOP_HINT = "x-ms-dop-hint"
REMAINING_REQUESTS = "x-ms-ratelimit-burst-remaining-xrm-requests"
REMAINING_TIME = "x-ms-ratelimit-time-remaining-xrm-requests"


class Pacer:
    """The number of requests in flight: at most ``limit``, which moves between 1 and ``ceiling``."""

    def __init__(self, ceiling: int, follow_hint: bool = False, cap: int = DATAVERSE_MAX_PARALLEL):
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.follow_hint = follow_hint  # why: Dataverse's own hint decides unless the option set a number
        self.cap = cap
        self.throttled = 0  # 429 answers
        self.waited = 0.0  # seconds every request was held back by a Retry-After
        self._cond = threading.Condition()
        self._active = 0
        self._answers = 0
        self._paused_until = 0.0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Held while one request is on the wire."""
        with self._cond:
            while self._active >= self.limit:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def hold_back(self, sleep: Callable[[float], None], covered: float = 0.0) -> None:
        """Wait out a pause that a 429 of any request of this client asked for, beyond the pause up to ``covered``
        that the caller already slept (the end of its own 429's pause)."""
        with self._cond:
            until = self._paused_until
            left = until - max(time.monotonic(), covered)
        if left > 0:
            sleep(left)
        with self._cond:
            if self._paused_until == until:  # why: that pause is over; a 429 since then set a new one
                self._paused_until = 0.0

    def throttled_for(self, seconds: float) -> float:
        """A 429: pause every request for ``seconds`` and halve the number in flight; returns when the pause ends."""
        with self._cond:
            self.throttled += 1
            now = time.monotonic()
            until = now + seconds
            if until > self._paused_until:
                self.waited += until - max(now, self._paused_until)
                self._paused_until = until
            self.limit = max(1, self.limit // 2)
            self._answers = 0
            return until

    def answered(self, headers: Mapping[str, str]) -> None:
        """An answer that was not a 429: follow the service's hints, and raise the limit slowly back to the ceiling."""
        hint = _number(_header(headers, DOP_HINT))
        remaining = _number(_header(headers, REMAINING_REQUESTS))
        with self._cond:
            if hint is not None and self.follow_hint:
                ceiling = max(1, min(int(hint), self.cap))
                if self.throttled == 0 or ceiling < self.ceiling:
                    self.limit = ceiling if self.throttled == 0 else min(self.limit, ceiling)
                self.ceiling = ceiling
            if remaining is not None and remaining < self.limit:
                # why: never more requests in flight than the window has left; the service would refuse the rest
                self.limit = max(1, int(remaining))
                self._answers = 0
            self._answers += 1
            if self.limit < self.ceiling and self._answers >= 2 * self.limit:
                self.limit += 1
                self._answers = 0
            self._cond.notify_all()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None
