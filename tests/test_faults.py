"""Every fault of fakepop.faults, seen through real clients.

Each test adds a fault, drives the server with a real client (stdlib ``poplib`` in
sync tests against the ``pop3_server`` fixture, a raw socket where poplib hides the
symptom, curl for a few) and checks two things: what the client sees, and that the
store is intact afterwards (nothing deleted without a committed QUIT, no lock left).
Timing faults run over Trio sockets with ``autojump_clock``: their waits are virtual
time, measured with ``trio.current_time()``, and cost nothing.
"""

from __future__ import annotations

import math
import poplib
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio
import trio.testing

from fakepop import (
    Command,
    EndReason,
    EntryKind,
    FaultContext,
    MailboxSpec,
    MailStore,
    Pop3Server,
    Pop3ServerThread,
    SessionRecord,
    faults,
    open_pop3_server,
)
from tests.clients import (
    ALICE_WIRE,
    CLIENT_TIMEOUT,
    M_DOTS,
    RawPop3,
    crlf,
    curl,
    expect_err,
    mailboxes,
    pop3_url,
)
from tests.trio_client import TrioPop3Client

ALICE_SIZES = [len(wire) for wire in ALICE_WIRE]
#: What poplib raises when the server goes away: EOF is error_proto("-ERR EOF").
DROPPED = (poplib.error_proto, ConnectionError)


@pytest.fixture
def pop3_mailboxes() -> dict[str, MailboxSpec]:
    """alice (4 messages), carol (2, with given UIDs) and empty bob, for every server."""
    return mailboxes()


# -- helpers ------------------------------------------------------------------------------
class Client(poplib.POP3):
    """poplib's client for ``with`` blocks, closing its socket however it fails (even
    when the greeting never comes, where poplib.POP3 leaves the socket open)."""

    def __init__(
        self, server: Pop3Server | Pop3ServerThread, *, timeout: float = CLIENT_TIMEOUT
    ) -> None:
        try:
            super().__init__(server.host, server.port, timeout=timeout)
        except BaseException:
            if hasattr(self, "file"):
                self.close()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def logged_in(
    server: Pop3Server | Pop3ServerThread,
    user: str = "alice",
    password: str = "secret",
    *,
    timeout: float = CLIENT_TIMEOUT,
) -> Iterator[Client]:
    """A poplib session after USER/PASS; closed (without QUIT) on the way out."""
    with Client(server, timeout=timeout) as client:
        client.user(user)
        client.pass_(password)
        yield client


def check_store(store: MailStore, user: str = "alice") -> None:
    box = store[user]
    assert not box.locked, f"{user}'s mailbox was left locked"
    assert box.deleted == (), f"mail of {user} was deleted"
    if user == "alice":
        assert [message.data for message in box.messages] == ALICE_WIRE


def assert_intact(server: Pop3ServerThread, user: str = "alice") -> None:
    """Every session has ended and ``user``'s mail is all there, unlocked."""
    server.wait_idle()
    check_store(server.store, user)


async def assert_intact_async(server: Pop3Server, user: str = "alice") -> None:
    await server.wait_idle()
    check_store(server.store, user)


def fault_events(record: SessionRecord) -> list[str]:
    return [
        entry.text
        for entry in record.entries
        if entry.kind is EntryKind.EVENT and entry.text.startswith("fault: ")
    ]


def command_line(line: str) -> Command:
    """The Command the server makes of ``line``."""
    keyword, space, argument = line.partition(" ")
    return Command(line.encode(), keyword, argument if space else None)


async def trio_client(server: Pop3Server) -> TrioPop3Client:
    return TrioPop3Client(await trio.open_tcp_stream(server.host, server.port))


async def trio_login(client: TrioPop3Client) -> None:
    assert (await client.line()).startswith(b"+OK")
    assert (await client.command("USER alice")).startswith(b"+OK")
    assert (await client.command("PASS secret")).startswith(b"+OK")


# -- connection faults ----------------------------------------------------------------------
def test_refuse_connection_once_then_the_next_connection_is_served(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.refuse_connection().once())
    with pytest.raises(poplib.error_proto, match="EOF"):  # no greeting, just EOF
        Client(pop3_server)
    with logged_in(pop3_server) as client:
        assert client.stat() == (4, sum(ALICE_SIZES))
        client.quit()
    assert_intact(pop3_server)
    refused, served = pop3_server.transcript.sessions
    assert refused.ended_by is EndReason.FAULT
    assert fault_events(refused) == ["fault: refuse the connection"]
    assert refused.exchanges() == []
    assert served.ended_by is EndReason.QUIT


def test_refuse_connection_with_reset_is_a_tcp_reset(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.refuse_connection(reset=True))
    with pytest.raises(ConnectionResetError):
        Client(pop3_server)
    assert_intact(pop3_server)


