"""fakepop over real sockets, driven by the curl command-line client (libcurl's POP3).

What curl does, as checked against curl 7.88: ``pop3://u:p@host:port/`` sends LIST and
prints the scan listing; ``/N`` sends RETR N and prints the message with the
dot-stuffing undone; ``-X CMD`` sends CMD instead and prints a multi-line reply's data
lines; a command with a single-line reply (DELE, NOOP) needs ``-I`` so curl does not
wait for data lines; ``-l`` with ``/N`` sends LIST N. When the greeting carries an
APOP timestamp curl logs in with APOP, otherwise with USER/PASS; ``;AUTH=+APOP`` in
the URL asks for APOP explicitly (RFC 2384). curl ends with QUIT.
"""

from __future__ import annotations

import shutil

import pytest

from fakepop import ServerConfig, open_pop3_server
from tests.clients import ALICE_WIRE, M_DOTS, curl, headers_of, mailboxes, pop3_url

pytestmark = [
    pytest.mark.curl,
    pytest.mark.skipif(
        shutil.which("curl") is None,
        reason="curl is not installed: these tests drive fakepop with the curl client",
    ),
]

# curl's exit codes (libcurl CURLcode values).
CURLE_OK = 0
CURLE_WEIRD_SERVER_REPLY = 8  # what curl makes of -ERR to RETR/LIST n
CURLE_LOGIN_DENIED = 67


async def test_curl_lists_messages_with_their_exact_sizes() -> None:
    """``curl pop3://.../`` runs LIST: one "n size" line per message, sizes equal to
    the stored sizes (checklist #24)."""
    async with open_pop3_server(mailboxes()) as server:
        result = await curl(pop3_url(server, "alice", "secret"))
        sizes = [message.size for message in server.store["alice"].messages]
    assert result.returncode == CURLE_OK, result.stderr
    assert result.stdout == b"".join(b"%d %d\r\n" % (n, s) for n, s in enumerate(sizes, 1))
    assert sizes == [len(wire) for wire in ALICE_WIRE]


async def test_curl_retrieves_every_message_byte_for_byte() -> None:
    """``curl pop3://.../N`` runs RETR N; curl undoes the dot-stuffing, so its output
    equals the stored message octets, ".x" and "." lines, 8-bit body and the CRLF added
    after an unterminated last line included (checklist #27)."""
    async with open_pop3_server(mailboxes()) as server:
        for number, wire in enumerate(ALICE_WIRE, 1):
            result = await curl(pop3_url(server, "alice", "secret", f"/{number}"))
            assert result.returncode == CURLE_OK, result.stderr
            assert result.stdout == wire == server.store["alice"].messages[number - 1].data
        assert server.store["alice"].retrieved == tuple(server.store["alice"].uids)
        assert len(server.store["alice"]) == 4  # RETR deletes nothing
    assert b"\r\n.x\r\n.\r\n" in ALICE_WIRE[0]


async def test_curl_retrieves_a_large_message_with_dot_lines_intact() -> None:
    """A message of about 250 kB with a dot-leading line every few lines reaches curl
    unchanged: stuffing and un-stuffing agree across many socket reads."""
    source = "Subject: big\n\n" + "".join(
        f"..{i} starts with dots\n" if i % 5 == 0 else f"line {i:05d} of a long body\n"
        for i in range(10_000)
    )
    async with open_pop3_server({"bob": "tanstaaf"}) as server:
        stored = server.store.deliver("bob", source)
        result = await curl(pop3_url(server, "bob", "tanstaaf", "/1"))
    assert result.returncode == CURLE_OK, result.stderr
    assert result.stdout == source.replace("\n", "\r\n").encode() == stored.data
    assert len(result.stdout) == stored.size > 200_000


async def test_curl_retr_of_a_missing_message_fails() -> None:
    """RETR 9 of a four-message mailbox gets -ERR, which curl reports as a failure."""
    async with open_pop3_server(mailboxes()) as server:
        result = await curl(pop3_url(server, "alice", "secret", "/9"))
        await server.wait_for_sessions(1)  # curl's session has ended, its lock released
        assert len(server.store["alice"]) == 4
    assert result.returncode == CURLE_WEIRD_SERVER_REPLY, result.stderr
    assert result.stdout == b""


async def test_curl_custom_uidl_command_lists_user_given_uids() -> None:
    """``-X UIDL`` sends UIDL; the listing carries the UIDs the test chose (checklist
    #40)."""
    async with open_pop3_server(mailboxes()) as server:
        result = await curl("-X", "UIDL", pop3_url(server, "carol", "carol-pw"))
    assert result.returncode == CURLE_OK, result.stderr
    assert result.stdout == b"1 uid-a\r\n2 uid-b\r\n"


async def test_curl_custom_top_command_returns_headers_and_body_lines() -> None:
    """``--request "TOP 1 0"`` gives the headers and the empty line; "TOP 1 2" adds the
    first two body lines, un-stuffed by curl (checklist #36, #37)."""
    async with open_pop3_server(mailboxes()) as server:
        top0 = await curl("--request", "TOP 1 0", pop3_url(server, "alice", "secret"))
        top2 = await curl("--request", "TOP 1 2", pop3_url(server, "alice", "secret"))
    assert top0.returncode == top2.returncode == CURLE_OK, (top0.stderr, top2.stderr)
    headers = headers_of(M_DOTS.replace("\n", "\r\n").encode())
    assert top0.stdout == headers
    assert top2.stdout == headers + b"first line\r\n.x\r\n"


