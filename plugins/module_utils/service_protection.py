# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How many requests a web client keeps in flight and sends per window, within the service's protection limits.

Dataverse says how many parallel requests it wants (``x-ms-dop-hint``, at most 52 per user) and
what is left of the user's 5-minute window (``x-ms-ratelimit-burst-remaining-xrm-requests``,
``x-ms-ratelimit-time-remaining-xrm-requests``); Business Central allows 5 concurrent requests
per user. A 429 pauses every request of the client for the whole ``Retry-After`` and halves the
number in flight, which then grows by one after twice as many answers as are in flight.

Both services also limit what one user does in a 5-minute sliding window (``Budget``). The client
counts its own requests and their execution time per window (``Window``) and holds the next
request back until the window has room, so that it stays within the limits instead of being
refused; where the service reports what is left (other clients of the same user count there
too), the smaller of the two figures decides.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

DATAVERSE_MAX_PARALLEL = 52  # api-limits: concurrent requests per user
BUSINESS_CENTRAL_MAX_PARALLEL = 5  # operational-limits-online: max concurrent requests per user
DOP_HINT = "x-ms-dop-hint"
REMAINING_REQUESTS = "x-ms-ratelimit-burst-remaining-xrm-requests"
REMAINING_TIME = "x-ms-ratelimit-time-remaining-xrm-requests"  # milliseconds


@dataclass(frozen=True)
class Budget:
    """What one user may use of a service in any ``window`` seconds."""

    requests: int
    execution: float | None  # seconds of combined execution time; None where the service does not limit it
    window: float


# api-limits (service protection): per user, 6,000 requests and 1,200 seconds (20 minutes) of combined
# execution time in a 5-minute sliding window
DATAVERSE_BUDGET = Budget(requests=6000, execution=1200.0, window=300.0)
# operational-limits-online: per user, 6,000 OData requests in a 5-minute sliding window
BUSINESS_CENTRAL_BUDGET = Budget(requests=6000, execution=None, window=300.0)
# by endpoint type; a generic OData service documents no such limit
BUDGETS = {"dataverse": DATAVERSE_BUDGET, "business_central": BUSINESS_CENTRAL_BUDGET}


@dataclass(frozen=True)
class Ticket:
    """One request of a window, and how much had finished before it started."""

    number: int
    settled: int  # requests finished before this one started: the service counted them before answering it
    settled_seconds: float  # their elapsed time in total


@dataclass(frozen=True)
class Report:
    """What the service said was left of the window, in the answer to ``ticket`` received ``at``."""

    at: float
    ticket: Ticket
    requests: float | None
    execution: float | None  # seconds


class Window:
    """This client's requests and their execution time in the last ``budget.window`` seconds.

    A request counts from its start until ``window`` seconds after its answer (the service admitted
    it in between), with its elapsed time as its execution time (an upper bound of the service's).
    No more than ``budget.requests`` requests are ever counted at once, so memory stays bounded.
    """

    def __init__(self, budget: Budget):
        self.budget = budget
        self._done: deque[tuple[float, float]] = deque()  # (leaves the window at, elapsed seconds), oldest first
        self._done_seconds = 0.0
        self._running: dict[int, float] = {}  # ticket number -> start, of the requests in flight
        self._started = 0
        self._finished = 0
        self._finished_seconds = 0.0  # elapsed time of every finished request
        self._report: Report | None = None

    def start(self, now: float) -> Ticket:
        self._started += 1
        self._running[self._started] = now
        return Ticket(self._started, self._finished, self._finished_seconds)

    def finish(self, ticket: Ticket, now: float) -> None:
        elapsed = now - self._running.pop(ticket.number)
        self._done.append((now + self.budget.window, elapsed))
        self._done_seconds += elapsed
        self._finished += 1
        self._finished_seconds += elapsed

    def reported(self, ticket: Ticket, requests: float | None, execution: float | None, now: float) -> None:
        """The service's figures of what is left (requests, seconds), from the answer to ``ticket``."""
        if requests is not None or execution is not None:
            self._report = Report(now, ticket, requests, execution)

    def ready_at(self, now: float) -> float:
        """When the next request may start: ``now``, a later moment, or infinity when only an answer to a request
        in flight can tell."""
        self._expire(now)
        return max(now, self._requests_ready(), self._execution_ready(now), self._report_ready(now))

    def _expire(self, now: float) -> None:
        while self._done and self._done[0][0] <= now:
            self._done_seconds -= self._done.popleft()[1]
        if self._report is not None and self._report.at + self.budget.window <= now:
            self._report = None  # why: all the service had counted then has left its window since

    def _requests_ready(self) -> float:
        excess = len(self._done) + len(self._running) + 1 - self.budget.requests
        if excess <= 0:
            return 0.0
        return self._done[excess - 1][0] if excess <= len(self._done) else math.inf

    def _execution_ready(self, now: float) -> float:
        limit = self.budget.execution
        used = self._done_seconds + self._running_seconds(now)
        if limit is None or used < limit:
            return 0.0
        for leaves, elapsed in self._done:
            used -= elapsed
            if used < limit:
                return leaves
        return math.inf

    def _report_ready(self, now: float) -> float:
        """The service's figure less what this client may have used since without the service counting it yet:
        every request that had not finished when the reporting one started, and (as its execution time may not
        be in the figure) that one's time too."""
        report = self._report
        if report is None:
            return 0.0
        requests_spent = report.requests is not None and report.requests - (self._started - report.ticket.settled - 1) < 1
        time_spent = report.execution is not None and report.execution - (
            self._finished_seconds - report.ticket.settled_seconds + self._running_seconds(now)) <= 0
        if not (requests_spent or time_spent):
            return 0.0
        # why: an answer in flight brings a newer figure; without one, the figure holds until its window has passed
        return math.inf if self._running else report.at + self.budget.window

    def _running_seconds(self, now: float) -> float:
        return sum(now - started for started in self._running.values())


