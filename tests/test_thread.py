"""Pop3ServerThread: fakepop in a background thread, for sync and asyncio tests.

Plain sync test functions drive it with the standard library's ``poplib`` (every socket
with a timeout); one test uses asyncio streams and one runs it from a Trio task. After
every test no ``fakepop-*`` thread may be left alive. Nothing waits with a fixed sleep.
"""

from __future__ import annotations

import asyncio
import errno
import poplib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from fakepop import Command, MailStore, Pop3Protocol, Pop3Server, Reply, ServerError, faults
from fakepop._thread import Pop3ServerThread
from tests.clients import ALICE_WIRE, CLIENT_TIMEOUT, mailboxes
from tests.trio_client import TrioPop3Client

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

ALICE_OCTETS = sum(len(wire) for wire in ALICE_WIRE)
#: What a poplib call raises once the server has closed the connection.
CONNECTION_GONE = (poplib.error_proto, OSError)


# Server threads that were running before the current test started (the session-wide
# server behind pop3_shared_server, if another module used it): not this test's.
_BEFORE: set[threading.Thread] = set()


def server_threads() -> list[threading.Thread]:
    """The fakepop server threads the current test started and that still run."""
    return [
        t for t in threading.enumerate() if t.name.startswith("fakepop") and t not in _BEFORE
    ]


@pytest.fixture(autouse=True)
def no_server_thread_left() -> Iterator[None]:
    _BEFORE.clear()
    _BEFORE.update(t for t in threading.enumerate() if t.name.startswith("fakepop"))
    yield
    assert server_threads() == [], "a test left a fakepop server thread running"


@contextmanager
def pop3(
    server: Pop3ServerThread, user: str | None = "alice", password: str = "secret"
) -> Iterator[poplib.POP3]:
    """A poplib connection, logged in as ``user`` unless None; closed on exit."""
    client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
    try:
        if user is not None:
            client.user(user)
            client.pass_(password)
        yield client
    finally:
        client.close()


class _Broken(Exception):
    pass


class _Crash(BaseException):
    """Not an Exception: a session does not catch it, so it ends trio.run itself."""


def break_command(monkeypatch: pytest.MonkeyPatch, keyword: str, error: BaseException) -> None:
    """Make the server raise ``error`` while handling ``keyword`` (a simulated bug)."""
    original = Pop3Protocol.handle

    def handle(self: Pop3Protocol, command: Command) -> Reply:
        if command.keyword == keyword:
            raise error
        return original(self, command)

    monkeypatch.setattr(Pop3Protocol, "handle", handle)


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


# -- starting and stopping ----------------------------------------------------------
def test_start_listens_on_a_real_port_and_stop_ends_the_thread() -> None:
    store = MailStore(mailboxes())
    server = Pop3ServerThread(store)
    assert server.store is store is server.server.store
    assert server.errors is server.server.errors
    assert not server.is_running()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port
    assert repr(server) == "<Pop3ServerThread not started>"

    server.start()
    assert server.is_running()
    host, port = server.address
    assert (host, port) == (server.host, server.port)
    assert host == "127.0.0.1"
    assert port != 0
    assert repr(server) == f"<Pop3ServerThread running on 127.0.0.1:{port}>"
    [thread] = server_threads()
    assert thread.name == "fakepop-server"
    assert thread.daemon

    server.stop()
    assert not server.is_running()
    assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address
    assert repr(server) == "<Pop3ServerThread stopped>"


def test_a_poplib_session_and_the_store_afterwards() -> None:
    with Pop3ServerThread(mailboxes()) as server:
        with pop3(server) as client:
            assert client.stat() == (4, ALICE_OCTETS)
            _, lines, octets = client.retr(1)
            assert octets == len(ALICE_WIRE[0])  # poplib counts the unstuffed lines' CRLFs
            assert b"Subject: dot-stuffing" in lines
            client.dele(1)
            client.quit()
        server.wait_idle()
        alice = server.store["alice"]
        assert [m.uid for m in alice.deleted] == ["uid000001"]
        assert alice.uids == ["uid000002", "uid000003", "uid000004"]
        assert alice.retrieved == ("uid000001",)
        assert not alice.locked
    assert not server.is_running()


def test_a_port_in_use_is_raised_in_the_caller_as_the_original_oserror() -> None:
    with Pop3ServerThread() as first:
        second = Pop3ServerThread(port=first.port)
        with pytest.raises(OSError) as caught:  # noqa: PT011 (the errno is checked)
            second.start()
        assert type(caught.value) is OSError
        assert caught.value.errno == errno.EADDRINUSE
        assert not second.is_running()
        assert server_threads() == [first._thread]  # the failed one's thread is gone
        second.stop()  # nothing to stop, nothing to raise
        with pytest.raises(RuntimeError, match="runs only once"):
            second.start()


