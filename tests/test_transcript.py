"""The transcript: what each session said, how it ended, and the queries on it."""

from __future__ import annotations

import gc
import json
import poplib
import threading
from typing import Any

import pytest
import trio
import trio.testing

import fakepop._session_log
from fakepop import (
    Command,
    EndReason,
    EntryKind,
    Pop3Protocol,
    Pop3Server,
    Pop3ServerThread,
    Reply,
    ServerConfig,
    SessionRecord,
    State,
    Transcript,
    open_pop3_server,
)
from fakepop.errors import UsageError
from tests.sansio import M1, M2, M3, SIZES
from tests.trio_client import TrioPop3Client

MAILBOXES = {"alice": {"password": "s3cret pw", "messages": [M1, M2, M3]}, "bob": "pw"}


async def alice_session(client: TrioPop3Client, *commands: str) -> None:
    await client.line()
    await client.command("USER alice")
    await client.command("PASS s3cret pw")
    for command in commands:
        if command in ("LIST", "UIDL", "CAPA") or command.startswith(("RETR", "TOP")):
            await client.multiline(command)
        else:
            await client.command(command)


async def connect(server: Pop3Server) -> TrioPop3Client:
    return TrioPop3Client(await trio.open_tcp_stream(server.host, server.port))


async def test_a_session_is_recorded_command_by_command() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with await connect(server) as client:
            await alice_session(client, "LIST", "RETR 1", "DELE 1", "QUIT")
            assert await client.closed_by_server()
        await server.wait_idle()
    (session,) = server.transcript.sessions
    assert session.id == 1
    assert session.user == "alice"
    assert session.quit
    assert session.ended_by is EndReason.QUIT
    assert session.removed == ("uid000001",)
    assert session.peer is not None
    assert session.peer[0] == "127.0.0.1"
    assert session.commands() == ["USER alice", "PASS ****", "LIST", "RETR 1", "DELE 1", "QUIT"]
    assert session.commands(show_secrets=True)[1] == "PASS s3cret pw"
    assert session.replies_to("retr") == [f"+OK {SIZES[0]} octets"]
    assert server.transcript.removed(user="alice") == ["uid000001"]
    kinds = [entry.kind for entry in session.entries]
    assert kinds[0] is EntryKind.SERVER  # the greeting
    assert kinds.count(EntryKind.CLIENT) == 6
    assert [e.text for e in session.entries if e.kind is EntryKind.STATE] == [
        "AWAITING_PASS",
        "TRANSACTION",
        "CLOSED",
    ]
    retr = next(e for e in session.entries if e.text.startswith(f"+OK {SIZES[0]} octets"))
    assert retr.lines == M1.count("\n")
    assert retr.octets == SIZES[0] + M1.count("\n.") + len(".\r\n")


async def test_the_telnet_rendering_masks_passwords() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with await connect(server) as client:
            await alice_session(client, "STAT", "LIST", "QUIT")
        await server.wait_idle()
    text = server.transcript.render()
    assert (
        "C: USER alice\nS: +OK Send PASS for alice\n   (state: AWAITING_PASS)\nC: PASS ****\n"
    ) in text
    assert "s3cret" not in text
    assert "C: LIST\nS: +OK 3 messages" in text
    assert "[3 more lines, " in text
    assert text.startswith("--- session 1 from 127.0.0.1:")
    assert "(alice), ended by QUIT after" in text
    assert "C: PASS s3cret pw" in server.transcript.render(show_secrets=True)
    assert str(server.transcript) == text


async def test_json_export_is_masked_and_complete() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with await connect(server) as client:
            await alice_session(client, "QUIT")
        await server.wait_idle()
    (session,) = json.loads(server.transcript.to_json())
    assert session["user"] == "alice"
    assert session["ended_by"] == "QUIT"
    texts = [entry["text"] for entry in session["entries"]]
    assert "PASS ****" in texts
    assert "s3cret" not in server.transcript.to_json()
    assert "PASS s3cret pw" in server.transcript.to_json(show_secrets=True)


