"""Timers under an autojumping MockClock while a client runs in a worker thread.

The run has nothing to do while the thread works, so the clock jumps to the next
deadline: the autologout timer (RFC 1939 section 3), or the TLS handshake's, fires in
the middle of a session whatever the client does. fakepop fails the session with a
UsageError that says so (docs/howto/trio.md) rather than record a timeout that did
not happen; a Trio client, or no autojump, keeps the timers as they are.
"""

from __future__ import annotations

import socket

import pytest
import trio
import trio.testing

from fakepop import (
    EndReason,
    ServerConfig,
    ServerError,
    TlsCertificates,
    UsageError,
    open_pop3_server,
)

MAILBOXES = {"alice": "pw"}
CONFIG = ServerConfig(autologout=30)
TIMEOUT = 10


def connect_and_read_until_closed(port: int) -> bytes:
    """A client in a worker thread: connects, then reads until the server closes
    (whatever the thread does meanwhile, the Trio run has nothing to do)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        while chunk := sock.recv(4096):
            received += chunk
    return received


async def test_the_autologout_timer_refuses_to_fire_over_a_worker_thread(
    autojump_clock: trio.testing.MockClock,
) -> None:
    with pytest.raises(ServerError) as caught:
        async with open_pop3_server(MAILBOXES, config=CONFIG) as server:
            received = await trio.to_thread.run_sync(connect_and_read_until_closed, server.port)
    assert received.startswith(b"+OK fakepop POP3 server ready.")
    assert received.endswith(b"-ERR [SYS/TEMP] Internal server error; closing the connection\r\n")
    (error,) = caught.value.errors
    assert isinstance(error, UsageError)
    assert str(error).startswith(
        "the autologout timer (30 s) ended session 1 while a task of this Trio run waited "
        "in trio.to_thread.run_sync, under a MockClock that autojumps (autojump_clock)"
    )
    assert server.transcript.sessions[0].ended_by is EndReason.SERVER_ERROR


async def test_the_tls_handshake_timeout_refuses_to_fire_over_a_worker_thread(
    autojump_clock: trio.testing.MockClock,
) -> None:
    certificates = TlsCertificates()
    with pytest.raises(ServerError) as caught:
        async with open_pop3_server(
            MAILBOXES, config=CONFIG, ssl_context=certificates.server_context(), pop3s_port=0
        ) as server:
            # No ClientHello: the handshake waits, and the clock jumps over the thread.
            await trio.to_thread.run_sync(connect_and_read_until_closed, server.pop3s_port)
    (error,) = caught.value.errors
    assert isinstance(error, UsageError)
    assert str(error).startswith("the TLS handshake timeout (30 s) ended session 1 while")


async def test_a_trio_client_times_out_as_before(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_pop3_server(MAILBOXES, config=CONFIG) as server:
        async with await trio.open_tcp_stream(server.host, server.port) as stream:
            while await stream.receive_some():
                pass  # the greeting, then nothing until the server closes
        await server.wait_idle()
    assert server.transcript.sessions[0].ended_by is EndReason.TIMEOUT
    assert trio.current_time() == pytest.approx(30)


async def test_without_autojump_a_thread_client_times_out_as_before(
    mock_clock: trio.testing.MockClock,  # time moves only when the test moves it
) -> None:
    greeted = trio.Event()

    def client(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            received = sock.recv(4096)
            trio.from_thread.run_sync(greeted.set)
            while chunk := sock.recv(4096):
                received += chunk
        return received

    async with open_pop3_server(MAILBOXES, config=CONFIG) as server:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, client, server.port)
            await greeted.wait()
            await trio.testing.wait_all_tasks_blocked()  # the session waits for a command
            mock_clock.jump(30)
        await server.wait_idle()
    assert server.transcript.sessions[0].ended_by is EndReason.TIMEOUT
