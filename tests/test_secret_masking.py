"""Secrets never reach a transcript view, whether their line was normal or too long.

RFC 1939 §7 (PASS) and RFC 5034 §4 (AUTH initial responses and SASL continuation
lines) carry credentials. A line longer than the limit (RFC 2449 §4) is refused and
recorded by its first octets; those are masked by the same rule as a whole line.
"""

from __future__ import annotations

import base64

import pytest
import trio

from fakepop import (
    Command,
    MailStore,
    Pop3Protocol,
    Pop3Server,
    State,
    Transcript,
    open_pop3_server,
)
from fakepop._masking import MASK, mask_command_line
from tests.clients import RawPop3, mailboxes
from tests.sansio import chunkings, new_session

# Secrets made of octets that appear nowhere else in a transcript: "~" and "`" in a
# password, "/" (the base64 of 0xff octets) in SASL data.
PASSWORD = "~`" * 5
LONG_PASSWORD = "~`" * 150  # "PASS " and 300 octets: over the 255-octet limit
SASL_DATA = base64.b64encode(b"\xff" * 30).decode()  # "////..."
LONG_TOKEN = base64.b64encode(b"\xff" * 3000).decode()  # longer than a command line
HUGE_SASL_LINE = "/" * 70000  # longer than a SASL line may be
SECRET_OCTETS = "~`/"


def _views(transcript: Transcript) -> dict[str, str]:
    return {
        "commands()": "\n".join(transcript.commands()),
        "render()": transcript.render(),
        "to_json()": transcript.to_json(),
        "str()": str(transcript),
        "exchanges()": repr([s.exchanges() for s in transcript.sessions]),
    }


def _assert_nothing_secret(transcript: Transcript) -> None:
    for name, text in _views(transcript).items():
        leaked = sorted({octet for octet in SECRET_OCTETS if octet in text})
        assert not leaked, f"{name} shows {leaked}:\n{text}"


# -- the rule -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "sasl_response", "shown"),
    [
        ("PASS my secret", False, f"PASS {MASK}"),
        ("pass x", False, f"pass {MASK}"),
        ("PASS ", False, f"PASS {MASK}"),
        ("PASS", False, "PASS"),
        ("AUTH PLAIN AGEAYg==", False, f"AUTH PLAIN {MASK}"),
        ("AUTH XOAUTH2", False, "AUTH XOAUTH2"),
        ("AUTH", False, "AUTH"),
        ("USER alice", False, "USER alice"),
        ("PA\u017fS x", False, "PA\u017fS x"),  # not PASS (RFC 1939 §3)
        ("PASS x", True, MASK),
        ("anything", True, MASK),
        ("*", True, "*"),  # the cancel carries nothing (RFC 5034 §4)
        (" * ", True, " * "),
        ("**", True, MASK),
    ],
)
def test_mask_command_line(line: str, sasl_response: bool, shown: str) -> None:
    """RFC 1939 §7, RFC 5034 §4: the password, the initial response, or a whole SASL
    response but the ``*`` that cancels the exchange is masked; nothing else is."""
    assert mask_command_line(line, sasl_response=sasl_response) == shown


# -- sans-IO: what the engine says about an over-long line --------------------------
def _commands(data: bytes, pieces_of: str) -> list[Command]:
    session = new_session()
    commands = []
    for piece in chunkings(data)[pieces_of]:
        session.receive_data(piece)
        while (command := session.next_command()) is not None:
            commands.append(command)
            session.handle(command)
    return commands


@pytest.mark.parametrize("pieces_of", ["whole", "bytewise", "random"])
def test_over_long_pass_and_auth_lines_are_known_secrets(pieces_of: str) -> None:
    """RFC 2449 §4: an over-long PASS or AUTH line is refused, but it is still the
    client's PASS or AUTH with a secret (RFC 1939 §7, RFC 5034 §4): its keyword and
    secrecy are known from the octets kept; pipelined, whole or in pieces."""
    data = (
        f"USER alice\r\nPASS {LONG_PASSWORD}\r\nAUTH XOAUTH2 {LONG_TOKEN}\r\nNOOP\r\n"
    ).encode()
    _, long_pass, long_auth, noop = _commands(data, pieces_of)
    assert long_pass.problem is not None
    assert long_pass.keyword == "PASS"
    assert long_pass.secret
    assert long_auth.problem is not None
    assert long_auth.keyword == "AUTH"
    assert long_auth.secret
    assert not noop.secret


@pytest.mark.parametrize("pieces_of", ["whole", "bytewise", "random"])
def test_over_long_sasl_line_is_a_secret_response(pieces_of: str) -> None:
    """RFC 5034 §4: in an exchange every line is a response, also one too long to
    accept; it is refused, ends the exchange, and is a secret."""
    data = f"AUTH PLAIN\r\n{'/' * 70000}\r\nCAPA\r\n".encode()
    session = new_session()
    commands = []
    states = []
    for piece in chunkings(data)[pieces_of]:
        session.receive_data(piece)
        while (command := session.next_command()) is not None:
            commands.append(command)
            session.handle(command)
            states.append(session.state)
    _, response, capa = commands
    assert response.problem is not None
    assert response.sasl_response
    assert response.secret
    assert not capa.secret
    assert states == [State.AUTHENTICATING, State.AUTHORIZATION, State.AUTHORIZATION]


