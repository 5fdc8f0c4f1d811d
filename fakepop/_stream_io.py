"""Writing a reply to a session's stream, and closing it, whatever the stream is: the
server's own :class:`~fakepop._tcp.TcpStream`, trio's ``SocketStream``, TLS over
either (``trio.SSLStream``), or a memory stream a test talks through.
"""

from __future__ import annotations

import socket
import struct
from contextlib import suppress

import trio

from ._replies import Reply
from ._tcp import TcpStream

__all__ = ["close_stream", "prepare_close", "send_reply"]

# Replies shorter than this go out in one write with their status line; longer
# payloads are sent as they are stored, without copying them to prepend the status:
# gathered with it in one system call on a socket, after it on other streams.
_COALESCE_LIMIT = 65536


async def send_reply(stream: trio.abc.Stream, reply: Reply) -> None:
    """Write a reply whole."""
    payload = reply.payload
    if payload is None:
        await stream.send_all(reply.status)
    elif len(payload) < _COALESCE_LIMIT:
        await stream.send_all(reply.status + payload)
    elif isinstance(stream, TcpStream):
        await stream.send_parts(reply.status, payload)
    else:
        await stream.send_all(reply.status)
        await stream.send_all(payload)


async def close_stream(stream: trio.abc.Stream) -> None:
    """Close a session's stream, even when cancelled."""
    if isinstance(stream, TcpStream):
        stream.close()  # at once, even when cancelled, and without yielding
    elif isinstance(stream, trio.SocketStream):
        # Closes the socket at once, even when cancelled; cheaper than
        # aclose_forcefully, which raises and catches a Cancelled every time.
        await stream.aclose()
    elif isinstance(stream, trio.SSLStream):
        # RFC 8314 section 3.4: send a TLS close alert first, if the peer lets us.
        with trio.move_on_after(1), suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.aclose()
        await close_stream(stream.transport_stream)
    else:
        await trio.aclose_forcefully(stream)


def prepare_close(stream: trio.abc.Stream, *, reset: bool) -> None:
    """Make the coming close send an RST instead of a FIN, for ``reset``."""
    # SO_LINGER on, with a zero timeout.
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if reset and isinstance(stream, TcpStream):
        stream.reset_on_close()
    elif reset and isinstance(stream, trio.SocketStream):
        with suppress(OSError):
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
