"""One session's record, as a test reads it: how it ended, its entries, and the
queries on them.

Records are made from the transcript's flat lists each time the transcript is read
(see :mod:`fakepop._session_log`), so a record is what was said when it was read.
Secrets (the PASS argument) are kept but masked in every view unless a caller asks for
them with ``show_secrets=True``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._expectations import command_difference, fail
from ._lines import ascii_upper
from ._masking import mask_command_line
from ._state import State

__all__ = ["EndReason", "Entry", "EntryKind", "SessionRecord"]


class EndReason(enum.Enum):
    """How a session ended."""

    #: The client sent QUIT and the server closed after answering it.
    QUIT = "QUIT"
    #: The client closed or reset the connection without QUIT.
    CLIENT_CLOSED = "client closed the connection"
    #: The autologout timer fired: no command for ``ServerConfig.autologout`` seconds.
    TIMEOUT = "autologout timer"
    #: The server was stopped while the session was open.
    SERVER_STOPPED = "server stopped"
    #: An error inside the server ended the session (it is in ``Pop3Server.errors``).
    SERVER_ERROR = "error inside the server"
    #: A fault added to the server closed, reset or stalled the connection.
    FAULT = "fault"
    #: The TLS handshake (POP3S, or after STLS) failed or timed out.
    TLS_FAILED = "TLS handshake failed"
    #: The server closed the connection on the client, as its config asks: too many
    #: bad commands, a line too long, a locked mailbox (ServerConfig's ``close_on_*``
    #: and ``max_bad_commands`` options).
    HUNG_UP = "the server hung up"


class EntryKind(enum.Enum):
    CLIENT = "C"  # a line the client sent
    SERVER = "S"  # a reply (status line; multi-line payloads summarised)
    STATE = "state"  # the session entered another state
    EVENT = "event"  # anything else worth knowing (login, end of session, faults)


@dataclass(frozen=True)
class Entry:
    """One line of a session's transcript."""

    #: Seconds since the session started, on the server's clock (trio's clock, so
    #: virtual time under ``MockClock``).
    at: float
    kind: EntryKind
    #: The line as shown by default: a client line with its secret masked, a reply's
    #: status line, a state name or an event description.
    text: str
    #: For a client line that carries a secret, the line as sent.
    secret_text: str | None = None
    #: For a multi-line reply: how many lines followed the status line (without the
    #: terminating dot) and how many octets they took (stuffed, dot line included).
    lines: int = 0
    octets: int = 0

    def shown(self, *, show_secrets: bool = False) -> str:
        if show_secrets and self.secret_text is not None:
            return self.secret_text
        return self.text