def test_close_before_retr_drops_the_connection_without_an_answer(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.close_before("RETR"))
    with logged_in(pop3_server) as client:
        assert client.dele(1).startswith(b"+OK")
        with pytest.raises(poplib.error_proto, match="EOF"):
            client.retr(2)
    assert_intact(pop3_server)  # DELE 1 was never committed
    (session,) = pop3_server.transcript.sessions
    assert session.commands()[-2:] == ["DELE 1", "RETR 2"]
    assert session.replies_to("RETR") == []
    assert fault_events(session) == ["fault: close before answering RETR"]
    assert session.ended_by is EndReason.FAULT


def test_close_before_with_reset_gives_the_client_a_connection_reset(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.close_before("RETR", reset=True))
    with logged_in(pop3_server) as client, pytest.raises(ConnectionResetError):
        client.retr(1)
    assert_intact(pop3_server)


def test_close_after_dele_answers_then_drops(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.close_after("DELE"))
    with logged_in(pop3_server) as client:
        assert client.dele(1).startswith(b"+OK")  # the answer arrives...
        with pytest.raises(DROPPED):  # ...then the connection is gone
            client.quit()
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert session.replies_to("DELE") == ["+OK Message 1 marked for deletion"]
    assert fault_events(session) == ["fault: close after answering DELE"]
    assert session.ended_by is EndReason.FAULT


def test_cut_payload_drops_the_second_retr_once(pop3_server: Pop3ServerThread) -> None:
    armed = pop3_server.faults.add(faults.cut_payload(after_bytes=60).nth(2).once())
    with logged_in(pop3_server) as client:
        assert client.retr(1)[2] == ALICE_SIZES[0]
        with pytest.raises(poplib.error_proto, match="EOF"):
            client.retr(2)
    assert_intact(pop3_server)
    with logged_in(pop3_server) as client:  # the fault fired once: now RETR 2 works
        assert client.retr(2)[2] == ALICE_SIZES[1]
        assert client.retr(2)[2] == ALICE_SIZES[1]
        client.quit()
    assert (armed.seen, armed.fired) == (4, 1)
    first, second = pop3_server.transcript.sessions
    assert fault_events(first) == ["fault: close after 60 octets of the RETR/TOP reply"]
    assert first.ended_by is EndReason.FAULT
    assert fault_events(second) == []
    assert_intact(pop3_server)


def test_cut_payload_sends_exactly_the_first_octets(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.cut_payload("RETR", after_bytes=60))
    with RawPop3(pop3_server) as raw:
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\n")
        raw.line()
        raw.line()
        raw.send(b"RETR 1\r\n")
        received = raw._file.read()  # everything until the server closes
    status, _, body = received.partition(b"\r\n")
    assert len(received) == 60
    assert status == b"+OK %d octets" % ALICE_SIZES[0]
    assert ALICE_WIRE[0].startswith(body)
    assert_intact(pop3_server)


def test_cut_payload_with_reset_resets_the_connection_mid_message(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.cut_payload(after_bytes=40, reset=True))
    with logged_in(pop3_server) as client, pytest.raises(ConnectionResetError):
        client.retr(1)
    assert_intact(pop3_server)
    assert fault_events(pop3_server.transcript.sessions[0]) == [
        "fault: reset after 40 octets of the RETR/TOP reply"
    ]


# -- timing faults, in virtual time ----------------------------------------------------------
async def test_delay_greeting_holds_the_greeting_back(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.delay_greeting(30))
    async with await trio_client(trio_pop3_server) as client:
        start = trio.current_time()
        assert (await client.line()).startswith(b"+OK")
        assert trio.current_time() - start == pytest.approx(30)
        start = trio.current_time()
        assert (await client.command("USER alice")).startswith(b"+OK")
        assert trio.current_time() - start == 0  # only the greeting waits
    await assert_intact_async(trio_pop3_server)
    (session,) = trio_pop3_server.transcript.sessions
    assert fault_events(session) == ["fault: delay the greeting 30 s"]


async def test_latency_waits_before_every_reply_with_seeded_jitter(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.latency(2.0, jitter=1.0, seed=7))
    rng = random.Random(7)  # the jitter is drawn from the fault's seed, reply by reply
    expected = [2.0 + rng.uniform(0.0, 1.0) for _ in range(4)]
    delays = []
    async with await trio_client(trio_pop3_server) as client:
        start = trio.current_time()
        await client.line()
        delays.append(trio.current_time() - start)
        for line in ["USER alice", "PASS secret", "STAT"]:
            start = trio.current_time()
            assert (await client.command(line)).startswith(b"+OK")
            delays.append(trio.current_time() - start)
    assert delays == pytest.approx(expected)
    assert len(set(delays)) == 4
    await assert_intact_async(trio_pop3_server)


async def test_bandwidth_limits_the_octets_per_second(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.bandwidth(100))  # writes of 10 octets, 0.1 s apart
    async with await trio_client(trio_pop3_server) as client:
        start = trio.current_time()
        greeting = await client.line() + b"\r\n"
        last_write = len(greeting) % 10 or 10
        assert trio.current_time() - start == pytest.approx((len(greeting) - last_write) / 100)
        await client.command("USER alice")
        await client.command("PASS secret")
        start = trio.current_time()
        status, lines = await client.multiline("RETR 4")
        octets = len(status) + 2 + sum(len(line) + 2 for line in lines) + 3
        assert trio.current_time() - start == pytest.approx(octets / 100, abs=0.11)
    assert octets > ALICE_SIZES[3] > 100
    await assert_intact_async(trio_pop3_server)


