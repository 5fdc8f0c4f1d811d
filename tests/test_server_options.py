"""The ServerConfig options that make fakepop behave like servers less strict, or more
particular, than RFC 1939: how arguments are read, when the server hangs up, its
delays, what CAPA lists, and Gmail's and Exchange Online's logins and mail.

Sans-IO where the rule is the protocol's, over Trio (``autojump_clock``) where it is
time. Where each behaviour comes from: docs/explanation/dovecot.md and fakepop/profiles.py.
"""

from __future__ import annotations

import base64

import pytest
import trio
import trio.testing

from fakepop import (
    EndReason,
    MailStore,
    Pop3Protocol,
    Pop3Server,
    ServerConfig,
    open_pop3_server,
)
from fakepop.errors import ConfigError
from tests.sansio import LOGIN, SIZES, TOTAL, checklist_store, feed, lines, new_session
from tests.trio_client import TrioPop3Client

LENIENT = ServerConfig(lenient_arguments=True)


def replies(data: bytes, config: ServerConfig, store: MailStore | None = None) -> list[bytes]:
    """Every reply line of a session fed ``data`` at once (the greeting left out)."""
    return lines(feed(new_session(store, config), [data]))


def logged_in(data: bytes, config: ServerConfig, store: MailStore | None = None) -> list[bytes]:
    """The reply lines to ``data`` sent after alice's USER and PASS."""
    out = replies(LOGIN + data, config, store)
    assert out[1].startswith(b"+OK alice's maildrop")
    return out[2:]


# -- lenient arguments (Dovecot's reading, docs/explanation/dovecot.md) -----------------------
def test_strictly_read_extra_and_doubled_arguments_are_refused() -> None:
    """RFC 1939 section 3: keywords and arguments are separated by a single space."""
    out = logged_in(b"STAT 1\r\nNOOP x\r\nLIST  2\r\nQUIT x\r\n", ServerConfig())
    assert [line[:4] for line in out] == [b"-ERR"] * 4


def test_leniently_read_commands_ignore_extra_arguments() -> None:
    out = logged_in(b"STAT 1\r\nNOOP x\r\nRSET x\r\nCAPA x\r\n", LENIENT)
    assert out[:2] == [f"+OK 3 {TOTAL}".encode(), b"+OK"]
    assert out[2].startswith(b"+OK")
    assert out[3].startswith(b"+OK")
    assert out[-1] == b"."


def test_leniently_read_spaces_before_an_argument_are_skipped() -> None:
    out = logged_in(b"LIST  2\r\nUIDL   3\r\nLIST \r\n", LENIENT)
    assert out[:2] == [f"+OK 2 {SIZES[1]}".encode(), b"+OK 3 uid000003"]
    assert out[2].startswith(b"+OK 3 messages")
    assert out[-1] == b"."


def test_leniently_read_numbers_end_at_their_last_digit() -> None:
    out = logged_in(
        b"LIST 1 2\r\nLIST 1 \r\nTOP 1\r\nTOP 1 0 0\r\nLIST 00002\r\nLIST x\r\n", LENIENT
    )
    assert out == [
        b"-ERR Noise after message number:  2",
        b"-ERR Noise after message number:  ",
        b"-ERR Noise after message number: ",
        b"-ERR Noise after line count:  0",
        f"+OK 2 {SIZES[1]}".encode(),
        b"-ERR Invalid message number: x",
    ]


def test_leniently_read_numbers_have_dovecots_limits() -> None:
    """A message number is at most 2**32 - 1, a line count at most 2**64 - 1."""
    out = logged_in(
        b"RETR 4294967296\r\nRETR 4294967296 x\r\nRETR 99999999999999999999\r\n"
        b"TOP 1 18446744073709551616\r\nTOP 2 18446744073709551614\r\n",
        LENIENT,
    )
    assert out[:4] == [
        b"-ERR Message number too large: ",
        b"-ERR Message number too large:  x",
        b"-ERR Message number too large: 99999999999999999999",
        b"-ERR Line count too large: 18446744073709551616",
    ]
    assert out[4] == b"+OK Top of message follows"  # the whole message


def test_leniently_read_user_and_pass_take_the_rest_of_the_line() -> None:
    out = replies(
        b"USER\r\nPASS\r\nUSER  alice\r\nPASS secret\r\nUSER alice\r\nPASS secret\r\n", LENIENT
    )
    assert out[:2] == [b"+OK Send PASS for ", b"-ERR [AUTH] Authentication failed"]
    assert out[2:4] == [b"+OK Send PASS for  alice", b"-ERR [AUTH] Authentication failed"]
    assert out[-1].startswith(b"+OK alice's maildrop")


