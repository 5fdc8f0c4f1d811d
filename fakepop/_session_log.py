"""The session log: where the transcript keeps what every session said, and the
recorder that writes it as a session runs.

Recording is on the server's hot path, and what it costs there is the garbage
collector's and the interpreter's work per line. CPython collects when allocations of
tracked objects (containers) outrun their frees by a threshold, so every container a
session keeps alive while it runs, or leaves behind, brings the next collection
nearer; with many short sessions at once a few per session were enough to make
collections ten to twenty times as frequent. So the log keeps every session in two
flat lists it owns, of strings, bytes, numbers and None: one item run per session
when it starts (its head), and one per line said, a command and a reply without a
payload sharing one, as values the server has in hand: what a test reads (the times
since the session started, the line with its secret masked) is worked out when it
reads it (see the layout below). A session being recorded keeps alive one object, its
:class:`SessionRecorder`, and leaves nothing behind but items in those lists. Writing a
line is one ``extend``, which is atomic, without a lock; forgetting sessions
(:meth:`SessionLog.pop_finished`, :meth:`SessionLog.clear`) replaces only the items it
read, so a line written meanwhile is never lost. The readable
:class:`~fakepop.SessionRecord` objects are made from the lists when a test reads
them. After each line, and when a session starts or ends, the recorder bumps the
log's :class:`~fakepop._changes.Changes` if anyone watches it, so that a test waiting
for something to be said wakes up; with nobody watching, a line costs no Python call.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from ._changes import Changes
from ._replies import Command, Reply
from ._session_record import CLIENT, EVENT, SERVER, SERVER_THEN, EndReason, SessionRecord
from ._state import State
from .errors import UsageError

if TYPE_CHECKING:
    import trio

__all__ = ["NO_RECORDER", "SessionLog", "SessionRecorder", "clock_reading"]


# How the log keeps its sessions: two flat lists of strings, bytes, numbers and
# None, which only grow (and shrink when sessions are forgotten), so that recording
# makes no object per session or per line that outlives the recorder.
#
# A session's head, written when it starts: (key, id, peer host, peer port, started,
# start), where ``started`` is the wall-clock time of the connection and ``start`` the
# recorder's clock then. Every line's ``at`` is a reading of that clock, as the clock
# returned it: the record's times, seconds since the session started, are worked out
# when it is read.
_HEAD = 6
# A line: (key, at, kind, what, lines, octets), where ``kind`` is an EntryKind value
# (a str) and ``what`` a state's name or an event (str), or a reply's status line
# (bytes); ``lines`` and ``octets`` are the payload's, as Entry has them. A client's
# line is (key, at, "C", the line as sent, Command.sasl_response, Command.problem):
# which part of it is secret is worked out when it is read, by the one rule that masks
# it (fakepop._masking), not at every command. A reply after which the session changed
# state has the kind "S>state" (see SERVER_THEN). Most commands and their replies,
# those without a payload, a SASL response or a problem, are one line, an exchange:
# (key, at, "X" + the reply's kind, the command's line, the reply's status line, 0).
# Two lines are not entries: who logged in, (key, at, "user", user, 0, 0), and how the
# session ended, (key, at, "end", EndReason, removed UIDs, 0). A SessionRecord keeps
# its entries' lines without the key (fakepop._session_record.Raw).
_LINE = 6
# An item of a head or a line.
_Atom = float | str | bytes | int | None | EndReason | tuple[str, ...]
_USER, _END, _EXCHANGE = "user", "end", "X"
_EXCHANGE_THEN = {state: _EXCHANGE + kind for state, kind in SERVER_THEN.items()}


def _exchanged_command(sent: _Atom, line: _Atom) -> tuple[_Atom, ...]:
    # The client's line of an exchange, as a line of its own without the key: an
    # exchange holds only commands without a SASL response or a problem.
    return (sent, CLIENT, line, False, None)


def _read(log: list[_Atom], heads: list[Any]) -> dict[int, SessionRecord]:
    # Every session, by key, in the order they started; from a copy of the log taken
    # before a copy of the heads, so every line's session has its head, unless it was
    # forgotten while it ran (its lines are left out).
    records = {
        heads[at]: SessionRecord(
            heads[at + 1], None if heads[at + 2] is None else (heads[at + 2], heads[at + 3]),
            heads[at + 4], _start=heads[at + 5],
        )
        for at in range(0, len(heads), _HEAD)
    }  # fmt: skip
    lines: dict[int, list[Any]] = {key: [] for key in records}
    for at in range(0, len(log), _LINE):
        key, kind = cast(int, log[at]), cast(str, log[at + 2])
        record = records.get(key)
        if record is None:
            continue
        if kind == _USER:
            record.user = cast(str, log[at + 3])
        elif kind == _END:
            record.duration = cast(float, log[at + 1]) - record._start
            record.ended_by = cast(EndReason, log[at + 3])
            record.removed = cast("tuple[str, ...]", log[at + 4])
        elif kind.startswith(_EXCHANGE):
            # The client's line, then the reply's, as they are recorded apart.
            sent = log[at + 1]
            lines[key] += _exchanged_command(sent, log[at + 3])
            lines[key] += (sent, kind[1:] or SERVER, log[at + 4], 0, 0)
        else:
            lines[key] += log[at + 1 : at + _LINE]
    for key, record in records.items():
        record._raw = tuple(lines[key])
    return records


class _Closed:
    # Where an ended session's lines would go: writing there is a bug in the server.
    __slots__ = ()

    def extend(self, line: tuple[_Atom, ...]) -> None:
        raise UsageError(f"a session's record was written to after it ended: {line!r}")


_CLOSED = _Closed()


class SessionRecorder:
    """Writes one session's lines into the session log; the server calls it as the
    session runs, from one thread.

    This is the server's hot path, so each line is one ``extend`` of the log's list of
    lines with a tuple of values the server has in hand, without a lock (``extend`` is
    atomic, and the log forgets lines without losing one written meanwhile), and the
    only Python calls are the clock's (none for Trio's own clock, which the server
    passes as ``time.perf_counter``) and, if anyone watches, the bump of the log's
    changes. The recorder is the only object a session being recorded keeps alive (see
    the module's docstring).
    """

    __slots__ = ("_changes", "_clock", "_key", "_log", "_session_log", "_user")

    def __init__(
        self,
        log: SessionLog,
        number: int,
        peer: tuple[str, int] | None,
        clock: Callable[[], float],
    ) -> None:
        """Begin the record of session ``number``: its head goes into the log now."""
        self._session_log = log
        self._key = key = next(log._keys)
        # The log's list of lines, which is only ever changed in place.
        self._log: list[_Atom] | _Closed = log._lines
        self._changes = changes = log.changes
        self._clock = clock
        self._user: str | None = None
        host, port = peer if peer is not None else (None, 0)
        log._heads.extend((key, number, host, port, time.time(), clock()))
        if changes.watchers:
            changes.bump()

    def command(self, command: Command) -> None:
        self._log.extend(
            (self._key, self._clock(), CLIENT, command.line, command.sasl_response,
             command.problem)
        )  # fmt: skip
        if self._changes.watchers:
            self._changes.bump()

    def exchange(
        self, command: Command, reply: Reply, state: State | None, user: str | None
    ) -> None:
        """Record a command and the reply to it, written whole right after it: what
        :meth:`command` and then :meth:`reply` record, at one instant."""
        at = self._clock()
        if state is not None and user is not None and self._user is None:
            self._logged_in(user, at)
        if reply.payload is None and command.problem is None and not command.sasl_response:
            # Most commands: one line says both (see the layout above).
            kind = _EXCHANGE if state is None else _EXCHANGE_THEN[state]
            self._log.extend((self._key, at, kind, command.line, reply.status, 0))
        else:
            octets = 0 if reply.payload is None else len(reply.payload)
            kind = SERVER if state is None else SERVER_THEN[state]
            key = self._key
            # Two lines in one tuple: the client's, then the reply's.
            both = (key, at, CLIENT, command.line, command.sasl_response, command.problem,
                    key, at, kind, reply.status, reply.lines, octets)  # fmt: skip
            self._log.extend(both)
        if self._changes.watchers:
            self._changes.bump()

    def reply(self, reply: Reply, state: State | None = None, user: str | None = None) -> None:
        """Record a reply that was written whole: its status line (with its line end),
        and the lines and octets of its payload; ``state`` if the session entered it by
        this command, and ``user`` once someone has logged in."""
        # The status line and sizes only: a payload is never kept. A reply a fault
        # changed is recorded as it went over the wire (Session._record_written).
        at = self._clock()
        if state is not None and user is not None and self._user is None:
            self._logged_in(user, at)
        octets = 0 if reply.payload is None else len(reply.payload)
        kind = SERVER if state is None else SERVER_THEN[state]
        self._log.extend((self._key, at, kind, reply.status, reply.lines, octets))
        if self._changes.watchers:
            self._changes.bump()

    def _logged_in(self, user: str, at: float) -> None:
        # Who logged in: known from the first reply after which the session changed
        # state and the protocol has a user (entering TRANSACTION).
        self._user = user
        self._log.extend((self._key, at, _USER, user, 0, 0))

    def event(self, text: str) -> None:
        self._log.extend((self._key, self._clock(), EVENT, text, 0, 0))
        if self._changes.watchers:
            self._changes.bump()

    def unsent(self, reason: str) -> None:
        """Take back the reply recorded last: it was being written when the connection
        ended, so it did not go out whole. An event says so instead."""
        if self._log is _CLOSED:
            raise UsageError("a reply was taken back after its session's record ended")
        self._session_log.take_back(self._key)
        self.event(f"reply not sent whole: {reason}")

    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None:
        # Shown as a last "ended: ..." entry, made from this line when read.
        log = self._log
        if log is not _CLOSED:
            self._log = _CLOSED
            log.extend((self._key, self._clock(), _END, reason, tuple(removed), 0))
            if self._changes.watchers:
                self._changes.bump()


class SessionLog:
    """Every session's head and lines, in two flat lists (see the module's docstring).

    Safe from any thread: sessions write without the lock, one ``extend`` at a time;
    reading and forgetting take it, so that no reader sees a forgetting half done.
    """

    def __init__(self, changes: Changes | None = None) -> None:
        """``changes`` is bumped after every change anyone watches for, from the
        thread that made it (see :class:`~fakepop._changes.Changes`)."""
        #: What waiters for a line watch; the server's is its store's.
        self.changes = changes if changes is not None else Changes()
        self._lock = threading.Lock()
        # Every session's head, _HEAD items each, in the order they connected.
        self._heads: list[Any] = []
        # Every line of every session, _LINE items each, in the order they were said.
        self._lines: list[_Atom] = []
        self._keys = itertools.count()

    def take_back(self, key: int) -> None:
        """Remove the last reply of the session ``key``, which the server wrote last
        (other sessions' lines may follow it now); of an exchange, the command stays."""
        with self._lock:
            lines = self._lines
            for start in range(len(lines) - _LINE, -1, -_LINE):
                if lines[start] == key:
                    kind = cast(str, lines[start + 2])
                    if kind.startswith(_EXCHANGE):
                        command = _exchanged_command(lines[start + 1], lines[start + 3])
                        lines[start : start + _LINE] = (key, *command)
                    else:
                        del lines[start : start + _LINE]
                    return

    def records(self) -> list[SessionRecord]:
        """Every session, as it stands now."""
        with self._lock:
            lines = list(self._lines)  # first: see _read
            heads = list(self._heads)
        return list(_read(lines, heads).values())

    def __len__(self) -> int:
        return len(self._heads) // _HEAD

    def clear(self) -> None:
        """Forget every session."""
        with self._lock:
            self._heads.clear()
            self._lines.clear()
        self.changes.bump()

    def pop_finished(self) -> list[SessionRecord]:
        """Forget the sessions that have ended and return them, in order."""
        with self._lock:
            lines = list(self._lines)  # first: see _read
            heads = list(self._heads)
            records = _read(lines, heads)
            kept = {key for key, record in records.items() if record.ended_by is None}
            # Heads and lines are written without the lock: replacing only those read
            # keeps any written since. A forgotten session's lines go too.
            self._heads[: len(heads)] = [
                item for at in range(0, len(heads), _HEAD)
                if heads[at] in kept
                for item in heads[at : at + _HEAD]
            ]  # fmt: skip
            self._lines[: len(lines)] = [
                item
                for at in range(0, len(lines), _LINE)
                if lines[at] in kept
                for item in lines[at : at + _LINE]
            ]
        self.changes.bump()
        return [record for record in records.values() if record.ended_by is not None]


def clock_reading(clock: trio.abc.Clock) -> Callable[[], float]:
    """What a recorder reads the time of each line with, for a Trio run's ``clock``.
    Trio's own clock is perf_counter() plus a fixed offset, and the log keeps only
    differences, so the recorder reads perf_counter itself: no Python call per line.
    Any other clock (MockClock) is read as it is."""
    kind = type(clock)
    if kind.__name__ == "SystemClock" and kind.__module__.startswith("trio."):
        return time.perf_counter
    return clock.current_time


class _NoRecorder:
    # Stands in for a SessionRecorder when the server keeps no transcript. Each method
    # takes its arguments as SessionRecorder's does: a call that packs them into
    # ``*args`` and ``**kwargs`` costs more than twice as much, at every command.
    __slots__ = ()

    def command(self, command: Command) -> None:
        pass

    def exchange(
        self, command: Command, reply: Reply, state: State | None, user: str | None
    ) -> None:
        pass

    def reply(self, reply: Reply, state: State | None = None, user: str | None = None) -> None:
        pass

    def event(self, text: str) -> None:
        pass

    def unsent(self, reason: str) -> None:
        pass

    def end(self, reason: EndReason, removed: Sequence[str] = ()) -> None:
        pass


#: The recorder of a server that keeps no transcript: every call records nothing.
NO_RECORDER = _NoRecorder()
