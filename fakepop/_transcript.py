"""The transcript recorder: what every session said, for tests to assert on.

The server records each session as it runs: the client's lines, the server's replies
(multi-line payloads summarised, never copied), state changes, the user, and how the
session ended. Recording is cheap (a few small objects per command); rendering, JSON
and queries do their work only when a test asks.

Secrets (the PASS argument) are kept but masked in every view unless a caller asks for
them with ``show_secrets=True``.

While a session runs, its record only extends one flat list with strings, bytes and
numbers that the server already has in hand (the command line, the reply's status
line and sizes). None of those is a container the garbage collector tracks, so
recording adds no collection work however long the transcript grows; the readable
:class:`Entry` objects are made from them when a test reads the record. After each
line, and when a session starts or ends, the recorder calls the transcript's
``changed`` function, so that a test waiting for something to be said wakes up.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._expectations import command_difference, fail
from ._lines import ascii_upper
from ._masking import mask_command_line
from ._replies import Command, Reply
from ._state import State
from .errors import UsageError

__all__ = ["EndReason", "Entry", "EntryKind", "SessionRecord", "Transcript"]



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
    """Everything one POP3 session said and did."""

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
    # (at, kind, what, lines, octets) five slots per line, flat; see SessionRecorder.
    # A list while the session runs, a tuple once it has ended: a tuple of strings,
    # bytes and numbers is one the garbage collector stops tracking, so a long
    # transcript adds nothing to its passes.
    _raw: Sequence[float | str | bytes | int] = field(default_factory=list, repr=False)

    @property
    def entries(self) -> list[Entry]:
        """The session's lines in order, as recorded so far."""
        flat = list(self._raw)
        lines = [tuple(flat[i : i + 5]) for i in range(0, len(flat) - 4, 5)]
        entries = [entry for raw in lines for entry in _entries(raw)]  # type: ignore[arg-type]
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


# A recorded line: (at, kind, what, lines, octets). ``kind`` is an EntryKind value
# (a str); ``what`` is the client's line (bytes, with _SASL_RESPONSE in ``lines``
# for a SASL response; ``kind`` is "C!<why>" for a line refused as too long), a
# reply's status line (bytes), a state's name or an event (str). Which part of a
# client line is secret is worked out when the line is read, by the one rule that
# masks it (fakepop._masking), not at every command.
_Raw = tuple[float, str, "bytes | str", int, int]
_CLIENT, _SERVER, _EVENT = EntryKind.CLIENT.value, EntryKind.SERVER.value, "event"
# A reply after which the session changed state is recorded as one line whose kind
# names the new state, and read back as a SERVER entry followed by a STATE entry.
_SERVER_THEN = {state: f"{_SERVER}>{state.value}" for state in State}
_SASL_RESPONSE = 1


def _entries(raw: _Raw) -> Iterator[Entry]:
    at, kind_value, what, lines, octets = raw
    if isinstance(what, str):
        yield Entry(at, EntryKind(kind_value), what)
        return
    text = what.decode("utf-8", "replace")
    if kind_value.startswith(_CLIENT):
        # "C", or "C!<problem>" for a line refused as too long: ``what`` is its start.
        refused = f"... ({kind_value[2:]})" if kind_value != _CLIENT else ""
        shown = mask_command_line(text, sasl_response=bool(lines & _SASL_RESPONSE))
        if shown != text:
            yield Entry(at, EntryKind.CLIENT, shown + refused, text + refused)
        else:
            yield Entry(at, EntryKind.CLIENT, text + refused)
        return
    yield Entry(at, EntryKind.SERVER, text.rstrip("\r\n"), None, lines, octets)
    if kind_value != _SERVER:
        yield Entry(at, EntryKind.STATE, kind_value.partition(">")[2])


def _nothing() -> None:
    """Tells nobody."""


def _command_entry(at: float, command: Command) -> tuple[float, str, bytes, int, int]:
    # Kept as sent and masked when read, by one rule for whole and cut lines alike.
    kind = _CLIENT if command.problem is None else f"{_CLIENT}!{command.problem}"
    return (at, kind, command.line, _SASL_RESPONSE if command.sasl_response else 0, 0)


