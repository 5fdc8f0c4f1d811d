"""fakepop over real sockets, driven by the standard library's POP3 client.

Each test starts a server on 127.0.0.1, runs ``poplib`` (blocking) in a trio worker
thread, and checks real values: sizes, octets, UIDs, ``-ERR`` texts and what is left
in the store afterwards. A few tests use a raw socket where poplib would hide the bytes
on the wire (dot-stuffing, pipelining, a TCP reset).
"""

from __future__ import annotations

import email.parser
import email.policy
import poplib
import re
import threading
from collections.abc import Callable

import pytest
import trio

from fakepop import Pop3Server, ServerConfig, open_pop3_server
from tests.clients import (
    ALICE_WIRE,
    M_DOTS,
    M_EMAIL,
    M_NO_EOL,
    RawPop3,
    crlf,
    expect_err,
    headers_of,
    mailboxes,
    pop3,
)

ALICE_SIZES = [len(wire) for wire in ALICE_WIRE]
TIMESTAMP = re.compile(rb"<[^<>@]+@[^<>]+>")


def scan_line(client: poplib.POP3, number: int) -> bytes:
    """``LIST n`` through poplib: the single status line (typeshed types it as the
    multi-line result, hence this helper)."""
    reply: object = client.list(number)
    assert isinstance(reply, bytes), reply
    return reply


def joined(lines: list[bytes]) -> bytes:
    """The message octets from poplib's line list: every line ends in CRLF."""
    return b"".join(line + b"\r\n" for line in lines)


# -- greeting, CAPA, NOOP ---------------------------------------------------------------
async def test_greeting_is_one_ok_line_with_a_fresh_apop_timestamp() -> None:
    """The greeting is +OK and carries exactly one <...@host> timestamp, different on
    every connection (checklist #1, #2)."""

    def greetings(server: Pop3Server) -> list[bytes]:
        result = []
        for _ in range(2):
            with pop3(server) as client:
                result.append(client.getwelcome())
                client.quit()
        return result

    async with open_pop3_server(mailboxes()) as server:
        first, second = await trio.to_thread.run_sync(greetings, server)
    for welcome in (first, second):
        assert welcome.startswith(b"+OK ")
        assert len(welcome) + 2 <= 512
        assert len(TIMESTAMP.findall(welcome)) == 1
        assert welcome.count(b"<") == 1
        assert welcome.rstrip().endswith(b"@localhost>")
    assert TIMESTAMP.findall(first) != TIMESTAMP.findall(second)


async def test_capa_lists_the_same_capabilities_before_and_after_login() -> None:
    """CAPA works in AUTHORIZATION and TRANSACTION and lists TOP, UIDL, USER,
    RESP-CODES, AUTH-RESP-CODE, PIPELINING and IMPLEMENTATION in both (checklist #45,
    #46); NOOP is refused before login and answers +OK after (checklist #6)."""

    def session(server: Pop3Server) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        with pop3(server) as client:
            before = client.capa()
            assert expect_err(client.noop).startswith(b"-ERR ")
            client.user("alice")
            client.pass_("secret")
            after = client.capa()
            assert client.noop() == b"+OK"
            client.quit()
        return before, after

    async with open_pop3_server(mailboxes()) as server:
        before, after = await trio.to_thread.run_sync(session, server)
    assert before == {
        "TOP": [],
        "UIDL": [],
        "USER": [],
        "SASL": ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"],
        "RESP-CODES": [],
        "AUTH-RESP-CODE": [],
        "PIPELINING": [],
        "UTF8": ["USER"],
        "LANG": [],
        "IMPLEMENTATION": ["fakepop"],
    }
    assert after == before


