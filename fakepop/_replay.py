"""Strict replay: a server that answers exactly as a cassette recorded, for as long
as the client sends what was recorded.

Connections get the cassette's sessions in order, one each. Server lines are sent
byte for byte; each recorded client line is awaited and compared: exactly, or, for
a line whose secret was redacted, after redacting the line received by the same rule
(``_cassette_rules``), so ``PASS anything`` matches ``PASS ****``. The first
deviation gets a ``-ERR`` and the connection closed, and an
:class:`~fakepop.ExpectationError` showing the expected and the actual line joins
:attr:`CassetteServer.errors`, which fail the test as every server error does.
"""

from __future__ import annotations

import itertools
import os
import socket
import ssl
from contextlib import suppress

import trio

from ._cassette import Cassette, CassetteEntry, CassetteSession, read_cassette
from ._cassette_rules import redact_client_line
from ._listening import ListeningWithPop3s
from ._stream_io import close_stream
from ._tcp import TcpStream, accept_connections, close_sockets, listen_tcp
from .errors import ConfigError, ExpectationError

__all__ = ["CassetteServer"]

_CHUNK = 65536


class CassetteServer(ListeningWithPop3s):
    """Replays a cassette strictly; ``await nursery.start(server.serve)`` to run it.

    A cassette with TLS sessions (STLS or POP3S) needs ``ssl_context``; a POP3S
    session is replayed on the ``pop3s_port`` listener only.
    """

    def __init__(
        self,
        cassette: Cassette | str | os.PathLike[str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        pop3s_port: int | None = None,
    ) -> None:
        self.cassette = cassette if isinstance(cassette, Cassette) else read_cassette(cassette)
        if self.cassette.uses_tls and ssl_context is None:
            raise ConfigError(
                f"{self.cassette.path} has TLS sessions: replaying it needs ssl_context"
            )
        if pop3s_port is not None and ssl_context is None:
            raise ConfigError("a POP3S port needs the server's ssl_context")
        self.ssl_context = ssl_context
        self._bind = (host, port, pop3s_port)
        self._listeners: list[socket.socket] = []
        self._pop3s_listeners: list[socket.socket] = []
        self._numbers = itertools.count(1)
        #: Deviations from the cassette (ExpectationError) and errors while replaying.
        self.errors: list[BaseException] = []
        #: How many sessions of the cassette have been replayed to their end.
        self.sessions_replayed = 0
        self._open = 0  # connections being replayed now
        self._idle = trio.Event()  # set (and replaced) when the last one has ended

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and replay until cancelled; ``task_status.started()`` once listening."""
        host, port, pop3s_port = self._bind
        self._listeners = await listen_tcp(port, host=host)
        try:
            if pop3s_port is not None:
                self._pop3s_listeners = await listen_tcp(pop3s_port, host=host)
            async with trio.open_nursery() as nursery:
                # The sockets listen already: connections wait for the accepting tasks.
                accept_connections(nursery, self._plain, self._listeners)
                accept_connections(nursery, self._pop3s, self._pop3s_listeners)
                task_status.started()
        finally:
            close_sockets(self._listeners + self._pop3s_listeners)
            self._listeners = self._pop3s_listeners = []

    async def wait_idle(self) -> None:
        """Wait until no connection is being replayed: each one counted in
        ``sessions_replayed`` or ``errors``. A client that has read the last reply may
        be done before the server has finished with its session."""
        while self._open:
            await self._idle.wait()

    def check(self) -> None:
        """Raise :class:`~fakepop.ServerError` if the client deviated or replay failed."""
        from .errors import ServerError  # noqa: PLC0415

        if self.errors:
            raise ServerError(self.errors)

    async def _plain(self, stream: TcpStream) -> None:
        await self._replay(stream, implicit_tls=False)

    async def _pop3s(self, stream: TcpStream) -> None:
        assert self.ssl_context is not None
        await self._replay(
            trio.SSLStream(stream, self.ssl_context, server_side=True), implicit_tls=True
        )

    async def _replay(self, stream: trio.abc.Stream, *, implicit_tls: bool) -> None:
        number = next(self._numbers)
        player = _Player(self, stream, number)
        self._open += 1
        try:
            if number > len(self.cassette.sessions):
                await player.deviate(
                    f"connection {number}, but the cassette holds "
                    f"{len(self.cassette.sessions)} session(s)"
                )
                return
            session = self.cassette.sessions[number - 1]
            if session.implicit_tls != implicit_tls:
                kind = "POP3S" if session.implicit_tls else "plain POP3"
                await player.deviate(f"session {number} was recorded over {kind}")
                return
            if await player.play(session):
                self.sessions_replayed += 1
        except (trio.BrokenResourceError, ssl.SSLError) as exc:
            self.errors.append(exc)
        finally:
            try:
                with trio.CancelScope(shield=True):
                    await close_stream(player.stream)
            finally:
                self._open -= 1
                if not self._open:
                    self._idle.set()
                    self._idle = trio.Event()


class _Player:
    def __init__(self, server: CassetteServer, stream: trio.abc.Stream, number: int) -> None:
        self.server = server
        self.stream = stream
        self.number = number
        self._buffer = bytearray()
        self._outgoing = bytearray()

    async def play(self, session: CassetteSession) -> bool:
        """Replay the session; False if the client deviated."""
        for entry in session.entries:
            if entry.kind == "line" and entry.side == "server":
                self._outgoing += entry.data
                continue
            await self._flush()
            if entry.kind == "line":
                actual = await self._line()
                if actual is None:
                    await self.deviate(self._expected(entry, "the client closed the connection"))
                    return False
                if not _matches(entry, actual):
                    await self.deviate(self._expected(entry, f"got {actual!r}"))
                    return False
            elif entry.kind == "tls":
                assert self.server.ssl_context is not None
                stream = trio.SSLStream(self.stream, self.server.ssl_context, server_side=True)
                await stream.do_handshake()
                self.stream = stream
            elif entry.kind == "close" and entry.by == "client":
                extra = await self._line()
                if extra is not None:
                    await self.deviate(
                        f"session {self.number} ended (line {entry.line_number}), "
                        f"but the client sent {extra!r}"
                    )
                    return False
        return True

    def _expected(self, entry: CassetteEntry, actual: str) -> str:
        return (
            f"session {self.number}, line {entry.line_number}: expected the client to "
            f"send {entry.data!r}, {actual}"
        )

    async def deviate(self, what: str) -> None:
        message = f"{self.server.cassette.path}: {what}"
        deviation = ExpectationError(f"the client deviated from the cassette: {message}")
        self.server.errors.append(deviation)
        reply = f"-ERR [SYS/PERM] fakepop cassette replay: {what}\r\n"
        with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.send_all(reply.encode("utf-8", "replace"))

    async def _flush(self) -> None:
        if self._outgoing:
            data, self._outgoing = bytes(self._outgoing), bytearray()
            await self.stream.send_all(data)

    async def _line(self) -> bytes | None:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            try:
                data = await self.stream.receive_some(_CHUNK)
            except trio.BrokenResourceError:
                data = b""
            if not data:
                if self._buffer:  # an unterminated last line
                    line, self._buffer = bytes(self._buffer), bytearray()
                    return line
                return None
            self._buffer += data


def _matches(entry: CassetteEntry, actual: bytes) -> bool:
    if entry.redacted != "secret":
        return actual == entry.data
    assert entry.state is not None
    return redact_client_line(actual, entry.state) == entry.data
