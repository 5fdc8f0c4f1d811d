"""Load clients on raw sockets, cheap enough per command to keep a server busy.

``churn`` runs many short sessions from one epoll loop; ``Session`` is one logged-in
connection that sends pipelined batches of commands and counts the replies.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Sequence

__all__ = ["Session", "churn"]

HOST = "127.0.0.1"
# Ends every multi-line reply; dot-stuffing keeps it out of the payload (RFC 1939 3).
_TERMINATOR = b"\r\n.\r\n"
_KEEP = len(_TERMINATOR) - 1
_BUFFER_SIZE = 1 << 20
_TIMEOUT = 30.0


class ProtocolError(Exception):
    """The server answered something the benchmark did not expect."""


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class _Churner:
    # One churn connection: its socket, whose credentials it uses, and how far it got.
    __slots__ = ("pending", "replies", "slot", "sock")

    def __init__(self, sock: socket.socket, slot: int) -> None:
        self.sock = sock
        self.slot = slot
        self.replies = 0
        self.pending = b""  # an unfinished reply line


def churn(port: int, credentials: Sequence[tuple[str, str]], sessions: int) -> None:
    """Run ``sessions`` sessions of greeting / USER / PASS / STAT / QUIT, each command
    sent only once the previous reply arrived, ``len(credentials)`` at a time (one
    connection per user, since a mailbox is locked while a session has it)."""
    scripts = [
        (f"USER {user}\r\n".encode(), f"PASS {password}\r\n".encode(), b"STAT\r\n", b"QUIT\r\n")
        for user, password in credentials
    ]
    poller = select.epoll()
    connections: dict[int, _Churner] = {}
    started = finished = 0

    def start(slot: int) -> None:
        nonlocal started
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.connect((HOST, port))  # loopback: the handshake completes inside connect()
        sock.setblocking(False)
        poller.register(sock.fileno(), select.EPOLLIN)
        connections[sock.fileno()] = _Churner(sock, slot)
        started += 1

    try:
        for slot in range(min(len(scripts), sessions)):
            start(slot)
        while finished < sessions:
            events = poller.poll(_TIMEOUT)
            if not events:
                raise TimeoutError(f"churn: no reply for {_TIMEOUT} s")
            for fd, _ in events:
                conn = connections[fd]
                data = conn.sock.recv(4096)
                if not data:
                    raise ProtocolError(f"churn: server closed after {conn.replies} replies")
                line = conn.pending + data
                if not line.endswith(b"\n"):
                    conn.pending = line  # a partial line; wait for the rest
                    continue
                if not line.startswith(b"+OK") or line.count(b"\n") != 1:
                    raise ProtocolError(f"churn: unexpected reply {line!r}")
                conn.pending = b""
                script = scripts[conn.slot]
                if conn.replies == len(script):  # that was the reply to QUIT
                    poller.unregister(fd)
                    del connections[fd]
                    conn.sock.close()
                    finished += 1
                    if started < sessions:
                        start(conn.slot)
                    continue
                conn.sock.send(script[conn.replies])
                conn.replies += 1
    finally:
        for conn in connections.values():
            conn.sock.close()
        poller.close()


class Session:
    """One logged-in connection (TRANSACTION state), used for pipelined batches."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self._sock = _connect(port)
        self._buffer = bytearray(_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._expect_line()  # the greeting
        for command in (f"USER {user}", f"PASS {password}"):
            self._sock.sendall(command.encode() + b"\r\n")
            self._expect_line()

    def batch(self, commands: bytes, replies: int, *, check: bool = False) -> int:
        """Send ``commands`` in one write, read ``replies`` multi-line replies, and
        return the octets received. ``check`` parses every reply (slower)."""
        self._sock.sendall(commands)
        if check:
            return self._read_checked(replies)
        return self._read_counting(replies)

    def quit(self) -> None:
        self._sock.sendall(b"QUIT\r\n")
        self._expect_line()
        self._sock.close()

    def _expect_line(self) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            data = self._sock.recv(4096)
            if not data:
                raise ProtocolError(f"server closed the connection after {line!r}")
            line += data
        if not line.startswith(b"+OK"):
            raise ProtocolError(f"unexpected reply {line!r}")
        return line

    def _read_counting(self, replies: int) -> int:
        # Counts terminators chunk by chunk, keeping the last octets of each chunk so
        # a terminator split over two chunks is found once. Valid only for +OK replies,
        # which is what _read_checked verified on the same commands beforehand.
        buffer, view, recv_into = self._buffer, self._view, self._sock.recv_into
        kept = found = received = 0
        while found < replies:
            count = recv_into(view[kept:])
            if not count:
                raise ProtocolError("server closed the connection mid-batch")
            received += count
            end = kept + count
            found += buffer.count(_TERMINATOR, 0, end)
            kept = min(_KEEP, end)
            buffer[:kept] = buffer[end - kept : end]
        if found != replies:
            raise ProtocolError(f"expected {replies} replies, got {found}")
        return received

    def _read_checked(self, replies: int) -> int:
        data = bytearray()
        parsed = 0
        position = 0
        while parsed < replies:
            chunk = self._sock.recv(_BUFFER_SIZE)
            if not chunk:
                raise ProtocolError("server closed the connection mid-batch")
            data += chunk
            while parsed < replies:
                status_end = data.find(b"\r\n", position)
                if status_end < 0:
                    break
                if not data.startswith(b"+OK", position):
                    raise ProtocolError(f"unexpected reply {bytes(data[position:status_end])!r}")
                end = data.find(_TERMINATOR, status_end)
                if end < 0:
                    break
                position = end + len(_TERMINATOR)
                parsed += 1
        if position != len(data):
            raise ProtocolError(f"{len(data) - position} octets after the last reply")
        return len(data)
