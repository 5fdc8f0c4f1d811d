"""Model replay: what a cassette says about the server and its mail, as a
:class:`~fakepop.ServerConfig` and mailboxes, so the normal engine can answer command
sequences that were never recorded.

The server: the greeting (and whether it carries an APOP timestamp, RFC 1939 §7), the
CAPA listings before and after login (RFC 2449 §5), whether replies carry response
codes (RFC 2449 §8), leniencies the recording shows (a command that takes no argument
accepted with one), and the wording of every recorded reply the engine takes from its
texts: each reply is matched to the texts entry the engine would use for the same
command in the same situation, and the values the engine would fill in (user, message
count, octets, message number, keyword) are turned back into their fields where that
is unambiguous. The mail: each logged-in user's messages, numbered
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

from ._cassette import Cassette, read_cassette
from ._cassette_replies import RecordedReply, RecordedSession, read_session
from ._cassette_rules import line_content
from ._config import ServerConfig
from ._lines import ascii_upper
from ._state import ALLOWED, KNOWN, NO_ARGUMENTS, State
from ._texts import Texts
from ._transaction import messages_text
from .errors import ConfigError

__all__ = ["config_from_cassette", "mailboxes_from_cassette"]

_TIMESTAMP = re.compile(r"\s*(<[^<>\s]*@[^<>\s]*>)$")
# Positive replies whose text is the same whatever the mail: the keyword they answer,
# and the texts entry they set.
_FIXED_TEXTS = {"CAPA": "capa", "UIDL": "uidl", "NOOP": "noop", "STLS": "stls", "TOP": "top"}
# Commands that name a message, and so may be refused for the message's sake.
_NAMING_A_MESSAGE = frozenset({"RETR", "DELE", "TOP", "LIST", "UIDL"})
# Fields whose values are numbers, or start with one: a text without a digit cannot
# hold them even where the recording does not show their values.
_NUMERIC_FIELDS = frozenset({"messages", "octets", "size", "number", "deleted"})


def _greeting(cassette: Cassette) -> bytes | None:
    for session in cassette.sessions:
        for entry in session.lines("server"):
            return line_content(entry.data)[0]
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
        text = greeting.decode("utf-8", "replace").partition(" ")[2]
        timestamp = _TIMESTAMP.search(text)
        options["apop"] = timestamp is not None
        options["greeting"] = text[: timestamp.start()] if timestamp else text
    lenient = False
    candidates: dict[str, set[str]] = {}
    coded: bool | None = None
    sessions = [read_session(session) for session in cassette.sessions]
    for session in sessions:
        for reply in session.replies:
            if reply.keyword == "CAPA" and reply.positive:
                key = (
                    "capa_listing_after_login"
                    if reply.state is State.TRANSACTION
                    else "capa_listing"
                )
                options.setdefault(key, tuple(line.decode() for line in reply.payload))
            lenient |= reply.keyword in NO_ARGUMENTS and bool(reply.argument) and reply.positive
            if not reply.positive and reply.code is not None:
                coded = True
        for key, reply, values in _worded(session):
            template = _template(key, reply.text, values)
            if template is not None:
                candidates.setdefault(key, set()).add(template)
            if key in _CODED and reply.code is None and coded is None:
                coded = False
    options["texts"] = {key: found.pop() for key, found in candidates.items() if len(found) == 1}
    if lenient:
        options["lenient_arguments"] = True
    _capabilities(options)
    if coded is not None:  # what the replies show wins over what CAPA announced
        options["resp_codes"] = coded
    options.update(overrides)
    options["texts"] = {**options["texts"], **overrides.get("texts", {})}
    return ServerConfig(**options)


# The -ERR replies the engine gives a response code (RFC 2449 §8): whether the
# recording shows one on them says whether the server sends codes.
_CODED = frozenset({"auth_failed", "in_use"})


@dataclass
class _Maildrop:
    """What one recorded session shows of its maildrop: the count and octets at login
    (from a STAT or LIST before any DELE), the sizes LIST gave, the messages marked
    deleted so far."""

    count: int | None = None
    octets: int | None = None
    sizes: dict[int, int] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)

    def learn(self, replies: list[RecordedReply]) -> None:
        for reply in replies:
            if not reply.positive or reply.state is not State.TRANSACTION:
                continue
            if reply.keyword == "DELE":
                return  # from here on, STAT and LIST no longer show the whole maildrop
            if reply.keyword == "STAT" and self.count is None:
                words = reply.text.split(" ")
                if len(words) >= 2 and words[0].isdigit() and words[1].isdigit():
                    self.count, self.octets = int(words[0]), int(words[1])
            elif reply.keyword == "LIST" and not reply.argument:
                listed = _listed(reply.payload)
                self.sizes.update(listed)
                if self.count is None:
                    self.count, self.octets = len(listed), sum(listed.values())

    @property
    def at_login(self) -> dict[str, str | None]:
        return {
            "messages": None if self.count is None else messages_text(self.count),
            "octets": None if self.octets is None else str(self.octets),
        }


def _listed(payload: list[bytes]) -> dict[int, int]:
    sizes: dict[int, int] = {}
    for line in payload:
        words = line.split(b" ")
        if len(words) >= 2 and words[0].isdigit() and words[1].isdigit():
            sizes[int(words[0])] = int(words[1])
    return sizes


def _worded(
    session: RecordedSession,
) -> Iterator[tuple[str, RecordedReply, dict[str, str | None]]]:
    """Each reply of the session whose wording is a texts entry: the entry the engine
    would use for the same command in the same situation, and the values it would
    fill in (None where the recording does not show one)."""
    replies = session.replies
    maildrop = _Maildrop()
    maildrop.learn(replies)
    greeting = session.greeting
    apop = (
        greeting is not None
        and _TIMESTAMP.search(greeting.decode("utf-8", "replace")) is not None
    )
    user: str | None = None
    for reply in replies:
        keyword, first = reply.keyword, reply.argument.split(" ")[0]
        if keyword in {"USER", "APOP"} and first:
            user = first
        before = reply.before
        worded = (
            _positive(reply, before, user, maildrop)
            if reply.positive
            else _negative(reply, before, maildrop, apop=apop)
        )
        if worded is not None:
            yield worded[0], reply, worded[1]
        if reply.positive and keyword == "DELE" and first.isdigit():
            maildrop.deleted.add(int(first))
        elif reply.positive and keyword == "RSET":
            maildrop.deleted.clear()


def _positive(
    reply: RecordedReply, before: State, user: str | None, maildrop: _Maildrop
) -> tuple[str, dict[str, str | None]] | None:
    keyword, argument = reply.keyword, reply.argument
    if keyword in _FIXED_TEXTS and (keyword == "TOP" or not argument):
        return _FIXED_TEXTS[keyword], {}
    if keyword == "USER":
        return "user", {"user": argument}
    if keyword in {"PASS", "APOP"} and reply.state is State.TRANSACTION:
        return "logged_in", {"user": user, **maildrop.at_login}
    if keyword == "LIST" and not argument:
        listed = _listed(reply.payload)
        return "list", {"messages": messages_text(len(listed)), "octets": str(sum(listed.values()))}
    if keyword == "RETR" and argument.isdigit():
        size = maildrop.sizes.get(int(argument))
        if size is None:
            size = sum(len(line) + 2 for line in reply.payload)
        return "retr", {"size": str(size)}
    if keyword == "DELE" and argument.isdigit():
        return "dele", {"number": str(int(argument))}
    if keyword == "RSET":
        return "rset", maildrop.at_login
    if keyword == "QUIT":
        if before is not State.TRANSACTION:
            return "quit", {}
        key = "quit_update" if maildrop.deleted else "quit_nothing_deleted"
        return key, {"deleted": messages_text(len(maildrop.deleted))}
    return None


def _negative(
    reply: RecordedReply, before: State, maildrop: _Maildrop, *, apop: bool
) -> tuple[str, dict[str, str | None]] | None:
    keyword, first = reply.keyword, reply.argument.split(" ")[0]
    allowed = ALLOWED.get(before)
    if allowed is None or not keyword:
        return None  # in the middle of SASL, or an empty line
    logged_in = before is State.TRANSACTION
    if keyword == "APOP" and not logged_in and not apop:
        return "apop_disabled", {"keyword": keyword}
    if keyword not in KNOWN:
        key = "unknown_command" if logged_in else "unknown_before_login"
        return key, {"keyword": keyword}
    if keyword not in allowed:
        if logged_in:
            return "after_login", {"keyword": keyword}
        if keyword == "PASS":
            return "pass_without_user", {}
        return "before_login", {"keyword": keyword}
    if keyword in {"PASS", "APOP"} and reply.code in {None, "AUTH"}:
        return "auth_failed", {}
    if keyword in {"PASS", "APOP"} and reply.code == "IN-USE":
        return "in_use", {}
    if keyword in _NAMING_A_MESSAGE and first.isdigit() and reply.code is None:
        if int(first) in maildrop.deleted:
            return "message_deleted", {"number": str(int(first))}
        number = int(first)
        if number in maildrop.sizes or (
            maildrop.count is not None and 0 < number <= maildrop.count
        ):
            return None  # a message that exists, refused for some other reason
        if maildrop.count is None and not re.search(rf"(?<![0-9]){first}(?![0-9])", reply.text):
            return None  # the recording cannot tell a missing message from another refusal
        return "no_such_message", {"number": first}
    return None


def _template(key: str, text: str, values: dict[str, str | None]) -> str | None:
    """``text`` with each value the engine fills in replaced by its field, or None
    when that is ambiguous (a value found twice, a number the recording does not show)
    or the result is not a valid template for ``key``."""
    spans: list[tuple[int, int, str]] = []
    for name, value in sorted(values.items(), key=lambda item: -len(item[1] or "")):
        if value is None or not value:
            if name in _NUMERIC_FIELDS and any(c.isdigit() for c in text):
                return None
            continue
        pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")
        found = [
            match.span()
            for match in pattern.finditer(text)
            if not any(start < match.end() and match.start() < end for start, end, _ in spans)
        ]
        if len(found) > 1:
            return None
        if found:
            spans.append((*found[0], name))
    template, at = [], 0
    for start, end, name in sorted(spans):
        template.append(_escaped(text[at:start]) + f"{{{name}}}")
        at = end
    template.append(_escaped(text[at:]))
    result = "".join(template)
    missing = [name for name in values if name in _NUMERIC_FIELDS and f"{{{name}}}" not in result]
    if missing and any(c.isdigit() for c in re.sub(r"\{[a-z]+\}", "", result)):
        return None  # a number where the engine fills one in, but not the one it would
    try:
        Texts({key: result})
    except ConfigError:
        return None
    filled = {name: value for name, value in values.items() if value is not None}
    try:
        if result.format(**filled) != text:
            return None
    except (KeyError, IndexError, ValueError):
        return None
    return result


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


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
        for reply in read_session(session).replies:
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


def _learn(messages: dict[int, _Message], reply: RecordedReply) -> None:
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
