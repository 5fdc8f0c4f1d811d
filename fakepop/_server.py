"""The Trio adapter: the only module that touches the network.

It accepts connections, runs one :class:`~fakepop.Pop3Protocol` per connection, and
moves bytes between the socket and the protocol. All POP3 knowledge lives in the
protocol; here are only the things a protocol cannot do by itself: waiting, timing
out, and closing.
"""

from __future__ import annotations

import functools
import itertools
import logging
import socket
import ssl
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, NoReturn, TypedDict

import trio

from ._config import DEFAULT_CONFIG, ServerConfig
from ._expectations import MailAssertions
from ._idle import SCOPE_DEADLINES, IdleTimer, IdleWatch
from ._listening import ListeningWithPop3s
from ._replies import Reply
from ._session import Recorder, Session
from ._session_log import NO_RECORDER, clock_reading
from ._session_record import EndReason
from ._store import MailboxSpec, MailStore
from ._stream_io import close_stream, send_reply
from ._tcp import TcpStream, accept_connections, close_sockets, listen_tcp
from ._transcript import Transcript
from ._waiting import (
    DEFAULT_TIMEOUT,
    ExpectedErrors,
    command_answered,
    mailbox_emptied,
    sessions_ended,
    wait_in_trio,
)
from .errors import ConfigError, ServerError, UsageError
from .faults import FaultSet

if TYPE_CHECKING:
    from typing_extensions import Unpack

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Pop3Server", "ServerError", "ServerOptions", "open_pop3_server", "serve_pop3"]

logger = logging.getLogger("fakepop")

_INTERNAL_ERROR = Reply(
    b"-ERR [SYS/TEMP] Internal server error; closing the connection\r\n", close=True
)


