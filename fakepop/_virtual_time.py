"""Timers under a jumping clock: telling a client that was idle from a clock that
jumped over a worker thread's work.

Under a MockClock that autojumps (pytest-trio's ``autojump_clock``), Trio moves the
clock to the next deadline whenever no task of the run has anything to do. A client
that runs in a worker thread (``trio.to_thread.run_sync``) leaves the run in exactly
that state between its commands, however busy it is: the clock then jumps to the
autologout deadline, and the timer ends a session that is in use. Trio cannot tell the
two apart, so fakepop checks, when such a timer fires, whether the clock autojumps
while a worker thread of the run is at work, and then fails instead of pretending the
client was idle.
"""

from __future__ import annotations

import math

from .errors import UsageError

__all__ = ["check_timer"]


def check_timer(what: str, seconds: float, session: int) -> None:
    """Raise UsageError if the timer ``what`` (of ``seconds``), which has just fired
    for ``session``, may have fired because the clock jumped over a worker thread."""
    import trio.testing  # noqa: PLC0415 - only when a timer fires

    clock = trio.lowlevel.current_clock()
    if not isinstance(clock, trio.testing.MockClock) or clock.autojump_threshold == math.inf:
        return
    if trio.testing.active_thread_count() == 0:
        return
    raise UsageError(
        f"the {what} ({seconds:g} s) ended session {session} while a task of this Trio "
        "run waited in trio.to_thread.run_sync, under a MockClock that autojumps "
        "(autojump_clock): with nothing else to do, the run's clock jumped over the "
        "worker thread's work, so a client in that thread looks idle for as long as "
        "any timer asks. To fix it, run the client as a Trio task (trio streams, "
        "trio.open_tcp_stream) instead of in a worker thread, use a MockClock "
        "without autojump (trio.testing.MockClock(), moved with clock.jump()), or "
        "drop autojump_clock from this test"
    )
