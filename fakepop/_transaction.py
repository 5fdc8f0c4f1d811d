"""The TRANSACTION commands (RFC 1939 section 5): what a logged-in session does with
its locked maildrop. :class:`Pop3Protocol` inherits them; each handler reads the
maildrop and answers, and none changes the session's state.
"""

from __future__ import annotations

from collections.abc import Callable

from ._arguments import MessageNumber, Refused, line_count, message_arguments
from ._config import ServerConfig
from ._listing import without
from ._message import StoredMessage
from ._replies import Command, Reply, multiline, ok, status_line
from ._store import Maildrop, MailStore

__all__ = ["MaildropCommands", "messages_text"]


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

    def _message(
        self, command: Command, *, top: bool = False
    ) -> tuple[int, StoredMessage, str] | Reply:
        # The message RETR, DELE or TOP names (and the text of TOP's line count), or the
        # -ERR reply; the argument rules are _arguments.py's.
        parsed = message_arguments(command, self.config, top=top)
        if isinstance(parsed, Refused):
            return self._err(parsed.text)
        number, rest = parsed
        assert number is not None
        found = self._look_up(number)
        return found if isinstance(found, Reply) else (number.value, found, rest)

    def _optional_message(self, command: Command) -> tuple[int, StoredMessage] | Reply | None:
        # The message LIST or UIDL names, None for all of them, or the -ERR reply.
        parsed = message_arguments(command, self.config, optional=True)
        if isinstance(parsed, Refused):
            return self._err(parsed.text)
        number, _ = parsed
        if number is None:
            return None
        found = self._look_up(number)
        return found if isinstance(found, Reply) else (number.value, found)

    def _look_up(self, number: MessageNumber) -> StoredMessage | Reply:
        assert self.maildrop is not None
        message = self.maildrop.get(number.value)
        if message is not None:
            return message
        if self.maildrop.is_deleted(number.value):
            return self._err(self.config.text("message_deleted", number=number.value))
        return self._err(self.config.text("no_such_message", number=number.shown))

    # -- TRANSACTION ---------------------------------------------------------------
    def _stat(self, command: Command) -> Reply:
        assert self.maildrop is not None
        return ok(f"{self.maildrop.count} {self.maildrop.octets}")

    def _list(self, command: Command) -> Reply:
        assert self.maildrop is not None
        found = self._optional_message(command)
        if isinstance(found, Reply):
            return found
        if found is not None:
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
        found = self._optional_message(command)
        if isinstance(found, Reply):
            return found
        if found is not None:
            number, message = found
            return ok(f"{number} {message.uid}")
        listings = self.store.listings
        listing = self._listing("UIDL", listings.full_uidl, listings.uidl_starts)
        return multiline(self.config.text("uidl"), listing, self.maildrop.count)

    def _retr(self, command: Command) -> Reply:
        assert self.maildrop is not None
        found = self._message(command)
        if isinstance(found, Reply):
            return found
        number, message, _ = found
        refused = self._needs_utf8(message)
        if refused is not None:
            return refused
        self.maildrop.note_retrieved(number)
        text = self.config.text("retr", size=message.size)
        return multiline(text, message.retr_payload, message.lines)

    def _needs_utf8(self, message: StoredMessage) -> Reply | None:
        # The one place the rule lives. RFC 6856 section 2.1, read strictly: no raw
        # UTF-8 headers to a client that did not send UTF8. Real servers send them as
        # they are, and so does fakepop unless the config asks for the refusal.
        if message.needs_utf8 and self.config.utf8_refuse_unless_enabled and not self.utf8_mode:
            return self._err("This message needs UTF8 mode; send UTF8 first", "UTF8")
        return None

    def _top(self, command: Command) -> Reply:
        assert self.maildrop is not None
        found = self._message(command, top=True)
        if isinstance(found, Reply):
            return found
        _, message, count_text = found
        count = line_count(count_text, self.config)
        if isinstance(count, Refused):
            return self._err(count.text)
        refused = self._needs_utf8(message)
        if refused is not None:
            return refused
        payload = message.top_payload(count)
        whole = payload is message.retr_payload  # then its lines are already counted
        lines = message.lines if whole else payload.count(b"\r\n") - 1
        return multiline(self.config.text("top"), payload, lines)

    def _dele(self, command: Command) -> Reply:
        assert self.maildrop is not None
        found = self._message(command)
        if isinstance(found, Reply):
            return found
        number, _, _ = found
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