def test_quit_with_an_argument_before_login_is_quit_when_read_leniently() -> None:
    assert replies(b"QUIT now\r\n", LENIENT) == [b"+OK Logging out"]


def test_an_unknown_keyword_is_echoed_whole_within_the_line() -> None:
    """RFC 1939 section 3: a reply is at most 512 octets; Dovecot echoes the keyword
    whole, and so does fakepop, as long as the line allows."""
    keyword = b"X" * 250
    assert replies(keyword + b"\r\n", ServerConfig()) == [b"-ERR Unknown command: " + keyword]
    long_keyword = b"Y" * 1000
    out = replies(long_keyword + b"\r\n", ServerConfig(max_line_length=1024))
    assert len(out[0]) + 2 == 512
    assert out[0].endswith(b"...")


# -- hanging up --------------------------------------------------------------------------------
def test_a_line_too_long_can_close_the_connection() -> None:
    config = ServerConfig(close_on_long_line=True, texts={"line_too_long": "Input line too long."})
    protocol = new_session(config=config)
    out = lines(feed(protocol, [LOGIN + b"NOOP " + b"x" * 300 + b"\r\nNOOP\r\n"]))
    assert out[-1] == b"-ERR Input line too long."
    assert protocol.hung_up
    assert not protocol.store["alice"].locked


def test_the_line_limit_before_login_can_differ() -> None:
    config = ServerConfig(
        max_line_length=1000, max_line_length_before_login=300, lenient_arguments=True
    )
    long_user = b"USER " + b"a" * 400 + b"\r\n"
    out = replies(long_user + LOGIN + b"NOOP " + b"x" * 900 + b"\r\n", config)
    assert out[0] == b"-ERR Line too long (at most 300 octets including CRLF)"
    assert out[-1] == b"+OK"  # after login the longer limit applies
    with pytest.raises(ConfigError, match="max_line_length_before_login must be at least 255"):
        ServerConfig(max_line_length_before_login=100)


def test_too_many_bad_commands_before_login_hang_up_with_a_notice() -> None:
    config = ServerConfig(max_bad_commands_before_login=3)
    protocol = new_session(config=config)
    out = lines(feed(protocol, [b"FOO\r\nSTAT\r\nLIST\r\nQUIT\r\n"]))
    assert out == [
        b"-ERR Unknown command: FOO",
        b"-ERR STAT is not allowed before login",
        b"-ERR LIST is not allowed before login",
        b"-ERR Too many bad commands",
    ]
    assert protocol.hung_up


def test_a_good_command_breaks_the_row_and_auth_neither_counts_nor_breaks_it() -> None:
    config = ServerConfig(max_bad_commands_before_login=3, sasl=("PLAIN",))
    out = replies(b"FOO\r\nFOO\r\nCAPA\r\nFOO\r\nAUTH FOO\r\nFOO\r\nPASS x\r\nFOO\r\n", config)
    assert out[-1] == b"-ERR Unknown command: FOO"  # PASS out of turn broke the row
    out = replies(b"FOO\r\nAUTH FOO\r\nFOO\r\nFOO\r\n", config)
    assert out[-1] == b"-ERR Too many bad commands"


def test_too_many_bad_commands_after_login_count_every_err() -> None:
    config = ServerConfig(max_bad_commands=3)
    protocol = new_session(config=config)
    out = lines(feed(protocol, [LOGIN + b"DELE 9\r\nLIST 9\r\nSTAT\r\nFOO\r\nRETR x\r\n"]))
    assert out[-1] == b"-ERR Invalid message number: x"  # STAT broke the row
    out = lines(feed(protocol, [b"LIST 0\r\nNOOP\r\n"]))
    assert out == [b"-ERR No such message: 0", b"-ERR Too many bad commands"]
    assert len(protocol.store["alice"]) == 3  # no UPDATE


def test_a_locked_mailbox_can_hang_up() -> None:
    store = checklist_store()
    first = new_session(store)
    feed(first, [LOGIN])
    second = new_session(store, ServerConfig(close_on_in_use=True, lock_wait=10))
    protocol_reply = None
    for line in (b"USER alice\r\n", b"PASS secret\r\n"):
        second.receive_data(line)
        command = second.next_command()
        assert command is not None
        protocol_reply = second.handle(command)
    assert protocol_reply is not None
    assert protocol_reply.status.startswith(b"-ERR [IN-USE]")
    assert protocol_reply.close
    assert protocol_reply.delay == 10
    assert second.hung_up