# -- sizes and message content ----------------------------------------------------------
async def test_stat_list_and_retr_agree_on_exact_octet_counts() -> None:
    """STAT total == sum of LIST sizes == octets RETR delivers, CRLF counted as 2 octets
    for mail stored with LF endings (checklist #13, #23, #24, #25, section 1.6)."""

    def session(server: Pop3Server) -> None:
        store = server.store["alice"]
        with pop3(server) as client:
            assert client.user("alice").startswith(b"+OK")
            assert client.pass_("secret").startswith(b"+OK")
            count, total = client.stat()
            response, listing, _ = client.list()
            assert response.startswith(b"+OK")
            assert listing == [b"%d %d" % (n, size) for n, size in enumerate(ALICE_SIZES, 1)]
            assert (count, total) == (4, sum(ALICE_SIZES))
            for number, size in enumerate(ALICE_SIZES, 1):
                assert scan_line(client, number) == b"+OK %d %d" % (number, size)
                response, lines, octets = client.retr(number)
                assert response.startswith(b"+OK")
                message = store.messages[number - 1]
                assert octets == size == message.size == len(joined(lines))
                assert joined(lines) == message.data == ALICE_WIRE[number - 1]
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        # RETR alone deletes nothing and each retrieval is recorded once.
        assert len(server.store["alice"]) == 4
        assert server.store["alice"].retrieved == tuple(server.store["alice"].uids)


async def test_retr_unstuffs_lines_that_start_with_a_dot() -> None:
    """Body lines ".x" and "." come back from poplib as ".x" and "." and the
    un-stuffed length is the LIST size (checklist #27)."""

    def session(server: Pop3Server) -> list[bytes]:
        with pop3(server, "alice", "secret") as client:
            _, lines, octets = client.retr(1)
            assert octets == ALICE_SIZES[0]
            client.quit()
        return lines

    async with open_pop3_server(mailboxes()) as server:
        lines = await trio.to_thread.run_sync(session, server)
    assert lines[-4:] == [b"first line", b".x", b".", b"last line"]
    assert joined(lines) == crlf(M_DOTS.encode())


