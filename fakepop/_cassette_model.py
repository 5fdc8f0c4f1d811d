"""Model replay: what a cassette says about the server and its mail, as a
:class:`~fakepop.ServerConfig` and mailboxes, so the normal engine can answer command
sequences that were never recorded.

The server: the greeting (and whether it carries an APOP timestamp, RFC 1939 §7), the
CAPA listings before and after login (RFC 2449 §5; before login every listing merged,
as with and without TLS they differ), whether replies carry response codes (RFC 2449
§8), leniencies the recording shows (a command that takes no argument accepted with
one), and the wording of every recorded reply the engine takes from its texts: each
reply is matched to the texts entry the engine would use for the same command in the
same situation, and the values the engine would fill in (user, message count, octets,
message number, keyword, mechanism, line limit) are turned back into their fields
where that is unambiguous. A text keeps the response code the server sent, but on the
refusals the engine adds one to itself (a refused login, ``[IN-USE]``, a login refused
for want of TLS). A -ERR to a line longer than 255 octets (RFC 2449 §4), of a command
the server takes there, is taken for a refusal of its length. How the server treats
logins, its TLS policy included, is read in ``_cassette_logins``; its limits, delays
and hang-ups in ``_cassette_limits``. The mail: each logged-in user's messages,
numbered as the first session that listed them; their UIDs from UIDL; their octets
from RETR (dot-stuffing undone), or, where only LIST or TOP was seen, a synthetic
message of the recorded size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._cassette import Cassette, read_cassette
from ._cassette_limits import Limits, derive_limits
from ._cassette_logins import Logins, read_logins
from ._cassette_replies import Judged, RecordedReply, RecordedSession, read_session
from ._cassette_rules import line_content
from ._config import RFC_MIN_LINE_LENGTH, SASL_MECHANISMS, ServerConfig
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
_NUMERIC_FIELDS = frozenset({"messages", "octets", "size", "number", "deleted", "limit"})
Values = dict[str, str | None]
Worded = tuple[str, Values]  # a texts entry, and the values the engine fills in


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
    sessions = [read_session(session) for session in cassette.sessions]
    replies = [reply for session in sessions for reply in session.replies]
    logins = read_logins(replies)
    judged = [(session, _judged(session, logins)) for session in sessions]
    limits = derive_limits([(session, [item for item, _ in items]) for session, items in judged])
    # Each reply as the limits judged it again, with the values the engine fills in.
    worded = [
        (item, values)
        for confirmed, (_, items) in zip(limits.judged, judged, strict=True)
        for item, (_, values) in zip(confirmed, items, strict=True)
    ]
    lenient = any(r.keyword in NO_ARGUMENTS and bool(r.argument) and r.positive for r in replies)
    coded = True if any(r.negative and r.code is not None for r in replies) else None
    if coded is None and any(i.key in _CODED and i.reply.code is None for i, _ in worded):
        coded = False
    candidates: dict[str, set[str]] = {}
    for key, text, values in _wordings(worded, limits):
        template = _template(key, text, values)
        if template is not None:
            candidates.setdefault(key, set()).add(template)
    options["texts"] = {key: found.pop() for key, found in candidates.items() if len(found) == 1}
    if lenient:
        options["lenient_arguments"] = True
    options.update(_capabilities(replies))
    if coded is not None:  # what the replies show wins over what CAPA announced
        options["resp_codes"] = coded
    options.update(logins.options)
    options.update(limits.options)
    options.update(overrides)
    options["texts"] = {**options["texts"], **overrides.get("texts", {})}
    return ServerConfig(**options)


# The -ERR replies the engine gives a response code (RFC 2449 §8): their recorded text
# is worded without it, and whether the recording shows one on them says whether the
# server sends codes. Every other text is worded with the code the server sent.
_CODED = frozenset({"auth_failed", "sasl_failed", "in_use", "cleartext_refused", "tls_required"})


def _wordings(
    worded: list[tuple[Judged, Values]], limits: Limits
) -> Iterator[tuple[str, str, Values]]:
    # Each recorded text of a texts entry, with the values the engine would fill in.
    for item, values in worded:
        key, reply = item.key, item.reply
        if key is None:
            continue
        limit = limits.line_limits.get(key)
        filled: Values = values if limit is None else {"limit": str(limit)}
        yield key, reply.text if key in _CODED else reply.words, filled
    for key, notices in limits.notices.items():
        for notice in notices:
            yield key, notice, {}


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


def _judged(session: RecordedSession, logins: Logins) -> list[tuple[Judged, Values]]:
    """Each reply of the session with the texts entry the engine would use for the same
    command in the same situation (None where the recording cannot tell), and the
    values it would fill in (None where the recording does not show one)."""
    replies = session.replies
    maildrop = _Maildrop()
    maildrop.learn(replies)
    greeting = session.greeting
    apop = (
        greeting is not None
        and _TIMESTAMP.search(greeting.decode("utf-8", "replace")) is not None
    )
    user: str | None = None
    judged: list[tuple[Judged, Values]] = []
    for reply in replies:
        keyword, first = reply.keyword, reply.argument.split(" ")[0]
        if keyword in {"USER", "APOP"} and first:
            user = first
        before = reply.before
        worded = (
            _positive(reply, before, user, maildrop)
            if reply.positive
            else _negative(reply, maildrop, logins, apop=apop)
            if reply.negative
            else None
        )
        key, values = (None, {}) if worded is None else worded
        judged.append((Judged(reply, key), values))
        if reply.positive and keyword == "DELE" and first.isdigit():
            maildrop.deleted.add(int(first))
        elif reply.positive and keyword == "RSET":
            maildrop.deleted.clear()
    return judged


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
    reply: RecordedReply, maildrop: _Maildrop, logins: Logins, *, apop: bool
) -> Worded | None:
    keyword, first = reply.keyword, reply.argument.split(" ")[0]
    before = reply.before
    allowed = ALLOWED.get(before)
    if allowed is None:
        return None
    if not keyword:
        return "empty_command", {}
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
    if reply.length is not None and reply.length > RFC_MIN_LINE_LENGTH:
        # A command the server takes there, refused: for its length, as the engine
        # refuses a line too long before reading it.
        return ("line_too_long" if logged_in else "line_too_long_before_login"), {"limit": None}
    if not logged_in:
        return logins.refusal(reply)
    if keyword in _NAMING_A_MESSAGE and first.isdigit() and reply.code is None:
        return _about_a_message(reply, first, maildrop)
    return None


def _about_a_message(reply: RecordedReply, first: str, maildrop: _Maildrop) -> Worded | None:
    # A command naming message ``first``, refused: for the message's sake, if the
    # recording can tell.
    if int(first) in maildrop.deleted:
            return "message_deleted", {"number": str(int(first))}
    number = int(first)
    if number in maildrop.sizes or (maildrop.count is not None and 0 < number <= maildrop.count):
        return None  # a message that exists, refused for some other reason
    if maildrop.count is None and not re.search(rf"(?<![0-9]){first}(?![0-9])", reply.text):
        return None  # the recording cannot tell a missing message from another refusal
    return "no_such_message", {"number": first}


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


def _capabilities(replies: list[RecordedReply]) -> dict[str, Any]:
    # The CAPA listings and what they announce: before login every listing recorded,
    # merged (with and without TLS they differ), after login the first.
    before: list[tuple[str, ...]] = []
    after: list[tuple[str, ...]] = []
    for reply in replies:
        if reply.keyword == "CAPA" and reply.positive:
            listing = tuple(line.decode("utf-8", "replace") for line in reply.payload)
            (after if reply.state is State.TRANSACTION else before).append(listing)
    options: dict[str, Any] = {}
    if after:
        options["capa_listing_after_login"] = _merged(after[:1])[0]
    if not before:
        return options
    listing, mechanisms = _merged(before)
    options["capa_listing"] = listing
    words = {_name(line): line for line in listing}
    for capability, option in (("TOP", "top"), ("UIDL", "uidl"), ("STLS", "stls")):
        options[option] = capability in words
    options["user_pass"] = "USER" in words
    options["pipelining"] = "PIPELINING" in words
    options["resp_codes"] = "RESP-CODES" in words
    options["utf8"] = "UTF8" in words
    implementation = words.get("IMPLEMENTATION")
    options["implementation"] = None if implementation is None else implementation[15:]
    options["sasl"] = tuple(name for name in mechanisms if name in SASL_MECHANISMS)
    return options


def _merged(listings: list[tuple[str, ...]]) -> tuple[tuple[str, ...], list[str]]:
    """One listing holding every capability of ``listings``, and every SASL mechanism
    they list. The SASL line is ``SASL`` alone, which the engine fills in with the
    mechanisms it offers at the time, where fakepop knows them all; else as listed."""
    merged: list[str] = []
    mechanisms: list[str] = []
    for listing in listings:
        for line in listing:
            if _name(line) == "SASL":
                _merge(mechanisms, [ascii_upper(m) for m in line.split()[1:]])
        _merge(merged, ["SASL" if _name(line) == "SASL" else line for line in listing])
    if "SASL" in merged and not set(mechanisms) <= set(SASL_MECHANISMS):
        merged[merged.index("SASL")] = " ".join(["SASL", *mechanisms])
    return tuple(merged), mechanisms


def _name(line: str) -> str:
    return ascii_upper(line.partition(" ")[0])


def _merge(merged: list[str], listed: list[str]) -> None:
    # Each line of ``listed`` whose name ``merged`` lacks goes right after the line
    # that came before it in ``listed``.
    at = 0
    for line in listed:
        names = [_name(known) for known in merged]
        if _name(line) in names:
            at = names.index(_name(line)) + 1
        else:
            merged.insert(at, line)
            at += 1


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
