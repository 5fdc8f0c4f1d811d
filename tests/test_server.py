"""The Trio server: starting, sessions over memory streams and sockets, timers, stopping,
and errors inside the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing

from fakepop import (
    Command,
    Pop3Protocol,
    Pop3Server,
    Reply,
    ServerConfig,
    ServerError,
    open_pop3_server,
    serve_pop3,
)
from tests.sansio import M1, M2, M3, TOTAL, checklist_store
from tests.trio_client import TrioPop3Client

MAILBOXES = {"alice": {"password": "secret", "messages": [M1, M2, M3]}, "bob": "tanstaaf"}


async def login(client: TrioPop3Client, user: str = "alice", password: str = "secret") -> None:
    assert (await client.line()).startswith(b"+OK")
    assert (await client.command(f"USER {user}")).startswith(b"+OK")
    reply = await client.command(f"PASS {password}")
    assert reply.startswith(b"+OK"), reply


@pytest.fixture
async def server() -> AsyncIterator[Pop3Server]:
    async with open_pop3_server(checklist_store()) as server:
        yield server


async def connect(server: Pop3Server) -> TrioPop3Client:
    return TrioPop3Client(await trio.open_tcp_stream(server.host, server.port))


async def test_nursery_start_hands_back_a_listening_server() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_pop3, MAILBOXES)
        assert isinstance(server, Pop3Server)
        assert server.host == "127.0.0.1"
        assert server.port > 0
        async with await connect(server) as client:
            await login(client)
            assert await client.command("STAT") == f"+OK 3 {TOTAL}".encode()
            nursery.cancel_scope.cancel()


async def test_a_server_serves_once_and_has_no_address_before() -> None:
    server = Pop3Server(MAILBOXES)
    with pytest.raises(RuntimeError, match="not listening"):
        server.address  # noqa: B018
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        with pytest.raises(RuntimeError, match="already serving"):
            await server.serve()
        nursery.cancel_scope.cancel()
    assert server.addresses == []


async def test_binding_a_used_port_fails_in_the_caller(server: Pop3Server) -> None:
    with pytest.raises(OSError, match="ddress already in use"):
        async with open_pop3_server({}, port=server.port):
            pass  # pragma: no cover


async def test_a_session_over_a_memory_stream() -> None:
    server = Pop3Server(MAILBOXES)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = TrioPop3Client(client_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        await login(client)
        status, body = await client.multiline("RETR 1")
        assert status.startswith(b"+OK")
        assert b"\r\n".join(body) + b"\r\n" == M1.replace("\n", "\r\n").replace(
            "\r\n.", "\r\n.."
        ).encode()
        assert await client.command("DELE 1") == b"+OK Message 1 marked for deletion"
        assert await client.command("QUIT") == b"+OK Logging out, 1 message deleted"
        assert await client.closed_by_server()
    assert len(server.store["alice"]) == 2


def _trickling_stream_pair() -> tuple[trio.StapledStream[Any, Any], trio.StapledStream[Any, Any]]:
    # Like memory_stream_pair, but every send is delivered one octet at a time, with a
    # checkpoint between octets, so each receive_some on either side sees fragments.
    def one_way() -> tuple[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]:
        send, receive = trio.testing.memory_stream_one_way_pair()

        async def trickle() -> None:
            while trio.testing.memory_stream_pump(send, receive, max_bytes=1):
                await trio.lowlevel.checkpoint()

        send.send_all_hook = trickle
        return send, receive

    client_send, server_receive = one_way()
    server_send, client_receive = one_way()
    return (
        trio.StapledStream(client_send, client_receive),
        trio.StapledStream(server_send, server_receive),
    )


async def test_a_session_arriving_in_fragments_both_ways() -> None:
    server = Pop3Server(MAILBOXES)
    client_stream, server_stream = _trickling_stream_pair()
    client = TrioPop3Client(client_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        assert (await client.line()).startswith(b"+OK fakepop POP3 server ready. <")
        await client_stream.send_all(b"USER alice\r\nPASS secret\r\nLIST\r\n")
        assert await client.line() == b"+OK Send PASS for alice"
        assert (await client.line()).startswith(b"+OK alice's maildrop is locked")
        assert await client.line() == f"+OK 3 messages ({TOTAL} octets)".encode()
        listing = [await client.line() for _ in range(4)]
        assert listing[-1] == b"."
        status, body = await client.multiline("TOP 1 2")
        assert status == b"+OK Top of message follows"
        assert body[-3:] == [b"", b"first line", b"..x"]
        assert await client.command("QUIT") == b"+OK Logging out, 0 messages deleted"
        assert await client.closed_by_server()
    assert not server.store["alice"].locked


async def test_autologout_over_a_memory_stream(autojump_clock: object) -> None:
    server = Pop3Server(MAILBOXES, config=ServerConfig(autologout=30))
    client_stream, server_stream = trio.testing.memory_stream_pair()
    client = TrioPop3Client(client_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        await login(client)
        start = trio.current_time()
        assert await client.closed_by_server()
        assert trio.current_time() - start == pytest.approx(30)
    assert server.active_sessions == 0
    assert not server.store["alice"].locked


async def test_many_concurrent_sessions(server: Pop3Server) -> None:
    for i in range(30):
        server.store.add_user(f"user{i}", f"pw{i}", [f"Subject: {i}\n\n{'x' * i}\n"])
    results: dict[int, bytes] = {}

    async def one(i: int) -> None:
        async with await connect(server) as client:
            await login(client, f"user{i}", f"pw{i}")
            results[i] = await client.command("STAT")
            assert await client.command("QUIT") == b"+OK Logging out, 0 messages deleted"

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(one, i)
    for i in range(30):
        size = len(f"Subject: {i}\r\n\r\n{'x' * i}\r\n")
        assert results[i] == f"+OK 1 {size}".encode()


async def test_pipelined_burst_over_a_socket(server: Pop3Server) -> None:
    """checklist #68 and #69 on a real socket: one write, replies in order."""
    async with await connect(server) as client:
        await client.line()
        await client.stream.send_all(
            b"USER alice\r\nPASS secret\r\n" + b"STAT\r\nLIST 2\r\nUIDL 2\r\nNOOP\r\n" * 50
        )
        assert (await client.line()).startswith(b"+OK Send PASS")
        assert (await client.line()).startswith(b"+OK alice's")
        for _ in range(50):
            assert await client.line() == f"+OK 3 {TOTAL}".encode()
            assert (await client.line()).startswith(b"+OK 2 ")
            assert (await client.line()).startswith(b"+OK 2 uid")
            assert await client.line() == b"+OK"


