"""The waits of :class:`~fakepop.Pop3ServerThread`: blocking ones for sync code, and
``async_...`` ones for a coroutine of the test's own event loop, Trio or asyncio.

They live apart from the thread runner, which starts and stops the server; the
waiting itself (and the predicates they take) is :mod:`fakepop._waiting`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import sniffio

from ._waiting import (
    DEFAULT_TIMEOUT,
    ExpectedErrors,
    command_answered,
    describe,
    mailbox_emptied,
    sessions_ended,
    wait_in_event_loop,
    wait_in_thread,
)
from .errors import UsageError

if TYPE_CHECKING:
    from ._server import Pop3Server
    from ._thread import Pop3ServerThread

__all__ = ["ThreadWaits"]


class ThreadWaits:
    """What a :class:`~fakepop.Pop3ServerThread` offers a test that waits for the
    application under test, without sleeping or polling."""

    # What the thread runner provides.
    server: Pop3Server
    _run_over: bool  # trio.run has returned or raised: nothing changes now

    def is_running(self) -> bool:
        raise NotImplementedError

    @property
    def _thread_runner(self) -> Pop3ServerThread:
        # This object, as what it is: these waits are only ever Pop3ServerThread's.
        return cast("Pop3ServerThread", self)

    # Each wait comes twice: a blocking method for sync code, and ``async_...`` for a
    # coroutine of the test's own event loop, Trio or asyncio. The server's thread wakes
    # both through the store's Changes; nothing polls.
    def wait_for(
        self,
        predicate: Callable[[Pop3ServerThread], object],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Block until ``predicate(server)`` is true, without sleeping or polling.

        The predicate is given this object (to read ``store``, ``transcript``,
        ``active_sessions``, ``ended_sessions``) and checked now, then again after
        every change that could alter its answer: a session starting or ending, a line
        recorded in the transcript, a change to the store (this thread's own
        included), a reset. It runs in the calling thread; an exception it raises
        propagates.

        Raises :class:`~fakepop.WaitTimeout`, naming what was awaited and showing the
        transcript so far, after ``timeout`` seconds (10 by default), and
        :class:`~fakepop.UsageError` if the server is not running or stops meanwhile.
        From async code, ``await server.async_wait_for(...)`` instead: this one blocks.
        """
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self._waiting_call("wait_for")
        wait_in_thread(self._thread_runner, predicate, timeout, self._still_serving(predicate))

    async def async_wait_for(
        self,
        predicate: Callable[[Pop3ServerThread], object],
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """:meth:`wait_for` for a coroutine of the test's own event loop, Trio or
        asyncio (told apart by sniffio): it sleeps in that loop, whose clock times it."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self._waiting_call(None)
        await wait_in_event_loop(
            self._thread_runner, predicate, timeout, self._still_serving(predicate)
        )

    def wait_for_sessions(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Block until at least ``count`` sessions have ended since the server started
        or was last reset (see :attr:`ended_sessions`)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self.wait_for(sessions_ended(count), timeout=timeout)

    async def async_wait_for_sessions(
        self, count: int, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """:meth:`wait_for_sessions` for a coroutine (Trio or asyncio)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.async_wait_for(sessions_ended(count), timeout=timeout)

    def wait_for_command(
        self,
        keyword: str,
        *,
        user: str | None = None,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Block until a command with this keyword (ASCII case-insensitive: ``"dele"``
        is ``DELE``) has been answered, its reply recorded in the transcript, at least
        ``count`` times, in the sessions of ``user`` if given. Needs the transcript."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self.wait_for(command_answered(keyword, user=user, count=count), timeout=timeout)

    async def async_wait_for_command(
        self,
        keyword: str,
        *,
        user: str | None = None,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """:meth:`wait_for_command` for a coroutine (Trio or asyncio)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.async_wait_for(
            command_answered(keyword, user=user, count=count), timeout=timeout
        )

    def wait_until_empty(self, user: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Block until ``user``'s mailbox in the store holds no message: a session's
        UPDATE removed them, or the test did (a mailbox removed meanwhile counts as
        empty). A user unknown when the wait starts raises ``KeyError``."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        self.wait_for(mailbox_emptied(user), timeout=timeout)

    async def async_wait_until_empty(self, user: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """:meth:`wait_until_empty` for a coroutine (Trio or asyncio)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.async_wait_for(mailbox_emptied(user), timeout=timeout)

    def expect_errors(
        self, *types: type[BaseException], timeout: float = DEFAULT_TIMEOUT
    ) -> ExpectedErrors:
        """``with server.expect_errors(SomeError):`` says that an error inside the
        server is the point of the block.

        When the block ends, the errors of these types that sessions raised while it
        ran are taken out of :attr:`errors` (stopping the server does not report them)
        and left in the ``errors`` of the object the block gets. If none has been
        raised yet, the end of the block waits up to ``timeout`` seconds for one (in
        sync code only: inside a running event loop it does not block, so await a
        wait first), then raises :class:`~fakepop.ExpectationError`, with the
        transcript. Errors of other types stay, and fail the test as usual.
        """
        waits = _event_loop() is None
        return ExpectedErrors(self._thread_runner, types, timeout=timeout if waits else None)

    def _waiting_call(self, name: str | None) -> None:
        # The guard of the waits: the server must be running, and a blocking wait
        # (``name``) must not block an event loop, whose tasks may be what it waits for.
        if not self.is_running():
            raise UsageError("the fakepop server is not running (call start() first)")
        if name is None:
            return
        library = _event_loop()
        if library is not None:
            raise UsageError(
                f"Pop3ServerThread.{name}() blocks and cannot be called from a {library} "
                f"task; use await server.async_{name}(...)"
            )

    def _still_serving(self, predicate: Callable[[Pop3ServerThread], object]) -> Callable[[], None]:
        # Raises once the server's run is over: nothing the wait looks at will change.
        def serving() -> None:
            if not self._run_over:
                return
            awaited = f" for {describe(predicate)}"
            errors = self.server.errors
            had = ""
            if errors:
                had = "; its errors: " + "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            raise UsageError(f"the fakepop server stopped while waiting{awaited}{had}")

        return serving


def _event_loop() -> str | None:
    # The event loop running the calling task ("trio", "asyncio", ...), or None.
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
