"""No secret reaches a cassette file: passwords (RFC 1939 §7 PASS), APOP digests
(RFC 1939 §7), SASL initial responses and continuation lines (RFC 5034 §4), OAuth
tokens (XOAUTH2, OAUTHBEARER RFC 7628), whatever the credentials and mechanism; what
the server's answer depends on (a cancel, a response that is not base64) still shows."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fakepop
from fakepop import Pop3ServerThread, RecordingProxy, ServerConfig, serve_in_thread

MECHANISMS = [
    "USER",
    "APOP",
    "PLAIN",
    "PLAIN-CONTINUED",
    "LOGIN",
    "CRAM-MD5",
    "XOAUTH2",
    "OAUTHBEARER",
]
SECRET = st.text(string.ascii_letters + string.digits + "!#%&*+-=?^_~", min_size=12, max_size=40)
NAME = st.text(string.ascii_lowercase, min_size=3, max_size=10)


class _Client:
    def __init__(self, address: tuple[str, int]) -> None:
        self.socket = socket.create_connection(address, timeout=10)
        self.file = self.socket.makefile("rb")
        self.greeting = self.file.readline()

    def send(self, line: str) -> bytes:
        self.socket.sendall(line.encode() + b"\r\n")
        return self.file.readline()

    def close(self) -> None:
        self.file.close()
        self.socket.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _log_in(client: _Client, mechanism: str, user: str, secret: str) -> tuple[bytes, list[str]]:
    """Log in with the mechanism; returns the final status line and the secret
    strings that went over the wire."""
    if mechanism == "USER":
        client.send(f"USER {user}")
        return client.send(f"PASS {secret}"), [secret]
    if mechanism == "APOP":
        match = re.search(rb"<[^>]*>", client.greeting)
        assert match is not None
        digest = hashlib.md5(match.group().decode().encode() + secret.encode()).hexdigest()
        return client.send(f"APOP {user} {digest}"), [digest]
    if mechanism.startswith("PLAIN"):
        response = _b64(f"\0{user}\0{secret}")
        if mechanism == "PLAIN":
            return client.send(f"AUTH PLAIN {response}"), [response]
        client.send("AUTH PLAIN")
        return client.send(response), [response]
    if mechanism == "LOGIN":
        client.send("AUTH LOGIN")
        client.send(_b64(user))
        return client.send(_b64(secret)), [_b64(secret)]
    if mechanism == "CRAM-MD5":
        challenge = base64.b64decode(client.send("AUTH CRAM-MD5")[2:].strip())
        digest = hmac.new(secret.encode(), challenge, hashlib.md5).hexdigest()
        response = _b64(f"{user} {digest}")
        return client.send(response), [response, digest]
    if mechanism == "XOAUTH2":
        response = _b64(f"user={user}\x01auth=Bearer {secret}\x01\x01")
        return client.send(f"AUTH XOAUTH2 {response}"), [response]
    response = _b64(f"n,a={user},\x01auth=Bearer {secret}\x01\x01")
    return client.send(f"AUTH OAUTHBEARER {response}"), [response]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=NAME, secret=SECRET, mechanism=st.sampled_from(MECHANISMS), wrong=st.booleans())
def test_no_secret_reaches_the_cassette(
    tmp_path: Path, user: str, secret: str, mechanism: str, wrong: bool
) -> None:
    password = secret + "x" if wrong else secret
    config = ServerConfig(
        sasl=("PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"),
        token_validator=lambda name, token: token == password,
    )
    cassette = tmp_path / "secrets.jsonl"
    with Pop3ServerThread({user: {"password": password}}, config=config) as upstream:
        proxy = RecordingProxy(cassette, upstream.address)
        with serve_in_thread(proxy):
            client = _Client(proxy.address)
            status, sent = _log_in(client, mechanism, user, secret)
            if status.startswith(b"+ "):  # a refused token's error challenge (RFC 7628 §3.2.3)
                status = client.send("")
            client.send("QUIT")
            client.close()
    assert status.startswith(b"-ERR" if wrong else b"+OK"), status
    text = cassette.read_text()
    for leaked in [secret, *sent]:
        assert leaked not in text
    entries = fakepop.read_cassette(cassette).sessions[0].entries
    assert any(e.redacted == "secret" for e in entries)


def test_a_cancel_is_kept_and_a_response_not_base64_is_flagged(tmp_path: Path) -> None:
    """RFC 5034 §4: ``*`` cancels an exchange and carries no secret, so the cassette
    keeps it; a response or initial response that is not base64 is redacted like any
    other, and flagged ``not-base64`` (docs/howto/cassettes.md, "The format")."""
    cassette = tmp_path / "sasl.jsonl"
    with Pop3ServerThread({"alice": {"password": "pw"}}) as upstream:
        with serve_in_thread(RecordingProxy(cassette, upstream.address)) as proxy:
            client = _Client(proxy.address)
            client.send("AUTH PLAIN")
            assert client.send("*").startswith(b"-ERR")
            client.send("AUTH PLAIN")
            assert client.send("not base64!").startswith(b"-ERR")
            assert client.send("AUTH PLAIN not-base64!").startswith(b"-ERR")
            assert client.send("AUTH PLAIN " + _b64("\0alice\0wrong")).startswith(b"-ERR")
            assert client.send("AUTH PLAIN =").startswith(b"-ERR")
            client.send("QUIT")
            client.close()
    entries = fakepop.read_cassette(cassette).sessions[0].entries
    sent = [(e.data, e.flags) for e in entries if e.kind == "line" and e.side == "client"]
    assert sent == [
        (b"AUTH PLAIN\r\n", ()),
        (b"*\r\n", ()),
        (b"AUTH PLAIN\r\n", ()),
        (b"****\r\n", ("not-base64",)),
        (b"AUTH PLAIN ****\r\n", ("not-base64",)),
        (b"AUTH PLAIN ****\r\n", ()),
        (b"AUTH PLAIN ****\r\n", ()),
        (b"QUIT\r\n", ()),
    ]