def test_commands_pipelined_behind_stls_can_hang_up() -> None:
    """RFC 2595 section 4: a client must not pipeline behind STLS; Dovecot's handshake
    fails on what it sent, the default server throws it away."""
    config = ServerConfig(close_on_stls_pipelining=True)
    protocol = Pop3Protocol(checklist_store(), config, tls_available=True)
    protocol.receive_data(b"STLS\r\nCAPA\r\n")
    command = protocol.next_command()
    assert command is not None
    reply = protocol.handle(command)
    assert reply.ok
    assert reply.close
    assert not reply.starttls


# -- SASL wording -------------------------------------------------------------------------------
def test_sasl_failures_can_be_answered_as_refused_logins() -> None:
    """RFC 5034 section 4; Dovecot words a malformed PLAIN response as a failed login."""
    plain = base64.b64encode(b"\0alice").decode().encode()
    assert replies(b"AUTH PLAIN " + plain + b"\r\n", ServerConfig()) == [
        b"-ERR PLAIN needs authzid NUL authcid NUL password"
    ]
    config = ServerConfig(sasl_failure_reasons=False, failed_login_delay=2)
    protocol = new_session(config=config)
    protocol.receive_data(b"AUTH PLAIN " + plain + b"\r\n")
    command = protocol.next_command()
    assert command is not None
    reply = protocol.handle(command)
    assert reply.status == b"-ERR [AUTH] Authentication failed\r\n"
    assert reply.delay == 2


def test_sasl_credential_failures_have_their_own_wording() -> None:
    config = ServerConfig(texts={"auth_failed": "Bad password.", "sasl_failed": "Bad login."})
    wrong = base64.b64encode(b"\0alice\0nope").decode().encode()
    out = replies(b"AUTH PLAIN " + wrong + b"\r\nUSER alice\r\nPASS nope\r\n", config)
    assert out == [
        b"-ERR [AUTH] Bad login.", b"+OK Send PASS for alice", b"-ERR [AUTH] Bad password."
    ]


# -- what CAPA lists ------------------------------------------------------------------------------
def test_capa_can_be_listed_in_another_order_and_differ_after_login() -> None:
    """RFC 2449 section 5 asks for the same capabilities in both states; Dovecot drops
    USER and SASL after login, which capa_listing_after_login reproduces."""
    config = ServerConfig(
        capa_listing=("CAPA", "UIDL", "TOP", "X-VENDOR", "EXPIRE", "SASL", "USER"),
        capa_listing_after_login=("CAPA", "TOP"),
        sasl=("PLAIN",),
    )
    out = replies(b"CAPA\r\n" + LOGIN + b"CAPA\r\n", config)
    assert out[:7] == [
        b"+OK Capability list follows", b"CAPA", b"UIDL", b"TOP", b"X-VENDOR", b"SASL PLAIN",
        b"USER",
    ]  # EXPIRE is not offered (expire=None), so it is not listed
    assert out[-4:] == [b"+OK Capability list follows", b"CAPA", b"TOP", b"."]