async def test_autologout_closes_silently_without_update(autojump_clock: object) -> None:
    """checklist #35: NOOP after 590 s is fine; then 600 s of silence close the session
    without a reply, M1 is kept and the lock released."""
    async with open_pop3_server(checklist_store()) as server:
        async with await connect(server) as client:
            await login(client)
            assert await client.command("DELE 1") == b"+OK Message 1 marked for deletion"
            await trio.sleep(590)  # virtual time: autojump_clock
            assert await client.command("NOOP") == b"+OK"
            await trio.sleep(599)  # virtual time: autojump_clock
            assert server.store["alice"].locked
            assert await client.command("NOOP") == b"+OK"
            start = trio.current_time()
            assert await client.closed_by_server()
            assert trio.current_time() - start == pytest.approx(600)
            assert len(server.store["alice"]) == 3
            assert not server.store["alice"].locked


async def test_autologout_can_be_shortened_for_tests(autojump_clock: object) -> None:
    async with open_pop3_server(MAILBOXES, config=ServerConfig(autologout=5)) as server:
        async with await connect(server) as client:
            await client.line()
            start = trio.current_time()
            assert await client.closed_by_server()
            assert trio.current_time() - start == pytest.approx(5)


async def test_a_command_arriving_byte_by_byte_resets_the_timer(autojump_clock: object) -> None:
    async with open_pop3_server(MAILBOXES, config=ServerConfig(autologout=10)) as server:
        async with await connect(server) as client:
            await client.line()
            for byte in b"NOOP\r\n":
                await trio.sleep(9)  # virtual time: autojump_clock
                await client.stream.send_all(bytes([byte]))
            assert await client.line() == b"-ERR NOOP is not allowed before login"


