"""The TRANSACTION commands (RFC 1939 section 5): what a logged-in session does with
its locked maildrop. :class:`Pop3Protocol` inherits them; each handler reads the
maildrop and answers, and none changes the session's state.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ._config import ServerConfig
from ._listing import without
from ._message import StoredMessage
from ._replies import Command, Reply, multiline, ok, status_line
from ._store import Maildrop, MailStore

__all__ = ["MaildropCommands", "messages_text"]

_DIGITS = re.compile(r"[0-9]+\Z")


def _bounded_int(digits: str, too_big: int) -> int:
    # The value of a string of digits, leading zeros and all; ``too_big`` for more
    # significant digits than any mailbox or message could need, without a big int.
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 12 else too_big


def messages_text(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"


class MaildropCommands:
    """STAT, LIST, UIDL, RETR, TOP, DELE, NOOP and RSET, and their common helpers."""

    # Set by Pop3Protocol.
    store: MailStore
    config: ServerConfig
    maildrop: Maildrop | None
    utf8_mode: bool

    def _err(self, text: str, code: str | None = None) -> Reply:
        if code is not None and self.config.resp_codes:
            text = f"[{code}] {text}"
        return Reply(status_line(b"-ERR", text))

    def _listing(
        self,
        kind: str,
        build: Callable[[tuple[StoredMessage, ...]], bytes],
        starts: Callable[[tuple[StoredMessage, ...]], bytes],
    ) -> bytes:
        # The listing of every message, shared by the sessions that see the same mail,
        # with the lines of messages marked deleted cut out.
        assert self.maildrop is not None
        listing = self.maildrop.derived(kind, build)
        marked = self.maildrop.marked()
        if not marked:
            return listing
        line_starts = self.maildrop.derived(f"{kind} line starts", starts)
        return without(listing, marked, memoryview(line_starts).cast("Q"))

    def _message(self, text: str) -> tuple[int, StoredMessage] | Reply:
        # Parses a message-number argument; returns the message or the -ERR reply.
        assert self.maildrop is not None
        if not _DIGITS.match(text):
            return self._err(f"Invalid message number: {text[:40]}")
        number = _bounded_int(text, 0)
        message = self.maildrop.get(number)
        if message is not None:
            return number, message
        if self.maildrop.is_deleted(number):
            return self._err(self.config.text("message_deleted", number=number))
        return self._err(self.config.text("no_such_message", number=text[:40]))

    # -- TRANSACTION ---------------------------------------------------------------
    def _stat(self, command: Command) -> Reply:
        assert self.maildrop is not None
        return ok(f"{self.maildrop.count} {self.maildrop.octets}")

    def _list(self, command: Command) -> Reply:
        assert self.maildrop is not None
        args = command.args
        if len(args) > 1:
            return self._err("LIST takes at most one argument: a message number")
        if args:
            found = self._message(args[0])
            if isinstance(found, Reply):
                return found
            number, message = found
            return ok(f"{number} {message.size}")
        maildrop = self.maildrop
        listings = self.store.listings
        listing = self._listing("LIST", listings.full_list, listings.list_starts)
        text = self.config.text(
            "list", messages=messages_text(maildrop.count), octets=maildrop.octets
        )
        return multiline(text, listing, maildrop.count)

    def _uidl(self, command: Command) -> Reply:
        assert self.maildrop is not None
        args = command.args
        if len(args) > 1:
            return self._err("UIDL takes at most one argument: a message number")
        if args:
            found = self._message(args[0])
            if isinstance(found, Reply):
                return found
            number, message = found
            return ok(f"{number} {message.uid}")
        listings = self.store.listings
        listing = self._listing("UIDL", listings.full_uidl, listings.uidl_starts)
        return multiline(self.config.text("uidl"), listing, self.maildrop.count)

    def _retr(self, command: Command) -> Reply:
        assert self.maildrop is not None
        args = command.args
        if len(args) != 1:
            return self._err("RETR needs exactly one argument: a message number")
        found = self._message(args[0])
        if isinstance(found, Reply):
            return found
        number, message = found
        refused = self._needs_utf8(message)
        if refused is not None:
            return refused
        self.maildrop.note_retrieved(number)
        text = self.config.text("retr", size=message.size)
        return multiline(text, message.retr_payload, message.lines)

    def _needs_utf8(self, message: StoredMessage) -> Reply | None:
        # RFC 6856 section 2.1: no raw UTF-8 headers to a client that did not ask.
        if message.needs_utf8 and self.config.utf8 and not self.utf8_mode:
            return self._err("This message needs UTF8 mode; send UTF8 first", "UTF8")
        return None

    def _top(self, command: Command) -> Reply:
        assert self.maildrop is not None
        args = command.args
        if len(args) != 2:
            return self._err("TOP needs two arguments: a message number and a line count")
        found = self._message(args[0])
        if isinstance(found, Reply):
            return found
        if not _DIGITS.match(args[1]):
            return self._err(f"Invalid line count: {args[1][:40]}")
        _, message = found
        refused = self._needs_utf8(message)
        if refused is not None:
            return refused
        payload = message.top_payload(_bounded_int(args[1], 10**12))
        whole = payload is message.retr_payload  # then its lines are already counted
        lines = message.lines if whole else payload.count(b"\r\n") - 1
        return multiline(self.config.text("top"), payload, lines)

    def _dele(self, command: Command) -> Reply:
        assert self.maildrop is not None
        args = command.args
        if len(args) != 1:
            return self._err("DELE needs exactly one argument: a message number")
        found = self._message(args[0])
        if isinstance(found, Reply):
            return found
        number, _ = found
        self.maildrop.mark_deleted(number)
        return ok(self.config.text("dele", number=number))

    def _noop(self, command: Command) -> Reply:
        return ok(self.config.text("noop"))

    def _rset(self, command: Command) -> Reply:
        assert self.maildrop is not None
        self.maildrop.unmark_all()
        maildrop = self.maildrop
        text = self.config.text(
            "rset", messages=messages_text(maildrop.count), octets=maildrop.octets
        )
        return ok(text)