def test_a_host_that_is_not_ours_is_raised_in_the_caller() -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): numeric, so no DNS lookup, and never local.
    server = Pop3ServerThread(host="192.0.2.1")
    with pytest.raises(OSError) as caught:  # noqa: PT011 (the errno is checked)
        server.start()
    assert caught.value.errno == errno.EADDRNOTAVAIL
    assert not server.is_running()
    assert server_threads() == []


def test_start_twice_stop_twice_and_no_restart() -> None:
    server = Pop3ServerThread()
    server.stop()  # before start: nothing to do
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        assert server.is_running()
    finally:
        server.stop()
    server.stop()  # idempotent
    # One run per object, like threading.Thread: a restart would get a new port and
    # carry the old run's errors. A new server may share the store instead.
    with pytest.raises(RuntimeError, match="runs only once"):
        server.start()
    assert server_threads() == []


def test_stop_ends_open_sessions_at_once_without_update() -> None:
    server = Pop3ServerThread(mailboxes())
    server.start()
    try:
        with pop3(server) as client:
            client.dele(1)
            client.dele(2)
            assert server.store["alice"].locked
            # Returns at once: a session still waiting out its 600 s autologout would
            # make stop() fail after its join timeout instead.
            server.stop()
            alice = server.store["alice"]
            assert len(alice) == 4
            assert alice.deleted == ()
            assert not alice.locked
            with pytest.raises(CONNECTION_GONE):
                client.stat()
    finally:
        server.stop()
    # The same mail, served again by a new server sharing the store: the lock is free.
    with Pop3ServerThread(server.store) as again, pop3(again) as client:
        assert client.stat() == (4, ALICE_OCTETS)
        client.quit()


def test_mail_delivered_during_a_session_shows_in_the_next_one() -> None:
    with Pop3ServerThread(mailboxes()) as server:
        with pop3(server) as client:
            server.store.deliver("alice", "Subject: late\n\nnew mail\n", uid="late")
            assert client.stat() == (4, ALICE_OCTETS)
            assert len(client.list()[1]) == 4
            client.quit()
        server.wait_idle()
        with pop3(server) as client:
            count, _ = client.stat()
            assert count == 5
            assert client.uidl(5) == b"+OK 5 late"
            client.quit()


# -- errors inside the server -------------------------------------------------------
def test_a_session_error_is_raised_by_check_and_by_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Broken("simulated bug"))
    server = Pop3ServerThread(mailboxes())
    server.start()
    try:
        server.check()  # nothing yet
        with pop3(server) as client:
            with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
                client.stat()
        server.wait_idle()
        assert [type(e) for e in server.errors] == [_Broken]
        with pytest.raises(ServerError, match="_Broken: simulated bug"):
            server.check()
        assert server.is_running()  # other sessions would go on
    finally:
        with pytest.raises(ServerError) as caught:
            server.stop()
    assert isinstance(caught.value.__cause__, _Broken)
    server.stop()  # reported once; a second stop is quiet
    with pytest.raises(ServerError):
        server.check()  # but check() still says so on demand
    assert len(server.store["alice"]) == 4


def test_a_session_error_is_raised_when_the_with_block_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Broken("simulated bug"))
    with pytest.raises(ServerError, match="_Broken"):
        with Pop3ServerThread(mailboxes()) as server, pop3(server) as client:
            with pytest.raises(poplib.error_proto):
                client.stat()
    assert not server.is_running()


def test_a_server_error_does_not_hide_the_tests_own_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Broken("simulated bug"))
    with pytest.raises(AssertionError, match="the test's own failure") as caught:
        with Pop3ServerThread(mailboxes()) as server, pop3(server) as client:
            with pytest.raises(poplib.error_proto):
                client.stat()
            raise AssertionError("the test's own failure")
    if sys.version_info >= (3, 11):
        assert any("_Broken: simulated bug" in note for note in caught.value.__notes__)
    assert not server.is_running()


def test_an_exception_that_ends_the_server_thread_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Crash("the server itself died"))
    server = Pop3ServerThread(mailboxes())
    server.start()
    with pop3(server) as client, pytest.raises(CONNECTION_GONE):
        client.stat()
    # Let the crash end trio.run before stopping. Cancelling at once races it: the
    # session's `await stream.aclose()` (in handle_stream's finally) is a checkpoint,
    # so the stop's Cancelled can replace the in-flight _Crash there and lose it.
    assert server._thread is not None
    server._thread.join(CLIENT_TIMEOUT)
    assert not server.is_running()
    with pytest.raises(ServerError, match="1 error") as caught:
        server.stop()
    [crash] = server.errors
    assert [type(e) for e in leaves(crash)] == [_Crash]
    assert caught.value.__cause__ is crash
    assert not server.is_running()
    assert not server.store["alice"].locked


