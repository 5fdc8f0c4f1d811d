"""Turning what a test hands fakepop into the octets POP3 sends."""

from __future__ import annotations

import email.message
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakepop import StoredMessage
from fakepop._message import check_uid, to_wire_bytes


@pytest.mark.parametrize(
    ("source", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"a\r\nb\nc\rd", b"a\r\nb\r\nc\r\nd\r\n"),
        (b"no newline", b"no newline\r\n"),
        (b"", b""),
        ("Grüße\n", "Grüße\r\n".encode()),
        (bytearray(b"x\n"), b"x\r\n"),
    ],
)
def test_line_endings_become_crlf(source: bytes | str, wire: bytes) -> None:
    assert to_wire_bytes(source) == wire


def test_email_messages_are_serialised_with_crlf() -> None:
    msg = email.message.EmailMessage()
    msg["Subject"] = "Grüße"
    msg["From"] = "a@example.com"
    msg.set_content("line one\n.line two\n")
    wire = to_wire_bytes(msg)
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert wire.endswith(b"\r\n")
    assert b"\r\n.line two\r\n" in wire
    assert StoredMessage.from_source(msg, "u1").as_email()["Subject"] == "Grüße"


def test_compat32_messages_work_too() -> None:
    msg = email.message.Message()
    msg["Subject"] = "old style"
    msg.set_payload("body\n")
    assert to_wire_bytes(msg) == b"Subject: old style\r\n\r\nbody\r\n"


def test_other_types_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match=r"must be str, bytes or email\.message\.Message, not int"):
        to_wire_bytes(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("uid", ["a", "x" * 70, "!~", "uid-1.2@host"])
def test_valid_uids(uid: str) -> None:
    assert check_uid(uid) == uid


@pytest.mark.parametrize("uid", ["", "x" * 71, "has space", "tab\t", "ümlaut", "new\nline"])
def test_invalid_uids_say_why(uid: str) -> None:
    with pytest.raises(ValueError, match="1 to 70 printable ASCII"):
        check_uid(uid)


def test_stuffing_and_size() -> None:
    message = StoredMessage.from_source(b".starts\n..two\n.\nend", "u")
    assert message.retr_payload == b"..starts\r\n...two\r\n..\r\nend\r\n.\r\n"
    assert message.size == len(b".starts\r\n..two\r\n.\r\nend\r\n")
    assert message.data == b".starts\r\n..two\r\n.\r\nend\r\n"


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_data_round_trips_through_stuffing(raw: bytes) -> None:
    message = StoredMessage.from_source(raw, "u")
    wire = to_wire_bytes(raw)
    assert message.data == wire
    assert message.size == len(wire)
    assert message.retr_payload.endswith(b".\r\n")
    # No line of the payload but the last is a lone dot: the terminator is unambiguous.
    body_lines = message.retr_payload[:-3].split(b"\r\n")
    assert all(not line.startswith(b".") or line.startswith(b"..") for line in body_lines)


@pytest.mark.parametrize(
    ("raw", "n", "expected"),
    [
        (b"H: 1\r\n\r\nb1\r\nb2\r\n", 0, b"H: 1\r\n\r\n.\r\n"),
        (b"H: 1\r\n\r\nb1\r\nb2\r\n", 1, b"H: 1\r\n\r\nb1\r\n.\r\n"),
        (b"H: 1\r\n\r\nb1\r\nb2\r\n", 2, b"H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"),
        (b"H: 1\r\n\r\nb1\r\nb2\r\n", 10**30, b"H: 1\r\n\r\nb1\r\nb2\r\n.\r\n"),
        (b"H: 1\r\n\r\n.b1\r\n", 1, b"H: 1\r\n\r\n..b1\r\n.\r\n"),
        (b"H: 1\r\n", 0, b"H: 1\r\n.\r\n"),
        (b"\r\nbody only\r\nmore\r\n", 1, b"\r\nbody only\r\n.\r\n"),
        (b"H: 1\r\n\r\n", 3, b"H: 1\r\n\r\n.\r\n"),
        (b"H: 1\r\n\r\n\r\n\r\nx\r\n", 1, b"H: 1\r\n\r\n\r\n.\r\n"),
    ],
)
def test_top_payload(raw: bytes, n: int, expected: bytes) -> None:
    assert StoredMessage.from_source(raw, "u").top_payload(n) == expected


def test_parsed_email_policy_is_modern() -> None:
    parsed = StoredMessage.from_source("Subject: hi\n\nbody\n", "u").as_email()
    assert parsed.policy == email.policy.default
    assert parsed.get_content() == "body\n"
