"""TCP for fakepop's Trio servers: binding, accepting, and a lean byte stream.

Trio's :class:`trio.SocketStream` wraps a Trio socket, which wraps the stdlib socket;
each send and receive passes through both layers and yields to the scheduler twice.
A POP3 session sends a few short replies and receives a few short commands, so those
layers were a large part of what a session cost. :class:`TcpStream` is a
:class:`trio.abc.HalfCloseableStream` over the stdlib socket itself, driven with
Trio's public low-level waits, with the same guarantees that a session relies on:

- A receive is a checkpoint: it raises :class:`trio.Cancelled` when its scope is
  cancelled, and it lets other tasks run even when data was already waiting, so a
  client that pipelines without pause cannot starve the other sessions. When nothing
  has arrived yet, it lets the other tasks run and looks once more before it has the
  kernel watch the socket: a client usually answers while the server serves others.
- A send that the kernel takes whole in one call returns without yielding (a reply
  always follows a receive, which yielded); a send that has to wait for room waits in
  Trio, where cancellation reaches it.
- Errors are Trio's stream errors: :class:`trio.ClosedResourceError` for a socket
  closed on our side, :class:`trio.BrokenResourceError` for a connection the peer
  broke.

:func:`listen_tcp` binds as :func:`trio.open_tcp_listeners` does (every address of
the host, IPv6 sockets v6-only) and :func:`serve_tcp_sockets` accepts on them (or
:func:`accept_connections`, in a nursery of the caller's).
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import NoReturn

import trio

__all__ = [
    "TcpStream",
    "accept_connections",
    "close_sockets",
    "listen_tcp",
    "serve_tcp_sockets",
]

logger = logging.getLogger("fakepop")

_RECEIVE_SIZE = 65536
# These mean the socket was closed on our side (trio.SocketStream's rule too).
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})
# accept() failures that concern one connection only: the next may do better.
_ACCEPT_RETRY = frozenset(
    {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN, errno.EHOSTUNREACH}
)
# accept() failures for want of resources: wait a moment, as trio's listener does.
_ACCEPT_STARVED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_STARVED_PAUSE = 0.1
_NOTSENT_LOWAT = 16384
# Linux copies a listening socket's TCP options to the sockets it accepts, so they are
# set once there, not with two system calls per connection.
_OPTIONS_INHERITED = sys.platform.startswith("linux")


def _stream_error(exc: OSError) -> trio.ClosedResourceError | trio.BrokenResourceError:
    if exc.errno in _CLOSED_ERRNOS:
        return trio.ClosedResourceError("this socket was already closed")
    broken = trio.BrokenResourceError(f"socket connection broken: {exc}")
    broken.__cause__ = exc
    return broken


class TcpStream(trio.abc.HalfCloseableStream):
    """One accepted TCP connection, as a Trio stream (see the module's docstring)."""

    __slots__ = ("peer", "socket")

    def __init__(self, sock: socket.socket, peer: tuple[str, int]) -> None:
        #: The connected stdlib socket, non-blocking.
        self.socket = sock
        #: The client's (host, port), as accept() reported it.
        self.peer = peer

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        sock = self.socket
        try:
            sent = sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise _stream_error(exc) from None
        if sent == len(data):
            if not data:
                await trio.lowlevel.checkpoint()
            return
        await self._send_rest(memoryview(data)[sent:])

    async def _send_rest(self, view: memoryview) -> None:
        sock = self.socket
        while view:
            await trio.lowlevel.wait_writable(sock)
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _stream_error(exc) from None

    async def send_parts(self, *parts: bytes) -> None:
        """Send the parts in order, gathered into as few system calls as the kernel
        takes, none of them copied (a large reply after its status line)."""
        sock = self.socket
        left: list[bytes | memoryview] = list(parts)
        while True:
            try:
                sent = sock.sendmsg(left)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise _stream_error(exc) from None
            while left and sent >= len(left[0]):
                sent -= len(left.pop(0))
            if not left:
                return  # most often at once: the kernel took them whole
            if sent:
                left[0] = memoryview(left[0])[sent:]
            await trio.lowlevel.wait_writable(sock)

    async def wait_send_all_might_not_block(self) -> None:
        try:
            await trio.lowlevel.wait_writable(self.socket)
        except OSError as exc:  # the socket was closed meanwhile
            raise _stream_error(exc) from None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        size = max_bytes or _RECEIVE_SIZE
        sock = self.socket
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = sock.recv(size)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise _stream_error(exc) from None
        else:
            # Data was waiting: let the other tasks have their turn before using it.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        # Nothing yet: most often the client is reading the reply just sent and about
        # to answer. Let the other tasks run first and look again, before asking the
        # kernel to watch the socket (and to wake this task through it).
        await trio.lowlevel.checkpoint()
        while True:
            try:
                return sock.recv(size)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise _stream_error(exc) from None
            await trio.lowlevel.wait_readable(sock)

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint()
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise _stream_error(exc) from None

    def reset_on_close(self) -> None:
        """Make closing send an RST instead of a FIN (SO_LINGER on, zero timeout)."""
        # Already closed, or broken: then there is nothing left to reset.
        with suppress(OSError):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        """Close at once, without yielding (closing twice does nothing)."""
        sock = self.socket
        if sock.fileno() != -1:
            trio.lowlevel.notify_closing(sock)
            sock.close()

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


async def listen_tcp(port: int, *, host: str | None) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` (all interfaces for None), as
    trio.open_tcp_listeners binds them, owned by the caller (close_sockets)."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    sockets = []
    for listener in listeners:
        sock = socket.socket(fileno=listener.socket.detach())
        sock.setblocking(False)
        if _OPTIONS_INHERITED:
            _tune(sock)
        sockets.append(sock)
    return sockets


def _tune(sock: socket.socket) -> None:
    # Replies go out at once: no Nagle delay after a short status line.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_NOTSENT_LOWAT"):
        # Writable only once little is left unsent (as trio.SocketStream sets it): a
        # large reply then goes out in large writes, not in many small ones each time
        # a little room frees up.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, _NOTSENT_LOWAT)


def close_sockets(sockets: list[socket.socket]) -> None:
    """Close listening sockets, telling Trio first."""
    for sock in sockets:
        if sock.fileno() != -1:
            trio.lowlevel.notify_closing(sock)
            sock.close()


async def serve_tcp_sockets(
    handler: Callable[[TcpStream], Awaitable[object]],
    sockets: list[socket.socket],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Accept on every socket until cancelled, running ``handler(stream)`` for each
    connection in a task of its own; the handler owns (and closes) the stream."""
    async with trio.open_nursery() as nursery:
        accept_connections(nursery, handler, sockets)
        task_status.started()
    raise AssertionError("accepting never ends but by cancellation")  # pragma: no cover


def accept_connections(
    nursery: trio.Nursery,
    handler: Callable[[TcpStream], Awaitable[object]],
    sockets: list[socket.socket],
) -> None:
    """Accept on every socket, in tasks of ``nursery``, until it is cancelled, running
    ``handler(stream)`` for each connection in a task of its own there; the handler
    owns (and closes) the stream. For a server whose nursery holds other tasks too:
    no task and no nursery of its own, as :func:`serve_tcp_sockets` has."""
    for sock in sockets:
        nursery.start_soon(_accept_forever, sock, handler, nursery)


async def _accept_forever(
    listener: socket.socket,
    handler: Callable[[TcpStream], Awaitable[object]],
    nursery: trio.Nursery,
) -> NoReturn:
    while True:
        await trio.lowlevel.wait_readable(listener)
        while True:  # every connection waiting, before waiting again
            try:
                sock, address = listener.accept()
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in _ACCEPT_RETRY:
                    continue
                if exc.errno not in _ACCEPT_STARVED:
                    raise
                logger.warning("fakepop: cannot accept a connection (%s); waiting", exc)
                await trio.sleep(_STARVED_PAUSE)
                break
            sock.setblocking(False)
            if not _OPTIONS_INHERITED:
                _tune(sock)
            nursery.start_soon(handler, TcpStream(sock, address[:2]))
