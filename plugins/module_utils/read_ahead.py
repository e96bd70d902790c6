# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read ahead: compute the next item of an iterator in a second process while this one uses the current item.

A sync job reads and plans a page of source records (reading, converting, fingerprinting:
work that only reads) and then writes it (destination, couplings). Threads cannot overlap
the two, since both are Python holding the interpreter lock; a forked process can. The
child runs the iterator and sends each item through a socket pair; it computes item k only
once the parent has received item k - ``window`` (and so has finished using every item
before that one). A window of two lets the child go on while the parent receives an item,
which a window of one makes both wait for; a few items exist at a time, never the whole
input.

Forking with an open SQLite connection corrupts SQLite's lock bookkeeping in the child,
so ``release`` closes the parent's idle connections first (and may refuse, which keeps
everything in this process) and ``renew`` makes the child open its own.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any, Callable, TypeVar

from ansible_collections.tablesync.integration.plugins.module_utils.errors import TableSyncError

T = TypeVar("T")
PIPE_BUFFER = 4 * 1024 * 1024


class ReadAheadError(TableSyncError):
    """The read-ahead process failed in a way its exception could not describe across processes."""


def read_ahead(items: Iterator[T], release: Callable[[], bool], renew: Callable[[], None], window: int = 2) -> Iterator[T]:
    """Yield what ``items`` yields, computed in a child process at most ``window`` items ahead of their use.

    ``release`` runs in this process before the fork and returns False when forking is not
    safe (then the items are computed here, as without read-ahead); ``renew`` runs first in
    the child. An exception raised by ``items`` in the child is raised here. Closing this
    generator early stops the child.
    """
    if not hasattr(os, "fork") or not release():
        yield from items
        return
    ours, theirs = _pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child (measured by the tests through the parent)
        ours.close()
        os._exit(_serve(items, theirs, renew, window))
    theirs.close()
    finished = False
    try:
        while True:
            try:
                kind, payload = ours.recv()
            except (EOFError, OSError):  # a reset when it died with credits unread
                raise ReadAheadError("the read-ahead process ended unexpectedly (%s)" % _reap(pid)) from None
            if kind == "end":
                finished = True
                return
            if kind == "error":
                finished = True
                raise payload
            try:
                ours.send(True)  # why: the child prepares the next items while this one is used
            except OSError:
                pass  # it has sent its last item and left; what it sent is still to be read
            yield payload
    finally:
        ours.close()
        if not finished:
            try:
                os.kill(pid, signal.SIGKILL)  # why: it only reads; nothing of it needs to end cleanly
            except ProcessLookupError:
                pass
        _reap(pid)


def _pipe() -> tuple[Connection, Connection]:
    """A socket pair whose buffers hold a whole item or more.

    Why: with the default buffers the child waited, with its next item ready, until the parent
    had taken most of the previous one.
    """
    ends = socket.socketpair()
    for end in ends:
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            end.setsockopt(socket.SOL_SOCKET, option, PIPE_BUFFER)  # capped by the system's maximum
    return Connection(ends[0].detach()), Connection(ends[1].detach())


def _serve(items: Iterator[T], conn: Any, renew: Callable[[], None], window: int) -> int:  # pragma: no cover - runs in the child
    """The child's loop: send each item, go on once the parent has received the item ``window`` back; the exit status."""
    try:
        renew()
        received = 0
        for index, item in enumerate(items):
            if not _send(conn, ("item", item)):
                return 0  # why: the parent stopped reading (it failed, finished early or was killed)
            while received < index + 2 - window:  # the next item, index + 1, waits for item index + 1 - window
                if not _received(conn):
                    return 0
                received += 1
        _send(conn, ("end", None))
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        _send(conn, ("error", _portable(exc)))
        return 1


def _send(conn: Any, message: tuple) -> bool:  # pragma: no cover - runs in the child
    try:
        conn.send(message)
        return True
    except (OSError, EOFError):
        return False  # the parent is gone


def _received(conn: Any) -> bool:  # pragma: no cover - runs in the child
    try:
        return bool(conn.recv())
    except (OSError, EOFError):
        return False


def _portable(exc: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else one carrying its type and message."""
    try:
        copy = pickle.loads(pickle.dumps(exc))
        if isinstance(copy, BaseException):
            return exc
    except Exception:  # noqa: BLE001 - any exception that does not pickle is described instead
        pass
    return ReadAheadError("%s: %s" % (type(exc).__name__, exc))


def _reap(pid: int) -> str:
    """Wait for the child; how it ended, for messages."""
    try:
        _pid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return "already reaped"
    if os.WIFSIGNALED(status):
        return "killed by signal %d" % os.WTERMSIG(status)
    return "exit status %d" % os.WEXITSTATUS(status)
