"""Waiting for what the server saw, without sleeping, and errors a test expects.

Every server flavour waits the same way; only how it blocks differs:

- :func:`wait_in_thread` blocks the calling thread on the store's
  :class:`~fakepop._changes.Changes` condition, with a real deadline;
- :func:`wait_in_trio` and :func:`wait_in_asyncio` register a waker with the same
  notifier and sleep in their event loop, with the loop's own clock for the timeout
  (Trio's, so ``MockClock`` with autojump makes a timeout fire at once in virtual time).

The loop they share, :func:`_attempts`, reads the version *before* it evaluates the
predicate, so a change that lands while the predicate runs wakes the next wait at once.

The shortcuts (:func:`sessions_ended`, :func:`command_answered`,
:func:`mailbox_emptied`) are predicates that describe themselves, for the message of a
:class:`~fakepop.WaitTimeout`. :class:`ExpectedErrors` is what ``expect_errors`` gives a
``with`` block.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import sniffio
import trio

from ._changes import Changes
from ._lines import ascii_upper
from ._store import MailStore
from ._transcript import Transcript
from .errors import ConfigError, ExpectationError, UsageError, WaitTimeout

__all__ = [
    "DEFAULT_TIMEOUT",
    "Awaited",
    "ExpectedErrors",
    "Watched",
    "command_answered",
    "mailbox_emptied",
    "sessions_ended",
    "wait_in_asyncio",
    "wait_in_event_loop",
    "wait_in_thread",
    "wait_in_trio",
]

#: Seconds a wait gives its condition before it raises WaitTimeout: far longer than
#: any test's client needs, short enough that a test waiting for what never happens
#: fails while its author still remembers why.
DEFAULT_TIMEOUT = 10.0


class Watched(Protocol):
    """What a wait may read of a server (Pop3Server and Pop3ServerThread both)."""

    @property
    def store(self) -> MailStore: ...
    @property
    def transcript(self) -> Transcript: ...
    @property
    def record_transcript(self) -> bool: ...
    @property
    def active_sessions(self) -> int: ...
    @property
    def ended_sessions(self) -> int: ...
    @property
    def errors(self) -> list[BaseException]: ...


W = TypeVar("W", bound=Watched)


# -- what is awaited -----------------------------------------------------------------
class Awaited:
    """A predicate on the server that says, for a timeout message, what it waits for
    and how far things got."""

    __slots__ = ("_check", "_progress", "description", "needs_transcript")

    def __init__(
        self,
        check: Callable[[Watched], bool],
        description: str,
        progress: Callable[[Watched], str],
        *,
        needs_transcript: bool = False,
    ) -> None:
        self._check = check
        self._progress = progress
        self.description = description
        self.needs_transcript = needs_transcript

    def __call__(self, server: Watched) -> bool:
        return self._check(server)

    def progress(self, server: Watched) -> str:
        return self._progress(server)

    def __repr__(self) -> str:
        return f"<Awaited: {self.description}>"


def describe(predicate: Callable[..., object]) -> str:
    """What a predicate waits for, in words: a shortcut's description, or the
    function's name and where it is defined."""
    if isinstance(predicate, Awaited):
        return predicate.description
    name = getattr(predicate, "__qualname__", None)
    code = getattr(predicate, "__code__", None)
    if name is None or code is None:
        return f"the predicate {predicate!r} to hold"
    where = f" ({Path(code.co_filename).name}:{code.co_firstlineno})"
    return f"the predicate {name}{where} to hold"


