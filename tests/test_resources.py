"""Resource bounds, at small scale, over real sockets: what benchmarks/robustness.py
measures at full scale, here as correctness checks (no timing assertions).

- a client that pipelines without ever reading is stopped by TCP backpressure, the
  server's memory stays bounded, and another session keeps working meanwhile;
- an endless line never makes the server buffer more than 255 octets;
- a slow reader of a large RETR gets it intact and is not taken for idle, and a client
  that resets during one only ends its own session;
- stopping the server with 20 sessions open deletes nothing and leaves nothing locked;
- 100 connections open at once are all served;
- a finished session leaves nothing for the cyclic garbage collector.
"""

from __future__ import annotations

import gc
import poplib
import select
import socket
import struct
import time
import tracemalloc
from collections.abc import Iterator

import pytest

import fakepop._server
from fakepop import Command, EndReason, Pop3Protocol, Pop3ServerThread, ServerConfig

TIMEOUT = 10.0


def message(i: int) -> str:
    return f"From: load@example.org\nSubject: message {i}\n\nbody {i}\n"


def connect(server: Pop3ServerThread, *, buffers: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if buffers is not None:  # small socket buffers: backpressure after little data
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffers)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffers)
    sock.settimeout(TIMEOUT)
    sock.connect((server.host, server.port))
    return sock


