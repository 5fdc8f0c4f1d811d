"""The recording proxy: a network adapter that stands between a POP3 client and a
real server, relays every byte exactly as received, and writes a cassette.

What is kept of each line (and what is redacted) is decided in ``_cassette_rules``;
the file format is ``_cassette``'s. Here are only sockets, TLS and timing.

With ``upstream_tls`` the upstream is POP3S and the proxy's own listener speaks
implicit TLS too, so the client does what it would do against the real server. A
client's STLS is relayed; when the upstream accepts it, the proxy starts TLS to the
upstream, then with the client, which it serves a certificate of its throwaway CA
(``tls``, a :class:`~fakepop.TlsCertificates`: give the client its CA).
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from ._cassette import CassetteEntry, CassetteWriter
from ._cassette_rules import BODY_MODES, BodyMode, Conversation, line_content, redact_body_line
from ._listening import Listening
from ._stream_io import close_stream
from ._tcp import TcpStream, close_sockets, listen_tcp, serve_tcp_sockets
from ._tls import TlsCertificates
from .errors import ConfigError, UsageError

__all__ = ["RecordingProxy", "parse_address", "record_to"]

logger = logging.getLogger("fakepop")

_CHUNK = 65536


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a (host, port) pair."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or not host:
        raise ConfigError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class RecordingProxy(Listening):
    """A POP3 proxy that records what passes through it into a cassette file.

    Start it with ``await nursery.start(proxy.serve)`` (or :func:`record_to`), point
    the client at :attr:`address`, and cancel to stop; every entry is on disk as soon
    as it happened. Errors while relaying (the upstream unreachable, a TLS handshake
    failing) end that session and are kept in :attr:`errors`.
    """

    _noun = "proxy"

    def __init__(
        self,
        cassette: str | os.PathLike[str],
        upstream: tuple[str, int] | str,
        *,
        upstream_tls: bool = False,
        upstream_ssl_context: ssl.SSLContext | None = None,
        verify_upstream: bool = True,
        tls: TlsCertificates | None = None,
        redact_bodies: BodyMode = "keep",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``upstream`` is ``(host, port)`` or ``"HOST:PORT"``. Its certificates are
        verified against the system's CAs, or ``upstream_ssl_context`` if given,
        unless ``verify_upstream=False``. ``redact_bodies`` is ``"keep"``,
        ``"synthetic"`` or ``"hash"`` (see ``docs/howto/cassettes.md``)."""
        if redact_bodies not in BODY_MODES:
            raise ConfigError(f"redact_bodies must be one of {BODY_MODES}, not {redact_bodies!r}")
        self.cassette = Path(cassette)
        self.upstream = parse_address(upstream) if isinstance(upstream, str) else upstream
        self.upstream_tls = upstream_tls
        context = upstream_ssl_context or ssl.create_default_context()
        if not verify_upstream:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._upstream_context = context
        #: The throwaway CA whose certificate the proxy shows clients over TLS.
        self.tls = tls or TlsCertificates()
        self._server_context = self.tls.server_context()
        self.redact_bodies: BodyMode = redact_bodies
        self._bind = (host, port)
        self._listeners: list[socket.socket] = []
        self._numbers = itertools.count(1)
        self._writer: CassetteWriter | None = None
        #: What went wrong while relaying, oldest first.
        self.errors: list[BaseException] = []

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and relay until cancelled; ``task_status.started()`` once listening."""
        if self._writer is not None:
            raise UsageError("this RecordingProxy is already recording")
        host, port = self.upstream
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._writer = CassetteWriter(
            self.cassette,
            upstream=shown,
            upstream_tls=self.upstream_tls,
            bodies=self.redact_bodies,
        )
        try:
            self._listeners = await listen_tcp(self._bind[1], host=self._bind[0])
            await serve_tcp_sockets(self._handle, self._listeners, task_status=task_status)
        finally:
            close_sockets(self._listeners)
            self._listeners = []
            self._writer.close()

    async def _handle(self, client: TcpStream) -> None:
        number = next(self._numbers)
        try:
            relay = await _Relay.open(self, number, client)
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            self._failed(number, exc)
            await close_stream(client)
            return
        try:
            await relay.run()
        except (OSError, trio.BrokenResourceError, ssl.SSLError) as exc:
            self._failed(number, exc)
        finally:
            await relay.close()

    def _failed(self, number: int, exc: BaseException) -> None:
        logger.warning("fakepop recording proxy: session %d: %s", number, exc)
        self.errors.append(exc)

    def _write(self, entry: CassetteEntry) -> None:
        assert self._writer is not None
        self._writer.write(entry)


class _Relay:
    """One client connection and its upstream connection, pumped both ways."""

    def __init__(
        self, proxy: RecordingProxy, number: int, client: trio.abc.Stream, upstream: trio.abc.Stream
    ) -> None:
        self.proxy = proxy
        self.number = number
        self.client = client
        self.upstream = upstream
        self.conversation = Conversation()
        self.started = trio.current_time()
        self._tls_decided: trio.Event | None = None
        self._closed_by: str | None = None

    @classmethod
    async def open(cls, proxy: RecordingProxy, number: int, client: TcpStream) -> _Relay:
        host, port = proxy.upstream
        upstream: trio.abc.Stream
        if proxy.upstream_tls:
            upstream = await trio.open_ssl_over_tcp_stream(
                host, port, ssl_context=proxy._upstream_context, https_compatible=True
            )
            await upstream.do_handshake()
            client_stream: trio.abc.Stream = trio.SSLStream(
                client, proxy._server_context, server_side=True, https_compatible=True
            )
            try:
                await client_stream.do_handshake()  # type: ignore[attr-defined]
            except BaseException:
                await close_stream(upstream)
                raise
        else:
            upstream = await trio.open_tcp_stream(host, port)
            client_stream = client
        relay = cls(proxy, number, client_stream, upstream)
        relay._record(kind="connect", tls=proxy.upstream_tls)
        return relay

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, "client", nursery.cancel_scope)
            nursery.start_soon(self._pump, "server", nursery.cancel_scope)

    async def close(self) -> None:
        self._record(kind="close", by=self._closed_by or "server")
        with trio.CancelScope(shield=True):
            await close_stream(self.client)
            await close_stream(self.upstream)

    def _record(self, **fields: object) -> None:
        t = round(trio.current_time() - self.started, 6)
        self.proxy._write(CassetteEntry(session=self.number, t=t, **fields))  # type: ignore[arg-type]

    async def _pump(self, side: str, scope: trio.CancelScope) -> None:
        pending = b""
        while True:
            source = self.client if side == "client" else self.upstream
            try:
                data = await source.receive_some(_CHUNK)
            except (trio.BrokenResourceError, ssl.SSLError):
                data = b""
            if not data:
                if pending:
                    await self._line(side, pending, ("unterminated",))
                self._closed_by = self._closed_by or side
                scope.cancel()
                return
            pending += data
            *lines, pending = pending.split(b"\n")
            stls = False
            for line in lines:
                flags = () if line.endswith(b"\r") else ("bare-lf",)
                stls |= await self._line(side, line + b"\n", flags)
            target = self.upstream if side == "client" else self.client
            await target.send_all(data)  # as received, whatever the lines were
            if stls and side == "client" and self._tls_decided is not None:
                await self._tls_decided.wait()  # the next octets may be a TLS handshake
            elif stls:
                await self._start_tls()

    async def _line(self, side: str, line: bytes, flags: tuple[str, ...]) -> bool:
        """Record a line; True if it is a client's STLS or the server's +OK to it."""
        if side == "client":
            note = self.conversation.client_line(line)
            self._record(
                kind="line",
                side="client",
                data=note.stored,
                state=note.state,
                redacted="secret" if note.redacted else None,
                flags=(*flags, "not-base64") if note.not_base64 else flags,
            )
            if note.starts_tls:
                self._tls_decided = trio.Event()  # before relaying: the answer may be quick
            return note.starts_tls
        server = self.conversation.server_line(line)
        data = line
        if server.body:
            content, _ = line_content(line)
            if content != b".":
                data = redact_body_line(line, self.proxy.redact_bodies)
        if server.malformed:
            flags = (*flags, "not-a-status")
        self._record(
            kind="line",
            side="server",
            data=data,
            state=server.state,
            answers=None if server.payload else server.answers,
            payload=server.payload,
            redacted="body" if data != line else None,
            flags=flags,
        )
        if server.stls_answered and not server.starts_tls and self._tls_decided is not None:
            self._tls_decided.set()
        return server.starts_tls

    async def _start_tls(self) -> None:
        host = self.proxy.upstream[0]
        upstream = trio.SSLStream(
            self.upstream,
            self.proxy._upstream_context,
            server_hostname=host,
            https_compatible=True,
        )
        await upstream.do_handshake()
        client = trio.SSLStream(
            self.client, self.proxy._server_context, server_side=True, https_compatible=True
        )
        await client.do_handshake()
        self.upstream, self.client = upstream, client
        self._record(kind="tls")
        if self._tls_decided is not None:
            self._tls_decided.set()


@asynccontextmanager
async def record_to(
    cassette: str | os.PathLike[str],
    upstream: tuple[str, int] | str,
    **options: object,
) -> AsyncIterator[RecordingProxy]:
    """Record every session through a :class:`RecordingProxy` while the block runs::

        async with fakepop.record_to("provider.jsonl", "pop.example.com:110") as proxy:
            await my_client.fetch(proxy.host, proxy.port)

    ``options`` are RecordingProxy's. Leaving the block stops the proxy (ending open
    sessions) and raises :class:`~fakepop.ServerError` if relaying failed.
    """
    from .errors import ServerError  # noqa: PLC0415

    proxy = RecordingProxy(cassette, upstream, **options)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.serve)
        try:
            yield proxy
        finally:
            nursery.cancel_scope.cancel()
    if proxy.errors:
        raise ServerError(proxy.errors)