@dataclass(slots=True)
class SessionRecord:
    """Everything one POP3 session said and did, as it stood when the transcript was
    read: read the transcript again to see what a session still open says next."""

    #: 1 for the server's first session (since it started or was reset), then 2, 3, ...
    #: in the order they connected; the number faults' ``in_session()`` counts.
    id: int
    #: The client's (host, port), or None for a stream without an address.
    peer: tuple[str, int] | None
    #: Wall-clock time (``time.time()``) of the connection.
    started: float
    #: The user who logged in, once someone did.
    user: str | None = None
    #: How the session ended; None while it is still open.
    ended_by: EndReason | None = None
    #: Seconds the session lasted, on the server's clock; None while open.
    duration: float | None = None
    #: UIDs of the messages removed when the session quit (UPDATE).
    removed: tuple[str, ...] = ()
    # (at, kind, what, lines, octets): five items per line, flat; see Raw.
    _raw: tuple[float | str | bytes | int | None, ...] = field(default=(), repr=False)
    # The server's clock when the session started: each line's ``at`` is a reading of it.
    _start: float = field(default=0.0, repr=False)

    @property
    def entries(self) -> list[Entry]:
        """The session's lines in order."""
        flat = self._raw
        lines = [flat[i : i + 5] for i in range(0, len(flat) - 4, 5)]
        start = self._start
        entries = [entry for raw in lines for entry in _entries(raw, start)]  # type: ignore[arg-type]
        if self.ended_by is not None and self.duration is not None:
            entries.append(Entry(self.duration, EntryKind.EVENT, f"ended: {self.ended_by.value}"))
        return entries

    # -- queries ------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self.ended_by is None

    @property
    def quit(self) -> bool:
        """Whether the session ended with the client's QUIT."""
        return self.ended_by is EndReason.QUIT

    def commands(self, *, show_secrets: bool = False) -> list[str]:
        """The client's lines, in order (``PASS ****`` unless ``show_secrets``)."""
        return [
            entry.shown(show_secrets=show_secrets)
            for entry in self.entries
            if entry.kind is EntryKind.CLIENT
        ]

    def exchanges(self) -> list[tuple[str, str]]:
        """(client line, status line of the reply) pairs, in order; masked."""
        pairs = []
        pending: str | None = None
        for entry in self.entries:
            if entry.kind is EntryKind.CLIENT:
                pending = entry.text
            elif entry.kind is EntryKind.SERVER and pending is not None:
                pairs.append((pending, entry.text))
                pending = None
        return pairs

    def replies_to(self, keyword: str) -> list[str]:
        """Status lines of the replies to every command with this keyword."""
        keyword = ascii_upper(keyword)
        return [
            reply
            for line, reply in self.exchanges()
            if ascii_upper(line.split(" ", 1)[0]) == keyword
        ]

    def assert_commands(
        self,
        expected: Sequence[str],
        *,
        match: Literal["exact", "subsequence", "prefix"] = "exact",
        keywords_only: bool = False,
    ) -> None:
        """Assert this session's client lines were ``expected``, as
        :meth:`Transcript.assert_commands` compares them; the failure shows this session."""
        __tracebackhide__ = True
        difference = command_difference(
            expected, self.commands(), match=match, keywords_only=keywords_only
        )
        if difference is not None:
            fail(f"POP3 commands of session {self.id} {difference}", None, self.render())

    def render(
        self, *, show_secrets: bool = False, payloads: bool = True, timestamps: bool = False
    ) -> str:
        """The session in telnet style: ``C: USER alice`` / ``S: +OK ...``.

        ``payloads=False`` leaves out what follows a multi-line reply's status line
        (``[3 more lines, 20 octets]``); ``timestamps=True`` starts each line with
        the seconds since the session started (``[  1.500] C: STAT``)."""
        who = f" ({self.user})" if self.user else ""
        peer = f" from {self.peer[0]}:{self.peer[1]}" if self.peer else ""
        ended = f", ended by {self.ended_by.value}" if self.ended_by else ", still open"
        lasted = f" after {self.duration:.3f} s" if self.duration is not None else ""
        out = [f"--- session {self.id}{peer}{who}{ended}{lasted}"]
        for entry in self.entries:
            if entry.kind is EntryKind.CLIENT:
                line = f"C: {entry.shown(show_secrets=show_secrets)}"
            elif entry.kind is EntryKind.SERVER:
                more = ""
                if payloads and (entry.lines or entry.octets):
                    more = f"   [{entry.lines} more lines, {entry.octets} octets]"
                line = f"S: {entry.text}{more}"
            elif entry.kind is EntryKind.STATE:
                line = f"   (state: {entry.text})"
            else:
                line = f"   ({entry.text})"
            out.append(f"[{entry.at:7.3f}] {line}" if timestamps else line)
        return "\n".join(out)

    def as_dict(self, *, show_secrets: bool = False) -> dict[str, object]:
        return {
            "id": self.id,
            "peer": list(self.peer) if self.peer else None,
            "started": self.started,
            "user": self.user,
            "ended_by": self.ended_by.name if self.ended_by else None,
            "duration": self.duration,
            "removed": list(self.removed),
            "entries": [
                {
                    "at": entry.at,
                    "kind": entry.kind.name,
                    "text": entry.shown(show_secrets=show_secrets),
                    **({"lines": entry.lines, "octets": entry.octets} if entry.octets else {}),
                }
                for entry in self.entries
            ],
        }


# A line of a SessionRecord: (at, kind, what, lines, octets), as the session log has it
# without the session's key (see fakepop._session_log for what each item holds); ``at``
# is the server's clock as read, from which the record's ``_start`` is subtracted.
Raw = tuple[float, str, "bytes | str", int, "int | str | None"]
CLIENT, SERVER, EVENT = EntryKind.CLIENT.value, EntryKind.SERVER.value, "event"
# A reply after which the session changed state is recorded as one line whose kind
# names the new state, and read back as a SERVER entry followed by a STATE entry.
SERVER_THEN = {state: f"{SERVER}>{state.value}" for state in State}


def _entries(raw: Raw, start: float) -> Iterator[Entry]:
    # ``start``: the server's clock when the session started; ``raw`` has a reading.
    reading, kind_value, what, lines, octets = raw
    at = reading - start
    if isinstance(what, str):
        yield Entry(at, EntryKind(kind_value), what)
        return
    text = what.decode("utf-8", "replace")
    if kind_value == CLIENT:
        # ``lines`` says whether it is a SASL response; ``octets`` why the line was
        # refused as too long (``what`` is then its start), or None.
        refused = f"... ({octets})" if octets is not None else ""
        shown = mask_command_line(text, sasl_response=bool(lines))
        if shown != text:
            yield Entry(at, EntryKind.CLIENT, shown + refused, text + refused)
        else:
            yield Entry(at, EntryKind.CLIENT, text + refused)
        return
    assert isinstance(octets, int)
    yield Entry(at, EntryKind.SERVER, text.rstrip("\r\n"), None, lines, octets)
    if kind_value != SERVER:
        yield Entry(at, EntryKind.STATE, kind_value.partition(">")[2])
