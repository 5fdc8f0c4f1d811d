"""The server's lifecycle never lies: stopping or resetting at any instant, under load,
leaves the mail, the transcript and the errors saying what really happened.

RFC 1939 §6: messages are removed only in the UPDATE state, entered by QUIT from
TRANSACTION; a session that ends any other way removes nothing.
"""

from __future__ import annotations

import functools
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import trio
import trio.testing

from fakepop import EndReason, Pop3Server, Pop3ServerThread, ServerError, faults, open_pop3_server
from fakepop._session import Session
from tests.clients import CLIENT_TIMEOUT, RawPop3
from tests.sansio import M1, M2, checklist_store
from tests.test_thread import _Broken, _Crash, break_command
from tests.trio_client import TrioPop3Client

ONE = {"alice": {"password": "secret", "messages": [M1, M2]}}


def quit_replies(server: Pop3Server | Pop3ServerThread) -> list[str]:
    return server.transcript.replies_to("QUIT")


# -- stop() racing QUIT ------------------------------------------------------------------
async def quit_with_one_marked(client: TrioPop3Client) -> None:
    """Log in as alice, mark message 1, and send QUIT without reading its reply."""
    assert (await client.line()).startswith(b"+OK")
    assert (await client.command("USER alice")).startswith(b"+OK")
    assert (await client.command("PASS secret")).startswith(b"+OK")
    assert (await client.command("DELE 1")).startswith(b"+OK")
    await client.stream.send_all(b"QUIT\r\n")


async def test_stopping_while_quits_ok_is_unread_still_sends_it() -> None:
    """The client sent QUIT and UPDATE removed its mail; the server is stopped while
    its +OK waits for the client to read (a lockstep stream: nothing is buffered). The
    +OK still reaches the client, and the transcript records it as sent."""
    server = Pop3Server(ONE)
    server_end, client_end = trio.testing.lockstep_stream_pair()
    client = TrioPop3Client(client_end)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_end)
        await quit_with_one_marked(client)
        await server.wait_for_command("QUIT")  # UPDATE done, +OK being written
        nursery.start_soon(server.close_sessions)
        await trio.testing.wait_all_tasks_blocked()
        assert (await client.line()) == b"+OK Logging out, 1 message deleted"
    assert server.store["alice"].uids == ["uid000002"]
    (record,) = server.transcript.sessions
    assert record.replies_to("QUIT") == ["+OK Logging out, 1 message deleted"]
    assert record.removed == ("uid000001",)


def test_stop_racing_quit_either_deletes_and_says_ok_or_deletes_nothing() -> None:
    """A real socket, and stop() called the instant QUIT is sent, many times over: each
    time, the client read +OK and the mail is gone, or it read no +OK and nothing went;
    the transcript records a +OK exactly when the client got it."""
    for _ in range(40):
        server = Pop3ServerThread(ONE)
        server.start()
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            for line in (b"USER alice", b"PASS secret", b"DELE 1"):
                client.send(line + b"\r\n")
                assert client.line().startswith(b"+OK")
            client.send(b"QUIT\r\n")
            server.stop()
            try:
                heard = client.line()
            except (EOFError, ConnectionError):
                heard = b""
        deleted = server.store["alice"].uids == ["uid000002"]
        said_ok = heard.startswith(b"+OK")
        assert deleted is said_ok, (heard, server.store["alice"].uids)
        assert bool(quit_replies(server)) is said_ok
        assert not server.store["alice"].locked


@pytest.mark.parametrize(
    ("end", "ended_by"),
    [
        (Session.stop, EndReason.SERVER_STOPPED),
        # The autologout timer (RFC 1939 §3): the server's timer task calls time_out().
        (Session.time_out, EndReason.TIMEOUT),
    ],
)
async def test_a_session_asked_to_end_runs_no_pipelined_command(
    end: Callable[[Session], None], ended_by: EndReason
) -> None:
    """Commands already received when the session is asked to end are never executed."""
    server = Pop3Server(ONE)
    server_end, client_end = trio.testing.memory_stream_pair()
    client = TrioPop3Client(client_end)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_end)
        assert (await client.line()).startswith(b"+OK")
        for line in ("USER alice", "PASS secret"):
            assert (await client.command(line)).startswith(b"+OK")
        (session,) = server._sessions
        end(session)  # asked before the session reads what follows
        await client_end.send_all(b"DELE 1\r\nQUIT\r\n")
        await server.wait_idle()
    assert server.store["alice"].uids == ["uid000001", "uid000002"]
    (record,) = server.transcript.sessions
    assert record.ended_by is ended_by
    assert record.removed == ()