class Pop3Server(MailAssertions, ListeningWithPop3s):
    """A fakepop POP3 server: its store, its options, and (once serving) its address.

    Start it with ``await nursery.start(server.serve)`` or use :func:`open_pop3_server`;
    cancel the surrounding scope to stop it. Stopping ends open sessions at once,
    without UPDATE, so no mail is deleted and every lock is released; a session whose
    QUIT already removed its mail still gets its ``+OK`` out first.
    """

    def __init__(
        self,
        mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
        *,
        config: ServerConfig | None = None,
        record_transcript: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        pop3s_port: int | None = None,
    ) -> None:
        """``host``:``port`` is where it listens (port 0 picks a free one); with
        ``pop3s_port`` (0 for a free one) it also serves POP3S, TLS from the first
        octet, which needs ``ssl_context``. The wrappers (serve_pop3,
        open_pop3_server, Pop3ServerThread) take exactly these options."""
        if pop3s_port is not None and ssl_context is None:
            raise ConfigError("a POP3S port needs the server's ssl_context")
        self._bind = (host, port, pop3s_port)
        self.store = mailboxes if isinstance(mailboxes, MailStore) else MailStore(mailboxes)
        self.config = DEFAULT_CONFIG if config is None else config
        #: The server side of TLS: with it, STLS is offered and a POP3S port can be
        #: served (see TlsCertificates for a throwaway one).
        self.ssl_context = ssl_context
        # Bumped after every change a wait may be waiting for: the store's own, each
        # line of the transcript, a session starting or ending, an error recorded.
        self._changes = self.store._changes
        #: What every session said (stays empty with ``record_transcript=False``).
        self.transcript = Transcript(self._changes)
        self.record_transcript = record_transcript
        # The clock of the run the sessions last ran in, read for deadlines and by the
        # transcript (see _run_clock).
        self._clock: tuple[trio.abc.Clock, Callable[[], float], Callable[[], float]] | None = None
        #: Exceptions raised while handling sessions, oldest first.
        self.errors: list[BaseException] = []
        self._ended = 0  # sessions ended since the start or the last reset
        self._listeners: list[socket.socket] = []
        self._pop3s_listeners: list[socket.socket] = []
        # Every open session, from its start until its stream is closed, in order.
        self._sessions: dict[Session, None] = {}
        # Set (and replaced) when a session ends, and when the last open one ends: two
        # events for the server, rather than one per session that stays alive with it.
        self._session_ended = trio.Event()
        self._idle = trio.Event()
        # Numbers sessions for the transcript and the faults alike; reset restarts it.
        self._numbers = itertools.count(1)
        # Set while reset() runs: connections arriving meanwhile wait for it.
        self._resetting: trio.Event | None = None
        # Held while a session starts (numbered, recorded, registered) and while
        # reset_if_idle runs, which may be in another thread: neither sees the other
        # half-way.
        self._admission = threading.Lock()
        # What escaped a session and is ending the whole run (not an Exception).
        self.fatal: BaseException | None = None
        #: Faults to inject; add and remove them from any thread while serving.
        self.faults = FaultSet()

    # -- where it listens ----------------------------------------------------------
    @property
    def active_sessions(self) -> int:
        """Connections currently open."""
        return len(self._sessions)

    @property
    def ended_sessions(self) -> int:
        """Sessions that have ended since the server started or was last reset.

        A session has ended once its connection is closed and it no longer counts in
        ``active_sessions``: its QUIT committed (UPDATE), its lock released, its
        transcript record finished, any error it raised in ``errors``.
        """
        return self._ended

    async def close_sessions(self) -> None:
        """End every session open now, without UPDATE, and wait until they have ended.

        A session whose QUIT has already removed its mail still sends its ``+OK``
        (within a short grace): its client hears what happened. Connections that
        arrive meanwhile are served as usual.
        """
        open_now = list(self._sessions)
        for session in open_now:
            session.stop()
        while any(session in self._sessions for session in open_now):
            await self._session_ended.wait()

    async def reset(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> None:
        """Start afresh with these mailboxes, on the same address.

        The sessions open now end without UPDATE; connections arriving meanwhile wait
        and then meet the new state. The store (checked whole before anything changes),
        the transcript, the faults, the session numbers and the recorded errors start
        afresh. Returns once that is done, in milliseconds however busy the server is;
        raises :class:`ServerError` (once, after the reset) for errors of sessions
        that ended since the last report.
        """
        if self.reset_if_idle(mailboxes):
            return
        self._resetting = gate = trio.Event()
        try:
            # A bad spec raises here and changes nothing. No session runs a command
            # between the swap and its stop below: stop() is called before the next
            # checkpoint, and a stopped session handles no further command.
            self.store.replace(mailboxes or {})
            await self.close_sessions()
            errors = self._start_afresh()
        finally:
            self._resetting = None
            gate.set()
        if errors:
            raise ServerError(errors) from errors[0]

    def reset_if_idle(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> bool:
        """:meth:`reset` at once, if no session is open; False (nothing done) if one
        is. Safe from any thread: a connection arriving meanwhile starts its session
        once this is done, so it meets the new state whole."""
        with self._admission:
            if self._resetting is not None:
                raise UsageError("the server is already being reset")
            if self._sessions:
                return False
            self.store.replace(mailboxes or {})
            errors = self._start_afresh()
        if errors:
            raise ServerError(errors) from errors[0]
        return True

    def _start_afresh(self) -> list[BaseException]:
        # Everything but the store, once no session is open; the errors taken.
        errors = self.take_errors()
        self.transcript.clear()
        self.faults.clear()
        self._numbers = itertools.count(1)
        self._ended = 0
        self._changes.bump()
        return errors

    async def wait_idle(self) -> None:
        """Wait until no session is open: every lock released, every QUIT committed.

        Useful after a client disconnects, before looking at the store.
        """
        while self._sessions:
            await self._idle.wait()

    async def wait_for(
        self, predicate: Callable[[Pop3Server], object], *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until ``predicate(server)`` is true, without sleeping or polling.

        The predicate is given this server (to read ``store``, ``transcript``,
        ``active_sessions``, ``ended_sessions``) and checked now, then again after
        every change that could alter its answer: a session starting or ending, a line
        recorded in the transcript, a change to the store (the test's own included),
        a reset. It runs in this task, so it must not block. An exception it raises
        propagates.

        Raises :class:`~fakepop.WaitTimeout`, naming what was awaited and showing the
        transcript so far, after ``timeout`` seconds (10 by default) of the run's
        clock: under ``MockClock`` with autojump, a timeout takes no real time.
        """
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await wait_in_trio(self, predicate, timeout)

    async def wait_for_sessions(self, count: int, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until at least ``count`` sessions have ended since the server started
        or was last reset (see :attr:`ended_sessions`)."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.wait_for(sessions_ended(count), timeout=timeout)

    async def wait_for_command(
        self,
        keyword: str,
        *,
        user: str | None = None,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Wait until a command with this keyword (ASCII case-insensitive: ``"dele"``
        is ``DELE``) has been answered, its reply recorded in the transcript, at least
        ``count`` times, in the sessions of ``user`` if given. Needs the transcript."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.wait_for(command_answered(keyword, user=user, count=count), timeout=timeout)

    async def wait_until_empty(self, user: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until ``user``'s mailbox in the store holds no message: a session's
        UPDATE removed them, or the test did (a mailbox removed meanwhile counts as
        empty). A user unknown when the wait starts raises ``KeyError``."""
        __tracebackhide__ = True  # pytest shows the caller, not this frame
        await self.wait_for(mailbox_emptied(user), timeout=timeout)

    # -- errors --------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`ServerError` if any session failed inside the server."""
        if self.errors:
            raise ServerError(self.errors) from self.errors[0]

    def expect_errors(self, *types: type[BaseException]) -> ExpectedErrors:
        """``with server.expect_errors(SomeError):`` says that an error inside the
        server is the point of the block.

        When the block ends, the errors of these types that sessions raised while it
        ran are taken out of :attr:`errors` (stopping the server does not report them)
        and left in the ``errors`` of the object the block gets. If there is none, the
        block raises :class:`~fakepop.ExpectationError`, with the transcript. Errors
        of other types stay, and fail the test as usual. It does not wait: by the end
        of the block the session must have failed (its client saw the ``-ERR``, or
        ``await server.wait_for_sessions(n)`` returned).
        """
        return ExpectedErrors(self, types)

    def take_errors(self) -> list[BaseException]:
        """The errors recorded so far, removing them from ``errors``: each is then
        reported by whoever took it, and never again."""
        taken = list(self.errors)
        del self.errors[: len(taken)]
        self._changes.bump()
        return taken

    def report(self, failure: BaseException | None) -> None:
        """Report the server's errors when a block that ran the server ends: raise them
        as ServerError if the block ended well (``failure`` is None), or attach them to
        the block's own ``failure`` as a note, which must not be replaced."""
        if failure is None:
            self.check()
            return
        if self.errors:
            error = ServerError(self.errors)
            if sys.version_info >= (3, 11):
                failure.add_note(f"Also, when the fakepop server stopped: {error!r}")
            else:
                logger.error("fakepop: when the server stopped: %r", error)

    # -- running -------------------------------------------------------------------
    async def serve(
        self, *, task_status: trio.TaskStatus[Pop3Server] = trio.TASK_STATUS_IGNORED
    ) -> NoReturn:
        """Listen on ``host``:``port`` (0 picks a free port) and serve until cancelled;
        with ``pop3s_port`` (0 for a free one) also serve POP3S, TLS from the first
        octet, which needs the server's ``ssl_context``.

        With ``nursery.start`` it returns once every socket is listening, handing back
        the server, so ``server.port`` (and ``server.pop3s_port``) are usable at once.
        """
        if self._listeners:
            raise UsageError("this server is already serving")
        host, port, pop3s_port = self._bind
        self._listeners = await listen_tcp(port, host=host)
        try:
            if pop3s_port is not None:
                self._pop3s_listeners = await listen_tcp(pop3s_port, host=host)
            watch = IdleWatch(self._sessions.keys)
            # The accepting tasks and the sessions are children of this one nursery,
            # with no task or nursery between: each costs its start and, at the
            # end, the unwinding of its cancellation, which made up much of what a
            # short-lived server costs.
            async with trio.open_nursery() as nursery:
                accept_connections(
                    nursery, functools.partial(self._handle, idle_timer=watch), self._listeners
                )
                if self._pop3s_listeners:
                    accept_connections(
                        nursery,
                        functools.partial(self._handle, implicit_tls=True, idle_timer=watch),
                        self._pop3s_listeners,
                    )
                task_status.started(self)
                # This task, idle otherwise, keeps the autologout timer of every
                # session the listeners start.
                await watch.run()
        finally:
            close_sockets(self._listeners + self._pop3s_listeners)
            self._listeners = []
            self._pop3s_listeners = []
        raise AssertionError("accepting never ends but by cancellation")  # pragma: no cover

    async def handle_stream(self, stream: trio.abc.Stream, *, implicit_tls: bool = False) -> None:
        """Run one POP3 session over ``stream`` until it ends, then close the stream.

        The listener calls this for every connection; tests can call it directly with
        one end of ``trio.testing.memory_stream_pair()`` to talk to the server without
        sockets. With ``implicit_tls`` the session starts with a TLS handshake, as on
        a POP3S port (RFC 8314). A connection that arrives while the server resets
        waits until the reset is done, then meets the new mailboxes.
        """
        await self._handle(stream, implicit_tls=implicit_tls, idle_timer=SCOPE_DEADLINES)

    async def _handle(
        self, stream: trio.abc.Stream, *, implicit_tls: bool = False, idle_timer: IdleTimer
    ) -> None:
        while self._resetting is not None:
            await self._resetting.wait()
        with self._admission:  # no await in here: see reset_if_idle
            number = next(self._numbers)
            clock, reading = self._run_clock()
            recorder = self._recorder(stream, number, reading)
            session = Session(
                number,
                stream,
                store=self.store,
                config=self.config,
                faults=self.faults,
                recorder=recorder,
                ssl_context=self.ssl_context,
                clock=clock,
                idle_timer=idle_timer,
            )
            self._sessions[session] = None
        self._changes.bump()
        ended_by = EndReason.SERVER_STOPPED
        try:
            ended_by = await session.run(implicit_tls=implicit_tls)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            ended_by = EndReason.CLIENT_CLOSED  # nothing to report, nothing deleted
        except trio.Cancelled:
            raise
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # It ends the server's run; whoever waits on the server must know.
                self.fatal = exc
                raise
            ended_by = EndReason.SERVER_ERROR
            self.errors.append(exc)
            self._changes.bump()
            recorder.event(f"error inside the server: {type(exc).__name__}: {exc}")
            logger.exception("fakepop: error in a POP3 session; it was closed")
            with trio.move_on_after(1):
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await send_reply(session.stream, _INTERNAL_ERROR)
                    recorder.reply(_INTERNAL_ERROR)
        finally:
            protocol = session.protocol
            protocol.connection_lost()
            recorder.end(ended_by, [message.uid for message in protocol.removed])
            try:
                await close_stream(session.stream)
            finally:
                del self._sessions[session]
                self._ended += 1
                self._session_ended.set()
                self._session_ended = trio.Event()
                if not self._sessions:
                    self._idle.set()
                    self._idle = trio.Event()
                self._changes.bump()

    def _run_clock(self) -> tuple[Callable[[], float], Callable[[], float]]:
        # The run's clock as sessions read it for their deadlines, and as the transcript
        # reads it (see clock_reading): made once per run and shared, as a bound method per
        # session would be one more object per session for the garbage collector.
        clock = trio.lowlevel.current_clock()
        if self._clock is None or self._clock[0] is not clock:
            self._clock = (clock, clock.current_time, clock_reading(clock))
        return self._clock[1], self._clock[2]

    def _recorder(
        self, stream: trio.abc.Stream, number: int, reading: Callable[[], float]
    ) -> Recorder:
        if not self.record_transcript:
            return NO_RECORDER
        peer = None
        if isinstance(stream, TcpStream):
            peer = stream.peer
        elif isinstance(stream, trio.SocketStream):
            with suppress(OSError):
                host, port = stream.socket.getpeername()[:2]
                peer = (host, port)
        return self.transcript.start_session(number, peer, reading)


class ServerOptions(TypedDict, total=False):
    """The options of :class:`Pop3Server`, as its wrappers take them (``**options``):
    declared once, so no wrapper can offer one the others lack."""

    config: ServerConfig | None
    record_transcript: bool
    ssl_context: ssl.SSLContext | None
    host: str
    port: int
    pop3s_port: int | None


async def serve_pop3(
    mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
    *,
    task_status: trio.TaskStatus[Pop3Server] = trio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerOptions],
) -> NoReturn:
    """Serve POP3 until cancelled; ``await nursery.start(serve_pop3, mailboxes)``
    returns the running :class:`Pop3Server`. ``options`` are Pop3Server's."""
    await Pop3Server(mailboxes, **options).serve(task_status=task_status)


@asynccontextmanager
async def open_pop3_server(
    mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
    **options: Unpack[ServerOptions],
) -> AsyncIterator[Pop3Server]:
    """Run a server for the duration of an ``async with`` block.

    On leaving the block the server stops (open sessions end without UPDATE) and, if
    any session failed inside the server, :class:`ServerError` is raised, so a test
    cannot pass while the server silently broke.
    """
    server = Pop3Server(mailboxes, **options)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The nursery is ours, not the caller's: a bind error or the exception that
        # left the caller's block comes out as itself, not wrapped in a group.
        if len(group.exceptions) != 1:
            raise
        only = group.exceptions[0]
        context = only.__context__
        server.report(only)  # the server's own errors ride along, never lost
        try:
            raise only
        finally:
            only.__context__ = context
    server.report(None)