@pytest.mark.parametrize(
    "listing", [("TOP", "TOP"), (".HIDDEN",), ("BAD\r\nLINE",), "TOP", ("",), (" TOP",)]
)
def test_a_bad_capa_listing_is_refused(listing: object) -> None:
    with pytest.raises(ConfigError, match="capa_listing"):
        ServerConfig(capa_listing=listing)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_bad_commands", 0),
        ("max_bad_commands_before_login", True),
        ("failed_login_delay", -1),
        ("lock_wait", float("inf")),
        ("max_messages_offered", 0),
        ("recent_prefix", "recent :"),
        ("recent_prefix", ""),
        ("max_line_length", "255"),
    ],
)
def test_bad_option_values_raise_config_error(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        ServerConfig(**{option: value})  # type: ignore[arg-type]


# -- Gmail's popped mail and recent mode --------------------------------------------------------
GMAIL_LIKE = ServerConfig(hide_popped=True, recent_prefix="recent:")


def test_mail_retrieved_before_quit_is_popped_not_removed() -> None:
    store = checklist_store()
    feed(new_session(store, GMAIL_LIKE), [LOGIN + b"RETR 1\r\nTOP 2 0\r\nDELE 3\r\nQUIT\r\n"])
    mailbox = store["alice"]
    assert len(mailbox) == 3  # nothing removed: DELE keeps Gmail's copy
    assert mailbox.popped == ("uid000001", "uid000003")  # TOP does not pop
    out = logged_in(b"STAT\r\nUIDL\r\n", GMAIL_LIKE, store)
    assert out == [
        f"+OK 1 {SIZES[1]}".encode(), b"+OK Unique-ID listing follows", b"1 uid000002", b"."
    ]


def test_a_session_that_ends_without_quit_pops_nothing() -> None:
    store = checklist_store()
    protocol = new_session(store, GMAIL_LIKE)
    feed(protocol, [LOGIN + b"RETR 1\r\n"])
    protocol.connection_lost()
    assert store["alice"].popped == ()


def test_recent_mode_sees_popped_mail_with_the_mailboxs_password() -> None:
    store = checklist_store()
    feed(new_session(store, GMAIL_LIKE), [LOGIN + b"RETR 1\r\nQUIT\r\n"])
    out = replies(b"USER recent:alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n", GMAIL_LIKE, store)
    assert out[1].startswith(b"+OK alice's maildrop")
    assert out[2] == f"+OK 3 {TOTAL}".encode()
    assert replies(b"USER recent:alice\r\nPASS nope\r\n", GMAIL_LIKE, store)[-1].startswith(
        b"-ERR [AUTH]"
    )


def test_a_session_is_offered_only_the_oldest_messages() -> None:
    config = ServerConfig(max_messages_offered=2)
    assert logged_in(b"STAT\r\n", config) == [f"+OK 2 {SIZES[0] + SIZES[1]}".encode()]


# -- Exchange Online's OAuth-only logins -----------------------------------------------------------
def xoauth2(user: str, token: str) -> bytes:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())


def test_oauth_only_refuses_passwords_even_right_ones() -> None:
    config = ServerConfig(oauth_only=True, sasl=("PLAIN", "XOAUTH2"))
    plain = base64.b64encode(b"\0alice\0secret")
    out = replies(LOGIN + b"AUTH PLAIN " + plain + b"\r\nAUTH XOAUTH2\r\n", config)
    assert out[1:3] == [b"-ERR [AUTH] Authentication failed"] * 2
    assert out[3] == b"+ "
    out = replies(b"AUTH XOAUTH2\r\n" + xoauth2("alice", "secret") + b"\r\n", config)
    assert out[-1].startswith(b"+OK alice's maildrop")


def test_a_refused_token_can_get_its_err_at_once() -> None:
    """RFC 7628 section 3.2.3 has the error challenge; Exchange Online answers -ERR."""
    wrong = xoauth2("alice", "expired") + b"\r\n"
    google = replies(b"AUTH XOAUTH2\r\n" + wrong, ServerConfig())
    assert google[-1].startswith(b"+ ")  # the JSON error challenge
    microsoft = replies(b"AUTH XOAUTH2\r\n" + wrong, ServerConfig(token_error_challenge=False))
    assert microsoft[-1] == b"-ERR [AUTH] Authentication failed"


# -- delays on trio's clock ----------------------------------------------------------------------
async def test_a_refused_login_waits_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig(failed_login_delay=2)
    async with open_pop3_server(checklist_store(), config=config) as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with TrioPop3Client(stream) as client:
            await client.line()
            await client.command("USER alice")
            start = trio.current_time()
            assert await client.command("PASS nope") == b"-ERR [AUTH] Authentication failed"
            assert trio.current_time() - start == pytest.approx(2)
            start = trio.current_time()
            await client.command("USER alice")
            assert (await client.command("PASS secret")).startswith(b"+OK")
            assert trio.current_time() - start == pytest.approx(0)


async def test_a_locked_mailbox_waits_then_hangs_up(autojump_clock: trio.testing.MockClock) -> None:
    config = ServerConfig(lock_wait=10, close_on_in_use=True)
    server = Pop3Server(checklist_store(), config=config)
    async with trio.open_nursery() as nursery:
        clients = []
        for _ in range(2):
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(server.handle_stream, server_stream)
            client = TrioPop3Client(client_stream)
            await client.line()
            await client.command("USER alice")
            clients.append(client)
        assert (await clients[0].command("PASS secret")).startswith(b"+OK")
        start = trio.current_time()
        refused = await clients[1].command("PASS secret")
        assert refused == b"-ERR [IN-USE] Mailbox is locked by another session"
        assert trio.current_time() - start == pytest.approx(10)
        assert await clients[1].closed_by_server()
        assert await clients[0].command("QUIT") == b"+OK Logging out, 0 messages deleted"
    second = server.transcript.sessions[1]
    assert second.ended_by is EndReason.HUNG_UP