@pytest.mark.parametrize(
    ("how", "reason"),
    [("close", EndReason.CLIENT_CLOSED), ("stop", EndReason.SERVER_STOPPED)],
)
async def test_how_a_session_ended(how: str, reason: EndReason) -> None:
    async with open_pop3_server(MAILBOXES) as server:
        client = await connect(server)
        await alice_session(client, "DELE 1")
        if how == "close":
            await client.stream.aclose()
            await server.wait_idle()
    if how == "stop":
        await client.stream.aclose()
    (session,) = server.transcript.sessions
    assert session.ended_by is reason
    assert not session.quit
    assert session.removed == ()
    assert session.entries[-1].text == f"ended: {reason.value}"


async def test_autologout_is_recorded_in_virtual_time(autojump_clock: object) -> None:
    config = ServerConfig(autologout=60)
    async with open_pop3_server(MAILBOXES, config=config) as server:
        async with await connect(server) as client:
            await alice_session(client)
            assert await client.closed_by_server()
        await server.wait_idle()
    (session,) = server.transcript.sessions
    assert session.ended_by is EndReason.TIMEOUT
    assert session.duration == pytest.approx(60)
    assert session.entries[-1].at == pytest.approx(60)


async def test_an_error_inside_the_server_is_in_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Pop3Protocol.handle

    def handle(self: Pop3Protocol, command: Command) -> Reply:
        if command.keyword == "STAT":
            raise ValueError("boom")
        return original(self, command)

    monkeypatch.setattr(Pop3Protocol, "handle", handle)
    async with open_pop3_server(MAILBOXES) as server:
        with server.expect_errors(ValueError):
            async with await connect(server) as client:
                await alice_session(client, "STAT")
                assert await client.closed_by_server()
            await server.wait_idle()
    (session,) = server.transcript.sessions
    assert session.ended_by is EndReason.SERVER_ERROR
    assert "(error inside the server: ValueError: boom)" in session.render()


async def test_queries_across_sessions_and_users() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        for user, password in (("alice", "s3cret pw"), ("bob", "pw"), ("alice", "wrong")):
            async with await connect(server) as client:
                await client.line()
                await client.command(f"USER {user}")
                await client.command(f"PASS {password}")
                await client.command("QUIT")
        await server.wait_idle()
    transcript = server.transcript
    assert len(transcript) == 3
    assert [s.id for s in transcript] == [1, 2, 3]
    assert [s.user for s in transcript] == ["alice", "bob", None]  # a failed login is no user
    assert len(transcript.sessions_of("alice")) == 1
    assert transcript.commands(user="bob") == ["USER bob", "PASS ****", "QUIT"]
    assert transcript.replies_to("PASS") == [
        "+OK alice's maildrop is locked and ready: 3 messages (" + str(sum(SIZES)) + " octets)",
        "+OK bob's maildrop is locked and ready: 0 messages (0 octets)",
        "-ERR [AUTH] Authentication failed",
    ]
    transcript.assert_commands(["USER", "PASS", "QUIT"], user="bob", keywords_only=True)
    with pytest.raises(AssertionError) as failure:
        transcript.assert_commands(["USER bob", "PASS ****", "STAT", "QUIT"], user="bob")
    message = str(failure.value)
    assert "POP3 commands of bob differ from what was expected" in message
    assert "-STAT" in message
    assert "--- session 2" in message  # the transcript follows the diff
    transcript.clear()
    assert transcript.render() == "(no POP3 sessions)"


async def test_over_long_lines_are_recorded_with_their_problem() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with await connect(server) as client:
            await client.line()
            await client.command("NOOP " + "x" * 300)
        await server.wait_idle()
    line = server.transcript.sessions[0].commands()[0]
    assert line.startswith("NOOP xxx")
    assert line.endswith("... (Line too long (at most 255 octets including CRLF))")


async def test_recording_can_be_switched_off() -> None:
    server = Pop3Server(MAILBOXES, record_transcript=False)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        client = TrioPop3Client(client_stream)
        await alice_session(client, "QUIT")
    assert len(server.transcript) == 0
    assert server.transcript.sessions == []