class SessionRecorder:
    """Writes one session's record; the server calls it as the session runs."""

    __slots__ = ("_append", "_changed", "_clock", "_start", "record")

    def __init__(
        self,
        record: SessionRecord,
        clock: Callable[[], float],
        changed: Callable[[], None] = _nothing,
    ) -> None:
        self.record = record
        assert isinstance(record._raw, list)
        self._append: Callable[[tuple[float | str | bytes | int, ...]], None] = record._raw.extend
        self._clock = clock
        self._start = clock()
        self._changed = changed

    def command(self, command: Command) -> None:
        self._append(_command_entry(self._clock() - self._start, command))
        self._changed()

    def exchange(
        self, command: Command, reply: Reply, state: State | None, user: str | None
    ) -> None:
        """Record a command and the reply to it, written whole right after it: what
        :meth:`command` and then :meth:`reply` record, at one instant."""
        at = self._clock() - self._start
        octets = 0 if reply.payload is None else len(reply.payload)
        kind = _SERVER if state is None else self._entered(state, user)
        self._append((*_command_entry(at, command), at, kind, reply.status, reply.lines, octets))
        self._changed()

    def reply(self, reply: Reply, state: State | None = None, user: str | None = None) -> None:
        """Record a reply that was written whole; ``state`` if the session entered it by
        this command, and ``user`` once someone has logged in."""
        # The status line and sizes only: a payload is never kept, nor counted here.
        octets = 0 if reply.payload is None else len(reply.payload)
        self.sent(reply.status, reply.lines, octets, state, user)

    def sent(
        self,
        status: bytes,
        lines: int,
        octets: int,
        state: State | None = None,
        user: str | None = None,
    ) -> None:
        """Record a reply as it went over the wire: its status line (with its line end),
        and the lines and octets of the payload that followed it."""
        kind = _SERVER if state is None else self._entered(state, user)
        self._append((self._clock() - self._start, kind, status, lines, octets))
        self._changed()

    def _entered(self, state: State, user: str | None) -> str:
        # The kind of a reply after which the session is in ``state``; the user is
        # known from the reply that logged them in.
        if user is not None and self.record.user is None:
            self.record.user = user
        return _SERVER_THEN[state]

    def event(self, text: str) -> None:
        self._append((self._clock() - self._start, _EVENT, text, 0, 0))
        self._changed()

    def unsent(self, reason: str) -> None:
        """Take back the reply recorded last: it was being written when the connection
        ended, so it did not go out whole. An event says so instead."""
        raw = self.record._raw
        assert isinstance(raw, list), "a reply taken back after the session ended"
        del raw[-5:]
        self.event(f"reply not sent whole: {reason}")

    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None:
        # Shown as a last "ended: ..." entry, made from these fields when read.
        record = self.record
        if record.ended_by is None:
            record.removed = tuple(removed)
            record.duration = self._clock() - self._start
            record._raw = tuple(record._raw)
            self._append = _ended
            record.ended_by = reason
            self._changed()


def _ended(entry: tuple[float | str | bytes | int, ...]) -> None:
    raise UsageError(f"a session's record was written to after it ended: {entry!r}")


def _keep_end(text: str, limit: int) -> str:
    # The end of ``text`` in whole lines (a part of one if a single line is too long),
    # after a line that says how much was cut: at most ``limit`` characters in all
    # (or the notice alone, if ``limit`` is shorter than it).
    longest_notice = _CUT_NOTICE.format(cut=len(text)) + "\n"
    room = max(limit - len(longest_notice), 0)
    kept = text[len(text) - room :] if room else ""
    if "\n" in kept and text[len(text) - len(kept) - 1] != "\n":
        kept = kept.split("\n", 1)[1]  # drop the line cut in the middle
    notice = _CUT_NOTICE.format(cut=len(text) - len(kept))
    return f"{notice}\n{kept}" if kept else notice


_CUT_NOTICE = "[... {cut} characters cut ...]"