async def test_curl_list_only_sends_list_n_and_gets_a_single_line_reply() -> None:
    """``-l pop3://.../2`` sends LIST 2; the server answers the single line "+OK 2 s2"
    (curl prints nothing for it; the verbose transcript shows it) (checklist #25)."""
    async with open_pop3_server(mailboxes()) as server:
        result = await curl("-v", "-l", pop3_url(server, "alice", "secret", "/2"))
    assert result.returncode == CURLE_OK, result.stderr
    assert b"> LIST 2\r\n" in result.stderr
    assert b"< +OK 2 %d\r\n" % len(ALICE_WIRE[1]) in result.stderr


async def test_curl_dele_then_quit_removes_the_message() -> None:
    """``-I -X "DELE 1"`` marks message 1 and curl's QUIT commits it: the store keeps
    messages 2-4 in order and lists message 1 as deleted (checklist #33)."""
    async with open_pop3_server(mailboxes()) as server:
        uids = server.store["alice"].uids
        result = await curl("-I", "-X", "DELE 1", pop3_url(server, "alice", "secret"))
        assert result.returncode == CURLE_OK, result.stderr
        await server.wait_for_sessions(1)  # curl's session has ended, its lock released
        alice = server.store["alice"]
        assert alice.uids == uids[1:]
        assert [m.data for m in alice.deleted] == [ALICE_WIRE[0]]
        # A second curl sees the renumbered mailbox: old #2 is now #1.
        listing = await curl(pop3_url(server, "alice", "secret"))
        assert listing.stdout == b"".join(
            b"%d %d\r\n" % (n, len(wire)) for n, wire in enumerate(ALICE_WIRE[1:], 1)
        )


async def test_curl_noop_with_head_option_succeeds_and_deletes_nothing() -> None:
    """``-I -X NOOP`` gets +OK; nothing changes in the mailbox."""
    async with open_pop3_server(mailboxes()) as server:
        result = await curl("-I", "-X", "NOOP", pop3_url(server, "alice", "secret"))
        await server.wait_for_sessions(1)  # curl's session has ended, its lock released
        assert len(server.store["alice"]) == 4
    assert result.returncode == CURLE_OK, result.stderr


async def test_curl_wrong_password_is_login_denied_and_locks_nothing() -> None:
    """A wrong password makes curl exit 67 (login denied); the server answered
    -ERR [AUTH], counted no login and left the mailbox unlocked (checklist #12, #20)."""
    # Without SASL on offer, curl logs in with APOP, or USER/PASS without a timestamp.
    async with open_pop3_server(mailboxes(), config=ServerConfig(sasl=())) as server:
        apop = await curl("-v", pop3_url(server, "alice", "wrong"))
        no_apop = ServerConfig(apop=False, sasl=())
        async with open_pop3_server(mailboxes(), config=no_apop) as plain:
            user_pass = await curl("-v", pop3_url(plain, "alice", "wrong"))
            assert plain.store["alice"].logins == 0
        assert server.store["alice"].logins == 0
        assert not server.store["alice"].locked
    assert apop.returncode == user_pass.returncode == CURLE_LOGIN_DENIED
    assert b"> APOP alice " in apop.stderr
    assert b"> PASS wrong\r\n" in user_pass.stderr
    for result in (apop, user_pass):
        assert b"< -ERR [AUTH]" in result.stderr
        assert result.stdout == b""


async def test_curl_logs_in_with_user_pass_when_the_greeting_has_no_apop_timestamp() -> None:
    """Without an APOP timestamp in the greeting (and no SASL) curl falls back to
    USER/PASS, which works (checklist #9, #13)."""
    config = ServerConfig(apop=False, sasl=())
    async with open_pop3_server(mailboxes(), config=config) as server:
        result = await curl("-v", pop3_url(server, "alice", "secret", "/2"))
        await server.wait_for_sessions(1)  # curl's session has ended, its lock released
        assert server.store["alice"].logins == 1
    assert result.returncode == CURLE_OK, result.stderr
    assert b"> USER alice\r\n" in result.stderr
    assert b"> APOP" not in result.stderr
    assert result.stdout == ALICE_WIRE[1]


async def test_curl_apop_url_option_logs_in_with_apop() -> None:
    """``pop3://bob;AUTH=+APOP:secret@...`` makes curl use APOP with the greeting's
    timestamp; it works even when USER/PASS is switched off, and a wrong secret is
    login denied (checklist #19, #20, section 1.12)."""
    config = ServerConfig(user_pass=False)
    async with open_pop3_server(mailboxes(), config=config) as server:
        server.store.deliver("bob", "Subject: for bob\n\nvia APOP\n")
        good = await curl("-v", pop3_url(server, "bob", "tanstaaf", "/1", auth="+APOP"))
        bad = await curl(pop3_url(server, "bob", "nope", "/1", auth="+APOP"))
        await server.wait_for_sessions(2)  # both of curl's sessions have ended
        assert server.store["bob"].logins == 1
    assert good.returncode == CURLE_OK, good.stderr
    assert b"> APOP bob " in good.stderr
    assert b"> USER" not in good.stderr
    assert good.stdout == b"Subject: for bob\r\n\r\nvia APOP\r\n"
    assert bad.returncode == CURLE_LOGIN_DENIED, bad.stderr