async def test_a_memory_stream_session_has_no_peer() -> None:
    server = Pop3Server(MAILBOXES)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        await alice_session(TrioPop3Client(client_stream), "QUIT")
    assert server.transcript.sessions[0].peer is None
    assert server.transcript.render().startswith("--- session 1 (alice), ended by QUIT")


def test_pop_finished_takes_ended_sessions_and_keeps_open_ones() -> None:
    transcript = Transcript()
    first, second, third = (transcript.start_session(n, None, lambda: 0.0) for n in (1, 2, 3))
    first.end(EndReason.QUIT)
    third.end(EndReason.CLIENT_CLOSED)
    assert [s.id for s in transcript.pop_finished()] == [1, 3]
    assert [s.id for s in transcript.sessions] == [2]
    assert transcript.pop_finished() == []
    transcript.start_session(4, None, lambda: 0.0)
    second.end(EndReason.QUIT)
    assert [s.id for s in transcript.pop_finished()] == [2]
    assert [s.id for s in transcript.sessions] == [4]


@pytest.mark.parametrize(
    "reply",
    [Reply(b"+OK\r\n"), Reply(b"+OK 1 messages\r\n", b"1 120\r\n.\r\n", lines=1)],
    ids=["without payload", "with payload"],
)
@pytest.mark.parametrize("together", [True, False], ids=["exchange", "command then reply"])
def test_a_reply_taken_back_leaves_its_command(reply: Reply, *, together: bool) -> None:
    """A reply whose write did not finish is taken back, however the session recorded
    it (a command and its reply together are often one line of the log), and an event
    says so; the command stays, and so does what another session said after it."""
    transcript = Transcript()
    first, second = (transcript.start_session(n, None, lambda: 0.0) for n in (1, 2))
    command = Command(b"LIST", "LIST", None)
    if together:
        first.exchange(command, reply, None, None)
    else:
        first.command(command)
        first.reply(reply)
    second.event("said meanwhile")
    first.unsent("client gone")
    one, two = transcript.sessions
    assert [entry.text for entry in one.entries] == ["LIST", "reply not sent whole: client gone"]
    assert [entry.text for entry in two.entries] == ["said meanwhile"]


def test_an_ended_sessions_record_is_final() -> None:
    """A finished record keeps what was said, masked as ever, and takes nothing more:
    a write after the end would be a line the transcript shows out of place."""
    transcript = Transcript()
    recorder = transcript.start_session(1, None, lambda: 0.0)
    recorder.exchange(Command(b"PASS hunter2", "PASS", "hunter2"), Reply(b"+OK\r\n"), None, None)
    recorder.end(EndReason.QUIT)
    with pytest.raises(UsageError, match="after it ended"):
        recorder.event("late")
    (record,) = transcript.sessions
    assert [entry.text for entry in record.entries] == ["PASS ****", "+OK", "ended: QUIT"]
    assert record.entries[0].secret_text == "PASS hunter2"


async def test_render_leaves_out_payload_sizes_adds_timestamps_and_keeps_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The options the pytest plugin's report settings pass (docs/howto/fixtures.md, "The
    failure report"); left out, the rendering is the default one."""
    server = Pop3Server(MAILBOXES)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_stream)
        client = TrioPop3Client(client_stream)
        await client.line()
        await client.command("USER alice")
        await trio.sleep(1.5)  # sleep-ok: MockClock time, the timestamps are on the server's clock
        await client.command("PASS s3cret pw")
        _, lines = await client.multiline("RETR 1")
        await client.command("QUIT")
    transcript = server.transcript
    default = transcript.render()
    assert transcript.render(payloads=True, timestamps=False, max_chars=None) == default

    retr = next(entry for entry in transcript.sessions[0].entries if entry.lines)
    assert retr.lines == len(lines)
    sizes = f"   [{retr.lines} more lines, {retr.octets} octets]"
    assert f"S: +OK {SIZES[0]} octets{sizes}\n" in default
    assert transcript.render(payloads=False) == default.replace(sizes, "")

    stamped = transcript.render(timestamps=True).splitlines()
    assert stamped[0] == default.splitlines()[0]  # the session's heading line
    assert stamped[1].startswith("[  0.000] S: +OK fakepop POP3 server ready.")
    assert "[  0.000] C: USER alice" in stamped
    assert "[  1.500] C: PASS ****" in stamped
    assert "[  1.500]    (state: TRANSACTION)" in stamped
    assert [line.split("] ", 1)[1] for line in stamped[1:]] == default.splitlines()[1:]

    capped = transcript.render(max_chars=120)
    assert len(capped) <= 120
    notice, kept = capped.split("\n", 1)
    assert notice == f"[... {len(default) - len(kept)} characters cut ...]"
    assert default.endswith("\n" + kept)  # the end, in whole lines
    assert kept.endswith("(ended: QUIT)")
    assert transcript.render(max_chars=len(default)) == default
    with pytest.raises(ValueError, match="max_chars"):
        transcript.render(max_chars=0)