def _count(name: str, value: object, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def sessions_ended(count: int) -> Awaited:
    """At least ``count`` sessions have ended since the server started or was last
    reset (see Pop3Server.ended_sessions for what "ended" means)."""
    count = _count("the number of sessions", count, minimum=0)
    return Awaited(
        lambda server: server.ended_sessions >= count,
        f"at least {_plural(count, 'POP3 session')} to end",
        lambda server: f"{server.ended_sessions} ended, {server.active_sessions} still open",
    )


def command_answered(keyword: str, *, user: str | None = None, count: int = 1) -> Awaited:
    """A command with this keyword (ASCII case-insensitive) has been answered, its
    reply recorded in the transcript, at least ``count`` times (in ``user``'s sessions,
    if given)."""
    if not isinstance(keyword, str):
        raise TypeError(f"a command keyword must be a str, not {type(keyword).__name__}")
    if not keyword or not keyword.isascii() or not keyword.isalnum():
        raise ConfigError(f"{keyword!r} is no POP3 command keyword (one word of ASCII letters)")
    keyword = ascii_upper(keyword)
    count = _count("count", count, minimum=1)
    whose = "" if user is None else f" of {user}"

    def answered(server: Watched) -> int:
        transcript = server.transcript
        sessions = transcript.sessions if user is None else transcript.sessions_of(user)
        return sum(
            ascii_upper(line.split(" ", 1)[0]) == keyword
            for session in sessions
            for line, _ in session.exchanges()
        )

    times = "once" if count == 1 else f"{count} times"
    return Awaited(
        lambda server: answered(server) >= count,
        f"a {keyword} command{whose} to be answered {times}",
        lambda server: f"answered {_plural(answered(server), 'time')} so far",
        needs_transcript=True,
    )


def mailbox_emptied(user: str) -> Awaited:
    """``user``'s mailbox in the store holds no message: UPDATE removed them, or the
    test did. A mailbox removed while waiting counts as empty; a user unknown when the
    wait starts raises KeyError, so a misspelt name cannot pass for an empty mailbox."""
    known: list[bool] = []  # whether the first look found the mailbox

    def messages_left(server: Watched) -> int | None:
        try:
            mailbox = server.store[user]
        except KeyError:
            if not known:
                raise
            return None
        known.append(True)
        return len(mailbox.messages)

    def progress(server: Watched) -> str:
        left = messages_left(server)
        return "its mailbox is gone" if left is None else f"{_plural(left, 'message')} left"

    return Awaited(
        lambda server: not messages_left(server),
        f"the mailbox of {user} to be empty",
        progress,
    )


# -- waiting -------------------------------------------------------------------------
def _attempts(
    changes: Changes, holds: Callable[[], object], serving: Callable[[], None]
) -> Iterator[int]:
    # Yields the version seen before each look at which the condition did not hold: the
    # caller then waits for the version to move on. Returns once it holds.
    while True:
        seen = changes.version  # before the look, so no change can slip in between
        if holds():
            return
        serving()  # raises if the server has ended: nothing would change any more
        yield seen


def _not_serving_check() -> None:
    """Nothing to check: a Trio server waits in its own run."""


def _check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (math.isfinite(timeout) and timeout >= 0):
        raise ConfigError(f"timeout must be a finite number of seconds >= 0, not {timeout!r}")
    return float(timeout)


def _start(server: W, predicate: Callable[[W], object], timeout: float) -> float:
    # What every wait checks before it starts.
    if not callable(predicate):
        raise TypeError(f"wait_for needs a function of the server, not {predicate!r}")
    needs_transcript = isinstance(predicate, Awaited) and predicate.needs_transcript
    if needs_transcript and not server.record_transcript:
        raise UsageError(
            f"waiting for {describe(predicate)} reads the transcript, which this "
            "server does not keep (record_transcript=False)"
        )
    return _check_timeout(timeout)


def _timed_out(server: W, predicate: Callable[[W], object], timeout: float) -> WaitTimeout:
    progress = ""
    if isinstance(predicate, Awaited):
        progress = f" ({predicate.progress(server)})"
    transcript = server.transcript
    if server.record_transcript:
        record = f"The transcript so far:\n{transcript.render()}"
    else:
        record = "(no transcript: the server runs with record_transcript=False)"
    return WaitTimeout(
        f"gave up after {timeout:g} s waiting for {describe(predicate)}{progress}\n\n{record}",
        transcript,
    )


def _block(
    changes: Changes, holds: Callable[[], object], timeout: float, serving: Callable[[], None]
) -> bool:
    # Block this thread until holds() is true; False after ``timeout`` s of real time.
    deadline = time.monotonic() + timeout
    # Each time it does not hold yet, a change must come before the deadline. Watching
    # from before the first look, so that no change goes unannounced (see Changes).
    with changes.watching():
        attempts = _attempts(changes, holds, serving)
        return all(changes.wait_past(seen, deadline) for seen in attempts)


def wait_in_thread(
    server: W,
    predicate: Callable[[W], object],
    timeout: float,
    serving: Callable[[], None] = _not_serving_check,
) -> None:
    """Block this thread until ``predicate(server)`` is true; WaitTimeout after
    ``timeout`` seconds of real time. ``serving()`` raises if the server has ended."""
    __tracebackhide__ = True  # pytest shows the caller, not this frame
    timeout = _start(server, predicate, timeout)
    if not _block(server.store._changes, lambda: predicate(server), timeout, serving):
        raise _timed_out(server, predicate, timeout)


class _Waker(Protocol):
    # Wakes a task of an event loop from any thread; wait() is False at the deadline.
    def wake(self) -> None: ...
    async def wait(self) -> bool: ...
    def close(self) -> None: ...


async def _wait_in_loop(
    server: W,
    predicate: Callable[[W], object],
    timeout: float,
    serving: Callable[[], None],
    waker: _Waker,
) -> None:
    __tracebackhide__ = True  # pytest shows the caller, not this frame
    changes = server.store._changes
    changes.add_waker(waker.wake)  # before the first look (see Changes)
    try:
        for seen in _attempts(changes, lambda: predicate(server), serving):
            if changes.version == seen and not await waker.wait():
                # The deadline: one last look, in case a change came with it.
                if changes.version != seen and predicate(server):
                    return
                raise _timed_out(server, predicate, timeout)
    finally:
        changes.remove_waker(waker.wake)
        waker.close()


class _TrioWaker:
    def __init__(self, timeout: float) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._deadline = trio.current_time() + timeout  # the run's clock: MockClock too
        self._event = trio.Event()
        self._scheduled = False  # a wakeup is on its way: don't queue another

    def wake(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            with suppress(trio.RunFinishedError):  # the run ended; nobody to wake
                self._token.run_sync_soon(self._set)

    def _set(self) -> None:
        self._scheduled = False  # before setting: a bump after this queues anew
        self._event.set()

    async def wait(self) -> bool:
        with trio.move_on_at(self._deadline):
            await self._event.wait()
            self._event = trio.Event()
            return True
        return False

    def close(self) -> None:
        pass


async def wait_in_trio(
    server: W,
    predicate: Callable[[W], object],
    timeout: float,
    serving: Callable[[], None] = _not_serving_check,
) -> None:
    """Sleep in this Trio task until ``predicate(server)`` is true; WaitTimeout after
    ``timeout`` seconds of the run's clock."""
    __tracebackhide__ = True  # pytest shows the caller, not this frame
    timeout = _start(server, predicate, timeout)
    await _wait_in_loop(server, predicate, timeout, serving, _TrioWaker(timeout))


class _AsyncioWaker:
    def __init__(self, timeout: float) -> None:
        import asyncio  # noqa: PLC0415 - imported already: a loop is running

        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._scheduled = False
        self._expired = False
        self._timer: asyncio.TimerHandle = self._loop.call_later(timeout, self._expire)

    def wake(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            with suppress(RuntimeError):  # the loop is closed; nobody to wake
                self._loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self._scheduled = False
        self._event.set()

    def _expire(self) -> None:
        self._expired = True
        self._event.set()

    async def wait(self) -> bool:
        await self._event.wait()
        self._event.clear()
        return not self._expired

    def close(self) -> None:
        self._timer.cancel()


async def wait_in_asyncio(
    server: W,
    predicate: Callable[[W], object],
    timeout: float,
    serving: Callable[[], None] = _not_serving_check,
) -> None:
    """Sleep in this asyncio task until ``predicate(server)`` is true; WaitTimeout after
    ``timeout`` seconds of the loop's clock."""
    __tracebackhide__ = True  # pytest shows the caller, not this frame
    timeout = _start(server, predicate, timeout)
    await _wait_in_loop(server, predicate, timeout, serving, _AsyncioWaker(timeout))


async def wait_in_event_loop(
    server: W,
    predicate: Callable[[W], object],
    timeout: float,
    serving: Callable[[], None] = _not_serving_check,
) -> None:
    """:func:`wait_in_trio` or :func:`wait_in_asyncio`, whichever loop runs this task."""
    __tracebackhide__ = True  # pytest shows the caller, not this frame
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = None
    if library == "trio":
        await wait_in_trio(server, predicate, timeout, serving)
    elif library == "asyncio":
        await wait_in_asyncio(server, predicate, timeout, serving)
    else:
        raise UsageError(f"fakepop's async waits run under Trio or asyncio, not {library}")


# -- errors the test expects ---------------------------------------------------------
class ExpectedErrors:
    """What ``with server.expect_errors(SomeError):`` gives its block.

    When the block ends, the errors of those types that sessions raised inside the
    server while it ran are taken out of the server's ``errors`` (so stopping the
    server does not report them) and put in :attr:`errors`. If there is none, the
    block raises :class:`~fakepop.ExpectationError`, with the transcript.
    """

    def __init__(
        self,
        server: Watched,
        types: tuple[type[BaseException], ...],
        *,
        timeout: float | None = None,
    ) -> None:
        """Made by ``server.expect_errors(*types)``. With a ``timeout``, the end of
        the block waits that long for an expected error to be recorded (for a server
        in another thread)."""
        if not types:
            raise TypeError("expect_errors() needs at least one exception type")
        for kind in types:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise TypeError(f"expect_errors() takes exception types, not {kind!r}")
        self._server = server
        # The server's own list: sessions append to it (and bump the store's Changes).
        self._recorded = server.errors
        self._types = types
        self._timeout = None if timeout is None else _check_timeout(timeout)
        # The errors recorded before the block, by id (kept alive, so no id is reused).
        self._before: dict[int, BaseException] = {}
        #: The expected errors raised while the block ran, oldest first (filled in when
        #: the block ends).
        self.errors: list[BaseException] = []

    def _raised(self) -> list[BaseException]:
        return [
            error
            for error in list(self._recorded)
            if id(error) not in self._before and isinstance(error, self._types)
        ]

    def __enter__(self) -> ExpectedErrors:
        self._before = {id(error): error for error in list(self._recorded)}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        if exc is None and self._timeout is not None:
            _block(self._server.store._changes, self._raised, self._timeout, _not_serving_check)
        self.errors = self._raised()
        for error in self.errors:
            # One at a time: the server may append another error meanwhile.
            self._recorded.remove(error)
        if self.errors or exc is not None:
            return  # the block's own failure, if any, is what the test reports
        names = " or ".join(kind.__name__ for kind in self._types)
        others = [e for e in self._recorded if id(e) not in self._before]
        instead = ""
        if others:
            instead = "; it raised " + ", ".join(f"{type(e).__name__}: {e}" for e in others)
        transcript = self._server.transcript
        raise ExpectationError(
            f"expected a session to raise {names} inside the server while the block "
            f"ran, but none did{instead}\n\n{transcript.render()}",
            transcript,
        )