async def test_slice_replies_delivers_the_greeting_in_many_small_reads(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.slice_replies(size=4, pause=0.5))
    async with await trio.open_tcp_stream(trio_pop3_server.host, trio_pop3_server.port) as stream:
        start = trio.current_time()
        chunks = []
        while not b"".join(chunks).endswith(b"\r\n"):
            chunks.append(await stream.receive_some(65536))
        elapsed = trio.current_time() - start
    greeting = b"".join(chunks)
    assert greeting.startswith(b"+OK fakepop")
    assert [len(chunk) for chunk in chunks[:-1]] == [4] * (len(chunks) - 1)
    assert len(chunks) == math.ceil(len(greeting) / 4) > 10
    assert elapsed == pytest.approx((len(chunks) - 1) * 0.5)
    await assert_intact_async(trio_pop3_server)


async def test_stall_before_the_greeting_leaves_the_client_waiting(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.stall())
    async with await trio_client(trio_pop3_server) as client:
        start = trio.current_time()
        with trio.move_on_after(3600) as timeout:  # the client's own timeout
            await client.line()
        assert timeout.cancelled_caught
        assert trio.current_time() - start == pytest.approx(3600)  # past autologout, too
    await assert_intact_async(trio_pop3_server)
    (session,) = trio_pop3_server.transcript.sessions
    assert session.ended_by is EndReason.FAULT
    assert fault_events(session) == ["fault: stall before the greeting"]


async def test_stall_at_retr_answers_nothing_more(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.stall("RETR"))
    async with await trio_client(trio_pop3_server) as client:
        await trio_login(client)
        assert (await client.command("DELE 1")).startswith(b"+OK")
        with trio.move_on_after(60) as timeout:
            await client.command("RETR 2")
        assert timeout.cancelled_caught
        with trio.move_on_after(60) as timeout:  # what follows is read and dropped
            await client.command("NOOP")
        assert timeout.cancelled_caught
    await assert_intact_async(trio_pop3_server)  # DELE 1 not committed, lock released
    (session,) = trio_pop3_server.transcript.sessions
    assert session.ended_by is EndReason.FAULT
    assert session.commands()[-1] == "RETR 2"


async def test_a_hook_can_delay_a_command(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.hook(lambda context: faults.Delay(7), "STAT"))
    async with await trio_client(trio_pop3_server) as client:
        await trio_login(client)
        start = trio.current_time()
        assert await client.command("STAT") == b"+OK 4 %d" % sum(ALICE_SIZES)
        assert trio.current_time() - start == pytest.approx(7)
    await assert_intact_async(trio_pop3_server)


async def test_a_hook_delay_with_jitter_waits_a_share_of_the_jitter(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    """Delay(seconds, jitter) says "plus up to jitter, seeded": from a hook as well as
    from latency()."""
    trio_pop3_server.faults.add(faults.hook(lambda context: faults.Delay(5, jitter=2), "STAT"))
    async with await trio_client(trio_pop3_server) as client:
        await trio_login(client)
        start = trio.current_time()
        await client.command("STAT")
        waited = trio.current_time() - start
    assert 5 < waited <= 7
    await assert_intact_async(trio_pop3_server)


async def test_a_hook_can_stall_a_command(
    trio_pop3_server: Pop3Server, autojump_clock: trio.testing.MockClock
) -> None:
    trio_pop3_server.faults.add(faults.hook(lambda context: faults.Stall(), "RETR"))
    async with await trio_client(trio_pop3_server) as client:
        await trio_login(client)
        with trio.move_on_after(120) as timeout:
            await client.command("RETR 1")
        assert timeout.cancelled_caught
    await assert_intact_async(trio_pop3_server)
    assert trio_pop3_server.transcript.sessions[0].ended_by is EndReason.FAULT


# -- -ERR answers and login refusals ------------------------------------------------------------
def test_error_on_pass_once_then_a_retry_succeeds(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP").once())
    with Client(pop3_server) as client:
        client.user("alice")
        assert expect_err(client.pass_, "secret") == b"-ERR [SYS/TEMP] Temporary system failure"
        assert not pop3_server.store["alice"].locked
        client.user("alice")  # a refused PASS needs a new USER, as after a real one
        assert client.pass_("secret").startswith(b"+OK")
        client.quit()
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert session.replies_to("PASS")[0] == "-ERR [SYS/TEMP] Temporary system failure"
    assert session.ended_by is EndReason.QUIT


def test_error_on_any_command_with_text_and_no_code(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.error("STAT", "LIST", text="Disk on fire"))
    with logged_in(pop3_server) as client:
        assert expect_err(client.stat) == b"-ERR Disk on fire"
        assert expect_err(client.list) == b"-ERR Disk on fire"
        assert client.uidl()[0].startswith(b"+OK")  # other commands run as usual
        client.quit()
    assert_intact(pop3_server)


def test_error_on_quit_leaves_deleted_mail_in_place(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.error("QUIT"))
    with logged_in(pop3_server) as client:
        assert client.dele(1).startswith(b"+OK")
        assert client.dele(2).startswith(b"+OK")
        assert expect_err(client.quit) == b"-ERR Failure"
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert session.ended_by is EndReason.FAULT
    assert session.removed == ()


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (faults.lock_failure(), b"IN-USE"),
        (faults.auth_failure(), b"AUTH"),
        (faults.login_too_soon(), b"LOGIN-DELAY"),
    ],
)
def test_login_refusals_answer_only_right_credentials(
    pop3_server: Pop3ServerThread, fault: faults.Fault, code: bytes
) -> None:
    armed = pop3_server.faults.add(fault)
    with Client(pop3_server) as client:
        client.user("alice")
        assert expect_err(client.pass_, "secret").startswith(b"-ERR [%s] " % code)
        client.user("alice")
        # A wrong password gets the server's own answer, whatever the fault.
        assert expect_err(client.pass_, "wrong") == b"-ERR [AUTH] Authentication failed"
        assert expect_err(client.apop, "alice", "secret").startswith(b"-ERR [%s] " % code)
        assert not pop3_server.store["alice"].locked
        armed.remove()
        assert client.apop("alice", "secret").startswith(b"+OK")
        client.quit()
    assert (armed.seen, armed.fired) == (2, 2)  # the wrong password was not a moment
    assert_intact(pop3_server)


