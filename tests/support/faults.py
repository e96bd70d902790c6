"""Fault injection for resilience tests.

A :class:`FaultPlan` decides, for each API request (never the token endpoint), whether the
service answers with a fault instead of processing it. A faulted request has no effect on the
data (the decision is taken before the request is dispatched), except ``reset_after``.

Kinds:

``"429"``   throttled. Dataverse documents a ``Retry-After`` header (seconds) and the service
            protection error codes (api-limits.md); Business Central documents 429 without
            promising ``Retry-After`` (dynamics-rate-limits.md), so by default none is sent.
``"503"``   service unavailable; Business Central documents a ``retry-after`` header on 503
            (include-http-status-error-codes.md), so it is sent for both flavours.
``"500"``/``"502"``  plain server errors (502 carries ``Retry-After`` on Business Central).
``"reset"`` the connection is closed without any response (the client sees a connection error).
``"504"``   gateway timeout (with ``Retry-After`` like 502).
``"reset_after"`` the request IS processed, then the connection is closed without the response:
            a lost answer, so a client that simply resends a create makes a second record.
``"502_after"``/``"504_after"`` the request IS processed, then a gateway answers 502/504 instead of
            the service's response (a gateway that gave up waiting, or lost the service's answer).

``writes_only=True`` applies the plan to write requests only (POST, PATCH, PUT, DELETE): reads are
never faulted nor counted, so ``rate=0.1`` loses a tenth of the write answers.

Two modes, which can be combined (the sequence is consumed first):

* ``FaultPlan(rate=0.1, kinds=("429", "503", "reset"), seed=7)`` - a seeded share of requests;
  ``max_faults`` bounds the total.
* ``FaultPlan(sequence=["429", None, "reset"])`` - deterministic: the n-th API request gets the
  n-th entry (``None``/``""``/``"ok"`` = no fault); afterwards no more faults from the sequence.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "503", "500", "502", "504", "reset", "reset_after", "502_after", "504_after")
LOST_AFTER_COMMIT = ("reset_after", "502_after", "504_after")
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


@dataclass
class FaultPlan:
    rate: float = 0.0
    kinds: Sequence[str] = ("429", "503", "reset")
    retry_after: int | None = 1
    seed: int | None = None
    sequence: Sequence[str | None] | None = None
    max_faults: int | None = None
    bc_429_retry_after: bool = False
    writes_only: bool = False
    injected: list[tuple[int, str]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for kind in list(self.kinds) + [k for k in (self.sequence or []) if k]:
            if kind not in FAULT_KINDS and kind != "ok":
                raise ValueError(f"unknown fault kind {kind!r}; use one of {FAULT_KINDS}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._position = 0
        self._seen = 0

    def next_fault(self, method: str = "GET") -> str | None:
        """Consume one API request and return the fault kind to inject, or None."""
        if self.writes_only and method.upper() not in WRITE_METHODS:
            return None
        with self._lock:
            index = self._seen
            self._seen += 1
            kind: str | None = None
            if self.sequence is not None and self._position < len(self.sequence):
                kind = self.sequence[self._position] or None
                self._position += 1
                if kind == "ok":
                    kind = None
            elif self.rate > 0 and self.kinds and (self.max_faults is None or len(self.injected) < self.max_faults):
                if self._random.random() < self.rate:
                    kind = self._random.choice(list(self.kinds))
            if kind is not None:
                self.injected.append((index, kind))
            return kind

    @property
    def requests_seen(self) -> int:
        return self._seen
