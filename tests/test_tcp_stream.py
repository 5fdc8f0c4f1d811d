"""The lean TCP stream under fakepop's sessions keeps the promises of a Trio stream
(fakepop/_tcp.py): receives are checkpoints, errors are Trio's stream errors, large
writes arrive whole, and the accept loop survives a failed accept().
"""

from __future__ import annotations

import errno
import logging
import poplib
import socket
from collections.abc import Iterator

import pytest
import trio
import trio.testing

from fakepop import Pop3Server
from fakepop._tcp import TcpStream, close_sockets, listen_tcp, serve_tcp_sockets


@pytest.fixture
def pair() -> Iterator[tuple[TcpStream, socket.socket]]:
    """A TcpStream and the socket at its other end (a socketpair: no network)."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    stream = TcpStream(ours, ("peer", 1))
    with theirs, ours:  # closed once the Trio run of the test has ended
        yield stream, theirs


async def test_a_receive_yields_even_when_data_is_waiting(
    pair: tuple[TcpStream, socket.socket],
) -> None:
    stream, peer = pair
    peer.sendall(b"NOOP\r\n")
    with trio.testing.assert_checkpoints():
        assert await stream.receive_some() == b"NOOP\r\n"


async def test_a_cancelled_receive_raises_and_leaves_the_data_for_later(
    pair: tuple[TcpStream, socket.socket],
) -> None:
    stream, peer = pair
    peer.sendall(b"STAT\r\n")
    with trio.CancelScope() as scope:
        scope.cancel()
        await stream.receive_some()
    assert scope.cancelled_caught
    assert await stream.receive_some() == b"STAT\r\n"


async def test_a_send_the_kernel_takes_whole_does_not_yield(
    pair: tuple[TcpStream, socket.socket],
) -> None:
    stream, peer = pair
    with trio.testing.assert_no_checkpoints():
        await stream.send_all(b"+OK\r\n")
    assert peer.recv(100) == b"+OK\r\n"


async def test_a_send_larger_than_the_socket_buffer_waits_and_arrives_whole(
    pair: tuple[TcpStream, socket.socket],
) -> None:
    stream, peer = pair
    payload = bytes(range(256)) * 16384  # 4 MiB, more than any socket buffer here
    received = bytearray()

    def read_all() -> None:
        while len(received) < 2 * len(payload) + 5:
            chunk = peer.recv(1 << 16)
            if not chunk:
                break
            received.extend(chunk)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, read_all)
        await stream.send_all(payload)
        await stream.send_parts(b"+OK\r\n", payload)
        stream.close()
    assert bytes(received) == payload + b"+OK\r\n" + payload


class _Trickle:
    """A socket whose kernel takes at most three octets a call, and refuses every
    other call (as a full send buffer does); it is always ready to be written."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.calls = 0
        self.taken = bytearray()

    def fileno(self) -> int:
        return self._sock.fileno()

    def sendmsg(self, buffers: list[bytes | memoryview]) -> int:
        self.calls += 1
        if self.calls % 2 == 0:
            raise BlockingIOError
        wanted = b"".join(bytes(buffer) for buffer in buffers)[:3]
        self.taken += wanted
        return len(wanted)


async def test_parts_taken_a_few_octets_at_a_time_arrive_whole_and_in_order(
    pair: tuple[TcpStream, socket.socket],
) -> None:
    """The status line and the payload may be cut anywhere, the status line too: what
    is left of a part is sent next, and a refused write waits for the socket."""
    stream, _ = pair
    trickle = _Trickle(stream.socket)
    trickling = TcpStream(trickle, ("peer", 1))  # type: ignore[arg-type]
    await trickling.send_parts(b"+OK 11 octets\r\n", b"Hello.\r\n.\r\n")
    assert bytes(trickle.taken) == b"+OK 11 octets\r\nHello.\r\n.\r\n"
    assert trickle.calls == 2 * 9 - 1  # 25 octets, 3 a call, a refusal between calls


async def test_errors_are_trio_stream_errors(pair: tuple[TcpStream, socket.socket]) -> None:
    stream, peer = pair
    peer.close()
    with pytest.raises(trio.BrokenResourceError):
        for _ in range(100):  # the first send may still be taken by the kernel
            await stream.send_all(b"x" * 65536)
    stream.close()
    stream.close()  # closing twice does nothing
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"+OK\r\n")
    with pytest.raises(trio.ClosedResourceError):
        await stream.receive_some()


async def test_reset_on_close_sends_an_rst() -> None:
    stream, peer = await _tcp_pair()
    with peer:
        stream.reset_on_close()
        await stream.aclose()
        with pytest.raises(ConnectionResetError):
            peer.recv(10)


async def _tcp_pair() -> tuple[TcpStream, socket.socket]:
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        peer = socket.create_connection(listener.getsockname())
        ours, address = listener.accept()
    ours.setblocking(False)
    await trio.lowlevel.checkpoint()
    return TcpStream(ours, address[:2]), peer


class _FailingOnce(socket.socket):
    # A listening socket whose first accepts fail: as a process out of file
    # descriptors sees it, then as a connection aborted before it was accepted.
    def __init__(self, fileno: int) -> None:
        super().__init__(fileno=fileno)
        self.failures = [
            OSError(errno.EMFILE, "Too many open files"),
            OSError(errno.ECONNABORTED, "Software caused connection abort"),
        ]

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            raise self.failures.pop(0)
        return super().accept()


async def test_accepting_survives_a_failed_accept(
    autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    (bound,) = await listen_tcp(0, host="127.0.0.1")
    listener = _FailingOnce(fileno=bound.detach())
    listener.setblocking(False)
    greetings: list[bytes] = []

    async def greet(stream: TcpStream) -> None:
        await stream.send_all(b"+OK hello\r\n")
        stream.close()

    def client() -> None:
        for _ in range(2):
            with socket.create_connection(listener.getsockname()[:2], timeout=5) as sock:
                greetings.append(sock.recv(100))

    with caplog.at_level(logging.WARNING, logger="fakepop"):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_tcp_sockets, greet, [listener])
            await trio.to_thread.run_sync(client)
            nursery.cancel_scope.cancel()
    close_sockets([listener])
    assert greetings == [b"+OK hello\r\n"] * 2
    assert "cannot accept a connection" in caplog.text
    assert not listener.failures


async def test_the_server_sees_each_peer_address_from_accept() -> None:
    server = Pop3Server({"alice": {"password": "pw", "messages": []}})
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)

        def client() -> int:
            pop = poplib.POP3(server.host, server.port)
            port = pop.sock.getsockname()[1]
            pop.quit()
            return int(port)

        port = await trio.to_thread.run_sync(client)
        await server.wait_idle()
        nursery.cancel_scope.cancel()
    (record,) = server.transcript.sessions
    assert record.peer == ("127.0.0.1", port)


async def test_accepted_connections_send_without_delay_and_in_large_writes() -> None:
    """Replies go out at once (no Nagle delay after a short status line), and a large
    one is written in large pieces: the socket counts as writable only once little of
    what was sent is left unsent."""
    server = Pop3Server({"alice": {"password": "pw", "messages": []}})
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        client = await trio.open_tcp_stream(server.host, server.port)
        await client.receive_some()  # the greeting: the session has started
        (session,) = server._sessions
        sock = session.stream.socket
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        if hasattr(socket, "TCP_NOTSENT_LOWAT"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == 16384
        await client.aclose()
        nursery.cancel_scope.cancel()
