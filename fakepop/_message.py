"""Messages as POP3 sends them: normalised once, dot-stuffed once, sized exactly."""

from __future__ import annotations

import email.message
import email.policy
import re
from dataclasses import dataclass, field
from typing import TypeAlias

from .errors import ConfigError

__all__ = ["MessageSource", "StoredMessage", "check_uid", "dot_stuff", "to_wire_bytes"]

#: What a test may hand fakepop as a message.
MessageSource: TypeAlias = str | bytes | bytearray | memoryview | email.message.Message

# RFC 1939 section 7: a unique-id is 1 to 70 characters in the range 0x21 to 0x7E.
_UID_RE = re.compile(r"[\x21-\x7e]{1,70}\Z")
_ANY_LINE_END = re.compile(rb"\r\n|\r|\n")


def check_uid(uid: str) -> str:
    """Return ``uid`` unchanged, or raise ValueError saying why POP3 cannot send it."""
    if not isinstance(uid, str):
        raise TypeError(f"a UID must be a str, not {type(uid).__name__}")
    if not _UID_RE.match(uid):
        raise ConfigError(
            f"invalid UID {uid!r}: POP3 unique-ids are 1 to 70 printable ASCII "
            "characters (0x21-0x7E), without spaces"
        )
    return uid


def to_wire_bytes(source: MessageSource) -> bytes:
    """Turn a message as the test gave it into the octets RETR sends, before stuffing.

    Every line ends in CRLF (bare LF and bare CR become CRLF), and a message whose
    last line has no line ending gets one, so the size is exactly what the client
    receives between the status line and the terminating dot.
    """
    if isinstance(source, email.message.Message):
        policy = source.policy.clone(linesep="\r\n")
        raw = source.as_bytes(policy=policy)
    elif isinstance(source, str):
        raw = source.encode("utf-8")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
    else:
        raise TypeError(
            "a message must be str, bytes or email.message.Message, "
            f"not {type(source).__name__}"
        )
    if b"\r" in raw:
        # Only rewrite when something is off; most input is all-CRLF or all-LF.
        if raw.count(b"\r") != raw.count(b"\r\n") or raw.count(b"\n") != raw.count(b"\r\n"):
            raw = _ANY_LINE_END.sub(b"\r\n", raw)
    else:
        raw = raw.replace(b"\n", b"\r\n")
    if raw and not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw


def _header_section(wire: bytes) -> bytes:
    if wire.startswith(b"\r\n"):
        return b""
    end = wire.find(b"\r\n\r\n")
    return wire if end < 0 else wire[:end]


def dot_stuff(wire: bytes) -> bytes:
    """The payload of a multi-line reply from its lines, each ending in CRLF: every line
    that starts with "." gets one more, and ".\r\n" ends it (RFC 1939 section 3)."""
    stuffed = wire.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


@dataclass(frozen=True, eq=False)
class StoredMessage:
    """One message in a mailbox, in the form POP3 sends it.

    ``size`` is the octet count that STAT and LIST report and RETR sends (CRLF line
    endings, before dot-stuffing). Only the dot-stuffed, terminated form is kept,
    so a large mailbox costs one copy of its mail.
    """

    uid: str
    size: int
    # The multi-line payload of RETR: stuffed lines plus the terminating ".\r\n".
    retr_payload: bytes = field(repr=False)
    # The ends of this message's LIST and UIDL lines, "size\r\n" and "uid\r\n", made
    # once so that a listing is only joined, never formatted, per message.
    list_suffix: bytes = field(repr=False)
    uidl_suffix: bytes = field(repr=False)
    #: How many lines the message has (what RETR sends before the terminating dot).
    lines: int = field(repr=False)
    #: Whether the header section has non-ASCII octets (RFC 6532 internationalised
    #: headers): a strict RFC 6856 server sends such a message only after the client's
    #: UTF8 command (``ServerConfig.utf8_refuse_unless_enabled``).
    needs_utf8: bool = field(default=False, repr=False)

    @classmethod
    def from_source(cls, source: MessageSource, uid: str) -> StoredMessage:
        wire = to_wire_bytes(source)
        return cls(
            uid=check_uid(uid),
            size=len(wire),
            retr_payload=dot_stuff(wire),
            list_suffix=b"%d\r\n" % len(wire),
            uidl_suffix=uid.encode() + b"\r\n",
            lines=wire.count(b"\r\n"),
            needs_utf8=not _header_section(wire).isascii(),
        )

    @property
    def data(self) -> bytes:
        """The message octets as RETR delivers them to the client (unstuffed)."""
        body = self.retr_payload[:-3]
        if body.startswith(b".."):
            body = body[1:]
        return body.replace(b"\r\n..", b"\r\n.")

    def as_email(self) -> email.message.EmailMessage:
        """Parse the message with the stdlib ``email`` package (``policy.default``).

        Lines are split on LF before parsing, as a client that joins poplib's lines
        with ``"\\n"`` would, so text parts read back as ``"body\\n"``.
        """
        import email.parser  # noqa: PLC0415 - only tests that inspect mail need it

        parser = email.parser.BytesParser(policy=email.policy.default)
        parsed = parser.parsebytes(self.data.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    def top_payload(self, body_lines: int) -> bytes:
        """The multi-line payload of ``TOP n body_lines``: headers, blank line, body start."""
        payload = self.retr_payload
        # Stuffing only adds dots at line starts, so the header/body boundary and the
        # line breaks are where they were in the unstuffed message.
        if payload.startswith(b"\r\n"):
            body_start = 2  # no headers at all: the message starts with the empty line
        else:
            separator = payload.find(b"\r\n\r\n")
            if separator < 0:
                return payload  # headers only: TOP sends everything there is
            body_start = separator + 4
        body_end = len(payload) - 3  # where the terminating ".\r\n" starts
        end = body_start
        for _ in range(body_lines):
            if end >= body_end:
                break
            # The body always ends in CRLF, so every body line has one.
            end = payload.index(b"\r\n", end) + 2
        if end >= body_end:
            return payload
        return payload[:end] + b".\r\n"
