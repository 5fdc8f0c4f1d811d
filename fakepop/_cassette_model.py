"""Model replay: what a cassette says about the server and its mail, as a
:class:`~fakepop.ServerConfig` and mailboxes, so the normal engine can answer command
sequences that were never recorded.

The server: the greeting (and whether it carries an APOP timestamp, RFC 1939 §7), the
CAPA listings before and after login (RFC 2449 §5), the texts of replies whose text
does not depend on the mail, and leniencies the recording shows (a command that takes
no argument accepted with one). The mail: each logged-in user's messages, numbered
as the first session that listed them; their UIDs from UIDL; their octets from RETR
(dot-stuffing undone), or, where only LIST or TOP was seen, a synthetic message of the
recorded size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._cassette import Cassette, CassetteEntry, CassetteSession, read_cassette
from ._cassette_rules import line_content
from ._config import ServerConfig
from ._lines import ascii_upper
from ._state import NO_ARGUMENTS, State

__all__ = ["config_from_cassette", "mailboxes_from_cassette"]

_TIMESTAMP = re.compile(r"\s*(<[^<>\s]*@[^<>\s]*>)$")
_CODE = re.compile(r"^\[[^\]]*\]\s*")
# Reply texts that are the same whatever the mail: the keyword they answer, and the
# texts entry they set.
_FIXED_TEXTS = {"CAPA": "capa", "UIDL": "uidl", "NOOP": "noop", "STLS": "stls", "TOP": "top"}


@dataclass
class _Reply:
    command: str  # as stored: "RETR 1", "PASS ****"
    status: bytes  # the status line's content
    payload: list[bytes] = field(default_factory=list)
    state: State = State.AUTHORIZATION

    @property
    def keyword(self) -> str:
        return ascii_upper(self.command.partition(" ")[0])

    @property
    def argument(self) -> str:
        return self.command.partition(" ")[2]

    @property
    def positive(self) -> bool:
        return self.status.startswith(b"+OK")

    @property
    def text(self) -> str:
        words = self.status.decode("utf-8", "replace").partition(" ")[2]
        return _CODE.sub("", words)


def _replies(session: CassetteSession) -> Iterator[_Reply]:
    reply: _Reply | None = None
    for entry in session.lines("server"):
        if entry.payload and reply is not None:
            content, _ = line_content(entry.data)
            if content != b".":
                reply.payload.append(content[1:] if content.startswith(b"..") else content)
            continue
        if reply is not None:
            yield reply
        reply = None
        if entry.answers is not None and entry.state is not None:
            reply = _Reply(entry.answers, line_content(entry.data)[0], state=entry.state)
    if reply is not None:
        yield reply


def _greeting(cassette: Cassette) -> CassetteEntry | None:
    for session in cassette.sessions:
        for entry in session.lines("server"):
            return entry
    return None


def config_from_cassette(
    cassette: Cassette | str | os.PathLike[str], **overrides: Any
) -> ServerConfig:
    """A ServerConfig that behaves like the recorded server where the recording shows
    how; ``overrides`` are ServerConfig options that win over what was derived."""
    cassette = cassette if isinstance(cassette, Cassette) else read_cassette(cassette)
    options: dict[str, Any] = {"texts": {}}
    greeting = _greeting(cassette)
    if greeting is not None:
        text = line_content(greeting.data)[0].decode("utf-8", "replace").partition(" ")[2]
        timestamp = _TIMESTAMP.search(text)
        options["apop"] = timestamp is not None
        options["greeting"] = text[: timestamp.start()] if timestamp else text
    texts: dict[str, str] = options["texts"]
    lenient = False
    for session in cassette.sessions:
        for reply in _replies(session):
            if reply.keyword == "CAPA" and reply.positive:
                key = (
                    "capa_listing_after_login"
                    if reply.state is State.TRANSACTION
                    else "capa_listing"
                )
                options.setdefault(key, tuple(line.decode() for line in reply.payload))
            if reply.keyword in _FIXED_TEXTS and reply.positive and not reply.argument:
                texts.setdefault(_FIXED_TEXTS[reply.keyword], reply.text)
            lenient |= reply.keyword in NO_ARGUMENTS and bool(reply.argument) and reply.positive
    if lenient:
        options["lenient_arguments"] = True
    _capabilities(options)
    options.update(overrides)
    options["texts"] = {**options["texts"], **overrides.get("texts", {})}
    return ServerConfig(**options)


def _capabilities(options: dict[str, Any]) -> None:
    listing = options.get("capa_listing")
    if listing is None:
        return
    words = {ascii_upper(line.partition(" ")[0]): line for line in listing}
    for capability, option in (("TOP", "top"), ("UIDL", "uidl"), ("STLS", "stls")):
        options[option] = capability in words
    options["user_pass"] = "USER" in words
    options["pipelining"] = "PIPELINING" in words
    options["resp_codes"] = "RESP-CODES" in words
    options["utf8"] = "UTF8" in words
    implementation = words.get("IMPLEMENTATION")
    options["implementation"] = None if implementation is None else implementation[15:]
    sasl = words.get("SASL")
    options["sasl"] = tuple(sasl.split()[1:]) if sasl else ()


@dataclass
class _Message:
    size: int | None = None
    uid: str | None = None
    data: bytes | None = None


def mailboxes_from_cassette(
    cassette: Cassette | str | os.PathLike[str], *, password: str = "secret"
) -> dict[str, dict[str, Any]]:
    """The mailboxes the cassette shows, each with ``password`` (the cassette holds
    none), as ``pop3_server`` and ``Pop3Server`` take them: ``{user: {"password":
    ..., "messages": {uid: octets}}}``. A user whose name the recording does not show
    (a SASL login) is ``"user"``."""
    cassette = cassette if isinstance(cassette, Cassette) else read_cassette(cassette)
    users: dict[str, dict[int, _Message]] = {}
    for session in cassette.sessions:
        user: str | None = None
        messages: dict[int, _Message] | None = None
        for reply in _replies(session):
            if reply.keyword in {"USER", "APOP"} and reply.positive:
                user = reply.argument.split(" ")[0]
            if reply.state is not State.TRANSACTION or not reply.positive:
                continue
            if messages is None:
                name = user or "user"
                fresh = name not in users
                messages = users.setdefault(name, {})
                if not fresh:
                    messages = {}  # numbering may differ later; only the first session counts
            _learn(messages, reply)
    return {
        name: {"password": password, "messages": _messages(found)} for name, found in users.items()
    }


def _learn(messages: dict[int, _Message], reply: _Reply) -> None:
    keyword, argument = reply.keyword, reply.argument
    if keyword in {"LIST", "UIDL"}:
        lines = reply.payload if not argument else [reply.text.encode()]
        for line in lines:
            number, _, value = line.decode("utf-8", "replace").partition(" ")
            if not number.isdigit():
                continue
            message = messages.setdefault(int(number), _Message())
            if keyword == "LIST" and value.split(" ")[0].isdigit():
                message.size = int(value.split(" ")[0])
            elif keyword == "UIDL" and value:
                message.uid = value.split(" ")[0]
    elif keyword == "RETR" and argument.isdigit():
        message = messages.setdefault(int(argument), _Message())
        message.data = b"".join(line + b"\r\n" for line in reply.payload)


def _messages(found: dict[int, _Message]) -> dict[str, bytes]:
    result: dict[str, bytes] = {}
    for number in sorted(found):
        message = found[number]
        uid = message.uid or f"cassette{number:06d}"
        data = message.data if message.data is not None else _synthetic(number, message.size or 0)
        result[uid] = data
    return result


def _synthetic(number: int, size: int) -> bytes:
    """A message of exactly ``size`` octets (CRLF lines), or as close as a header
    allows for a tiny size."""
    header = f"Subject: message {number} of the cassette\r\n\r\n".encode()
    if size <= len(header):
        return header[: max(size - 2, 0)] + b"\r\n" if size >= 2 else b"\r\n"
    body = size - len(header)
    lines: list[bytes] = []
    while body > 0:
        length = min(body, 78)
        if length == 1:  # a line is at least its CRLF: pad the previous one
            lines[-1] = b"x" + lines[-1]
            break
        lines.append(b"x" * (length - 2) + b"\r\n")
        body -= length
    return header + b"".join(lines)