# -- how the transcript keeps its sessions (fakepop/_session_log.py's docstring) ---------
def test_a_record_is_what_was_said_when_the_transcript_was_read() -> None:
    """Each read is made afresh: a record read while its session runs stays as it was
    read, and the next read shows what the session said since."""
    transcript = Transcript()
    recorder = transcript.start_session(1, ("127.0.0.1", 40000), lambda: 0.0)
    recorder.reply(Reply(b"+OK ready\r\n"), State.AUTHORIZATION)
    (before,) = transcript.sessions
    recorder.exchange(Command(b"USER alice", "USER", "alice"), Reply(b"+OK\r\n"), None, None)
    ok = Reply(b"+OK in\r\n")
    recorder.exchange(Command(b"PASS pw", "PASS", "pw"), ok, State.TRANSACTION, "alice")
    recorder.end(EndReason.QUIT, ["uid1"])
    (after,) = transcript.sessions
    assert (before.user, before.ended_by, before.commands()) == (None, None, [])
    assert (after.user, after.ended_by, after.removed) == ("alice", EndReason.QUIT, ("uid1",))
    assert after.commands() == ["USER alice", "PASS ****"]
    assert after.peer == ("127.0.0.1", 40000)
    assert transcript.sessions == [after]  # equal, made afresh


