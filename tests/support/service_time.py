"""A service-time model for the OData test double: what makes a real service slow and what its
service protection refuses.

* ``latency``: seconds every request takes besides its work (network, front end).
* ``per_record``: seconds of server time per record a request writes (creates, updates, deletes,
  alone, in a ``$batch`` or in ``CreateMultiple``/``UpdateMultiple``).
* ``max_concurrent``: requests processed at once per user. Dataverse refuses the one beyond with
  429, error 0x80072326 and ``Retry-After`` (api-limits: "Number of concurrent requests", 52 per
  user); Business Central queues up to ``queue`` more (operational-limits-online: 5 concurrent
  requests, 95 queued) and refuses the rest with 429.
* ``dop_hint``: the ``x-ms-dop-hint`` header (Dataverse's recommended degree of parallelism).
* ``window_requests``/``window_execution`` per ``window`` seconds: Dataverse's 6,000 requests and
  1,200 seconds of execution time per 5 minutes, reported on every answer in
  ``x-ms-ratelimit-burst-remaining-xrm-requests`` and ``x-ms-ratelimit-time-remaining-xrm-requests``
  (milliseconds) and refused with 429 and ``Retry-After`` up to the window's end when exceeded
  (error codes 0x80072322 and 0x80072321).

The counters (``requests``, ``refused``, ``peak``, ``execution``) say what the service saw.

Dataverse applies its service protection limits per user: each application user (an app
registration's client id) has its own concurrency limit and windows. With ``per_user=True`` the
double accounts every client id separately: ``for_user(client_id)`` is the model of that user (the
same limits, its own requests in flight, windows and counters, created on its first request and
readable in ``users``), and this model's counters add up all users (``peak``: the most requests
in flight at once, whoever sent them). With ``per_user`` off, ``for_user`` is this model itself:
every request counts against one limit, as before.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace


@dataclass
class ServiceTime:
    latency: float = 0.0
    per_record: float = 0.0
    max_concurrent: int | None = None
    queue: int = 0
    dop_hint: int | None = None
    retry_after: float = 1.0
    window: float = 300.0
    window_requests: int | None = None
    window_execution: float | None = None
    per_user: bool = False
    requests: int = field(default=0, init=False)
    refused: int = field(default=0, init=False)
    peak: int = field(default=0, init=False)
    execution: float = field(default=0.0, init=False)
    users: dict[str, ServiceTime] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._waiting = 0
        self._window_start = time.monotonic()
        self._window_count = 0
        self._window_used = 0.0
        self._totals: ServiceTime | None = None  # a user's model adds its requests to the model of all users

    def for_user(self, user: str) -> ServiceTime:
        """The model that accounts the requests of ``user`` (a client id): this one, or with ``per_user`` that user's own."""
        if not self.per_user:
            return self
        with self._cond:
            model = self.users.get(user)
            if model is None:
                model = self.users[user] = replace(self, per_user=False)
                model._totals = self
            return model

    def bound(self, batch: int) -> float:
        """Records per second the limits allow with ``batch`` records per request (the window's budgets for a run
        shorter than a window count only when a run is longer)."""
        per_request = self.latency + batch * self.per_record
        bound = float("inf") if not per_request else (self.max_concurrent or 1) * batch / per_request
        return bound

    # -- admission -----------------------------------------------------------------------------------
    def admit(self) -> tuple[str, str, float] | None:
        """Start one request: None, or why it is refused (code, message, Retry-After seconds)."""
        with self._cond:
            refusal = self._admit()
        if self._totals is not None:
            self._totals._tally_start(refusal is None)
        return refusal

    def _admit(self) -> tuple[str, str, float] | None:
        # why: called with the condition held (admit); waiting for room releases it
        self._roll()
        self.requests += 1
        if self.window_requests is not None and self._window_count >= self.window_requests:
            return self._refuse("0x80072322", "Number of requests exceeded the limit of %d over time window of %d seconds."
                                % (self.window_requests, self.window), self._window_left())
        if self.window_execution is not None and self._window_used >= self.window_execution:
            return self._refuse("0x80072321", "Combined execution time of incoming requests exceeded limit of %d milliseconds "
                                "over time window of %d seconds." % (self.window_execution * 1000, self.window), self._window_left())
        if self.max_concurrent is not None and self._active >= self.max_concurrent:
            if self._waiting >= self.queue:
                return self._refuse("0x80072326", "Number of concurrent requests exceeded the limit of %d." % self.max_concurrent,
                                    self.retry_after)
            self._waiting += 1
            while self._active >= self.max_concurrent:
                self._cond.wait()
            self._waiting -= 1
        self._active += 1
        self._window_count += 1
        self.peak = max(self.peak, self._active)
        return None

    def work(self, records: int, elapsed: float = 0.0) -> None:
        """The time one admitted request takes (of which ``elapsed`` the double already spent doing it), then its end."""
        spent = records * self.per_record
        try:
            time.sleep(max(0.0, self.latency + spent - elapsed))
        finally:
            with self._cond:
                self._active -= 1
                self.execution += spent
                self._window_used += spent
                self._cond.notify_all()
            if self._totals is not None:
                self._totals._tally_end(spent)

    def _tally_start(self, admitted: bool) -> None:
        with self._cond:
            self.requests += 1
            if not admitted:
                self.refused += 1
                return
            self._active += 1
            self.peak = max(self.peak, self._active)

    def _tally_end(self, spent: float) -> None:
        with self._cond:
            self._active -= 1
            self.execution += spent

    def headers(self) -> dict[str, str]:
        out = {}
        if self.dop_hint is not None:
            out["x-ms-dop-hint"] = str(self.dop_hint)
        with self._cond:
            if self.window_requests is not None:
                out["x-ms-ratelimit-burst-remaining-xrm-requests"] = str(max(0, self.window_requests - self._window_count))
            if self.window_execution is not None:
                out["x-ms-ratelimit-time-remaining-xrm-requests"] = f"{max(0.0, self.window_execution - self._window_used) * 1000:,.2f}"
        return out

    def _refuse(self, code: str, message: str, retry_after: float) -> tuple[str, str, float]:
        self.refused += 1
        return code, message, retry_after

    def _roll(self) -> None:
        if time.monotonic() - self._window_start >= self.window:
            self._window_start = time.monotonic()
            self._window_count = 0
            self._window_used = 0.0

    def _window_left(self) -> float:
        return max(1.0, self.window - (time.monotonic() - self._window_start))