async def test_retr_sends_dot_stuffed_lines_on_the_wire() -> None:
    """On the wire ".x" becomes "..x", "." becomes "..", and the reply ends with
    CRLF "." CRLF (checklist #27, section 1.3)."""

    def session(server: Pop3Server) -> list[bytes]:
        with RawPop3(server) as raw:
            raw.line()
            raw.send(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
            assert raw.line().startswith(b"+OK")
            assert raw.line().startswith(b"+OK")
            assert raw.line() == b"+OK %d octets\r\n" % ALICE_SIZES[0]
            return raw.multiline()

    async with open_pop3_server(mailboxes()) as server:
        lines = await trio.to_thread.run_sync(session, server)
    assert lines[-4:] == [b"first line\r\n", b"..x\r\n", b"..\r\n", b"last line\r\n"]
    assert b"".join(lines).replace(b"\r\n..", b"\r\n.") == ALICE_WIRE[0]


async def test_message_without_final_newline_is_closed_with_crlf_and_sized_with_it() -> None:
    """A message whose last line has no line ending is sent with one added, and that
    CRLF is counted in LIST and STAT (checklist section 1.3, [IMPL] choice)."""

    def session(server: Pop3Server) -> list[bytes]:
        with pop3(server, "alice", "secret") as client:
            assert scan_line(client, 3) == b"+OK 3 %d" % ALICE_SIZES[2]
            _, lines, octets = client.retr(3)
            assert octets == ALICE_SIZES[2]
            client.quit()
        return lines

    async with open_pop3_server(mailboxes()) as server:
        lines = await trio.to_thread.run_sync(session, server)
    assert lines[-1] == b"the last line has no line ending"
    # Each LF counts as CRLF, plus the CRLF added after the last line.
    assert ALICE_SIZES[2] == len(M_NO_EOL) + M_NO_EOL.count(b"\n") + 2


async def test_eight_bit_utf8_body_arrives_byte_for_byte() -> None:
    """8-bit UTF-8 octets in a body are neither re-encoded nor escaped; the size counts
    octets, not characters."""

    def session(server: Pop3Server) -> list[bytes]:
        with pop3(server, "alice", "secret") as client:
            _, lines, octets = client.retr(2)
            assert octets == ALICE_SIZES[1]
            client.quit()
        return lines

    async with open_pop3_server(mailboxes()) as server:
        lines = await trio.to_thread.run_sync(session, server)
    assert lines[-1] == "Café crème €5".encode()
    assert joined(lines) == ALICE_WIRE[1]


async def test_email_message_source_is_retrieved_as_parseable_crlf_mail() -> None:
    """An email.message.EmailMessage is served as its CRLF serialisation; parsing what
    RETR returned gives back the same headers and body."""

    def session(server: Pop3Server) -> bytes:
        with pop3(server, "alice", "secret") as client:
            _, lines, _ = client.retr(4)
            client.quit()
        return joined(lines)

    async with open_pop3_server(mailboxes()) as server:
        data = await trio.to_thread.run_sync(session, server)
        assert data == server.store["alice"].messages[3].data
    assert data == crlf(M_EMAIL.as_bytes())
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert parsed["Subject"] == "an EmailMessage"
    assert parsed.get_content().replace("\r\n", "\n") == M_EMAIL.get_content()


async def test_large_message_with_dot_lines_is_retrieved_exactly() -> None:
    """A message of about 200 kB (well over one socket read) with many dot-leading lines
    comes back intact, with RETR octets equal to the STAT size."""
    body = "".join(
        f".{i:05d} line starting with a dot\n" if i % 7 == 0 else f"line {i:05d} of the body\n"
        for i in range(10_000)
    )
    source = "Subject: big\n\n" + body

    def session(server: Pop3Server) -> tuple[int, bytes, int]:
        with pop3(server, "bob", "tanstaaf") as client:
            _, size = client.stat()
            _, lines, octets = client.retr(1)
            client.quit()
        return size, joined(lines), octets

    async with open_pop3_server(mailboxes()) as server:
        server.store.deliver("bob", source)
        size, data, octets = await trio.to_thread.run_sync(session, server)
    assert data == crlf(source.encode())
    assert size == octets == len(data) > 200_000


# -- TOP and UIDL -----------------------------------------------------------------------
async def test_top_returns_headers_and_the_requested_body_lines() -> None:
    """TOP 1 0: headers and the empty line; TOP 1 2: plus two body lines (stuffed on the
    wire, un-stuffed by poplib); TOP 1 999999: the whole message (checklist #36-#38)."""

    def session(server: Pop3Server) -> list[list[bytes]]:
        with pop3(server, "alice", "secret") as client:
            result = [client.top(1, n)[1] for n in (0, 2, 999999)]
            client.quit()
        return result

    async with open_pop3_server(mailboxes()) as server:
        top0, top2, top_all = await trio.to_thread.run_sync(session, server)
        # TOP is not RETR: nothing counts as retrieved.
        assert server.store["alice"].retrieved == ()
    headers = headers_of(ALICE_WIRE[0])
    assert joined(top0) == headers
    assert joined(top2) == headers + b"first line\r\n.x\r\n"
    assert joined(top_all) == ALICE_WIRE[0]


async def test_uidl_reports_user_given_uids_with_and_without_argument() -> None:
    """UIDs given as {"messages": {"uid-a": ..., "uid-b": ...}} are what UIDL lists
    and what UIDL n answers (checklist #40, #41)."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "carol", "carol-pw") as client:
            response, listing, _ = client.uidl()
            assert response.startswith(b"+OK")
            assert listing == [b"1 uid-a", b"2 uid-b"]
            assert client.uidl(2) == b"+OK 2 uid-b"
            assert client.uidl(1) == b"+OK 1 uid-a"
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)


async def test_generated_uids_are_printable_and_unique() -> None:
    """Generated UIDs are 1-70 characters in 0x21-0x7E, distinct, and the same in UIDL
    and the store (checklist #40, section 1.7)."""

    def session(server: Pop3Server) -> list[bytes]:
        with pop3(server, "alice", "secret") as client:
            _, listing, _ = client.uidl()
            client.quit()
        return listing

    async with open_pop3_server(mailboxes()) as server:
        listing = await trio.to_thread.run_sync(session, server)
        uids = server.store["alice"].uids
    assert listing == [f"{n} {uid}".encode() for n, uid in enumerate(uids, 1)]
    assert len(set(uids)) == 4
    assert all(re.fullmatch(r"[\x21-\x7e]{1,70}", uid) for uid in uids)


# -- authentication ---------------------------------------------------------------------
async def test_apop_with_the_right_digest_logs_in() -> None:
    """poplib's APOP (MD5 of the greeting's timestamp and the secret) is accepted
    (checklist #19)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            assert client.apop("bob", "tanstaaf").startswith(b"+OK")
            assert client.stat() == (0, 0)
            assert client.list()[1] == []
            assert client.uidl()[1] == []
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert server.store["bob"].logins == 1


async def test_apop_with_a_wrong_digest_is_refused_and_session_stays_in_authorization() -> None:
    """A wrong APOP digest gets -ERR [AUTH]; the session stays in AUTHORIZATION, so
    USER/PASS on the same connection still works (checklist #20)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            assert expect_err(client.apop, "bob", "not-the-secret").startswith(b"-ERR [AUTH]")
            assert expect_err(client.stat).startswith(b"-ERR ")
            client.user("bob")
            assert client.pass_("tanstaaf").startswith(b"+OK")
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert server.store["bob"].logins == 1


async def test_wrong_password_gets_auth_code_and_leaves_mailbox_unlocked() -> None:
    """PASS with a wrong password gets -ERR [AUTH]; a second PASS needs a new USER; the
    mailbox is not locked and a correct login follows (checklist #12, #11)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            assert expect_err(client.pass_, "secret").startswith(b"-ERR ")  # no USER yet
            client.user("alice")
            assert expect_err(client.pass_, "wrong").startswith(b"-ERR [AUTH]")
            assert not server.store["alice"].locked
            assert expect_err(client.pass_, "secret").startswith(b"-ERR ")  # needs USER
            client.user("alice")
            assert client.pass_("secret").startswith(b"+OK")
            assert server.store["alice"].locked
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert server.store["alice"].logins == 1
        assert not server.store["alice"].locked


async def test_unknown_user_fails_at_pass_not_at_user() -> None:
    """USER does not reveal which accounts exist: USER nobody gets +OK, PASS gets
    -ERR [AUTH] (checklist #10)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            assert client.user("nobody").startswith(b"+OK")
            assert expect_err(client.pass_, "x").startswith(b"-ERR [AUTH]")
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)


async def test_password_with_spaces_is_taken_from_the_whole_line() -> None:
    """PASS takes the rest of the line, so a password with spaces works (checklist #14)."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "dora", "my secret pass") as client:
            assert client.stat() == (0, 0)
            client.quit()

    async with open_pop3_server({"dora": "my secret pass"}) as server:
        await trio.to_thread.run_sync(session, server)


async def test_second_login_to_a_locked_mailbox_gets_in_use_and_first_session_goes_on() -> None:
    """While alice is in TRANSACTION, another login with the right password gets
    -ERR [IN-USE]; the first session keeps working and its QUIT commits (checklist #17)."""
    async with open_pop3_server(mailboxes()) as server:
        uids = server.store["alice"].uids
        first = await trio.to_thread.run_sync(poplib.POP3, server.host, server.port, 10)
        try:
            await trio.to_thread.run_sync(first.user, "alice")
            await trio.to_thread.run_sync(first.pass_, "secret")
            await trio.to_thread.run_sync(first.dele, 1)

            def second_login() -> None:
                with pop3(server) as second:
                    second.user("alice")
                    assert expect_err(second.pass_, "secret").startswith(b"-ERR [IN-USE]")
                    second.quit()

            await trio.to_thread.run_sync(second_login)
            assert server.store["alice"].locked
            assert await trio.to_thread.run_sync(first.stat) == (3, sum(ALICE_SIZES[1:]))
            _, lines, _ = await trio.to_thread.run_sync(first.retr, 2)
            assert joined(lines) == ALICE_WIRE[1]
            assert (await trio.to_thread.run_sync(first.quit)).startswith(b"+OK")
        finally:
            first.close()
        alice = server.store["alice"]
        assert alice.uids == uids[1:]
        assert [m.data for m in alice.deleted] == [ALICE_WIRE[0]]
        assert alice.logins == 1
        assert not alice.locked


async def test_concurrent_logins_to_one_mailbox_let_exactly_one_session_in() -> None:
    """Ten clients send PASS for alice at the same moment: exactly one gets +OK, the
    other nine get -ERR [IN-USE] (checklist #17, section 1.5)."""
    contenders = 10
    all_ready = threading.Barrier(contenders, timeout=10)
    all_answered = threading.Barrier(contenders, timeout=10)
    replies: list[bytes] = []

    def contender(server: Pop3Server) -> None:
        with pop3(server) as client:
            client.user("alice")
            all_ready.wait()
            try:
                reply = client.pass_("secret")
            except poplib.error_proto as exc:
                reply = exc.args[0]
            replies.append(reply)
            all_answered.wait()  # the winner keeps its lock until everyone has an answer
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        async with trio.open_nursery() as nursery:
            for _ in range(contenders):
                nursery.start_soon(trio.to_thread.run_sync, contender, server)
        assert server.store["alice"].logins == 1
        assert not server.store["alice"].locked
    winners = [reply for reply in replies if reply.startswith(b"+OK")]
    losers = [reply for reply in replies if reply.startswith(b"-ERR [IN-USE]")]
    assert (len(winners), len(losers)) == (1, contenders - 1), replies


async def test_command_lines_up_to_255_octets_work_and_longer_ones_are_refused() -> None:
    """A 255-octet USER line (CRLF included) gets a normal +OK; a 1000-octet line gets
    -ERR without running anything, and the session goes on (checklist #7, #8)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            longest = "u" * (255 - len("USER \r\n"))
            assert client.user(longest) == f"+OK Send PASS for {longest}".encode()
            assert expect_err(client.user, "v" * 1000).startswith(b"-ERR ")
            client.user("alice")
            assert client.pass_("secret").startswith(b"+OK")
            assert client.stat() == (4, sum(ALICE_SIZES))
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)


async def test_stopping_the_server_ends_open_sessions_without_update() -> None:
    """Leaving ``open_pop3_server`` while a client is in TRANSACTION with a message
    marked closes the connection (poplib sees EOF), deletes nothing and releases the
    lock (checklist section 1.5, abnormal termination)."""
    async with open_pop3_server(mailboxes()) as server:
        store = server.store
        client = await trio.to_thread.run_sync(poplib.POP3, server.host, server.port, 10)
        await trio.to_thread.run_sync(client.user, "alice")
        await trio.to_thread.run_sync(client.pass_, "secret")
        await trio.to_thread.run_sync(client.dele, 1)

    def noop_after_shutdown() -> None:
        # poplib reports a closed connection as error_proto("-ERR EOF") (a str);
        # a reset would surface as ConnectionError. Either way the session is gone.
        try:
            with pytest.raises((poplib.error_proto, ConnectionError)) as excinfo:
                client.noop()
        finally:
            client.close()
        if isinstance(excinfo.value, poplib.error_proto):
            assert excinfo.value.args == ("-ERR EOF",)

    await trio.to_thread.run_sync(noop_after_shutdown)
    assert len(store["alice"]) == 4
    assert store["alice"].deleted == ()
    assert not store["alice"].locked


# -- errors in TRANSACTION --------------------------------------------------------------
async def test_no_such_message_numbers_get_err() -> None:
    """LIST 99, RETR 99, TOP 99 0, UIDL 99 and DELE 99 get -ERR and the session goes on
    (checklist #26, #28, #39)."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
                (client.list, (99,)),
                (client.retr, (99,)),
                (client.top, (99, 0)),
                (client.uidl, (99,)),
                (client.dele, (99,)),
                (client.list, (0,)),
                (client.retr, ("x",)),
            ]
            for call, args in calls:
                assert expect_err(call, *args).startswith(b"-ERR ")
            assert client.stat() == (4, sum(ALICE_SIZES))
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert len(server.store["alice"]) == 4


async def test_dele_hides_message_and_later_use_of_its_number_gets_err() -> None:
    """After DELE 1: STAT and LIST leave it out, numbers do not shift, and RETR, LIST,
    TOP, UIDL and DELE of message 1 get -ERR (checklist #30, #31)."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            assert client.dele(1).startswith(b"+OK")
            assert client.stat() == (3, sum(ALICE_SIZES[1:]))
            assert client.list()[1] == [
                b"%d %d" % (n, size) for n, size in enumerate(ALICE_SIZES, 1) if n != 1
            ]
            uids = server.store["alice"].uids
            assert client.uidl()[1] == [f"{n} {uids[n - 1]}".encode() for n in (2, 3, 4)]
            retr_error = expect_err(client.retr, 1)
            assert b"deleted" in retr_error, retr_error
            calls: list[tuple[Callable[..., object], tuple[object, ...]]] = [
                (client.list, (1,)),
                (client.top, (1, 0)),
                (client.uidl, (1,)),
                (client.dele, (1,)),
            ]
            for call, args in calls:
                assert expect_err(call, *args).startswith(b"-ERR ")
            assert scan_line(client, 2) == b"+OK 2 %d" % ALICE_SIZES[1]
            client.quit()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)


async def test_rset_unmarks_deleted_messages() -> None:
    """RSET brings back every message marked with DELE; QUIT then deletes nothing
    (checklist #32)."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            client.dele(1)
            client.dele(3)
            assert client.stat() == (2, ALICE_SIZES[1] + ALICE_SIZES[3])
            assert client.rset().startswith(b"+OK")
            assert client.stat() == (4, sum(ALICE_SIZES))
            _, lines, _ = client.retr(1)
            assert joined(lines) == ALICE_WIRE[0]
            assert client.quit().startswith(b"+OK")

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert len(server.store["alice"]) == 4
        assert server.store["alice"].deleted == ()


# -- state across sessions --------------------------------------------------------------
async def test_dele_then_quit_removes_mail_and_renumbers_with_same_uids() -> None:
    """DELE 1 + QUIT removes the message; the next session sees old #2 as #1 with its
    UID unchanged, and new mail never reuses the deleted UID (checklist #33, #42)."""

    def first_session(server: Pop3Server) -> list[bytes]:
        with pop3(server, "alice", "secret") as client:
            uids = client.uidl()[1]
            client.dele(1)
            assert client.quit().startswith(b"+OK")
        return uids

    def second_session(server: Pop3Server) -> tuple[list[bytes], list[bytes], bytes]:
        with pop3(server, "alice", "secret") as client:
            assert client.stat() == (4, sum(ALICE_SIZES[1:]) + len(b"Subject: new\r\n\r\n"))
            listing = client.list()[1]
            uids = client.uidl()[1]
            first = joined(client.retr(1)[1])
            client.quit()
        return listing, uids, first

    async with open_pop3_server(mailboxes()) as server:
        before = await trio.to_thread.run_sync(first_session, server)
        assert [m.data for m in server.store["alice"].deleted] == [ALICE_WIRE[0]]
        new = server.store.deliver("alice", "Subject: new\n\n")
        listing, after, first = await trio.to_thread.run_sync(second_session, server)
    old_uids = [line.split()[1] for line in before]
    assert [line.split()[1] for line in after] == [*old_uids[1:], new.uid.encode()]
    assert new.uid.encode() not in old_uids
    assert listing[:3] == [b"1 %d" % ALICE_SIZES[1], b"2 %d" % ALICE_SIZES[2],
                           b"3 %d" % ALICE_SIZES[3]]
    assert first == ALICE_WIRE[1]


async def test_dele_then_closing_the_socket_deletes_nothing_and_unlocks() -> None:
    """A connection closed after DELE without QUIT never reaches UPDATE: all mail is
    kept, the mailbox is unlocked, and the next login sees all messages (checklist #34)."""

    def dropped_session(server: Pop3Server) -> None:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user("alice")
            client.pass_("secret")
            client.dele(1)
            client.dele(2)
        finally:
            client.close()  # no QUIT

    def next_session(server: Pop3Server) -> tuple[int, int]:
        with pop3(server, "alice", "secret") as client:
            stat = client.stat()
            client.quit()
        return stat

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(dropped_session, server)
        await server.wait_for_sessions(1)  # the server saw the connection go, and unlocked
        assert len(server.store["alice"]) == 4
        assert server.store["alice"].deleted == ()
        assert await trio.to_thread.run_sync(next_session, server) == (4, sum(ALICE_SIZES))


async def test_connection_reset_after_dele_deletes_nothing_and_unlocks() -> None:
    """A TCP reset (abortive close) in TRANSACTION is also not a QUIT: nothing is
    deleted, the lock is released, and the server records no error (checklist #34)."""

    def reset_session(server: Pop3Server) -> None:
        raw = RawPop3(server)
        raw.line()
        raw.send(b"USER alice\r\nPASS secret\r\nDELE 1\r\n")
        for _ in range(3):
            assert raw.line().startswith(b"+OK")
        raw.reset()

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(reset_session, server)
        await server.wait_for_sessions(1)  # the server saw the connection go, and unlocked
        assert len(server.store["alice"]) == 4
        assert server.errors == []


async def test_quit_in_authorization_closes_without_deleting() -> None:
    """QUIT before login gets +OK, closes the connection, and deletes nothing
    (checklist #44)."""

    def session(server: Pop3Server) -> None:
        with pop3(server) as client:
            client.user("alice")
            assert client.quit().startswith(b"+OK")

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        assert len(server.store["alice"]) == 4
        assert server.store["alice"].logins == 0


async def test_mail_delivered_mid_session_appears_only_in_the_next_session() -> None:
    """store.deliver() during a session does not change that session's STAT, LIST or
    UIDL (numbers are fixed at login); its QUIT keeps the new mail; the next session
    sees it (checklist section 1.5)."""
    async with open_pop3_server(mailboxes()) as server:
        client = await trio.to_thread.run_sync(poplib.POP3, server.host, server.port, 10)
        try:
            await trio.to_thread.run_sync(client.user, "alice")
            await trio.to_thread.run_sync(client.pass_, "secret")
            new = server.store.deliver("alice", "Subject: late\n\narrived during a session\n")
            assert len(server.store["alice"]) == 5
            assert await trio.to_thread.run_sync(client.stat) == (4, sum(ALICE_SIZES))
            assert len((await trio.to_thread.run_sync(client.list))[1]) == 4
            assert len((await trio.to_thread.run_sync(client.uidl))[1]) == 4
            assert (await trio.to_thread.run_sync(expect_err, client.list, 5)).startswith(b"-ERR")
            await trio.to_thread.run_sync(client.dele, 1)
            await trio.to_thread.run_sync(client.quit)
        finally:
            client.close()
        assert server.store["alice"].uids[-1] == new.uid
        assert len(server.store["alice"]) == 4

        def next_session() -> bytes:
            with pop3(server, "alice", "secret") as again:
                assert again.stat()[0] == 4
                assert again.uidl(4) == f"+OK 4 {new.uid}".encode()
                data = joined(again.retr(4)[1])
                again.quit()
            return data

        assert await trio.to_thread.run_sync(next_session) == (
            b"Subject: late\r\n\r\narrived during a session\r\n"
        )


# -- EXPIRE 0 and LOGIN-DELAY -----------------------------------------------------------
async def test_expire_zero_deletes_retrieved_mail_after_quit_only() -> None:
    """With EXPIRE 0, messages fetched with RETR are deleted at UPDATE (after QUIT);
    a dropped session deletes nothing, and TOP does not count as retrieval
    (checklist section 1.5, 1.10)."""

    def dropped(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            assert client.capa()["EXPIRE"] == ["0"]
            client.retr(1)
            # closed without QUIT

    def quitted(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            client.retr(1)
            client.retr(3)
            client.top(2, 0)
            assert client.stat() == (4, sum(ALICE_SIZES))  # nothing marked before UPDATE
            assert client.quit().startswith(b"+OK")

    async with open_pop3_server(mailboxes(), config=ServerConfig(expire=0)) as server:
        await trio.to_thread.run_sync(dropped, server)
        await server.wait_for_sessions(1)  # the server saw the connection go, and unlocked
        assert len(server.store["alice"]) == 4
        await trio.to_thread.run_sync(quitted, server)
        alice = server.store["alice"]
        assert [m.data for m in alice.messages] == [ALICE_WIRE[1], ALICE_WIRE[3]]
        assert [m.data for m in alice.deleted] == [ALICE_WIRE[0], ALICE_WIRE[2]]


async def test_login_delay_refuses_a_second_login_right_after_the_first() -> None:
    """With LOGIN-DELAY 60, CAPA advertises it and a login right after a completed one
    gets -ERR [LOGIN-DELAY]; other users are not affected (checklist #18)."""

    def sessions(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            assert client.capa()["LOGIN-DELAY"] == ["60"]
            client.quit()
        with pop3(server) as client:
            client.user("alice")
            assert expect_err(client.pass_, "secret").startswith(b"-ERR [LOGIN-DELAY]")
            assert expect_err(client.apop, "alice", "secret").startswith(b"-ERR [LOGIN-DELAY]")
            assert client.apop("bob", "tanstaaf").startswith(b"+OK")
            client.quit()

    async with open_pop3_server(mailboxes(), config=ServerConfig(login_delay=60)) as server:
        await trio.to_thread.run_sync(sessions, server)
        assert server.store["alice"].logins == 1
        assert not server.store["alice"].locked


# -- concurrency and pipelining ---------------------------------------------------------
async def test_twenty_concurrent_poplib_clients_each_get_their_own_mail() -> None:
    """Twenty sessions of different users, all logged in at the same time, each see
    exactly their own mailbox, and each one's DELE + QUIT removes only their mail."""
    users = [f"user{i:02d}" for i in range(20)]
    boxes = {
        user: {
            "password": f"pw-{user}",
            "messages": {f"id-{user}": f"Subject: {user}\n\nfor {user}\n"},
        }
        for user in users
    }
    all_logged_in = threading.Barrier(len(users), timeout=10)
    results: dict[str, bytes] = {}

    def session(server: Pop3Server, user: str) -> None:
        expected = f"Subject: {user}\r\n\r\nfor {user}\r\n".encode()
        with pop3(server, user, f"pw-{user}") as client:
            all_logged_in.wait()  # every session holds its lock at this point
            assert client.stat() == (1, len(expected))
            assert client.uidl(1) == f"+OK 1 id-{user}".encode()
            results[user] = joined(client.retr(1)[1])
            client.dele(1)
            assert client.quit().startswith(b"+OK")

    async with open_pop3_server(boxes) as server:
        async with trio.open_nursery() as nursery:
            for user in users:
                nursery.start_soon(trio.to_thread.run_sync, session, server, user)
        assert results == {u: f"Subject: {u}\r\n\r\nfor {u}\r\n".encode() for u in users}
        for user in users:
            mailbox = server.store[user]
            assert len(mailbox) == 0
            assert [m.uid for m in mailbox.deleted] == [f"id-{user}"]


async def test_pipelined_login_gets_replies_in_order() -> None:
    """USER, PASS and STAT sent in one write get +OK, +OK and "+OK 4 S" in that order
    (checklist #69)."""

    def session(server: Pop3Server) -> list[bytes]:
        with RawPop3(server) as raw:
            raw.line()
            raw.send(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
            return [raw.line() for _ in range(3)]

    async with open_pop3_server(mailboxes()) as server:
        user, password, stat = await trio.to_thread.run_sync(session, server)
    assert user.startswith(b"+OK")
    assert password.startswith(b"+OK")
    assert stat == b"+OK 4 %d\r\n" % sum(ALICE_SIZES)


async def test_pipelined_transaction_commands_get_replies_in_order() -> None:
    """STAT, LIST 2, UIDL 2, NOOP in one write: four replies in that order
    (checklist #68); then LIST, RETR 1, UIDL, DELE 1, QUIT in one write: multi-line and
    single-line replies in order, and the pipelined QUIT commits the DELE."""

    def session(server: Pop3Server) -> tuple[list[bytes], list[bytes], list[list[bytes]]]:
        with RawPop3(server) as raw:
            raw.line()
            raw.send(b"USER alice\r\nPASS secret\r\n")
            raw.line()
            raw.line()
            raw.send(b"STAT\r\nLIST 2\r\nUIDL 2\r\nNOOP\r\n")
            single = [raw.line() for _ in range(4)]
            raw.send(b"LIST\r\nRETR 1\r\nUIDL\r\nDELE 1\r\nQUIT\r\n")
            statuses, bodies = [], []
            for _ in range(3):  # LIST, RETR 1, UIDL: status line and data lines
                statuses.append(raw.line())
                bodies.append(raw.multiline())
            statuses += [raw.line(), raw.line()]  # DELE 1, QUIT
            assert raw.at_eof()  # the server closed after QUIT
        return single, statuses, bodies

    async with open_pop3_server(mailboxes()) as server:
        uids = server.store["alice"].uids
        single, statuses, bodies = await trio.to_thread.run_sync(session, server)
        assert server.store["alice"].uids == uids[1:]
        assert [m.uid for m in server.store["alice"].deleted] == [uids[0]]
    assert single[:3] == [
        b"+OK 4 %d\r\n" % sum(ALICE_SIZES),
        b"+OK 2 %d\r\n" % ALICE_SIZES[1],
        f"+OK 2 {uids[1]}\r\n".encode(),
    ]
    assert single[3].startswith(b"+OK")
    assert all(status.startswith(b"+OK") for status in statuses), statuses
    assert statuses[1] == b"+OK %d octets\r\n" % ALICE_SIZES[0]
    listing, retr_lines, uidl_lines = bodies
    assert listing == [b"%d %d\r\n" % (n, s) for n, s in enumerate(ALICE_SIZES, 1)]
    assert b"".join(retr_lines).replace(b"\r\n..", b"\r\n.") == ALICE_WIRE[0]
    assert uidl_lines == [f"{n} {uid}\r\n".encode() for n, uid in enumerate(uids, 1)]
