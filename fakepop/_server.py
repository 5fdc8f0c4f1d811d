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
import math
import socket
import ssl
import struct
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import NoReturn

import trio

from ._config import ServerConfig
from ._protocol import Command, Pop3Protocol, Reply, State
from ._store import MailboxSpec, MailStore
from ._transcript import EndReason, SessionRecorder, Transcript
from .faults import Close, Delay, FaultSet, ReplyPlan, Stage, Stall, context_for, plan_reply

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["Pop3Server", "ServerError", "open_pop3_server", "serve_pop3"]

logger = logging.getLogger("fakepop")

_RECEIVE_SIZE = 16384
# Replies shorter than this go out in one write with their status line; longer
# payloads are sent as they are stored, without copying them to prepend the status.
_COALESCE_LIMIT = 65536
_INTERNAL_ERROR = Reply(
    b"-ERR [SYS/TEMP] Internal server error; closing the connection\r\n", close=True
)


class ServerError(Exception):
    """The server failed while handling a session; ``errors`` holds what was raised.

    The test that drove the session should fail: the behaviour it saw was not POP3's.
    """

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        listing = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(f"fakepop server raised {len(self.errors)} error(s): {listing}")


class Pop3Server:
    """A fakepop POP3 server: its store, its options, and (once serving) its address.

    Start it with ``await nursery.start(server.serve)`` or use :func:`open_pop3_server`;
    cancel the surrounding scope to stop it. Stopping ends open sessions at once,
    without UPDATE, so no mail is deleted and every lock is released.
    """

    def __init__(
        self,
        mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
        *,
        config: ServerConfig | None = None,
        record_transcript: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.store = mailboxes if isinstance(mailboxes, MailStore) else MailStore(mailboxes)
        self.config = config or ServerConfig()
        #: The server side of TLS: with it, STLS is offered and a POP3S port can be
        #: served (see TlsCertificates for a throwaway one).
        self.ssl_context = ssl_context
        #: What every session said (stays empty with ``record_transcript=False``).
        self.transcript = Transcript()
        self.record_transcript = record_transcript
        #: Exceptions raised while handling sessions, oldest first.
        self.errors: list[BaseException] = []
        self._listeners: list[trio.SocketListener] = []
        self._pop3s_listeners: list[trio.SocketListener] = []
        # One cancel scope per open session, from its start until its stream is closed.
        self._session_scopes: set[trio.CancelScope] = set()
        self._idle: trio.Event | None = None  # set when the last open session ends
        self._connections = itertools.count(1)  # numbers sessions for faults
        #: Faults to inject; add and remove them from any thread while serving.
        self.faults = FaultSet()

    # -- where it listens ----------------------------------------------------------
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket."""
        result = []
        for listener in self._listeners:
            host, port = listener.socket.getsockname()[:2]
            result.append((host, port))
        return result

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to."""
        if not self._listeners:
            raise RuntimeError("the server is not listening (start it with nursery.start)")
        return self.addresses[0]

    @property
    def pop3s_address(self) -> tuple[str, int]:
        """(host, port) of the implicit-TLS (POP3S) listener."""
        if not self._pop3s_listeners:
            raise RuntimeError("the server has no POP3S port (serve it with pop3s_port=...)")
        host, port = self._pop3s_listeners[0].socket.getsockname()[:2]
        return host, port

    @property
    def pop3s_port(self) -> int:
        return self.pop3s_address[1]

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def active_sessions(self) -> int:
        """Connections currently open."""
        return len(self._session_scopes)

    def close_sessions(self) -> None:
        """End every open session at its next checkpoint, without UPDATE.

        Call it from the server's Trio thread (Pop3ServerThread does it for you).
        """
        for scope in self._session_scopes:
            scope.cancel()

    def reset(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> None:
        """Start afresh with these mailboxes: open sessions end without UPDATE, and the
        store, the transcript and the recorded errors are emptied. The server keeps
        listening on the same address.

        Call it from the server's Trio thread (Pop3ServerThread.reset does it for you).
        """
        self.close_sessions()
        self._clear(mailboxes)

    def _clear(self, mailboxes: Mapping[str, MailboxSpec] | None) -> None:
        # Safe from any thread: the store and the transcript have their own locks, and
        # sessions that are still ending only touch state that no one can reach now.
        self.store.clear()
        if mailboxes:
            self.store.load(mailboxes)
        self.transcript.clear()
        self.errors.clear()
        self.faults.clear()

    async def wait_idle(self) -> None:
        """Wait until no session is open: every lock released, every QUIT committed.

        Useful after a client disconnects, before looking at the store.
        """
        while self._session_scopes:
            assert self._idle is not None
            await self._idle.wait()

    # -- errors --------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`ServerError` if any session failed inside the server."""
        if self.errors:
            raise ServerError(self.errors) from self.errors[0]

    # -- running -------------------------------------------------------------------
    async def serve(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pop3s_port: int | None = None,
        task_status: trio.TaskStatus[Pop3Server] = trio.TASK_STATUS_IGNORED,
    ) -> NoReturn:
        """Listen on ``host``:``port`` (0 picks a free port) and serve until cancelled;
        with ``pop3s_port`` (0 for a free one) also serve POP3S, TLS from the first
        octet, which needs the server's ``ssl_context``.

        With ``nursery.start`` it returns once every socket is listening, handing back
        the server, so ``server.port`` (and ``server.pop3s_port``) are usable at once.
        """
        if self._listeners:
            raise RuntimeError("this server is already serving")
        if pop3s_port is not None and self.ssl_context is None:
            raise ValueError("a POP3S port needs the server's ssl_context")
        self._listeners = await trio.open_tcp_listeners(port, host=host)
        try:
            if pop3s_port is not None:
                self._pop3s_listeners = await trio.open_tcp_listeners(pop3s_port, host=host)
            async with trio.open_nursery() as nursery:
                await nursery.start(
                    functools.partial(trio.serve_listeners, handler_nursery=None),
                    self.handle_stream,
                    self._listeners,
                )
                if self._pop3s_listeners:
                    await nursery.start(
                        functools.partial(trio.serve_listeners, handler_nursery=None),
                        functools.partial(self.handle_stream, implicit_tls=True),
                        self._pop3s_listeners,
                    )
                task_status.started(self)
        finally:
            for listener in self._listeners + self._pop3s_listeners:
                with suppress(OSError):
                    listener.socket.close()
            self._listeners = []
            self._pop3s_listeners = []
        raise AssertionError("serve_listeners never returns")  # pragma: no cover

    async def handle_stream(self, stream: trio.abc.Stream, *, implicit_tls: bool = False) -> None:
        """Run one POP3 session over ``stream`` until it ends, then close the stream.

        The listener calls this for every connection; tests can call it directly with
        one end of ``trio.testing.memory_stream_pair()`` to talk to the server without
        sockets. With ``implicit_tls`` the session starts with a TLS handshake, as on
        a POP3S port (RFC 8314).
        """
        if not self._session_scopes:
            self._idle = trio.Event()
        scope = trio.CancelScope()
        self._session_scopes.add(scope)
        session = next(self._connections)
        # The run's clock (a MockClock in tests that use one), without the lookup that
        # trio.current_time() repeats on every call.
        clock = trio.lowlevel.current_clock().current_time
        protocol = Pop3Protocol(
            self.store, self.config, clock=clock, tls_available=self.ssl_context is not None
        )
        recorder = self._recorder(stream, clock)
        link = _Link(stream)
        ended_by = EndReason.SERVER_STOPPED  # unless something below says otherwise
        try:
            with scope:
                if implicit_tls and not await self._start_tls(link, protocol, recorder):
                    ended_by = EndReason.TLS_FAILED
                else:
                    ended_by = await self._converse(link, protocol, recorder, session)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            ended_by = EndReason.CLIENT_CLOSED  # nothing to report, nothing deleted
        except Exception as exc:
            ended_by = EndReason.SERVER_ERROR
            self.errors.append(exc)
            recorder.event(f"error inside the server: {type(exc).__name__}: {exc}")
            logger.exception("fakepop: error in a POP3 session; it was closed")
            recorder.reply(_INTERNAL_ERROR)
            with trio.move_on_after(1):
                with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await _send(link.stream, _INTERNAL_ERROR)
        finally:
            protocol.connection_lost()
            recorder.end(ended_by, [message.uid for message in protocol.removed])
            try:
                await _close(link.stream)
            finally:
                self._session_scopes.discard(scope)
                if not self._session_scopes and self._idle is not None:
                    self._idle.set()

    def _recorder(
        self, stream: trio.abc.Stream, clock: Callable[[], float]
    ) -> SessionRecorder | _NoRecorder:
        if not self.record_transcript:
            return _NO_RECORDER
        peer = None
        if isinstance(stream, trio.SocketStream):
            with suppress(OSError):
                host, port = stream.socket.getpeername()[:2]
                peer = (host, port)
        return self.transcript.start_session(peer, clock)

    async def _converse(
        self,
        link: _Link,
        protocol: Pop3Protocol,
        recorder: SessionRecorder | _NoRecorder,
        session: int,
    ) -> EndReason:
        autologout = self.config.autologout
        stream = link.stream
        if self.faults:
            ended = await self._connect_faults(stream, protocol, recorder, session)
            if ended is not None:
                return ended
        greeting = protocol.greeting()
        recorder.reply(greeting)
        if await self._send(stream, greeting, protocol, None, recorder, session=session):
            return EndReason.FAULT
        # RFC 1939 section 3: after the autologout time without a command the session
        # ends silently, without UPDATE. One scope for the whole session, its deadline
        # pushed forward before each read, is cheaper than a new scope per read.
        with trio.CancelScope() as idle:
            while True:
                command = protocol.next_command()
                if command is None:
                    if protocol.client_closed:
                        return EndReason.CLIENT_CLOSED
                    idle.deadline = trio.current_time() + autologout
                    protocol.receive_data(await stream.receive_some(_RECEIVE_SIZE))
                    continue
                idle.deadline = math.inf  # a slow client reading a reply is not idle
                recorder.command(command)
                answer = await self._answer(stream, protocol, recorder, session, command)
                if isinstance(answer, EndReason):
                    return answer
                reply, refused = answer
                if await self._send(stream, reply, protocol, command, recorder, session=session):
                    return EndReason.FAULT
                if reply.close:
                    return EndReason.FAULT if refused else EndReason.QUIT
                if reply.starttls:
                    idle.deadline = trio.current_time() + autologout
                    if not await self._start_tls(link, protocol, recorder):
                        return EndReason.TLS_FAILED
                    stream = link.stream
        return EndReason.TIMEOUT

    async def _start_tls(
        self, link: _Link, protocol: Pop3Protocol, recorder: SessionRecorder | _NoRecorder
    ) -> bool:
        """Wrap the connection in TLS and shake hands; False (recorded) if that failed.

        A client that does not complete the handshake within the autologout time is
        treated as gone, like any idle client."""
        assert self.ssl_context is not None
        tls = trio.SSLStream(link.stream, self.ssl_context, server_side=True)
        link.stream = tls
        try:
            with trio.fail_after(self.config.autologout):
                await tls.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            reason = exc.__cause__ or exc
            recorder.event(f"TLS handshake failed: {type(reason).__name__}: {reason}")
            return False
        protocol.tls_started()
        cipher = tls.cipher()
        recorder.event(f"TLS started: {tls.version()} {cipher[0] if cipher else ''}".rstrip())
        return True


    async def _answer(
        self,
        stream: trio.abc.Stream,
        protocol: Pop3Protocol,
        recorder: SessionRecorder | _NoRecorder,
        session: int,
        command: Command,
    ) -> tuple[Reply, bool] | EndReason:
        # The reply to a command, and whether a fault refused it instead of letting it
        # run; or how the session ended, if a fault ended it here.
        state = protocol.state
        reply = None
        if self.faults:
            outcome = await self._command_faults(stream, protocol, recorder, session, command)
            if isinstance(outcome, EndReason):
                return outcome
            reply = outcome
        refused = reply is not None
        if reply is None:
            reply = protocol.handle(command)
        if protocol.state is state:
            recorder.reply(reply)
        else:
            recorder.reply(reply, protocol.state, protocol.user)
        return reply, refused

    # -- faults: the server carries out what fakepop.faults decides -----------------------
    async def _connect_faults(
        self,
        stream: trio.abc.Stream,
        protocol: Pop3Protocol,
        recorder: SessionRecorder | _NoRecorder,
        session: int,
    ) -> EndReason | None:
        for fired in self.faults.fire(Stage.CONNECT, context_for(session, protocol, None)):
            recorder.event(f"fault: {fired.armed.fault}")
            ended = await _carry_out(stream, fired.action, fired.jitter)
            if ended is not None:
                return ended
        return None

    async def _command_faults(
        self,
        stream: trio.abc.Stream,
        protocol: Pop3Protocol,
        recorder: SessionRecorder | _NoRecorder,
        session: int,
        command: Command,
    ) -> Reply | EndReason | None:
        # A reply to send instead of executing the command, how the session ended, or
        # None to execute the command as usual.
        context = context_for(session, protocol, command)
        for fired in self.faults.fire(Stage.COMMAND, context):
            recorder.event(f"fault: {fired.armed.fault}")
            refusal = fired.refusal
            if refusal is not None:
                return protocol.refuse(command, *refusal)
            ended = await _carry_out(stream, fired.action, fired.jitter)
            if ended is not None:
                return ended
        return None

    async def _send(
        self,
        stream: trio.abc.Stream,
        reply: Reply,
        protocol: Pop3Protocol,
        command: Command | None,
        recorder: SessionRecorder | _NoRecorder,
        *,
        session: int,
    ) -> bool:
        """Send a reply, shaped or broken by the faults that fire; True if one of them
        ended the connection."""
        if not self.faults:
            await _send(stream, reply)
            return False
        context = context_for(session, protocol, command)
        fired = list(self.faults.fire(Stage.REPLY, context))
        if not fired:
            await _send(stream, reply)
            return False
        for item in fired:
            recorder.event(f"fault: {item.armed.fault}")
        plan = plan_reply(reply, fired, context)
        if plan.delay:
            await trio.sleep(plan.delay)
        await _write_planned(stream, plan)
        if plan.close is not None:
            _prepare_close(stream, reset=plan.close.reset)
            return True
        return False


async def _carry_out(stream: trio.abc.Stream, action: object, jitter: float) -> EndReason | None:
    # Close, Delay or Stall at a connection or command: how the session ended, if it did.
    if isinstance(action, Delay):
        await trio.sleep(action.seconds + jitter)
        return None
    if isinstance(action, Close):
        _prepare_close(stream, reset=action.reset)
        return EndReason.FAULT
    if isinstance(action, Stall):
        # Answer nothing; read and drop what the client sends until it gives up.
        while await stream.receive_some(_RECEIVE_SIZE):
            pass
        return EndReason.FAULT
    raise TypeError(f"cannot carry out {action!r} here")


async def _write_planned(stream: trio.abc.Stream, plan: ReplyPlan) -> None:
    octets = plan.octets
    if plan.chunk is None:
        if octets:
            await stream.send_all(octets)
        return
    for start in range(0, len(octets), plan.chunk):
        piece = octets[start : start + plan.chunk]
        await stream.send_all(piece)
        pause = plan.pause_after(len(piece))
        if pause:
            await trio.sleep(pause)


class _Link:
    # The connection a session talks over: the socket stream, then (after STLS) the
    # TLS stream wrapped around it.
    __slots__ = ("stream",)

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream


async def _close(stream: trio.abc.Stream) -> None:
    if isinstance(stream, trio.SocketStream):
        # Closes the socket at once, even when cancelled; cheaper than
        # aclose_forcefully, which raises and catches a Cancelled every time.
        await stream.aclose()
    elif isinstance(stream, trio.SSLStream):
        # RFC 8314 section 3.4: send a TLS close alert first, if the peer lets us.
        with trio.move_on_after(1), suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.aclose()
        await _close(stream.transport_stream)
    else:
        await trio.aclose_forcefully(stream)


def _prepare_close(stream: trio.abc.Stream, *, reset: bool) -> None:
    # The session's end closes the stream; for a reset, make that close send an RST
    # instead of a FIN (SO_LINGER on, with a zero timeout).
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if reset and isinstance(stream, trio.SocketStream):
        with suppress(OSError):
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class _NoRecorder:
    # Stands in for a SessionRecorder when the server keeps no transcript.
    def command(self, command: Command) -> None:
        pass

    def reply(self, reply: Reply, state: State | None = None, user: str | None = None) -> None:
        pass

    def event(self, text: str) -> None:
        pass

    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None:
        pass


_NO_RECORDER = _NoRecorder()


async def _send(stream: trio.abc.Stream, reply: Reply) -> None:
    payload = reply.payload
    if payload is None:
        await stream.send_all(reply.status)
    elif len(payload) < _COALESCE_LIMIT:
        await stream.send_all(reply.status + payload)
    else:
        await stream.send_all(reply.status)
        await stream.send_all(payload)


async def serve_pop3(
    mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: ServerConfig | None = None,
    ssl_context: ssl.SSLContext | None = None,
    pop3s_port: int | None = None,
    task_status: trio.TaskStatus[Pop3Server] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Serve POP3 until cancelled; ``await nursery.start(serve_pop3, mailboxes)``
    returns the running :class:`Pop3Server`."""
    server = Pop3Server(mailboxes, config=config, ssl_context=ssl_context)
    await server.serve(host=host, port=port, pop3s_port=pop3s_port, task_status=task_status)


@asynccontextmanager
async def open_pop3_server(
    mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    config: ServerConfig | None = None,
    ssl_context: ssl.SSLContext | None = None,
    pop3s_port: int | None = None,
) -> AsyncIterator[Pop3Server]:
    """Run a server for the duration of an ``async with`` block.

    On leaving the block the server stops (open sessions end without UPDATE) and, if
    any session failed inside the server, :class:`ServerError` is raised, so a test
    cannot pass while the server silently broke.
    """
    server = Pop3Server(mailboxes, config=config, ssl_context=ssl_context)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(server.serve, host=host, port=port, pop3s_port=pop3s_port)
            )
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
        try:
            raise only
        finally:
            only.__context__ = context
    server.check()