def test_hook_sees_the_context_and_can_let_commands_through(
    pop3_server: Pop3ServerThread,
) -> None:
    seen: list[FaultContext] = []

    def watch(context: FaultContext) -> None:
        seen.append(context)

    pop3_server.faults.add(faults.hook(watch))
    with Client(pop3_server) as client:
        client.user("alice")
        expect_err(client.pass_, "wrong")
        client.user("alice")
        client.pass_("secret")
        client.retr(1)
        client.quit()
    # A hook runs before the command: it cannot know whether a password is right,
    # so its context never says (login_method is set only at Stage.LOGIN).
    assert [(c.session, c.user, c.command, c.login_method) for c in seen] == [
        (1, "alice", command_line("USER alice"), None),
        (1, "alice", command_line("PASS wrong"), None),
        (1, "alice", command_line("USER alice"), None),
        (1, "alice", command_line("PASS secret"), None),
        (1, "alice", command_line("RETR 1"), None),
        (1, "alice", command_line("QUIT"), None),
    ]
    assert fault_events(pop3_server.transcript.sessions[0]) == []  # it never interfered
    assert_intact(pop3_server)


def test_hook_answers_err_or_closes(pop3_server: Pop3ServerThread) -> None:
    def choose(context: FaultContext) -> str | faults.Close | None:
        assert context.command is not None
        if context.command.line == b"RETR 2":
            return "-ERR [SYS/TEMP] message 2 is being scanned"
        if context.command.line == b"RETR 3":
            return faults.Close()
        return None

    pop3_server.faults.add(faults.hook(choose, "RETR"))
    with logged_in(pop3_server) as client:
        assert client.retr(1)[2] == ALICE_SIZES[0]
        assert expect_err(client.retr, 2) == b"-ERR [SYS/TEMP] message 2 is being scanned"
        with pytest.raises(poplib.error_proto, match="EOF"):
            client.retr(3)
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert fault_events(session) == ["fault: hook choose", "fault: hook choose"]
    assert session.ended_by is EndReason.FAULT


def test_a_hook_limited_to_once_is_called_once_whatever_it_returns(
    pop3_server: Pop3ServerThread,
) -> None:
    """``once()``, ``times()`` and ``nth()`` count calls of a hook: a side-effect hook
    (deliver mail at the second RETR) runs exactly once, although it lets every
    command through. Only a hook that acts is a fault event in the transcript."""
    calls: list[bytes] = []

    def deliver_late(context: FaultContext) -> None:
        assert context.command is not None
        calls.append(context.command.line)
        pop3_server.store.deliver("alice", "Subject: late\n\nlate\n", uid="late")

    armed = pop3_server.faults.add(faults.hook(deliver_late, "RETR").nth(2).once())
    with logged_in(pop3_server) as client:
        client.retr(1)
        client.retr(2)
        client.retr(3)
        client.quit()
    assert calls == [b"RETR 2"]
    assert (armed.seen, armed.fired) == (3, 1)
    assert pop3_server.store["alice"].uids[-1] == "late"
    assert len([uid for uid in pop3_server.store["alice"].uids if uid == "late"]) == 1
    assert fault_events(pop3_server.transcript.sessions[0]) == []
    pop3_server.wait_idle()
    assert not pop3_server.store["alice"].locked


