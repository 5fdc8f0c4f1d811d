"""SASL: an XOAUTH2 login with an OAuth token, checked by a validator of your own."""

import base64
import socket

import pytest

from fakepop import Pop3ServerThread, TemporaryFailure

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}


def valid_token(user: str, token: str) -> bool:
    """Stands in for the identity provider: which bearer tokens let which user in."""
    if token == "backend-down":
        raise TemporaryFailure("token service unavailable")  # -ERR [SYS/TEMP]
    return (user, token) == ("alice", "ya29.good-token")


def xoauth2_login(host: str, port: int, user: str, token: str) -> list[bytes]:
    """The code under test: AUTH XOAUTH2 with the token as the initial response."""
    auth = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())
    with socket.create_connection((host, port), timeout=10) as sock:
        stream = sock.makefile("rwb")
        replies = [stream.readline()]  # the greeting
        stream.write(b"AUTH XOAUTH2 " + auth + b"\r\n")
        stream.flush()
        replies.append(stream.readline())
        if replies[-1].startswith(b"+ "):  # a refused token: a JSON error challenge
            stream.write(b"\r\n")  # the client answers with an empty line
            stream.flush()
            replies.append(stream.readline())
        stream.write(b"QUIT\r\n")
        stream.flush()
        replies.append(stream.readline())
    return [reply.rstrip(b"\r\n") for reply in replies]


@pytest.mark.pop3(MAILBOXES, token_validator=valid_token)
def test_a_good_token(pop3_server: Pop3ServerThread) -> None:
    replies = xoauth2_login(pop3_server.host, pop3_server.port, "alice", "ya29.good-token")

    assert replies[1].startswith(b"+OK")
    pop3_server.wait_idle()
    assert pop3_server.store["alice"].logins == 1
    # The token never shows in the transcript, nor in a failing test's report.
    assert pop3_server.transcript.commands() == ["AUTH XOAUTH2 ****", "QUIT"]


@pytest.mark.pop3(MAILBOXES, token_validator=valid_token)
def test_an_expired_token_and_a_backend_failure(pop3_server: Pop3ServerThread) -> None:
    refused = xoauth2_login(pop3_server.host, pop3_server.port, "alice", "ya29.expired")
    down = xoauth2_login(pop3_server.host, pop3_server.port, "alice", "backend-down")

    error = base64.b64decode(refused[1].removeprefix(b"+ "))
    assert b'"status": "401"' in error
    assert refused[2].startswith(b"-ERR [AUTH]")
    assert down[1].startswith(b"-ERR [SYS/TEMP]")
    pop3_server.wait_idle()
    assert pop3_server.store["alice"].logins == 0
    first = pop3_server.transcript.sessions[0]  # the answer to the challenge is masked too
    assert first.commands() == ["AUTH XOAUTH2 ****", "****", "QUIT"]
    assert "ya29" not in pop3_server.transcript.render()
