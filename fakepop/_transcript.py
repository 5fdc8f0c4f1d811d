"""The transcript recorder: what every session said, for tests to assert on.

The server records each session as it runs: the client's lines, the server's replies
(multi-line payloads summarised, never copied), state changes, the user, and how the
session ended. Rendering, JSON and queries do their work only when a test asks: each
read makes :class:`SessionRecord` and :class:`Entry` objects afresh, as things stand.

Secrets (the PASS argument) are kept but masked in every view unless a caller asks for
them with ``show_secrets=True``.

Recording is on the server's hot path, and what it costs there is mostly the garbage
collector's: CPython collects when allocations of tracked objects (containers) outrun
their frees by a threshold, so every container a session keeps alive while it runs,
or leaves behind, brings the next collection nearer; with many short sessions at once
a few per session were enough to make collections ten to twenty times as frequent.
So the transcript keeps every session in two flat lists it owns, of strings, bytes,
numbers and None: one item run per session when it starts (its head), and one per line
said (see the layout below). A session being recorded keeps alive one object, its
:class:`SessionRecorder`, and leaves nothing behind but items in those lists. Writing a
line is one ``extend``, which is atomic, without a lock; forgetting sessions
(:meth:`Transcript.pop_finished`, :meth:`Transcript.clear`) replaces only the items it
read, so a line written meanwhile is never lost. After each line, and when a session
starts or ends, the recorder calls the transcript's ``changed`` function, so that a
test waiting for something to be said wakes up.
"""

from __future__ import annotations

import enum
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

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
    # (at, kind, what, lines, octets): five items per line, flat; see _Raw.
    _raw: tuple[_Atom, ...] = field(default=(), repr=False)

    @property
    def entries(self) -> list[Entry]:
        """The session's lines in order."""
        flat = self._raw
        lines = [flat[i : i + 5] for i in range(0, len(flat) - 4, 5)]
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


# How the transcript keeps its sessions: two flat lists of strings, bytes, numbers and
# None, which only grow (and shrink when sessions are forgotten), so that recording
# makes no object per session or per line that outlives the recorder.
#
# A session's head, written when it starts: (key, id, peer host, peer port, started).
_HEAD = 5
# A line: (key, at, kind, what, lines, octets), where ``kind`` is an EntryKind value
# (a str) and ``what`` a state's name or an event (str), or a reply's status line
# (bytes); ``lines`` and ``octets`` are the payload's, as Entry has them. A client's
# line is (key, at, "C", the line as sent, Command.sasl_response, Command.problem):
# which part of it is secret is worked out when it is read, by the one rule that masks
# it (fakepop._masking), not at every command. A reply after which the session changed
# state has the kind "S>state" (see _SERVER_THEN). Two lines are not entries: who
# logged in, (key, at, "user", user, 0, 0), and how the session ended, (key, duration,
# "end", EndReason, removed UIDs, 0). A SessionRecord keeps its entries' lines without
# the key: _Raw.
_LINE = 6
_Raw = tuple[float, str, "bytes | str", int, "int | str | None"]
# An item of a head or a line.
_Atom = float | str | bytes | int | None | EndReason | tuple[str, ...]
_CLIENT, _SERVER, _EVENT = EntryKind.CLIENT.value, EntryKind.SERVER.value, "event"
_USER, _END = "user", "end"
# A reply after which the session changed state is recorded as one line whose kind
# names the new state, and read back as a SERVER entry followed by a STATE entry.
_SERVER_THEN = {state: f"{_SERVER}>{state.value}" for state in State}


def _read(log: list[_Atom], heads: list[Any]) -> dict[int, SessionRecord]:
    # Every session, by key, in the order they started; from a copy of the log taken
    # before a copy of the heads, so every line's session has its head, unless it was
    # forgotten while it ran (its lines are left out).
    records = {
        heads[at]: SessionRecord(
            heads[at + 1], None if heads[at + 2] is None else (heads[at + 2], heads[at + 3]),
            heads[at + 4],
        )
        for at in range(0, len(heads), _HEAD)
    }  # fmt: skip
    lines: dict[int, list[_Atom]] = {key: [] for key in records}
    for at in range(0, len(log), _LINE):
        key, kind = cast(int, log[at]), log[at + 2]
        record = records.get(key)
        if record is None:
            continue
        if kind == _USER:
            record.user = cast(str, log[at + 3])
        elif kind == _END:
            record.duration = cast(float, log[at + 1])
            record.ended_by = cast(EndReason, log[at + 3])
            record.removed = cast("tuple[str, ...]", log[at + 4])
        else:
            lines[key] += log[at + 1 : at + _LINE]
    for key, record in records.items():
        record._raw = tuple(lines[key])
    return records


def _entries(raw: _Raw) -> Iterator[Entry]:
    at, kind_value, what, lines, octets = raw
    if isinstance(what, str):
        yield Entry(at, EntryKind(kind_value), what)
        return
    text = what.decode("utf-8", "replace")
    if kind_value == _CLIENT:
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
    if kind_value != _SERVER:
        yield Entry(at, EntryKind.STATE, kind_value.partition(">")[2])


def _nothing() -> None:
    """Tells nobody."""


class _Closed:
    # Where an ended session's lines would go: writing there is a bug in the server.
    __slots__ = ()

    def extend(self, line: tuple[_Atom, ...]) -> None:
        raise UsageError(f"a session's record was written to after it ended: {line!r}")


_CLOSED = _Closed()