def test_a_refusing_hook_limited_to_once_refuses_only_at_its_first_call(
    pop3_server: Pop3ServerThread,
) -> None:
    def refuse(context: FaultContext) -> str:
        return "-ERR not now"

    armed = pop3_server.faults.add(faults.hook(refuse, "RETR").once())
    with logged_in(pop3_server) as client:
        assert expect_err(client.retr, 1) == b"-ERR not now"
        client.retr(2)
        client.quit()
    assert armed.fired == len(fault_events(pop3_server.transcript.sessions[0])) == 1
    assert_intact(pop3_server)


async def test_a_hook_returning_anything_else_is_an_error_inside_the_server() -> None:
    def confused(context: FaultContext) -> str:
        return "OK done"  # neither "+OK ..." nor "-ERR ..."

    def session(server: Pop3Server) -> bytes:
        with Client(server) as client:
            client.user("alice")
            client.pass_("secret")
            return expect_err(client.noop)

    async with open_pop3_server(mailboxes()) as server:
        server.faults.add(faults.hook(confused, "NOOP"))
        with server.expect_errors(TypeError) as expected:  # the point of this test
            reply = await trio.to_thread.run_sync(session, server)
        assert reply.startswith(b"-ERR [SYS/TEMP] Internal server error")
        await assert_intact_async(server)
        assert server.transcript.sessions[0].ended_by is EndReason.SERVER_ERROR
    [error] = expected.errors
    assert "returned 'OK done'; it may return None" in str(error)


# -- hooks that answer +OK --------------------------------------------------------------------
def test_a_hook_answers_uidl_with_a_listing_poplib_parses(pop3_server: Pop3ServerThread) -> None:
    """RFC 1939 section 7: poplib reads the hook's UIDL listing like a server's own (a
    listing whose UIDs repeat, as a broken server's might); the server ends it with
    the "." line."""

    def listing(context: FaultContext) -> faults.Answer:
        return faults.Answer("custom listing", lines=["1 same-uid", "2 same-uid", "3 .dot"])

    armed = pop3_server.faults.add(faults.hook(listing, "UIDL").once())
    with logged_in(pop3_server) as client:
        reply, lines, _ = client.uidl()
        assert reply == b"+OK custom listing"
        assert lines == [b"1 same-uid", b"2 same-uid", b"3 .dot"]
        # once(): the next UIDL is the server's own again.
        assert [line.split()[0] for line in client.uidl()[1]] == [b"1", b"2", b"3", b"4"]
        client.quit()
    assert armed.fired == 1
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert fault_events(session) == ["fault: hook listing"]
    assert session.replies_to("UIDL")[0] == "+OK custom listing"
    assert "S: +OK custom listing   [3 more lines, 35 octets]" in session.render()


def test_a_hook_answers_stat_in_a_single_line(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.hook(lambda context: "+OK 0 0", "STAT"))
    with logged_in(pop3_server) as client:
        assert client.stat() == (0, 0)
        assert len(client.list()[1]) == 4  # the mailbox itself is as it was
        client.quit()
    assert_intact(pop3_server)
    assert pop3_server.transcript.replies_to("STAT") == ["+OK 0 0"]


def test_an_answered_command_does_not_run(pop3_server: Pop3ServerThread) -> None:
    """The hook's +OK replaces the command: an answered RETR marks nothing retrieved,
    an answered DELE marks nothing, and an answered QUIT closes the connection without
    UPDATE (RFC 1939 section 6). The hook's lines are dot-stuffed by the server, so
    poplib reads "." and ".x" back as they were given (RFC 1939 section 3)."""

    def pretend(context: FaultContext) -> faults.Answer:
        assert context.command is not None
        if context.command.keyword == "RETR":
            return faults.Answer("pretend", lines=["Subject: not stored", "", ".", ".x"])
        return faults.Answer(f"pretended {context.command.keyword}")

    pop3_server.faults.add(faults.hook(pretend, "RETR", "DELE", "QUIT"))
    with logged_in(pop3_server) as client:
        assert client.retr(1)[1] == [b"Subject: not stored", b"", b".", b".x"]
        assert client.dele(1) == b"+OK pretended DELE"
        assert client.stat()[0] == 4  # DELE 1 marked nothing
        assert client.quit() == b"+OK pretended QUIT"
    assert_intact(pop3_server)  # nothing deleted, lock released
    assert pop3_server.store["alice"].retrieved == ()
    (session,) = pop3_server.transcript.sessions
    assert session.ended_by is EndReason.FAULT
    assert session.removed == ()