# -- waiting ------------------------------------------------------------------------
def test_wait_idle_times_out_while_a_session_stays_open() -> None:
    server = Pop3ServerThread(mailboxes())
    with pytest.raises(RuntimeError, match="not running"):
        server.wait_idle()
    with server:
        server.wait_idle()  # no session: returns at once
        with pop3(server) as client:
            with pytest.raises(TimeoutError, match="1 POP3 session"):
                server.wait_idle(timeout=0.05)
            client.quit()
        server.wait_idle()
        assert server.server.active_sessions == 0


# -- other event loops --------------------------------------------------------------
def test_an_asyncio_client_against_a_server_started_inside_the_loop() -> None:
    async def line(reader: asyncio.StreamReader) -> bytes:
        return await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT)

    async def session() -> None:
        # start() and stop() run inside the running asyncio loop: it is just a thread.
        with Pop3ServerThread(mailboxes()) as server:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(server.host, server.port), CLIENT_TIMEOUT
            )
            try:
                assert (await line(reader)).startswith(b"+OK ")
                for command, expected in [
                    (b"USER alice", b"+OK"),
                    (b"PASS secret", b"+OK"),
                    (b"STAT", f"+OK 4 {ALICE_OCTETS}".encode()),
                    (b"QUIT", b"+OK"),
                ]:
                    writer.write(command + b"\r\n")
                    assert (await line(reader)).startswith(expected)
                assert await line(reader) == b""  # the server closed the connection
            finally:
                writer.close()
                await writer.wait_closed()
            server.wait_idle()
            alice = server.store["alice"]
            assert alice.logins == 1
            assert not alice.locked

    asyncio.run(session())


async def test_from_a_trio_task() -> None:
    # The test's own trio.run and the server's in its thread are separate runs.
    with Pop3ServerThread(mailboxes()) as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with TrioPop3Client(stream) as client:
            with trio.fail_after(CLIENT_TIMEOUT):
                assert (await client.line()).startswith(b"+OK ")
                assert (await client.command("USER alice")).startswith(b"+OK")
                assert (await client.command("PASS secret")).startswith(b"+OK")
                assert await client.command("STAT") == f"+OK 4 {ALICE_OCTETS}".encode()
                assert (await client.command("QUIT")).startswith(b"+OK")
        with pytest.raises(RuntimeError, match="to_thread"):
            server.wait_idle()  # it would block this task's own trio run
        await trio.to_thread.run_sync(server.wait_idle)
        assert server.store["alice"].logins == 1


def test_reset_gives_a_fresh_server_on_the_same_address() -> None:
    alice = {"alice": {"password": "pw", "messages": ["Subject: a\n\nA\n"]}}
    with Pop3ServerThread(alice) as server:
        address = server.address
        client = poplib.POP3(server.host, server.port, timeout=10)
        client.user("alice")
        client.pass_("pw")
        client.dele(1)
        server.reset({"bob": "pw2"})  # ends alice's session without UPDATE
        assert server.address == address
        assert server.store.users == ["bob"]
        assert len(server.transcript) == 0
        assert server.server.active_sessions == 0
        with pytest.raises((poplib.error_proto, OSError)):
            client.stat()
        client.close()
        again = poplib.POP3(server.host, server.port, timeout=10)
        again.user("bob")
        again.pass_("pw2")
        assert again.stat() == (0, 0)
        again.quit()


def test_resetting_an_idle_server_needs_nothing_from_its_thread() -> None:
    # pop3_shared_server resets before every test: with no session open the reset is
    # done in the caller's thread, without waiting for the server's to wake up, so it
    # is done even while that thread is busy.
    tokens: list[trio.lowlevel.TrioToken] = []

    def note_token(context: object) -> None:
        tokens.append(trio.lowlevel.current_trio_token())

    with Pop3ServerThread({"alice": "pw"}) as server:
        server.faults.add(faults.hook(note_token, "NOOP"))
        client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
        client.user("alice")
        client.pass_("pw")
        client.noop()
        client.quit()
        server.wait_idle()
        release, done = threading.Event(), threading.Event()
        tokens[0].run_sync_soon(release.wait, CLIENT_TIMEOUT)  # the server's thread waits
        resetting = threading.Thread(target=lambda: (server.reset({"bob": "pw2"}), done.set()))
        resetting.start()
        try:
            reset_while_busy = done.wait(2)
        finally:
            release.set()
            resetting.join(CLIENT_TIMEOUT)
        assert reset_while_busy
        assert server.store.users == ["bob"]
        assert len(server.transcript) == 0


def test_the_thread_wrapper_exposes_every_property_of_the_server() -> None:
    """One lifecycle, two flavours: whatever a Trio test reads from a Pop3Server, a
    sync test reads from a Pop3ServerThread under the same name."""
    properties = {
        name
        for name, value in vars(Pop3Server).items()
        if isinstance(value, property) and not name.startswith("_")
    }
    missing = {name for name in properties if not hasattr(Pop3ServerThread, name)}
    assert missing == set()
    with Pop3ServerThread(mailboxes()) as server:
        for name in properties - {"pop3s_address", "pop3s_port"}:
            assert getattr(server, name) == getattr(server.server, name), name
