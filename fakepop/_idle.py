"""The autologout timer (RFC 1939 §3): a session that waits longer than the
autologout time for its client's next command ends, without UPDATE.

A session tells its timer when it starts waiting for a command (with the time by
which one must arrive) and when one has arrived; the timer cancels the session's scope
when a wait runs out. That rule lives here once, kept in one of two ways:

- :class:`IdleWatch`, for the sessions of a serving server: one task watches every
  session. Starting and ending a wait only stores a time in the session, where moving
  a Trio deadline at every command (twice: the wait's end, then none while the command
  runs and its reply is written) cost a session more than all its POP3 work.
- :data:`SCOPE_DEADLINES`, for a session run on its own (``Pop3Server.handle_stream``
  called by a test, with no task to watch it): the wait's end is its scope's deadline.

Either way the timer fires on Trio's clock, at the instant the wait runs out, so a
MockClock moves it as it moves any deadline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NoReturn, Protocol

import trio

__all__ = ["SCOPE_DEADLINES", "IdleTimer", "IdleWatch", "Waiting"]


class Waiting(Protocol):
    """What a timer sees of a session."""

    #: Until when the session waits for a command; ``math.inf`` while it is busy.
    idle_until: float
    #: The session's scope, whose deadline is the wait's end with SCOPE_DEADLINES.
    scope: trio.CancelScope

    def time_out(self) -> None:
        """End the session: its wait ran out (IdleWatch)."""


class IdleTimer(Protocol):
    def waiting(self, session: Waiting, until: float) -> None:
        """The session waits for a command until ``until`` (on Trio's clock)."""

    def busy(self, session: Waiting) -> None:
        """A command arrived: the session is not idle until it waits again."""


class _ScopeDeadlines:
    # The wait's end as the session's scope's deadline.
    __slots__ = ()

    def waiting(self, session: Waiting, until: float) -> None:
        session.scope.deadline = until

    def busy(self, session: Waiting) -> None:
        session.scope.deadline = math.inf  # a slow client reading a reply is not idle


SCOPE_DEADLINES: IdleTimer = _ScopeDeadlines()


class IdleWatch:
    """One task (:meth:`run`) that ends every session whose wait has run out; the
    sessions are whatever ``sessions()`` gives when it looks."""

    __slots__ = ("_alarm", "_next_look", "_sessions")

    def __init__(self, sessions: Callable[[], Iterable[Waiting]]) -> None:
        self._sessions = sessions
        self._next_look = math.inf  # when run() looks next, by its own reckoning
        self._alarm = trio.CancelScope()  # run()'s sleep, until when it looks next

    def waiting(self, session: Waiting, until: float) -> None:
        session.idle_until = until
        if until < self._next_look:
            # Sooner than any wait the task knows of (it sleeps until the earliest
            # end it saw): it must look by then. Moving its alarm does that without
            # waking it now. With one autologout time for all, that happens only
            # when no session was waiting.
            self._next_look = until
            self._alarm.deadline = until

    def busy(self, session: Waiting) -> None:
        session.idle_until = math.inf

    async def run(self) -> NoReturn:
        """Watch until cancelled."""
        while True:
            now = trio.current_time()
            earliest = math.inf
            for session in list(self._sessions()):
                until = session.idle_until
                if until <= now:
                    session.idle_until = math.inf
                    session.time_out()
                elif until < earliest:
                    earliest = until
            self._next_look = earliest
            with trio.CancelScope(deadline=earliest) as self._alarm:
                await trio.sleep_forever()