def test_an_answered_pass_logs_nobody_in(pop3_server: Pop3ServerThread) -> None:
    """A +OK to PASS is what the client hears, not what happened: the session is back
    in AUTHORIZATION, so STAT gets -ERR and the mailbox is never locked."""
    pop3_server.faults.add(faults.hook(lambda context: "+OK welcome", "PASS").once())
    with Client(pop3_server) as client:
        client.user("alice")
        assert client.pass_("wrong") == b"+OK welcome"
        assert not pop3_server.store["alice"].locked
        assert expect_err(client.stat).startswith(b"-ERR STAT is not allowed before login")
        client.user("alice")
        assert client.pass_("secret").startswith(b"+OK alice's maildrop")
        client.quit()
    assert_intact(pop3_server)
    assert pop3_server.store["alice"].logins == 1
    (session,) = pop3_server.transcript.sessions
    entries = [(e.kind, e.text) for e in session.entries]
    answered = entries.index((EntryKind.SERVER, "+OK welcome"))
    assert entries[answered + 1] == (EntryKind.STATE, "AUTHORIZATION")


# -- malformed replies ----------------------------------------------------------------------
def test_missing_terminator_leaves_poplib_waiting_until_its_timeout(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.missing_terminator())
    with logged_in(pop3_server, timeout=0.3) as client, pytest.raises(TimeoutError):
        client.retr(1)  # reads the whole message, then waits for a "." that never comes
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert fault_events(session) == ["fault: no terminating dot after RETR"]
    assert session.ended_by is EndReason.CLIENT_CLOSED


def test_unstuffed_dots_cut_the_message_short_and_desynchronise_poplib(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.unstuffed_dots())
    with logged_in(pop3_server) as client:
        _, lines, _ = client.retr(1)  # message 1 has the body lines ".x" and "."
        assert lines == crlf(M_DOTS.encode()).split(b"\r\n")[:6]
        assert lines[-2:] == [b"first line", b".x"]
        with pytest.raises(poplib.error_proto, match="last line"):
            client.noop()  # reads the rest of message 1 as NOOP's answer
    with RawPop3(pop3_server) as raw:
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
        raw.line()
        raw.line()
        raw.line()
        assert raw.multiline() == [line + b"\r\n" for line in lines]
        assert raw.line() == b"last line\r\n"
    assert_intact(pop3_server)
    assert b"\n.x\n.\n" in M_DOTS.encode()


def test_wrong_list_size_disagrees_with_what_retr_sends(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.wrong_list_size(delta=3))
    with logged_in(pop3_server) as client:
        _, listing, _ = client.list()
        assert listing == [b"%d %d" % (n, size + 3) for n, size in enumerate(ALICE_SIZES, 1)]
        assert client.list(2) == b"+OK 2 %d" % (ALICE_SIZES[1] + 3)
        assert client.retr(2)[2] == ALICE_SIZES[1]  # RETR sends the real octets
        assert client.stat() == (4, sum(ALICE_SIZES))
        client.quit()
    assert_intact(pop3_server)


def test_bare_lf_is_invisible_to_poplib_but_not_on_the_wire(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.bare_lf())
    with logged_in(pop3_server) as client:
        _, lines, octets = client.retr(1)
        # poplib takes LF for CRLF: same lines, but one octet per line fewer.
        assert b"".join(line + b"\r\n" for line in lines) == ALICE_WIRE[0]
        assert octets == ALICE_SIZES[0] - ALICE_WIRE[0].count(b"\r\n")
        client.quit()
    with RawPop3(pop3_server) as raw:
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
        raw.line()
        raw.line()
        reply = b""
        while not reply.endswith(b"\n.\n"):
            reply += raw.line()
    assert b"\r" not in reply
    assert reply.split(b"\n", 1)[1] == ALICE_WIRE[0].replace(b"\r\n", b"\n").replace(
        b"\n.", b"\n.."
    ) + b".\n"
    assert_intact(pop3_server)


def test_garbage_greeting_fails_poplib_at_connect(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.garbage_line())
    with pytest.raises(poplib.error_proto) as failure:
        Client(pop3_server)
    assert failure.value.args[0] == b"\x00\xff\xfe garbage \x1b[0m"
    assert_intact(pop3_server)


def test_garbage_status_line_for_retr(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.garbage_line("RETR", line=b"HTTP/1.1 502 Bad Gateway"))
    with logged_in(pop3_server) as client, pytest.raises(poplib.error_proto, match="502"):
        client.retr(1)
    assert_intact(pop3_server)


def test_overlong_status_line_is_too_long_for_poplib(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.overlong_line("USER", length=4096))
    with Client(pop3_server) as client, pytest.raises(poplib.error_proto, match="line too long"):
        client.user("alice")
    assert_intact(pop3_server)


def test_overlong_line_default_length_on_the_wire(pop3_server: Pop3ServerThread) -> None:
    """The default 4096 octets is far over RFC 1939's 512 and over poplib's own limit
    (poplib._MAXLINE, 2048), so even a lenient client notices."""
    pop3_server.faults.add(faults.overlong_line("NOOP"))
    with RawPop3(pop3_server) as raw:
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\nNOOP\r\n")
        raw.line()
        raw.line()
        line = raw.line()
    assert len(line) == 4096
    assert line.startswith(b"+OK")
    assert len(line) > poplib._MAXLINE
    assert_intact(pop3_server)


