"""Trio: the server runs in the test's own Trio run, on the test's clock."""

import poplib

import pytest
import trio
import trio.testing

from fakepop import EndReason, Pop3Server, open_pop3_server

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}

# pytest-trio runs these tests (not needed where trio_mode = true is set).
pytestmark = pytest.mark.trio


def count_messages(host: str, port: int) -> int:
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        count, _ = client.stat()
        client.quit()
    finally:
        client.close()
    return count


async def test_open_pop3_server() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        # Blocking client code runs in a worker thread (on the real clock: see above).
        count = await trio.to_thread.run_sync(count_messages, server.host, server.port)
        await server.wait_idle()  # every session has ended
    assert count == 1


async def test_serve_pop3_in_your_own_nursery() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(Pop3Server(MAILBOXES).serve)
        assert await trio.to_thread.run_sync(count_messages, server.host, server.port) == 1
        nursery.cancel_scope.cancel()  # stops the server


async def receive_line(stream: trio.abc.Stream) -> bytes:
    line = b""
    while not line.endswith(b"\r\n"):
        chunk = await stream.receive_some(1)
        if not chunk:
            break
        line += chunk
    return line


@pytest.mark.pop3(MAILBOXES, autologout=600)
async def test_autologout_in_virtual_time(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    stream = await trio.open_tcp_stream(trio_pop3_server.host, trio_pop3_server.port)
    async with stream:
        assert (await receive_line(stream)).startswith(b"+OK")
        await stream.send_all(b"USER alice\r\n")
        assert (await receive_line(stream)).startswith(b"+OK")

        await trio.sleep(601)  # ten minutes of silence take no real time at all

        assert await stream.receive_some(1) == b""  # the server hung up
    await trio_pop3_server.wait_idle()
    assert trio_pop3_server.transcript.sessions[0].ended_by is EndReason.TIMEOUT


async def test_no_socket_at_all() -> None:
    server = Pop3Server(MAILBOXES)
    client, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_end)
        assert (await receive_line(client)).startswith(b"+OK")
        await client.send_all(b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n")
        replies = [await receive_line(client) for _ in range(4)]
    assert replies[2] == b"+OK 1 22\r\n"
    assert server.transcript.commands() == ["USER alice", "PASS ****", "STAT", "QUIT"]