class SessionRecorder:
    """Writes one session's lines into its transcript; the server calls it as the
    session runs, from one thread.

    This is the server's hot path, so each line is one ``extend`` of the transcript's
    log with a tuple of values the server has in hand, without a lock (``extend`` is
    atomic, and the transcript forgets lines without losing one written meanwhile),
    and the only Python calls are ``changed`` and the clock (none for Trio's own
    clock, which the server passes as ``time.perf_counter``). The recorder is the only
    object a session being recorded keeps alive (see the module's docstring).
    """

    __slots__ = ("_changed", "_clock", "_key", "_log", "_start", "_transcript", "_user")

    def __init__(self, transcript: Transcript, key: int, clock: Callable[[], float]) -> None:
        self._transcript = transcript
        self._key = key
        # The transcript's log, which is only ever changed in place.
        self._log: list[_Atom] | _Closed = transcript._log
        self._changed = transcript._changed
        self._clock = clock
        self._start = clock()
        self._user: str | None = None

    def command(self, command: Command) -> None:
        at = self._clock() - self._start
        self._log.extend(
            (self._key, at, _CLIENT, command.line, command.sasl_response, command.problem)
        )
        self._changed()

    def exchange(
        self, command: Command, reply: Reply, state: State | None, user: str | None
    ) -> None:
        """Record a command and the reply to it, written whole right after it: what
        :meth:`command` and then :meth:`reply` record, at one instant."""
        at = self._clock() - self._start
        octets = 0 if reply.payload is None else len(reply.payload)
        kind = _SERVER
        if state is not None:
            kind = _SERVER_THEN[state]
            if user is not None and self._user is None:
                self._logged_in(user, at)
        key = self._key
        # Two lines in one tuple: the client's, then the reply's.
        both = (key, at, _CLIENT, command.line, command.sasl_response, command.problem,
                key, at, kind, reply.status, reply.lines, octets)  # fmt: skip
        self._log.extend(both)
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
        at = self._clock() - self._start
        kind = _SERVER
        if state is not None:
            kind = _SERVER_THEN[state]
            if user is not None and self._user is None:
                self._logged_in(user, at)
        self._log.extend((self._key, at, kind, status, lines, octets))
        self._changed()

    def _logged_in(self, user: str, at: float) -> None:
        # The user is known from the reply after which the session is in TRANSACTION.
        self._user = user
        self._log.extend((self._key, at, _USER, user, 0, 0))

    def event(self, text: str) -> None:
        at = self._clock() - self._start
        self._log.extend((self._key, at, _EVENT, text, 0, 0))
        self._changed()

    def unsent(self, reason: str) -> None:
        """Take back the reply recorded last: it was being written when the connection
        ended, so it did not go out whole. An event says so instead."""
        if self._log is _CLOSED:
            raise UsageError("a reply was taken back after its session's record ended")
        self._transcript._take_back(self._key)
        self.event(f"reply not sent whole: {reason}")

    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None:
        # Shown as a last "ended: ..." entry, made from this line when read.
        log = self._log
        if log is not _CLOSED:
            self._log = _CLOSED
            duration = self._clock() - self._start
            log.extend((self._key, duration, _END, reason, tuple(removed), 0))
            self._changed()


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
        # Sessions' heads and lines are written without it; reading, and forgetting
        # sessions, take it, so that no reader sees a forgetting half done.
        self._lock = threading.Lock()
        # Every session's head, _HEAD items each, in the order they connected.
        self._heads: list[Any] = []
        # Every line of every session, _LINE items each, in the order they were said.
        self._log: list[_Atom] = []
        self._keys = itertools.count()
        self._changed = changed or _nothing

    def start_session(
        self, number: int, peer: tuple[str, int] | None, clock: Callable[[], float]
    ) -> SessionRecorder:
        """Begin the record of session ``number`` (called by the server, which numbers
        sessions for the transcript and the faults alike)."""
        host, port = peer if peer is not None else (None, 0)
        key = next(self._keys)
        self._heads.extend((key, number, host, port, time.time()))
        self._changed()
        return SessionRecorder(self, key, clock)

    def _take_back(self, key: int) -> None:
        # The session's last line, which the server wrote last but which other sessions'
        # lines may follow now.
        with self._lock:
            log = self._log
            for start in range(len(log) - _LINE, -1, -_LINE):
                if log[start] == key:
                    del log[start : start + _LINE]
                    return

    # -- forgetting ----------------------------------------------------------------------
    def clear(self) -> None:
        """Forget every session recorded so far."""
        with self._lock:
            self._heads.clear()
            self._log.clear()
        self._changed()

    def pop_finished(self) -> list[SessionRecord]:
        """Remove the sessions that have ended and return them, in order; open ones
        stay. Session ids come from the server, so they count on regardless."""
        with self._lock:
            log = list(self._log)  # first: see _read
            heads = list(self._heads)
            records = _read(log, heads)
            kept = {key for key, record in records.items() if record.ended_by is None}
            # Heads and lines are written without the lock: replacing only those read
            # keeps any written since. A forgotten session's lines go too.
            self._heads[: len(heads)] = [
                item for at in range(0, len(heads), _HEAD)
                if heads[at] in kept
                for item in heads[at : at + _HEAD]
            ]  # fmt: skip
            self._log[: len(log)] = [
                item
                for at in range(0, len(log), _LINE)
                if log[at] in kept
                for item in log[at : at + _LINE]
            ]
        self._changed()
        return [record for record in records.values() if record.ended_by is not None]

    # -- queries ------------------------------------------------------------------
    @property
    def sessions(self) -> list[SessionRecord]:
        """Every session, as it stands now."""
        with self._lock:
            log = list(self._log)  # first: see _read
            heads = list(self._heads)
        return list(_read(log, heads).values())

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(self.sessions)

    def __len__(self) -> int:
        with self._lock:
            return len(self._heads) // _HEAD

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
        difference = command_difference(expected, actual, match=match, keywords_only=keywords_only)
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