class Transcript:
    """Every session a server has run, in the order they connected.

    Safe to read from any thread while the server runs. Queries return plain lists so
    assertions read naturally::

        assert server.transcript.commands(user="alice") == ["USER alice", "PASS ****", ...]
    """

    def __init__(self, changed: Callable[[], None] | None = None) -> None:
        """``changed`` is called after every change to the record, from the thread
        that made it (the server passes the function that wakes its waiters)."""
        self._lock = threading.Lock()
        self._sessions: list[SessionRecord] = []
        self._changed = changed or _nothing

    def start_session(
        self, number: int, peer: tuple[str, int] | None, clock: Callable[[], float]
    ) -> SessionRecorder:
        """Begin the record of session ``number`` (called by the server, which numbers
        sessions for the transcript and the faults alike)."""
        record = SessionRecord(id=number, peer=peer, started=time.time())
        with self._lock:
            self._sessions.append(record)
        self._changed()
        return SessionRecorder(record, clock, self._changed)

    def clear(self) -> None:
        """Forget every session recorded so far."""
        with self._lock:
            self._sessions.clear()
        self._changed()

    def pop_finished(self) -> list[SessionRecord]:
        """Remove the sessions that have ended and return them, in order; open ones
        stay. Session ids come from the server, so they count on regardless."""
        finished: list[SessionRecord] = []
        still_open: list[SessionRecord] = []
        with self._lock:
            for record in self._sessions:  # one look each: a session may end meanwhile
                (still_open if record.ended_by is None else finished).append(record)
            self._sessions = still_open
        self._changed()
        return finished

    # -- queries ------------------------------------------------------------------
    @property
    def sessions(self) -> list[SessionRecord]:
        with self._lock:
            return list(self._sessions)

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(self.sessions)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def sessions_of(self, user: str) -> list[SessionRecord]:
        """The sessions in which ``user`` logged in."""
        return [session for session in self.sessions if session.user == user]

    def commands(self, *, user: str | None = None, show_secrets: bool = False) -> list[str]:
        """Every client line of every session (of ``user``'s sessions, if given)."""
        sessions = self.sessions if user is None else self.sessions_of(user)
        return [line for s in sessions for line in s.commands(show_secrets=show_secrets)]

    def replies_to(self, keyword: str, *, user: str | None = None) -> list[str]:
        """Status lines of the replies to every command with this keyword."""
        sessions = self.sessions if user is None else self.sessions_of(user)
        return [reply for s in sessions for reply in s.replies_to(keyword)]

    def removed(self, *, user: str | None = None) -> list[str]:
        """UIDs removed at UPDATE, session after session."""
        sessions = self.sessions if user is None else self.sessions_of(user)
        return [uid for s in sessions for uid in s.removed]

    def assert_commands(
        self,
        expected: Sequence[str],
        *,
        user: str | None = None,
        session: int | SessionRecord | None = None,
        match: Literal["exact", "subsequence", "prefix"] = "exact",
        keywords_only: bool = False,
    ) -> None:
        """Assert the client lines were ``expected``: of every session, of ``user``'s
        (the sessions in which ``user`` logged in), or of one ``session`` (its id or
        its record).

        ``match="exact"`` compares the whole list, ``"prefix"`` its start, and
        ``"subsequence"`` finds the expected lines in order with any others between
        them. Keywords compare ASCII case-insensitively and arguments exactly, as
        shown (``PASS ****``); ``keywords_only`` compares keywords alone. On a mismatch
        ExpectationError shows the difference, then the transcript.
        """
        __tracebackhide__ = True
        records = self.sessions if user is None else self.sessions_of(user)
        who = f" of {user}" if user is not None else ""
        if session is not None:
            wanted = session.id if isinstance(session, SessionRecord) else session
            chosen = [record for record in records if record.id == wanted]
            if not chosen:
                ids = [record.id for record in records]
                missing = f"There is no POP3 session {wanted}{who}; the sessions{who}: {ids}"
                fail(missing, self, self.render())
            records = chosen
            who += f" in session {wanted}"
        actual = [line for record in records for line in record.commands()]
        difference = command_difference(
            expected, actual, match=match, keywords_only=keywords_only
        )
        if difference is not None:
            fail(f"POP3 commands{who} {difference}", self, self.render())

    # -- output -------------------------------------------------------------------
    def render(
        self,
        *,
        show_secrets: bool = False,
        payloads: bool = True,
        timestamps: bool = False,
        max_chars: int | None = None,
    ) -> str:
        """Every session in telnet style, for a human to read.

        ``payloads`` and ``timestamps`` are :meth:`SessionRecord.render`'s. With
        ``max_chars``, a longer rendering keeps its end, in whole lines, after a first
        line that says how many characters were cut, all in at most ``max_chars``
        characters (the last lines are where a failure usually shows)."""
        if max_chars is not None and (
            isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
        ):
            raise ValueError(f"max_chars must be a positive int or None, not {max_chars!r}")
        sessions = self.sessions
        if not sessions:
            return "(no POP3 sessions)"
        text = "\n".join(
            s.render(show_secrets=show_secrets, payloads=payloads, timestamps=timestamps)
            for s in sessions
        )
        if max_chars is None or len(text) <= max_chars:
            return text
        return _keep_end(text, max_chars)

    def to_json(self, *, show_secrets: bool = False, indent: int | None = 2) -> str:
        return json.dumps(
            [s.as_dict(show_secrets=show_secrets) for s in self.sessions], indent=indent
        )

    def __str__(self) -> str:
        return self.render()