def test_changing_uids_make_every_session_see_new_uids(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.changing_uids())
    uids = pop3_server.store["alice"].uids
    listings = []
    for _ in range(2):
        with logged_in(pop3_server) as client:
            _, listing, _ = client.uidl()
            assert client.uidl(1) == b"+OK " + listing[0]  # stable within a session
            listings.append([line.split(b" ")[1].decode() for line in listing])
            client.quit()
    first, second = listings
    assert first == [f"{uid}.s1" for uid in uids]
    assert second == [f"{uid}.s2" for uid in uids]
    assert set(first).isdisjoint(second)
    assert pop3_server.store["alice"].uids == uids  # the store's UIDs never changed
    assert_intact(pop3_server)


# -- where and how often --------------------------------------------------------------------
def test_for_user_scopes_a_fault_to_one_user_even_before_login(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.lock_failure().for_user("carol"))
    pop3_server.faults.add(faults.error("RETR").for_user("carol"))
    with logged_in(pop3_server) as client:
        assert client.retr(1)[2] == ALICE_SIZES[0]
        client.quit()
    with Client(pop3_server) as client:
        client.user("carol")
        assert expect_err(client.pass_, "carol-pw").startswith(b"-ERR [IN-USE]")
    assert_intact(pop3_server)
    assert_intact(pop3_server, "carol")


def test_in_session_picks_the_servers_nth_connection(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.refuse_connection().in_session(2))
    outcomes = []
    for _ in range(3):
        try:
            with Client(pop3_server) as client:
                client.quit()
            outcomes.append("served")
        except poplib.error_proto:
            outcomes.append("refused")
    assert outcomes == ["served", "refused", "served"]
    pop3_server.wait_idle()
    assert [s.ended_by for s in pop3_server.transcript] == [
        EndReason.QUIT, EndReason.FAULT, EndReason.QUIT,
    ]
    assert_intact(pop3_server)


def test_on_retr_nth_2_once_fails_only_the_second_retr(pop3_server: Pop3ServerThread) -> None:
    armed = pop3_server.faults.add(faults.error(text="try later").on("RETR").nth(2).once())
    with logged_in(pop3_server) as client:
        assert client.noop() == b"+OK"  # not a RETR: not counted
        assert client.retr(1)[2] == ALICE_SIZES[0]
        assert expect_err(client.retr, 2) == b"-ERR try later"
        assert client.retr(2)[2] == ALICE_SIZES[1]
        assert client.retr(3)[2] == ALICE_SIZES[2]
        client.quit()
    assert (armed.seen, armed.fired) == (4, 1)
    assert_intact(pop3_server)


def test_matching_a_regular_expression_over_the_command_line(
    pop3_server: Pop3ServerThread,
) -> None:
    pop3_server.faults.add(faults.error(text="matched").matching(r"RETR [0-9]+"))
    with logged_in(pop3_server) as client:
        assert expect_err(client.retr, 1) == b"-ERR matched"
        assert expect_err(client._shortcmd, "RETR") != b"-ERR matched"  # no number
        assert client.list(1) == b"+OK 1 %d" % ALICE_SIZES[0]
        client.quit()
    assert_intact(pop3_server)


def test_times_2_fires_twice_then_stops(pop3_server: Pop3ServerThread) -> None:
    armed = pop3_server.faults.add(faults.error("NOOP").times(2))
    with logged_in(pop3_server) as client:
        results = []
        for _ in range(4):
            try:
                results.append(client.noop())
            except poplib.error_proto as refusal:
                results.append(refusal.args[0])
        client.quit()
    assert results == [b"-ERR Failure", b"-ERR Failure", b"+OK", b"+OK"]
    assert (armed.seen, armed.fired) == (4, 2)
    assert_intact(pop3_server)


async def test_with_probability_and_a_seed_fails_the_same_way_on_every_run() -> None:
    def noops(server: Pop3Server) -> str:
        with Client(server) as client:
            client.user("alice")
            client.pass_("secret")
            pattern = ""
            for _ in range(20):
                try:
                    client.noop()
                    pattern += "."
                except poplib.error_proto:
                    pattern += "x"
            client.quit()
        return pattern

    async def run() -> str:
        async with open_pop3_server(mailboxes()) as server:
            server.faults.add(faults.error("NOOP").with_probability(0.5, seed=1))
            pattern = await trio.to_thread.run_sync(noops, server)
            await assert_intact_async(server)
        return pattern

    first, second = await run(), await run()
    assert first == second
    rng = random.Random(1)
    assert first == "".join("x" if rng.random() < 0.5 else "." for _ in range(20))
    assert "x" in first
    assert "." in first


