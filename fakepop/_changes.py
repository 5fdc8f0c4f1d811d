"""The change notifier: a version number that moves on every change a test could wait
for, and wakes whoever waits for it to move.

The store, the transcript recorder and the server's session bookkeeping call
:meth:`Changes.bump` after each change; ``wait_for`` reads :attr:`Changes.version`
*before* it evaluates its predicate and then waits for the version to differ, so a
change that lands while the predicate runs is never missed, and nothing polls a clock.

Bumping is on the server's hot path (a few times per command), so with nobody waiting
it is one ``next()`` and one attribute test. The transcript's recorder, which writes
a line at every command, goes further: it bumps only while :attr:`Changes.watchers`
is not 0, and so makes no Python call at all when nobody waits. That is safe because
every waiter counts itself among the watchers *before* it first reads the version
(:meth:`Changes.watching`, :meth:`Changes.add_waker`): a line written before then is
seen by the waiter's first look, and a line written after then bumps.

Waiters are of two kinds: threads block on a :class:`threading.Condition`; event
loops register a *waker*, a function that any thread may call and that schedules the
loop's own wakeup (Trio's ``TrioToken.run_sync_soon``, asyncio's
``call_soon_threadsafe``).

Versions come from one ``itertools.count``, whose ``next()`` is atomic: two threads
bumping at once store two different numbers, and no number is ever stored twice, so a
waiter that saw version ``v`` knows that any later bump leaves a version other than
``v``, whichever store lands last.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["Changes"]


class Changes:
    """A version that moves on every change, and the waiters that watch it."""

    __slots__ = ("_condition", "_counter", "_wakers", "version", "watchers")

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        #: Differs from any number read before the last change (see the module's
        #: docstring); compare it with ``!=``, never with ``<``.
        self.version = 0
        # Around its default RLock: one around a plain Lock costs twice as much to make
        # (three attributes looked for in vain), and every store makes one.
        self._condition = threading.Condition()
        self._wakers: list[Callable[[], None]] = []
        #: Threads waiting plus wakers registered: bump() wakes nobody while it is 0,
        #: and a writer may skip bump() altogether (see the module's docstring).
        self.watchers = 0

    def bump(self) -> None:
        """Say that something changed: wake every waiter. Safe from any thread."""
        self.version = next(self._counter)
        if self.watchers:
            self._wake()

    def _wake(self) -> None:
        with self._condition:
            self._condition.notify_all()
            wakers = tuple(self._wakers)
        for wake in wakers:
            wake()

    # -- waiting in a thread ---------------------------------------------------------
    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Count this thread among the watchers for the ``with`` block: a thread
        waiting for a condition enters it before it first reads the version."""
        with self._condition:
            self.watchers += 1
        try:
            yield
        finally:
            with self._condition:
                self.watchers -= 1

    def wait_past(self, seen: int, deadline: float) -> bool:
        """Block until the version is no longer ``seen``; False if ``deadline``
        (``time.monotonic()``) came first. Changes that writers skip bumping for are
        only seen inside :meth:`watching`, entered before ``seen`` was read."""
        with self._condition:
            self.watchers += 1
            try:
                while self.version == seen:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._condition.wait(remaining)
                return True
            finally:
                self.watchers -= 1

    # -- waiting in an event loop ----------------------------------------------------
    def add_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` (from whichever thread bumps) on every change until
        :meth:`remove_waker`; it must only schedule a wakeup, and return at once."""
        with self._condition:
            self._wakers.append(wake)
            self.watchers += 1

    def remove_waker(self, wake: Callable[[], None]) -> None:
        with self._condition:
            self._wakers.remove(wake)
            self.watchers -= 1