class Pacer:
    """The number of requests in flight: at most ``limit``, which moves between 1 and ``ceiling``; and, with a
    ``budget``, the requests and execution time of each window."""

    def __init__(self, ceiling: int, follow_hint: bool = False, cap: int = DATAVERSE_MAX_PARALLEL, budget: Budget | None = None):
        self.ceiling = max(1, ceiling)
        self.limit = self.ceiling
        self.follow_hint = follow_hint  # why: Dataverse's own hint decides unless the option set a number
        self.cap = cap
        self.window = Window(budget) if budget is not None else None
        self.throttled = 0  # 429 answers
        self.waited = 0.0  # seconds every request was held back by a Retry-After or a spent window
        self._cond = threading.Condition()
        self._active = 0
        self._answers = 0
        self._paused_until = 0.0

    @contextlib.contextmanager
    def slot(self, sleep: Callable[[float], None] = time.sleep) -> Iterator[Ticket | None]:
        """Held while one request is on the wire; waits (with ``sleep``) while the window has no room for it."""
        ticket = self._enter(sleep)
        try:
            yield ticket
        finally:
            with self._cond:
                self._active -= 1
                if self.window is not None and ticket is not None:
                    self.window.finish(ticket, time.monotonic())
                self._cond.notify_all()

    def _enter(self, sleep: Callable[[float], None]) -> Ticket | None:
        while True:
            with self._cond:
                while self._active >= self.limit:
                    self._cond.wait()
                now = time.monotonic()
                ready = self.window.ready_at(now) if self.window is not None else now
                if ready <= now:
                    self._active += 1
                    return self.window.start(now) if self.window is not None else None
                if ready == math.inf:
                    self._cond.wait()  # why: only an answer to a request in flight frees room or reports anew
                    continue
                self._pause(now, ready)  # why: every request waits for that moment; counted once, not per request
            sleep(ready - now)

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
            self._pause(now, until)
            self.limit = max(1, self.limit // 2)
            self._answers = 0
            return until

    def _pause(self, now: float, until: float) -> None:
        if until > self._paused_until:
            self.waited += until - max(now, self._paused_until)
            self._paused_until = until

    def answered(self, headers: Mapping[str, str], ticket: Ticket | None = None) -> None:
        """An answer that was not a 429 (to the request of ``ticket``): follow the service's hints and figures, and
        raise the limit slowly back to the ceiling."""
        hint = _number(_header(headers, DOP_HINT))
        remaining = _number(_header(headers, REMAINING_REQUESTS))
        milliseconds = _number(_header(headers, REMAINING_TIME))
        with self._cond:
            if self.window is not None and ticket is not None:
                seconds = milliseconds / 1000.0 if milliseconds is not None else None
                self.window.reported(ticket, remaining, seconds, time.monotonic())
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