def test_forgetting_sessions_keeps_what_is_written_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sessions write without the transcript's lock; pop_finished replaces only what
    it read, so a line, or a session, written while it works is kept."""
    transcript = Transcript()
    ended = transcript.start_session(1, None, lambda: 0.0)
    running = transcript.start_session(2, None, lambda: 0.0)
    ended.exchange(Command(b"STAT", "STAT", None), Reply(b"+OK 0 0\r\n"), None, None)
    ended.end(EndReason.QUIT)
    started_meanwhile = []
    read = fakepop._session_log._read

    def read_then_write(*args: Any) -> Any:
        records = read(*args)
        running.exchange(Command(b"NOOP", "NOOP", None), Reply(b"+OK\r\n"), None, None)
        later = transcript.start_session(3, None, lambda: 0.0)
        later.event("arrived meanwhile")
        started_meanwhile.append(later)
        return records

    monkeypatch.setattr(fakepop._session_log, "_read", read_then_write)
    (popped,) = transcript.pop_finished()
    monkeypatch.undo()
    assert popped.id == 1
    assert popped.commands() == ["STAT"]
    second, third = transcript.sessions
    assert (second.id, second.commands()) == (2, ["NOOP"])
    assert (third.id, [entry.text for entry in third.entries]) == (3, ["arrived meanwhile"])


def test_a_session_forgotten_while_it_runs_writes_nowhere() -> None:
    """A session still open when the transcript is cleared leaves no line in it: not
    in the sessions read, nor kept by the next pop_finished."""
    transcript = Transcript()
    forgotten = transcript.start_session(1, None, lambda: 0.0)
    transcript.clear()
    forgotten.event("said after the clearing")
    new = transcript.start_session(1, None, lambda: 0.0)
    new.event("the new session 1")
    forgotten.end(EndReason.QUIT)
    (session,) = transcript.sessions
    assert [entry.text for entry in session.entries] == ["the new session 1"]
    assert transcript.pop_finished() == []
    assert len(transcript) == 1
    assert [entry.text for entry in transcript.sessions[0].entries] == ["the new session 1"]


def test_recorded_sessions_leave_no_container_behind() -> None:
    """The design the module's docstring explains: a finished session leaves only
    strings, bytes and numbers in the transcript's lists, nothing the garbage
    collector tracks, so a long transcript does not make collections more frequent."""
    transcript = Transcript()
    greeting = Reply(b"+OK ready\r\n")

    def one_session(number: int) -> None:
        recorder = transcript.start_session(number, ("127.0.0.1", 40000 + number), lambda: 0.5)
        recorder.reply(greeting, State.AUTHORIZATION)
        command = Command(b"PASS pw%d" % number, "PASS", f"pw{number}")
        recorder.exchange(command, Reply(b"+OK\r\n"), State.TRANSACTION, f"user{number}")
        recorder.event(f"event {number}")
        recorder.end(EndReason.QUIT)

    one_session(0)
    gc.collect()
    before = len(gc.get_objects())
    for number in range(1, 501):
        one_session(number)
    gc.collect()
    assert len(gc.get_objects()) - before < 10  # not one, or more, per session
    assert len(transcript) == 501
    assert transcript.sessions[500].commands(show_secrets=True) == ["PASS pw500"]


async def test_timestamps_on_trios_own_clock_are_seconds_since_the_session_started() -> None:
    """With Trio's system clock the transcript reads perf_counter directly (see
    Pop3Server's recorder); the timestamps stay the seconds since the session started,
    in order, within its duration."""
    async with open_pop3_server(MAILBOXES) as server:
        async with await connect(server) as client:
            await alice_session(client, "STAT", "QUIT")
            assert await client.closed_by_server()
        await server.wait_idle()
    (session,) = server.transcript.sessions
    stamps = [entry.at for entry in session.entries]
    assert session.duration is not None
    assert stamps == sorted(stamps)
    assert stamps[0] >= 0
    assert stamps[-1] == session.duration < 5


def test_sessions_forgotten_from_another_thread_while_clients_keep_coming() -> None:
    """Real clients log in, STAT and QUIT on four threads while the test's thread
    keeps taking the finished sessions out (as ``fakepop --transcript`` does) and
    reading the rest: every session is taken out once, whole, and no line is lost or
    lands in another session."""
    clients, rounds = 4, 25
    users = [f"user{number}" for number in range(clients)]
    said = {user: [f"USER {user}", "PASS ****", "STAT", "QUIT"] for user in users}
    said_so_far = [lines[:end] for lines in said.values() for end in range(5)]
    with Pop3ServerThread(dict.fromkeys(users, "pw")) as server:
        taken: list[SessionRecord] = []

        failures: list[BaseException] = []

        def client(user: str) -> None:
            try:
                for _ in range(rounds):
                    pop = poplib.POP3(server.host, server.port, timeout=10)
                    pop.user(user)
                    pop.pass_("pw")
                    pop.stat()
                    pop.quit()
            except BaseException as exc:  # the test's thread reports it
                failures.append(exc)

        threads = [threading.Thread(target=client, args=(user,)) for user in users]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            taken += server.transcript.pop_finished()
            for record in server.transcript.sessions:  # as they stand: whole so far
                assert record.commands() in said_so_far
        for thread in threads:
            thread.join()
        server.wait_idle()
        taken += server.transcript.pop_finished()
    assert failures == []
    assert sorted(record.id for record in taken) == list(range(1, clients * rounds + 1))
    for record in taken:
        assert record.commands() == said[record.user or ""]
        assert [line for line, _ in record.exchanges()] == record.commands()
        assert record.ended_by is EndReason.QUIT
    assert sorted(record.user or "" for record in taken) == sorted(users * rounds)