def test_faults_added_and_removed_while_a_session_runs(pop3_server: Pop3ServerThread) -> None:
    with logged_in(pop3_server) as client:
        assert client.noop() == b"+OK"
        armed = pop3_server.faults.add(faults.error("NOOP", text="added"))
        assert expect_err(client.noop) == b"-ERR added"
        assert expect_err(client.noop) == b"-ERR added"
        armed.remove()
        assert client.noop() == b"+OK"
        pop3_server.faults.add(faults.error("STAT"))
        pop3_server.faults.add(faults.error("LIST"))
        pop3_server.faults.clear()
        assert client.stat()[0] == 4
        pop3_server.faults.add(faults.close_after("NOOP"))
        assert client.noop() == b"+OK"
        with pytest.raises(DROPPED):
            client.noop()
    assert (armed.seen, armed.fired) == (2, 2)
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert fault_events(session) == [
        "fault: -ERR to NOOP",
        "fault: -ERR to NOOP",
        "fault: close after answering NOOP",
    ]
    assert session.ended_by is EndReason.FAULT


# -- the transcript -------------------------------------------------------------------------
def test_every_fired_fault_is_in_the_transcript(pop3_server: Pop3ServerThread) -> None:
    armed = [
        pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP").once()),
        pop3_server.faults.add(faults.wrong_list_size()),
        pop3_server.faults.add(faults.close_after("DELE")),
    ]
    with Client(pop3_server) as client:
        client.user("alice")
        expect_err(client.pass_, "secret")
        client.user("alice")
        client.pass_("secret")
        client.list()
        client.dele(1)
    assert_intact(pop3_server)
    (session,) = pop3_server.transcript.sessions
    assert fault_events(session) == [
        "fault: -ERR [SYS/TEMP] to PASS",
        "fault: LIST sizes off by 1",
        "fault: close after answering DELE",
    ]
    assert sum(a.fired for a in armed) == 3
    assert session.ended_by is EndReason.FAULT
    rendered = pop3_server.transcript.render()
    assert "   (fault: close after answering DELE)" in rendered
    assert "ended by fault" in rendered


def test_two_refusals_at_one_command_leave_the_second_armed(
    pop3_server: Pop3ServerThread,
) -> None:
    """Only one fault can answer a command. The other has not fired (it is not in the
    transcript), so its ``.once()`` is still to come."""
    first = pop3_server.faults.add(faults.error("NOOP", text="first").once())
    second = pop3_server.faults.add(faults.error("NOOP", text="second").once())
    with logged_in(pop3_server) as client:
        assert expect_err(client.noop) == b"-ERR first"
        assert expect_err(client.noop) == b"-ERR second"
        client.quit()
    events = fault_events(pop3_server.transcript.sessions[0])
    assert first.fired + second.fired == len(events) == 2
    assert_intact(pop3_server)


# -- curl ----------------------------------------------------------------------------------
requires_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
CURLE_OK = 0
CURLE_PARTIAL_FILE = 18
CURLE_OPERATION_TIMEDOUT = 28
CURLE_RECV_ERROR = 56
CURLE_LOGIN_DENIED = 67


@pytest.mark.curl
@requires_curl
@pytest.mark.parametrize(
    ("reset", "exit_codes"),
    [
        # curl 7.88 takes a plain close as the end of the message: exit 0, short file.
        (False, (CURLE_OK, CURLE_PARTIAL_FILE)),
        (True, (CURLE_RECV_ERROR,)),  # "Recv failure: Connection reset by peer"
    ],
    ids=["close", "reset"],
)
async def test_curl_and_a_drop_in_the_middle_of_retr(
    trio_pop3_server: Pop3Server, reset: bool, exit_codes: tuple[int, ...]
) -> None:
    trio_pop3_server.faults.add(faults.cut_payload(after_bytes=80, reset=reset))
    result = await curl(pop3_url(trio_pop3_server, "alice", "secret", "/2"))
    assert result.returncode in exit_codes, result
    assert 0 < len(result.stdout) < ALICE_SIZES[1]
    assert ALICE_WIRE[1].startswith(result.stdout)
    await assert_intact_async(trio_pop3_server)


@pytest.mark.curl
@requires_curl
@pytest.mark.pop3(apop=False, sasl=())  # so that curl logs in with USER/PASS
async def test_curl_fails_its_login_on_err_to_pass(trio_pop3_server: Pop3Server) -> None:
    trio_pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP"))
    result = await curl(pop3_url(trio_pop3_server, "alice", "secret", "/1"))
    assert result.returncode == CURLE_LOGIN_DENIED, result
    assert result.stdout == b""
    await assert_intact_async(trio_pop3_server)
    assert trio_pop3_server.transcript.replies_to("PASS") == [
        "-ERR [SYS/TEMP] Temporary system failure"
    ]


@pytest.mark.curl
@requires_curl
async def test_curl_gives_up_on_a_stalled_retr_at_its_max_time(
    trio_pop3_server: Pop3Server,
) -> None:
    """The one test that waits in real time: curl's own timer (1 s) has to run out."""
    trio_pop3_server.faults.add(faults.stall("RETR"))
    result = await curl("--max-time", "1", pop3_url(trio_pop3_server, "alice", "secret", "/1"))
    assert result.returncode == CURLE_OPERATION_TIMEDOUT, result
    await assert_intact_async(trio_pop3_server)
    assert trio_pop3_server.transcript.sessions[0].ended_by is EndReason.FAULT