class Lines:
    """Reads CRLF lines from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"closed after {self.buffer!r}")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"

    def ok(self) -> bytes:
        line = self.line()
        assert line.startswith(b"+OK"), line
        return line

    def at_eof(self) -> bool:
        try:
            rest = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        while rest:
            rest = self.sock.recv(65536)
        return True


def login(sock: socket.socket, user: str, password: str = "pw") -> Lines:
    lines = Lines(sock)
    lines.ok()
    sock.sendall(f"USER {user}\r\nPASS {password}\r\n".encode())
    lines.ok()
    lines.ok()
    return lines


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def poplib_session(server: Pop3ServerThread, user: str) -> tuple[int, int]:
    client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
    try:
        client.user(user)
        client.pass_("pw")
        stat = client.stat()
        client.retr(1)
        client.quit()
    finally:
        client.close()
    return stat


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


# -- (c) a client that pipelines and never reads --------------------------------------------


def test_another_session_works_while_a_client_pipelines_without_reading(traced: None) -> None:
    mailboxes = {
        "alice": {"password": "pw", "messages": [message(i) for i in range(50)]},
        "bob": {"password": "pw", "messages": [message(1)]},
    }
    with Pop3ServerThread(mailboxes) as server:
        pipe = connect(server, buffers=16384)
        login(pipe, "alice")
        pipe.setblocking(False)
        batch = b"LIST\r\nUIDL\r\nCAPA\r\nDELE 1\r\nNOOP\r\n" * 64
        cap = 64 << 20
        sent = 0
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        while sent < cap:
            try:
                sent += pipe.send(batch)
                continue
            except BlockingIOError:
                pass
            # Blocked for now; if the server does not read within a while, for good.
            if not select.select([], [pipe], [], 0.3)[1]:
                break
        assert sent < cap, "the server read everything a non-reading client sent"
        # Meanwhile another session is served as usual.
        assert poplib_session(server, "bob") == (1, len(message(1).replace("\n", "\r\n")))
        assert tracemalloc.get_traced_memory()[1] - baseline < (4 << 20)
        reset(pipe)
        server.wait_idle(timeout=TIMEOUT)
        alice = server.store["alice"]
        assert len(alice.messages) == 50  # DELE without QUIT deleted nothing
        assert not alice.locked
        assert server.errors == []


# -- (d) a line that never ends ----------------------------------------------------------------


class RecordingProtocol(Pop3Protocol):
    """Records the most octets the line buffer held while the server waited to read."""

    most_buffered = 0
    waits = 0

    def next_command(self) -> Command | None:
        command = super().next_command()
        if command is None:
            cls = RecordingProtocol
            cls.most_buffered = max(cls.most_buffered, self._lines.pending)
            cls.waits += 1
        return command


def test_the_server_side_buffer_for_an_endless_line_never_exceeds_255_octets(
    monkeypatch: pytest.MonkeyPatch, traced: None
) -> None:
    monkeypatch.setattr(fakepop._session, "Pop3Protocol", RecordingProtocol)
    RecordingProtocol.most_buffered = RecordingProtocol.waits = 0
    with Pop3ServerThread({"alice": "pw"}) as server:
        sock = connect(server)
        lines = Lines(sock)
        lines.ok()
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        chunk = b"x" * 65536
        for _ in range(64):  # 4 MiB, no LF
            sock.sendall(chunk)
        assert tracemalloc.get_traced_memory()[1] - baseline < (1 << 20)
        sock.sendall(b"\r\nNOOP\r\nQUIT\r\n")
        assert lines.line().startswith(b"-ERR Line too long")  # once, for the whole line
        assert lines.line().startswith(b"-ERR NOOP")  # the next line is a command again
        assert lines.line().startswith(b"+OK")
        assert lines.at_eof()
        sock.close()
        server.wait_idle(timeout=TIMEOUT)
        assert server.errors == []
    assert RecordingProtocol.waits > 64  # it read the line piece by piece, at least
    assert RecordingProtocol.most_buffered <= 255


# -- (e) a slow reader of a large RETR ---------------------------------------------------------


def _largest_send_buffer() -> int:
    # The most the kernel may queue in one socket's send buffer (Linux), so that a
    # message larger than that is still being sent while the client reads slowly.
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as limits:
            return int(limits.read().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 << 20


def test_a_slow_reader_of_a_large_retr_gets_it_intact_and_is_not_idle() -> None:
    line = "y" * 98 + "\n"
    size = _largest_send_buffer() + (4 << 20)
    big = "Subject: big\n\n" + line * (size // 100)
    wire = big.replace("\n", "\r\n").encode()
    mailboxes = {
        "alice": {"password": "pw", "messages": [big]},
        "bob": {"password": "pw", "messages": [message(1)]},
    }
    # The client reads slowly for 2.5 times the autologout time, then fast: a client
    # that is reading a reply is not idle, so the session must still be there for QUIT.
    autologout = 0.4
    with Pop3ServerThread(mailboxes, config=ServerConfig(autologout=autologout)) as server:
        sock = connect(server, buffers=8192)
        lines = login(sock, "alice")
        sock.sendall(b"RETR 1\r\n")
        assert lines.ok().startswith(b"+OK")
        received = bytearray(lines.buffer)
        slow_until = time.monotonic() + 2.5 * autologout
        other_served = False
        while not received.endswith(b"\r\n.\r\n"):
            if time.monotonic() < slow_until:
                time.sleep(0.005)  # sleep-ok: this client is the slow reader under test
                if not other_served and time.monotonic() > slow_until - autologout:
                    # Meanwhile another session is served as usual.
                    assert poplib_session(server, "bob")[0] == 1
                    other_served = True
            data = sock.recv(65536)
            assert data, "the server closed the connection mid-RETR"
            received += data
        assert other_served
        assert len(received) < len(wire) * 2  # (a cheap check before the exact one)
        assert bytes(received[:-3]) == wire
        sock.sendall(b"QUIT\r\n")
        assert Lines(sock).ok()
        sock.close()
        server.wait_idle(timeout=TIMEOUT)
        assert server.store["alice"].retrieved == ("uid000001",)
        assert server.transcript.sessions_of("alice")[0].ended_by is EndReason.QUIT
        assert server.errors == []


def test_a_client_that_resets_during_a_large_retr_only_ends_its_session() -> None:
    # A large payload goes out gathered with its status line, past SocketStream's
    # send_all: a reset must still read as the client gone, not as a server error.
    line = "z" * 98 + "\n"
    big = "Subject: big\n\n" + line * ((_largest_send_buffer() + (1 << 20)) // 100)
    with Pop3ServerThread({"alice": {"password": "pw", "messages": [big]}}) as server:
        sock = connect(server, buffers=8192)
        lines = login(sock, "alice")
        sock.sendall(b"RETR 1\r\n")
        assert lines.ok().startswith(b"+OK")
        reset(sock)  # the server is still writing: far more than the buffers hold
        server.wait_idle(timeout=TIMEOUT)
        (session,) = server.transcript.sessions_of("alice")
        assert session.ended_by is EndReason.CLIENT_CLOSED
        assert "reply not sent whole: client gone" in [entry.text for entry in session.entries]
        assert server.errors == []


# -- (f) stopping with sessions open -------------------------------------------------------------


def test_stopping_with_20_open_sessions_deletes_nothing_and_leaves_nothing_locked() -> None:
    users = [f"user{i:02d}" for i in range(20)]
    server = Pop3ServerThread(
        {user: {"password": "pw", "messages": [message(n) for n in range(3)]} for user in users}
    )
    server.start()
    try:
        sessions = []
        for user in users:
            sock = connect(server)
            lines = login(sock, user)
            sock.sendall(b"DELE 1\r\nDELE 2\r\n")
            lines.ok()
            lines.ok()
            sessions.append((sock, lines))
        assert server.server.active_sessions == 20
    finally:
        server.stop()
    for sock, lines in sessions:
        assert lines.at_eof()
        sock.close()
    for user in users:
        mailbox = server.store[user]
        assert len(mailbox.messages) == 3, user
        assert mailbox.deleted == ()
        assert not mailbox.locked
    ends = [record.ended_by for record in server.transcript.sessions]
    assert ends == [EndReason.SERVER_STOPPED] * 20


# -- (a) many connections at once ------------------------------------------------------------------


def test_100_connections_open_at_once_are_all_served() -> None:
    users = [f"c{i:03d}" for i in range(100)]
    mailboxes = {user: {"password": "pw", "messages": [message(i)]} for i, user in enumerate(users)}
    with Pop3ServerThread(mailboxes) as server:
        socks = [connect(server) for _ in users]
        readers = [Lines(sock) for sock in socks]
        for reader in readers:
            reader.ok()
        for sock, user in zip(socks, users, strict=True):
            sock.sendall(f"USER {user}\r\nPASS pw\r\nSTAT\r\n".encode())
        for i, reader in enumerate(readers):
            reader.ok()
            reader.ok()
            size = len(message(i).replace("\n", "\r\n"))
            assert reader.ok() == b"+OK 1 %d\r\n" % size
        assert server.server.active_sessions == 100
        assert all(server.store[user].locked for user in users)
        for sock in socks:
            sock.sendall(b"QUIT\r\n")
        for sock, reader in zip(socks, readers, strict=True):
            reader.ok()
            assert reader.at_eof()
            sock.close()
        server.wait_idle(timeout=TIMEOUT)
        assert not any(server.store[user].locked for user in users)
        assert server.errors == []


# -- what a finished session leaves behind ---------------------------------------------------


@pytest.fixture
def uncollected_garbage() -> Iterator[list[object]]:
    # With the collector off and DEBUG_SAVEALL, gc.collect() puts what only reference
    # cycles kept alive into gc.garbage instead of freeing it.
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_a_finished_session_is_freed_without_the_cyclic_collector(
    uncollected_garbage: list[object],
) -> None:
    # Nothing of a session may wait for the cyclic garbage collector: its passes cost
    # the server CPU in proportion to what it holds, as sessions come and go.
    with Pop3ServerThread({"alice": {"password": "pw", "messages": [message(1)]}}) as server:
        for _ in range(3):
            assert poplib_session(server, "alice")[0] == 1
            server.wait_idle(timeout=TIMEOUT)
        gc.collect()
    left = [type(obj) for obj in uncollected_garbage]
    assert [kind.__qualname__ for kind in left if kind.__module__.startswith("fakepop")] == []