@pytest.mark.parametrize("pieces_of", ["whole", "bytewise", "random"])
def test_recorded_over_long_secrets_are_masked(pieces_of: str) -> None:
    """RFC 1939 §7, RFC 5034 §4: the transcript shows the masked start of an over-long
    PASS, AUTH or SASL line and the reason it was refused, never the secret."""
    data = (
        f"USER alice\r\nPASS {LONG_PASSWORD}\r\nAUTH XOAUTH2 {LONG_TOKEN}\r\n"
        f"AUTH PLAIN\r\n{'/' * 300}\r\n"
    ).encode()
    transcript = Transcript()
    recorder = transcript.start_session(1, None, lambda: 0.0)
    session = new_session()
    for piece in chunkings(data)[pieces_of]:
        session.receive_data(piece)
        while (command := session.next_command()) is not None:
            recorder.command(command)
            recorder.reply(session.handle(command))
    too_long = "... (Line too long (at most 255 octets including CRLF))"
    assert transcript.commands() == [
        "USER alice",
        f"PASS {MASK}{too_long}",
        f"AUTH XOAUTH2 {MASK}{too_long}",
        "AUTH PLAIN",
        MASK,
    ]
    _assert_nothing_secret(transcript)
    shown = transcript.commands(show_secrets=True)
    assert shown[1].startswith(f"PASS {LONG_PASSWORD[:20]}")
    assert shown[1].endswith(too_long)


# -- through a real socket ----------------------------------------------------------
LINES = [
    ("USER alice", b"+OK"),
    (f"PASS {PASSWORD}", b"-ERR"),
    ("USER alice", b"+OK"),
    (f"PASS {LONG_PASSWORD}", b"-ERR Line too long"),
    (f"AUTH PLAIN {SASL_DATA}", b"-ERR"),
    (f"AUTH XOAUTH2 {SASL_DATA}", b"-ERR"),
    (f"AUTH XOAUTH2 {LONG_TOKEN}", b"-ERR Line too long"),
    (f"AUTH PLAIN {SASL_DATA}{SASL_DATA}", b"-ERR"),
    ("AUTH PLAIN", b"+ "),
    (SASL_DATA, b"-ERR"),
    ("AUTH XOAUTH2", b"+ "),
    (LONG_TOKEN, b"-ERR"),
    ("AUTH LOGIN", b"+ "),
    (HUGE_SASL_LINE, b"-ERR Line too long"),
    ("QUIT", b"+OK"),
]


async def test_no_transcript_view_shows_a_secret_sent_over_a_socket() -> None:
    """RFC 1939 §7, RFC 5034 §4, RFC 2449 §4: PASS, AUTH initial responses and SASL
    continuation lines, of normal length and over-long, sent over TCP: commands(),
    render(), to_json() and str() show none of their octets."""

    def session(server: Pop3Server) -> list[bytes]:
        replies = []
        with RawPop3(server) as raw:
            assert raw.line().startswith(b"+OK")
            for line, _ in LINES:
                raw.send(line.encode() + b"\r\n")
                replies.append(raw.line())
        return replies

    async with open_pop3_server(mailboxes()) as server:
        replies = await trio.to_thread.run_sync(session, server)
        await server.wait_idle()
    for (line, expected), reply in zip(LINES, replies, strict=True):
        assert reply.startswith(expected), (line[:40], reply)
    _assert_nothing_secret(server.transcript)
    commands = server.transcript.commands()
    assert commands[1] == f"PASS {MASK}"
    assert commands[3].startswith(f"PASS {MASK}... (Line too long")
    assert commands[6].startswith(f"AUTH XOAUTH2 {MASK}... (Line too long")
    assert commands[9] == MASK
    assert commands[13].startswith(f"{MASK}... (Line too long")
    revealed = "\n".join(server.transcript.commands(show_secrets=True))
    assert PASSWORD in revealed  # the views above would have shown it unmasked


def test_over_long_pass_never_counts_as_valid_credentials_for_faults() -> None:
    """RFC 2449 §4: an over-long PASS is refused, so a fault that fires only on right
    credentials (at the login gate) must not fire for it, even when the octets kept
    spell the password."""
    password = "p" * 59  # exactly what is kept of the line after "PASS "
    gate_calls: list[tuple[str, str]] = []

    def gate(user: str, method: str, command: Command) -> None:
        gate_calls.append((user, method))

    session = Pop3Protocol(MailStore({"alice": password}), login_gate=gate)
    session.receive_data(f"USER alice\r\nPASS {password}{'x' * 300}\r\n".encode())
    user = session.next_command()
    assert user is not None
    session.handle(user)
    long_pass = session.next_command()
    assert long_pass is not None
    assert long_pass.problem is not None
    assert long_pass.argument == password
    assert session.handle(long_pass).status.startswith(b"-ERR Line too long")
    assert session.state is not State.TRANSACTION
    assert gate_calls == []
