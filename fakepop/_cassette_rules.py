"""What a cassette keeps of a conversation: the one place that decides redaction, and
the POP3 state each line was sent in.

A recording proxy sees bytes, not commands, so :class:`Conversation` follows a
session from both sides the way a client would: which command each status line
answers, whether a reply is multi-line (RFC 1939 §3, RFC 2449 §5, RFC 5034 §4), where
its payload ends, and the state the session is in. Redaction needs exactly that: a
SASL response is secret only because of the state it is sent in, and a message body
is a payload line of a RETR or TOP reply.

Secrets are decided by :func:`fakepop._masking.secret_start` (PASS, AUTH's initial
response, every SASL response) plus the APOP digest (RFC 1939 §7), which a transcript
shows but a file meant to be shared must not: it can be attacked offline.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from typing import Literal

from ._lines import ascii_upper
from ._masking import MASK, secret_start
from ._sasl_lines import decode_sasl_base64
from ._state import State

__all__ = [
    "BODY_MODES",
    "BodyMode",
    "ClientNote",
    "Conversation",
    "ServerNote",
    "line_content",
    "redact_body_line",
    "redact_client_line",
]

BodyMode = Literal["keep", "synthetic", "hash"]
#: What ``--redact-bodies`` accepts.
BODY_MODES: tuple[BodyMode, ...] = ("keep", "synthetic", "hash")

# Commands whose +OK reply is multi-line, with and without an argument.
_MULTILINE_ALWAYS = frozenset({"CAPA", "RETR", "TOP"})
_MULTILINE_WITHOUT_ARGUMENT = frozenset({"LIST", "UIDL", "AUTH", "LANG"})
_BODY_COMMANDS = frozenset({"RETR", "TOP"})


def line_content(line: bytes) -> tuple[bytes, bytes]:
    """A line split into its content and its ending (CRLF, a bare LF, or nothing)."""
    if line.endswith(b"\r\n"):
        return line[:-2], b"\r\n"
    if line.endswith(b"\n"):
        return line[:-1], b"\n"
    return line, b""


def redact_client_line(line: bytes, state: State) -> bytes | None:
    """The client line with its secret replaced by ``****`` (its ending kept), or None
    if it carries none. ``state`` is the state it was sent in: in AUTHENTICATING every
    line is a SASL response, secret whole."""
    content, ending = line_content(line)
    text = content.decode("latin-1")  # one character per octet: offsets are octets
    start = secret_start(text, sasl_response=state is State.AUTHENTICATING)
    if start is None:
        keyword, _, rest = text.partition(" ")
        name, space, _ = rest.partition(" ")
        if ascii_upper(keyword) != "APOP" or not space:
            return None
        start = len(keyword) + len(name) + 2
    return content[:start] + MASK.encode() + ending


def redact_body_line(line: bytes, mode: BodyMode) -> bytes:
    """A payload line of RETR or TOP as the cassette keeps it: as it is (``keep``);
    with every octet but a leading dot-stuffing ``.`` made ``x``, so size and line
    structure stay (``synthetic``); or as the first 16 hex digits of its SHA-256, an
    empty line staying empty so the header/body boundary shows (``hash``)."""
    if mode == "keep":
        return line
    content, ending = line_content(line)
    if not content:
        return line
    if mode == "synthetic":
        kept = 1 if content.startswith(b".") else 0
        return content[:kept] + b"x" * (len(content) - kept) + ending
    return hashlib.sha256(content).hexdigest()[:16].encode() + ending


def _not_base64(content: bytes, state: State) -> bool:
    # A SASL response, or AUTH's initial response ("=" for an empty one), read as the
    # protocol engine reads them (RFC 5034 section 4).
    text = content.decode("latin-1")
    if state is State.AUTHENTICATING:
        return decode_sasl_base64(text.strip()) is None
    keyword, _, rest = text.partition(" ")
    arguments = rest.split(" ")
    if ascii_upper(keyword) != "AUTH" or len(arguments) != 2 or arguments[1] == "=":
        return False
    return decode_sasl_base64(arguments[1]) is None


@dataclass(frozen=True)
class ClientNote:
    """What a client line was: the state it was sent in, and how it is stored."""

    state: State
    stored: bytes  # the line, or its redacted form
    redacted: bool
    starts_tls: bool  # it is STLS: the proxy waits for the answer before reading on
    #: A SASL response, or AUTH's initial response, that is not base64: a redacted
    #: line cannot show it, and the server's refusal says why it was refused.
    not_base64: bool = False


@dataclass(frozen=True)
class ServerNote:
    """What a server line was: the state after it, the command it answers (as
    stored), whether it is payload, and whether it accepted STLS."""

    state: State
    answers: str | None
    payload: bool
    body: bool  # a payload line of RETR or TOP
    starts_tls: bool
    stls_answered: bool
    malformed: bool


@dataclass
class _Pending:
    keyword: str
    has_argument: bool
    stored: str


class Conversation:
    """One POP3 session followed from both sides, line by line, in the order the
    lines were seen."""

    def __init__(self) -> None:
        self.state = State.AUTHORIZATION
        self._pending: deque[_Pending] = deque()
        self._greeted = False
        self._payload_of: _Pending | None = None

    def client_line(self, line: bytes) -> ClientNote:
        state = self.state
        redacted = redact_client_line(line, state)
        stored = line if redacted is None else redacted
        keyword = ""
        content, _ = line_content(line)
        if state is not State.AUTHENTICATING:
            word, space, _ = content.partition(b" ")
            keyword = ascii_upper(word.decode("latin-1"))
            shown = line_content(stored)[0].decode("utf-8", "replace")
            self._pending.append(_Pending(keyword, bool(space), shown))
        not_base64 = redacted is not None and _not_base64(content, state)
        return ClientNote(state, stored, redacted is not None, keyword == "STLS", not_base64)

    def server_line(self, line: bytes) -> ServerNote:
        content, _ = line_content(line)
        command = self._payload_of
        if command is not None:
            if content == b".":
                self._payload_of = None
            return self._note(command, payload=True, body=command.keyword in _BODY_COMMANDS)
        if not self._greeted:
            self._greeted = True
            return self._note(None, malformed=not content.startswith((b"+OK", b"-ERR")))
        command = self._pending[0] if self._pending else None
        positive = content == b"+OK" or content.startswith(b"+OK ")
        negative = content == b"-ERR" or content.startswith(b"-ERR ")
        continuation = content == b"+" or content.startswith(b"+ ")
        if continuation and command is not None and command.keyword == "AUTH":
            self.state = State.AUTHENTICATING
            return self._note(command)
        if command is not None:
            self._pending.popleft()
        if command is None or not (positive or negative):
            return self._note(command, malformed=not (positive or negative))
        self._advance(command, positive)
        if positive and (
            command.keyword in _MULTILINE_ALWAYS
            or (command.keyword in _MULTILINE_WITHOUT_ARGUMENT and not command.has_argument)
        ):
            self._payload_of = command
        starts_tls = positive and command.keyword == "STLS"
        return self._note(command, starts_tls=starts_tls, stls_answered=command.keyword == "STLS")

    def _advance(self, command: _Pending, positive: bool) -> None:
        keyword, state = command.keyword, self.state
        if keyword == "QUIT" and positive:
            self.state = State.CLOSED
        elif state is State.TRANSACTION or (keyword == "AUTH" and not command.has_argument):
            return  # logged in already, or AUTH listing its mechanisms
        elif keyword in {"PASS", "APOP", "AUTH"}:
            self.state = State.TRANSACTION if positive else State.AUTHORIZATION
        elif keyword == "USER":
            self.state = State.AWAITING_PASS if positive else State.AUTHORIZATION

    def _note(
        self,
        command: _Pending | None,
        *,
        payload: bool = False,
        body: bool = False,
        starts_tls: bool = False,
        stls_answered: bool = False,
        malformed: bool = False,
    ) -> ServerNote:
        return ServerNote(
            self.state,
            None if command is None else command.stored,
            payload,
            body,
            starts_tls,
            stls_answered,
            malformed,
        )