class _TimedOutAsDataArrives(trio.abc.Stream):
    """One end of a memory stream that, once given its session, hands over what the
    client sent as the server's own TCP stream does when data is already waiting:
    after a checkpoint that cannot be cancelled. The autologout timer fires there."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.session: Session | None = None

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        if self.session is not None:
            self.session.time_out()  # as the server's timer task would, meanwhile
            await trio.lowlevel.cancel_shielded_checkpoint()
        return bytes(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _NoDeadlines:
    # A serving server's timer (IdleWatch) keeps no deadline in the session's scope:
    # only time_out() says that the wait ran out.
    def waiting(self, session: Session, until: float) -> None:
        pass

    def busy(self, session: Session) -> None:
        pass


async def test_commands_that_arrive_as_the_autologout_timer_fires_are_not_run() -> None:
    """RFC 1939 §3: the timer ends the session without UPDATE. When it fires while
    the session takes what the client already sent, past the last point where a
    cancellation could stop it, the session still runs none of those commands."""
    server = Pop3Server(ONE)
    server_end, client_end = trio.testing.memory_stream_pair()
    stream = _TimedOutAsDataArrives(server_end)
    client = TrioPop3Client(client_end)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(server._handle, stream, idle_timer=_NoDeadlines()))
        assert (await client.line()).startswith(b"+OK")
        for line in ("USER alice", "PASS secret"):
            assert (await client.command(line)).startswith(b"+OK")
        (stream.session,) = server._sessions
        await client_end.send_all(b"DELE 1\r\nQUIT\r\n")
        await server.wait_idle()
    assert server.store["alice"].uids == ["uid000001", "uid000002"]
    (record,) = server.transcript.sessions
    assert record.ended_by is EndReason.TIMEOUT
    assert record.commands() == ["USER alice", "PASS ****"]


# -- reset() under load ------------------------------------------------------------------
@pytest.fixture
def busy_server() -> Iterator[Pop3ServerThread]:
    """A server thread and eight clients opening sessions back to back until the test
    ends; the fixture returns once they have been greeted twenty times."""
    server = Pop3ServerThread(ONE)
    server.start()
    done = threading.Event()
    under_way = threading.Event()
    greeted = iter(range(1, 10**9))  # next() is atomic under the GIL

    def keep_connecting() -> None:
        while not done.is_set():
            try:
                with socket.create_connection(server.address, timeout=CLIENT_TIMEOUT) as sock:
                    if sock.recv(512).startswith(b"+OK"):
                        if next(greeted) >= 20:
                            under_way.set()
                        sock.sendall(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
                        sock.recv(512)
            except OSError:
                pass

    clients = [threading.Thread(target=keep_connecting) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        assert under_way.wait(60), "the clients never got going"
        yield server
    finally:
        done.set()
        for client in clients:
            client.join(CLIENT_TIMEOUT)
        server.stop()


def test_reset_returns_while_clients_keep_connecting(busy_server: Pop3ServerThread) -> None:
    """reset() ends the sessions open when it is called and parks newcomers; it does not
    wait for the clients to stop (a join with a generous limit guards the test run)."""
    server = busy_server
    resets = threading.Thread(
        target=lambda: [server.reset({"carol": "pw"}) for _ in range(5)], daemon=True
    )
    resets.start()
    resets.join(60)
    assert not resets.is_alive(), "reset() blocked while clients kept connecting"
    assert server.store.users == ["carol"]
    # Every session recorded since the last reset met carol's mailbox, not alice's.
    for record in server.transcript.sessions:
        assert record.user in (None, "carol")


# -- one numbering ------------------------------------------------------------------------
def test_session_numbers_restart_with_the_transcript_after_reset() -> None:
    """Faults' in_session(n) and a hook's context.session count the sessions the
    transcript numbers: both start from 1 again after reset()."""
    seen: list[int] = []
    with Pop3ServerThread(ONE) as server:
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
        server.wait_idle()
        server.reset(ONE)
        server.faults.add(faults.hook(lambda context: seen.append(context.session)))
        server.faults.add(faults.refuse_connection().in_session(2))
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            client.send(b"NOOP\r\n")
            client.line()
        with RawPop3(server) as client:  # type: ignore[arg-type]
            assert client.at_eof()  # the second session since the reset: refused
        server.wait_idle()
        assert [record.id for record in server.transcript.sessions] == [1, 2]
        assert seen == [1]
        assert server.transcript.sessions[1].ended_by is EndReason.FAULT


# -- errors are reported, once -----------------------------------------------------------
async def test_open_pop3_server_attaches_server_errors_to_the_blocks_own_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Broken("simulated bug"))
    with pytest.raises(AssertionError, match="the test's own failure") as caught:
        async with open_pop3_server(checklist_store()) as server:
            stream = await trio.open_tcp_stream(server.host, server.port)
            async with TrioPop3Client(stream) as client:
                assert (await client.line()).startswith(b"+OK")
                await client.command("USER alice")
                await client.command("PASS secret")
                assert (await client.command("STAT")).startswith(b"-ERR [SYS/TEMP]")
            await server.wait_idle()
            raise AssertionError("the test's own failure")
    if sys.version_info >= (3, 11):
        assert any("_Broken: simulated bug" in note for note in caught.value.__notes__)


def test_an_error_between_tests_is_raised_by_the_next_reset_not_wiped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Broken("straggler"))
    with Pop3ServerThread(ONE) as server:
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            client.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
            for _ in range(3):
                client.line()
        server.wait_idle()
        with pytest.raises(ServerError, match="_Broken: straggler"):
            server.reset(ONE)
        assert server.errors == []  # reported once: the reset took it
        assert server.store.users == ["alice"]  # and the reset was done all the same
        server.reset(ONE)  # nothing more to say


def test_wait_idle_does_not_report_success_after_the_server_crashed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_command(monkeypatch, "STAT", _Crash("the server itself died"))
    server = Pop3ServerThread(ONE)
    server.start()
    try:
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            client.send(b"USER alice\r\nPASS secret\r\n")
            client.line()
            client.line()
            blocker = socket.create_connection(server.address, timeout=CLIENT_TIMEOUT)
            blocker.recv(512)  # an open session for wait_idle to wait for
            client.send(b"STAT\r\n")
            with pytest.raises((ServerError, RuntimeError)):
                server.wait_idle(timeout=CLIENT_TIMEOUT)
            blocker.close()
    finally:
        with pytest.raises(ServerError):
            server.stop()


def test_reset_with_a_bad_mailbox_changes_nothing() -> None:
    """The new mailboxes are checked whole before anything is swapped or ended."""
    with Pop3ServerThread(ONE) as server:
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            with pytest.raises(TypeError, match="'carol'"):
                server.reset({"bob": "pw", "carol": {"password": 42}})
            client.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
            client.line()
            client.line()
            assert client.line().startswith(b"+OK 2 ")  # the session went on, same mail
        assert server.store.users == ["alice"]


async def test_a_reply_the_client_never_took_is_taken_back_from_the_transcript(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The client sent QUIT and never reads: the stop's grace runs out mid-write. The
    transcript does not claim the +OK went out; it says the reply was not sent whole,
    next to the truth that UPDATE removed the mail."""
    server = Pop3Server(ONE)
    server_end, client_end = trio.testing.lockstep_stream_pair()
    client = TrioPop3Client(client_end)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_end)
        await quit_with_one_marked(client)
        await server.close_sessions()  # returns once the grace has run out
    (record,) = server.transcript.sessions
    assert record.replies_to("QUIT") == []
    assert record.commands()[-1] == "QUIT"  # the command stays; only its reply goes
    assert any(e.text == "reply not sent whole: server stopped" for e in record.entries)
    assert record.removed == ("uid000001",)
    assert record.ended_by is EndReason.QUIT  # it did quit; only the +OK was lost
    assert server.store["alice"].uids == ["uid000002"]
