"""Each quirk of each server profile, through a real client (poplib) on a real socket.

Where each quirk comes from is in fakepop/profiles.py; docs/reference/quirks.md has the table
of profiles and quirks. The Dovecot profile is also compared line by line with a real
Dovecot in tests/test_dovecot_differential.py.
"""

from __future__ import annotations

import base64
import poplib
import socket
import time
from collections.abc import Iterator

import pytest

from fakepop import Pop3ServerThread, ServerConfig, TlsCertificates, profiles

TIMEOUT = 10
MAIL = ["Subject: one\n\n1\n", "Subject: two\n\n2\n", "Subject: three\n\n3\n"]
SIZES = [len(message.replace("\n", "\r\n")) for message in MAIL]
MAILBOXES = {"alice": {"password": "secret", "messages": MAIL}, "bob": "secret"}
CERTS = TlsCertificates()


def serve(config: ServerConfig, mailboxes: object = MAILBOXES) -> Pop3ServerThread:
    return Pop3ServerThread(mailboxes, config=config, ssl_context=CERTS.server_context())  # type: ignore[arg-type]


def connect(server: Pop3ServerThread) -> poplib.POP3:
    return poplib.POP3(server.host, server.port, timeout=TIMEOUT)


def error_of(call: object, *args: object) -> bytes:
    with pytest.raises(poplib.error_proto) as refused:
        call(*args)  # type: ignore[operator]
    return refused.value.args[0]  # type: ignore[no-any-return]


def closed(client: poplib.POP3) -> bool:
    """Whether the server has closed the connection (nothing more to read)."""
    client.sock.settimeout(TIMEOUT)
    try:
        return client.file.readline() == b""
    except ConnectionResetError:
        return True


# -- Dovecot ---------------------------------------------------------------------------------
# Scaled-down delays: Dovecot waits 2 s after a refused login and 10 s for a lock.
DOVECOT = profiles.dovecot(failed_login_delay=0.2, lock_wait=0.3)


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Pop3ServerThread]:
    with serve(DOVECOT) as server:
        yield server