async def test_each_session_times_out_on_its_own_wait(autojump_clock: object) -> None:
    """RFC 1939 §3: the listener's sessions share one timer task; each idle client is
    logged out when its own wait runs out, not a moment sooner or later."""
    closed: dict[str, float] = {}
    async with open_pop3_server(MAILBOXES, config=ServerConfig(autologout=10)) as server:
        start = trio.current_time()

        async def client(name: str, connect_at: float, noop_at: float | None) -> None:
            await trio.sleep_until(start + connect_at)
            async with await connect(server) as session:
                await session.line()
                if noop_at is not None:
                    await trio.sleep_until(start + noop_at)
                    assert await session.command("NOOP") == b"-ERR NOOP is not allowed before login"
                assert await session.closed_by_server()
                closed[name] = trio.current_time() - start

        with trio.fail_after(100):  # virtual time: a timer that never fires fails here
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client, "early, then busy", 0, 8)
                nursery.start_soon(client, "later, idle", 3, None)
                nursery.start_soon(client, "last, idle", 5, None)
    assert closed == pytest.approx({"early, then busy": 18, "later, idle": 13, "last, idle": 15})


async def test_stopping_ends_open_sessions_without_update() -> None:
    store = checklist_store()
    async with open_pop3_server(store) as server:
        client = await connect(server)
        await login(client)
        await client.command("DELE 1")
        await client.command("DELE 2")
        assert server.active_sessions == 1
    async with client:
        assert await client.closed_by_server()
    assert len(store["alice"]) == 3
    assert not store["alice"].locked
    assert server.active_sessions == 0


async def test_a_client_that_vanishes_mid_session_loses_nothing(server: Pop3Server) -> None:
    """checklist #34 over a socket."""
    async with await connect(server) as client:
        await login(client)
        await client.command("DELE 1")
    with trio.fail_after(5):
        await server.wait_idle()
    assert not server.store["alice"].locked
    assert len(server.store["alice"]) == 3
    async with await connect(server) as again:
        await login(again)


class _Broken(Exception):
    pass


async def test_an_error_inside_the_server_is_reported_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Pop3Protocol.handle

    def handle(self: Pop3Protocol, command: Command) -> Reply:
        if command.keyword == "RETR":
            raise _Broken("simulated bug")
        return original(self, command)

    monkeypatch.setattr(Pop3Protocol, "handle", handle)
    store = checklist_store()
    with pytest.raises(ServerError, match="_Broken: simulated bug") as caught:
        async with open_pop3_server(store) as server:
            async with await connect(server) as client:
                await login(client)
                await client.command("DELE 1")
                assert await client.command("RETR 2") == (
                    b"-ERR [SYS/TEMP] Internal server error; closing the connection"
                )
                assert await client.closed_by_server()
                # The server goes on serving others, and the failed session released its lock.
                async with await connect(server) as other:
                    await login(other)
                    assert await other.command("STAT") == f"+OK 3 {TOTAL}".encode()
                assert len(server.errors) == 1
                with pytest.raises(ServerError):
                    server.check()
    assert isinstance(caught.value.__cause__, _Broken)
    assert len(store["alice"]) == 3


async def test_server_error_does_not_hide_the_tests_own_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def handle(self: Pop3Protocol, command: Command) -> Reply:
        raise _Broken("bug")

    monkeypatch.setattr(Pop3Protocol, "handle", handle)
    with pytest.raises(AssertionError, match="the test's own"):
        async with open_pop3_server(MAILBOXES) as server:
            async with await connect(server) as client:
                await client.line()
                await client.command("NOOP")
                raise AssertionError("the test's own failure")


async def test_large_retr_is_sent_whole(server: Pop3Server) -> None:
    body = "".join(f"line {i:06d} " + "x" * 90 + "\n" for i in range(3000))
    server.store.deliver("bob", f"Subject: big\n\n{body}")
    async with await connect(server) as client:
        await login(client, "bob", "tanstaaf")
        status, lines = await client.multiline("RETR 1")
        size = len(f"Subject: big\r\n\r\n{body.replace(chr(10), chr(13) + chr(10))}")
        assert status == f"+OK {size} octets".encode()
        assert len(lines) == 3002
        assert lines[-1].startswith(b"line 002999")


async def test_reset_ends_sessions_and_starts_afresh() -> None:
    async with open_pop3_server(checklist_store()) as server:
        port = server.port
        async with await connect(server) as client:
            await login(client)
            await client.command("DELE 1")
            await server.reset({"carol": {"password": "pw", "messages": ["Subject: c\n\nc\n"]}})
            assert await client.closed_by_server()
        await server.wait_idle()
        assert server.port == port
        assert server.store.users == ["carol"]
        assert len(server.transcript) == 0
        async with await connect(server) as client:
            await login(client, "carol", "pw")
            assert await client.command("STAT") == b"+OK 1 17"
        assert server.errors == []
