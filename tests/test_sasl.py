"""SASL AUTH (RFC 5034) with PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER.

Tests citing "checklist #N" implement test vector N of the POP3 conformance checklist
(vectors that need TLS run with cleartext_login allowed, or over a real STLS where the
TLS is the point)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil

import pytest
import trio

from fakepop import (
    MailStore,
    Pop3Protocol,
    ServerConfig,
    State,
    TemporaryFailure,
    open_pop3_server,
)
from fakepop._protocol import fresh_msg_id
from tests.sansio import (
    LOGGED_IN,
    LOGIN,
    apop_digest,
    checklist_store,
    converse,
    feed,
    lines,
    new_session,
)


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


PLAIN_ALICE = b64(b"\0alice\0secret")  # AGFsaWNlAHNlY3JldA==
TOKEN_LINE = b"user=alice\x01auth=Bearer secret\x01\x01"


def test_auth_plain_with_an_initial_response() -> None:
    """checklist #51"""
    out = lines(converse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n"))
    assert out[0] == LOGGED_IN[1]
    assert out[1].startswith(b"+OK 3 ")


def test_auth_plain_after_an_empty_challenge() -> None:
    """checklist #52: exactly "+ " CRLF, then +OK."""
    out = converse(b"AUTH PLAIN\r\n" + PLAIN_ALICE + b"\r\n")
    assert out.startswith(b"+ \r\n")
    assert lines(out)[1] == LOGGED_IN[1]


def test_a_star_cancels_and_a_new_auth_is_accepted() -> None:
    """checklist #53"""
    out = lines(converse(b"AUTH PLAIN\r\n*\r\nAUTH PLAIN " + PLAIN_ALICE + b"\r\n"))
    assert out == [b"+ ", b"-ERR Authentication cancelled", LOGGED_IN[1]]


@pytest.mark.parametrize("initial", [b"AGFs aWNl", b"=AAA", b"AAA=BBBB", b"AB!C", b"ABC"])
def test_malformed_base64_is_refused(initial: bytes) -> None:
    """checklist #54: characters outside the alphabet, '=' not at the end."""
    assert lines(converse(b"AUTH PLAIN " + initial + b"\r\n"))[0].startswith(b"-ERR")


def test_an_empty_plain_message_is_refused() -> None:
    """checklist #55"""
    out = lines(converse(b"AUTH PLAIN =\r\n"))
    assert out == [b"-ERR PLAIN needs authzid NUL authcid NUL password"]


def test_cram_md5_refuses_an_initial_response() -> None:
    """checklist #56"""
    out = lines(converse(b"AUTH CRAM-MD5 dGVzdA==\r\n"))
    assert out == [b"-ERR CRAM-MD5 takes no initial response: the server speaks first"]


def cram_md5_response(challenge_line: bytes, user: str, secret: str) -> bytes:
    challenge = base64.b64decode(challenge_line.removeprefix(b"+ "))
    digest = hmac.new(secret.encode(), challenge, hashlib.md5).hexdigest()
    return b64(f"{user} {digest}".encode())


def test_cram_md5_logs_in_with_a_new_challenge_each_time() -> None:
    """checklist #57"""
    challenges = []
    for _ in range(2):
        session = new_session()
        challenge = feed(session, [b"AUTH CRAM-MD5\r\n"]).rstrip(b"\r\n")
        decoded = base64.b64decode(challenge.removeprefix(b"+ "))
        assert re.fullmatch(rb"<[^<>@]+@localhost>", decoded)
        challenges.append(decoded)
        response = cram_md5_response(challenge, "alice", "secret")
        assert lines(feed(session, [response + b"\r\n"])) == [LOGGED_IN[1]]
        assert session.state is State.TRANSACTION
    assert challenges[0] != challenges[1]


def test_mechanism_names_are_case_insensitive() -> None:
    """checklist #58"""
    out = lines(feed(new_session(), [b"AUTH FOOBAR\r\nauth cram-md5\r\n"]))
    assert out[0] == b"-ERR Unsupported SASL mechanism: FOOBAR"
    assert out[1].startswith(b"+ ")


def test_auth_after_login_is_refused() -> None:
    """checklist #59 (and #43)"""
    out = lines(converse(b"AUTH PLAIN " + PLAIN_ALICE + b"\r\nAUTH PLAIN " + PLAIN_ALICE + b"\r\n"))
    assert out[1] == b"-ERR AUTH is not allowed after login"


def test_plain_accepts_255_octet_fields_on_a_long_continuation_line() -> None:
    """checklist #60: 255-octet authcid and password, a 684-character base64 line."""
    user, password = "u" * 255, "p" * 255
    store = MailStore({user: password})
    line = b64(b"\0" + user.encode() + b"\0" + password.encode())
    assert len(line) == 684
    session = new_session(store)
    out = lines(feed(session, [b"AUTH PLAIN\r\n", line + b"\r\n"]))
    assert out[0] == b"+ "
    assert out[1].startswith(b"+OK ")


def test_xoauth2_with_a_long_token_and_with_a_bad_one() -> None:
    """checklist #62: a 2 KB continuation line; a bad token gets a base64 JSON
    challenge, the client's empty line, then -ERR [AUTH]."""
    token = "t" * 2000
    store = checklist_store()
    config = ServerConfig(token_validator=lambda user, given: given == token)
    good = new_session(store, config)
    line = b64(f"user=alice\x01auth=Bearer {token}\x01\x01".encode())
    assert len(line) > 2000
    out = lines(feed(good, [b"AUTH XOAUTH2\r\n", line + b"\r\n"]))
    assert out[0] == b"+ "
    assert out[1].startswith(b"+OK alice's maildrop")
    feed(good, [b"QUIT\r\n"])
    bad = new_session(store, config)
    challenge = feed(bad, [b"AUTH XOAUTH2 " + b64(TOKEN_LINE) + b"\r\n"]).rstrip(b"\r\n")
    error = json.loads(base64.b64decode(challenge.removeprefix(b"+ ")))
    assert error["status"] == "401"
    assert lines(feed(bad, [b"\r\n"])) == [b"-ERR [AUTH] Invalid or expired token"]
    assert bad.state is State.AUTHORIZATION


def test_oauthbearer() -> None:
    """RFC 7628: the gs2 header names the user; a failure's JSON challenge is
    answered with ^A before the final -ERR."""
    message = b"n,a=alice,\x01host=localhost\x01port=110\x01auth=Bearer secret\x01\x01"
    out = lines(converse(b"AUTH OAUTHBEARER " + b64(message) + b"\r\n"))
    assert out == [LOGGED_IN[1]]
    wrong = message.replace(b"Bearer secret", b"Bearer nope")
    session = new_session()
    assert feed(session, [b"AUTH OAUTHBEARER " + b64(wrong) + b"\r\n"]).startswith(b"+ ey")
    assert lines(feed(session, [b64(b"\x01") + b"\r\n"])) == [
        b"-ERR [AUTH] Invalid or expired token"
    ]


def test_login_mechanism() -> None:
    session = new_session()
    assert feed(session, [b"AUTH LOGIN\r\n"]) == b"+ " + b64(b"Username:") + b"\r\n"
    assert feed(session, [b64(b"alice") + b"\r\n"]) == b"+ " + b64(b"Password:") + b"\r\n"
    assert lines(feed(session, [b64(b"secret") + b"\r\n"])) == [LOGGED_IN[1]]


def test_credential_failures_carry_auth_and_leave_the_session_usable() -> None:
    wrong = b64(b"\0alice\0wrong")
    out = lines(converse(b"AUTH PLAIN " + wrong + b"\r\n" + LOGIN))
    assert out[0] == b"-ERR [AUTH] Authentication failed"
    assert out[1:] == LOGGED_IN


def test_a_token_backend_that_is_down_gives_sys_temp() -> None:
    """checklist #64"""

    def down(user: str, token: str) -> bool:
        raise TemporaryFailure("token service unreachable")

    config = ServerConfig(token_validator=down)
    out = lines(converse(b"AUTH XOAUTH2 " + b64(TOKEN_LINE) + b"\r\n", config))
    assert out == [b"-ERR [SYS/TEMP] token service unreachable"]


def test_bare_auth_lists_the_mechanisms() -> None:
    out = lines(converse(b"AUTH\r\n"))
    assert out == [
        b"+OK Supported SASL mechanisms follow",
        b"PLAIN",
        b"LOGIN",
        b"CRAM-MD5",
        b"XOAUTH2",
        b"OAUTHBEARER",
        b".",
    ]


def test_plaintext_mechanisms_wait_for_tls_when_configured() -> None:
    """checklist #63 and #16: without TLS, PLAIN and LOGIN are neither listed nor
    accepted; CRAM-MD5 and the bearer mechanisms still are."""
    config = ServerConfig(cleartext_login=False)
    out = lines(converse(b"CAPA\r\nAUTH PLAIN " + PLAIN_ALICE + b"\r\n", config))
    assert b"SASL CRAM-MD5 XOAUTH2 OAUTHBEARER" in out
    assert out[-1] == (
        b"-ERR [AUTH] Plaintext authentication is not allowed without TLS; use STLS first"
    )


def test_the_mechanisms_follow_the_config() -> None:
    config = ServerConfig(sasl=("XOAUTH2",))
    out = lines(converse(b"CAPA\r\nAUTH PLAIN " + PLAIN_ALICE + b"\r\n", config))
    assert b"SASL XOAUTH2" in out
    assert out[-1] == b"-ERR Unsupported SASL mechanism: PLAIN"
    assert lines(converse(b"AUTH\r\n", ServerConfig(sasl=())))[0] == b"-ERR Unknown command: AUTH"
    with pytest.raises(ValueError, match="sasl must name"):
        ServerConfig(sasl=("SCRAM-SHA-1",))


async def test_sasl_secrets_are_masked_in_the_transcript() -> None:
    async with open_pop3_server(checklist_store()) as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.receive_some(1000)
            await stream.send_all(b"AUTH PLAIN " + PLAIN_ALICE + b"\r\nQUIT\r\n")
            received = b""
            while b"Logging out" not in received:
                received += await stream.receive_some(1000)
        await server.wait_idle()
        stream2 = await trio.open_tcp_stream(server.host, server.port)
        async with stream2:
            await stream2.receive_some(1000)
            await stream2.send_all(b"AUTH LOGIN\r\n" + b64(b"alice") + b"\r\n")
            received = b""
            while received.count(b"\r\n") < 2:
                received += await stream2.receive_some(1000)
        await server.wait_idle()
    first, second = server.transcript.sessions
    assert first.commands() == ["AUTH PLAIN ****", "QUIT"]
    assert first.commands(show_secrets=True)[0] == "AUTH PLAIN " + PLAIN_ALICE.decode()
    assert first.user == "alice"
    assert second.commands() == ["AUTH LOGIN", "****"]
    assert "secret" not in server.transcript.render()


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_picks_the_strongest_mechanism_offered() -> None:
    async with open_pop3_server(checklist_store()) as server:
        result = await trio.run_process(
            ["curl", "-sS", "-v", "--max-time", "10",
             f"pop3://alice:secret@{server.host}:{server.port}/"],
            capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
        await server.wait_idle()
    assert result.returncode == 0, result.stderr
    assert b"> AUTH CRAM-MD5" in result.stderr
    assert result.stdout.count(b"\r\n") == 3  # the listing of alice's three messages
    assert server.transcript.sessions[0].user == "alice"


def test_a_user_can_be_limited_to_some_login_methods() -> None:
    """The checklist's fixture: bob may only use APOP (and here XOAUTH2)."""
    store = MailStore({"bob": {"password": "tanstaaf", "methods": ["APOP", "XOAUTH2"]}})
    out = lines(feed(new_session(store), [b"USER bob\r\nPASS tanstaaf\r\n"]))
    assert out[1] == b"-ERR [AUTH] bob may not log in with USER"
    plain = b64(b"\0bob\0tanstaaf")
    out = lines(feed(new_session(store), [b"AUTH PLAIN " + plain + b"\r\n"]))
    assert out == [b"-ERR [AUTH] bob may not log in with PLAIN"]
    token = b64(b"user=bob\x01auth=Bearer tanstaaf\x01\x01")
    assert lines(feed(new_session(store), [b"AUTH XOAUTH2 " + token + b"\r\n"]))[0].startswith(
        b"+OK bob's maildrop"
    )
    apop = f"APOP bob {apop_digest('tanstaaf')}\r\n".encode()
    assert lines(
        feed(new_session(MailStore({"bob": {"password": "tanstaaf", "methods": ["APOP"]}})), [apop])
    )[0].startswith(b"+OK")
    with pytest.raises(ValueError, match="unknown login methods"):
        MailStore({"x": {"password": "p", "methods": ["SMOKE-SIGNALS"]}})
    with pytest.raises(TypeError, match="must be a list"):
        MailStore({"x": {"password": "p", "methods": "APOP"}})


def test_apop_timestamps_and_cram_md5_challenges_come_from_one_injectable_source() -> None:
    """RFC 1939 §7 and RFC 2195: both must differ every time; a sans-IO test can make
    them predictable by handing the session its own source."""
    ids = iter(["<1@test>", "<2@test>"])
    session = Pop3Protocol(MailStore({"alice": "secret"}), nonce=lambda: next(ids))
    assert session.greeting().status == b"+OK fakepop POP3 server ready. <1@test>\r\n"
    session.receive_data(b"AUTH CRAM-MD5\r\n")
    command = session.next_command()
    assert command is not None
    assert session.handle(command).status == b"+ " + base64.b64encode(b"<2@test>") + b"\r\n"
    digest = hmac.new(b"secret", b"<2@test>", hashlib.md5).hexdigest()
    session.receive_data(base64.b64encode(f"alice {digest}".encode()) + b"\r\n")
    command = session.next_command()
    assert command is not None
    assert session.handle(command).ok
    assert fresh_msg_id("h", "a.0") != fresh_msg_id("h", "a.1")
    assert fresh_msg_id("h", "a.0").endswith("@h>")
    default = Pop3Protocol(MailStore({"alice": "secret"}))
    other = Pop3Protocol(MailStore({"alice": "secret"}))
    assert default.apop_timestamp != other.apop_timestamp


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_makes_msg_ids_with_its_own_process_id() -> None:
    """RFC 1939 §7: an APOP timestamp differs every time, across the processes that a
    forking test runner starts from one parent too."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report its msg-id and its pid, and leave at once
        os.write(write_end, f"{fresh_msg_id('h', 'a.0')} {os.getpid()}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        msg_id, pid = pipe.read().split()
    os.waitpid(child, 0)
    assert msg_id.startswith(f"<{pid}.a.0.")
    assert fresh_msg_id("h", "a.0").startswith(f"<{os.getpid()}.a.0.")