def test_dovecot_takes_extra_arguments_and_doubled_spaces(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    client.user("alice")
    client.pass_("secret")
    assert client._shortcmd("STAT 1") == f"+OK 3 {sum(SIZES)}".encode()
    assert client._shortcmd("NOOP x") == b"+OK"
    assert client._shortcmd("LIST  2") == f"+OK 2 {SIZES[1]}".encode()
    assert client._shortcmd("RSET x") == b"+OK"
    assert client._shortcmd("QUIT x") == b"+OK Logging out."
    client.close()


def test_dovecot_takes_user_without_argument(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    assert client._shortcmd("USER") == b"+OK"
    assert error_of(client.pass_, "secret") == b"-ERR [AUTH] Authentication failed."
    client.quit()


def test_dovecot_words_its_refusals(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    assert error_of(client._shortcmd, "AUTH FOO") == (
        b"-ERR [AUTH] Unsupported authentication mechanism."
    )
    assert error_of(client._shortcmd, "PASS secret") == b"-ERR No username given."
    apop = "APOP alice 0123456789abcdef0123456789abcdef"
    assert error_of(client._shortcmd, apop) == b"-ERR APOP not enabled."
    assert client._shortcmd("AUTH PLAIN") == b"+ "
    assert error_of(client._shortcmd, "*") == b"-ERR Authentication aborted by client."
    assert error_of(client.stat) == b"-ERR Unknown command."
    client.quit()


def test_dovecot_refuses_a_huge_line_count(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    client.user("alice")
    client.pass_("secret")
    assert error_of(client.top, 1, 99999999999999999999) == (
        b"-ERR Size too large: 99999999999999999999"
    )
    assert error_of(client.retr, 4294967296) == b"-ERR Message number too large: "
    client.quit()


def test_dovecot_hangs_up_after_an_overlong_line(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    client.user("alice")
    client.pass_("secret")
    assert client._shortcmd("NOOP " + "x" * 2000) == b"+OK"  # 2048 octets are fine
    assert error_of(client._shortcmd, "NOOP " + "x" * 2100) == b"-ERR Input line too long."
    assert closed(client)
    client.close()


def test_dovecot_hangs_up_after_three_bad_commands_before_login(
    dovecot: Pop3ServerThread,
) -> None:
    client = connect(dovecot)
    for command in ("FOO", "STAT"):
        assert error_of(client._shortcmd, command) == b"-ERR Unknown command."
    assert error_of(client._shortcmd, "LIST") == b"-ERR Unknown command."
    assert client._getline()[0] == b"-ERR Too many invalid bad commands."
    assert closed(client)
    client.close()


def test_dovecot_hangs_up_after_twenty_one_bad_commands_after_login(
    dovecot: Pop3ServerThread,
) -> None:
    client = connect(dovecot)
    client.user("alice")
    client.pass_("secret")
    for _ in range(21):
        assert error_of(client._shortcmd, "RETR 9") == b"-ERR There's no message 9."
    assert client._getline()[0] == b"-ERR Too many bad commands."
    assert closed(client)
    client.close()


def test_dovecot_delays_a_refused_login(dovecot: Pop3ServerThread) -> None:
    client = connect(dovecot)
    client.user("alice")
    start = time.monotonic()
    assert error_of(client.pass_, "wrong") == b"-ERR [AUTH] Authentication failed."
    assert time.monotonic() - start >= DOVECOT.failed_login_delay
    client.quit()


def test_dovecot_waits_for_a_locked_mailbox_then_hangs_up(dovecot: Pop3ServerThread) -> None:
    first = connect(dovecot)
    first.user("bob")
    first.pass_("secret")
    second = connect(dovecot)
    second.user("bob")
    start = time.monotonic()
    assert error_of(second.pass_, "secret") == (
        b"-ERR [IN-USE] Mailbox is locked by another POP3 session."
    )
    assert time.monotonic() - start >= DOVECOT.lock_wait
    assert closed(second)
    second.close()
    first.quit()


def test_dovecot_capa_lists_capa_and_drops_login_capabilities_after_login(
    dovecot: Pop3ServerThread,
) -> None:
    client = connect(dovecot)
    before = client.capa()
    assert list(before) == [
        "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "STLS", "USER",
        "SASL",
    ]
    assert before["SASL"] == ["PLAIN", "LOGIN", "CRAM-MD5"]
    client.user("alice")
    client.pass_("secret")
    assert list(client.capa()) == [
        "CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"
    ]
    client.quit()


def test_dovecot_hangs_up_when_commands_are_pipelined_behind_stls(
    dovecot: Pop3ServerThread,
) -> None:
    with socket.create_connection(dovecot.address, timeout=TIMEOUT) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"STLS\r\nCAPA\r\n")
        assert reader.readline() == b"+OK Begin TLS negotiation now.\r\n"
        assert reader.readline() == b""


# -- Gmail -------------------------------------------------------------------------------------
GMAIL = profiles.gmail()


def gmail_login(server: Pop3ServerThread, user: str = "alice") -> poplib.POP3:
    client = connect(server)
    assert client.user(user) == b"+OK send PASS"
    assert client.pass_("secret") == b"+OK Welcome."
    return client


def test_gmail_words_and_advertises_as_pop_gmail_com() -> None:
    with serve(GMAIL) as server:
        client = connect(server)
        assert client.getwelcome() == b"+OK Gpop ready for requests from 127.0.0.1 fakepop"
        capa = client.capa()
        assert list(capa) == [
            "USER", "RESP-CODES", "EXPIRE", "LOGIN-DELAY", "TOP", "UIDL", "X-GOOGLE-VERHOEVEN",
            "SASL",
        ]
        assert capa["EXPIRE"] == ["0"]
        assert capa["LOGIN-DELAY"] == ["300"]
        assert capa["SASL"] == ["PLAIN", "XOAUTH2"]
        client.user("alice")
        assert error_of(client.pass_, "wrong") == (
            b"-ERR [AUTH] Username and password not accepted."
        )
        client.quit()
        client = gmail_login(server)
        assert client.list()[0] == f"+OK 3 messages ({sum(SIZES)} bytes)".encode()
        assert client.retr(1)[0] == b"+OK message follows"
        assert client.quit() == b"+OK Farewell."


def test_gmail_does_not_offer_mail_retrieved_in_an_earlier_session() -> None:
    with serve(GMAIL) as server:
        client = gmail_login(server)
        client.retr(1)
        client.top(2, 0)  # TOP does not count
        client.quit()
        client = gmail_login(server)
        assert client.stat() == (2, SIZES[1] + SIZES[2])
        assert client.uidl()[1] == [b"1 uid000002", b"2 uid000003"]
        client.quit()
        assert len(server.store["alice"]) == 3
        assert server.store["alice"].popped == ("uid000001",)


def test_gmail_offers_mail_again_when_the_session_did_not_quit() -> None:
    with serve(GMAIL) as server:
        client = gmail_login(server)
        client.retr(1)
        client.close()  # the connection dropped: no QUIT
        server.wait_idle()
        client = gmail_login(server)
        assert client.stat()[0] == 3
        client.quit()


def test_gmail_keeps_mail_the_client_deleted() -> None:
    with serve(GMAIL) as server:
        client = gmail_login(server)
        client.dele(2)
        assert client.quit() == b"+OK Farewell."
        assert len(server.store["alice"]) == 3  # Gmail's copy stays (its default)
        client = gmail_login(server)
        assert client.stat()[0] == 2
        client.quit()


def test_gmail_recent_mode_offers_all_mail_again() -> None:
    with serve(GMAIL) as server:
        client = gmail_login(server)
        client.retr(1)
        client.retr(2)
        client.quit()
        client = gmail_login(server, "recent:alice")
        assert client.stat() == (3, sum(SIZES))
        client.quit()
        client = gmail_login(server)
        assert client.stat() == (1, SIZES[2])
        client.quit()


def test_gmail_offers_a_session_only_250_messages() -> None:
    messages = [f"Subject: {n}\n\n.\n" for n in range(300)]
    mailboxes = {"carol": {"password": "secret", "messages": messages}}
    with serve(GMAIL, mailboxes) as server:
        client = gmail_login(server, "carol")
        assert client.stat()[0] == 250
        for number in range(1, 251):
            client.retr(number)
        client.quit()
        client = gmail_login(server, "carol")
        assert client.stat()[0] == 50
        client.quit()


# -- Outlook (Exchange Online) ---------------------------------------------------------------
OUTLOOK = profiles.outlook()


def xoauth2(user: str, token: str) -> str:
    return base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode()


def test_outlook_greets_with_its_server_tag_and_offers_logins_only_after_tls() -> None:
    with serve(OUTLOOK) as server:
        client = connect(server)
        tag = base64.b64encode("LOCALHOST".encode("utf-16-le")).decode()
        assert client.getwelcome() == (
            f"+OK The Microsoft Exchange POP3 service is ready. [{tag}]".encode()
        )
        assert list(client.capa()) == ["TOP", "UIDL", "STLS"]
        assert client.stls(CERTS.client_context()) == b"+OK Begin TLS negotiation."
        capa = client.capa()
        assert list(capa) == ["TOP", "UIDL", "SASL", "USER"]
        assert capa["SASL"] == ["PLAIN", "XOAUTH2"]
        client.quit()


def test_outlook_refuses_passwords_even_right_ones() -> None:
    with serve(OUTLOOK) as server:
        client = connect(server)
        client.stls(CERTS.client_context())
        client.user("alice")
        assert error_of(client.pass_, "secret") == (
            b"-ERR Logon failure: unknown user name or bad password."
        )
        plain = base64.b64encode(b"\0alice\0secret").decode()
        assert error_of(client._shortcmd, f"AUTH PLAIN {plain}") == (
            b"-ERR Authentication failure: unknown user name or bad password."
        )
        client.quit()


def test_outlook_takes_a_token_on_a_continuation_line() -> None:
    with serve(OUTLOOK) as server:
        client = connect(server)
        client.stls(CERTS.client_context())
        assert client._shortcmd("AUTH XOAUTH2") == b"+ "
        token = xoauth2("alice", "secret")
        assert client._shortcmd(token) == b"+OK User successfully authenticated."
        assert client.stat()[0] == 3
        client.quit()


def test_outlook_refuses_a_bad_token_at_once() -> None:
    with serve(OUTLOOK) as server:
        client = connect(server)
        client.stls(CERTS.client_context())
        client._shortcmd("AUTH XOAUTH2")
        assert error_of(client._shortcmd, xoauth2("alice", "expired")) == (
            b"-ERR Authentication failure: unknown user name or bad password."
        )
        client.quit()
