"""The transcript: what every session said, for tests to assert on.

The server records each session as it runs: the client's lines, the server's replies
(multi-line payloads summarised, never copied), state changes, the user, and how the
session ended, into a session log (:mod:`fakepop._session_log`, which explains why it
is kept as it is). Rendering, JSON and queries do their work only when a test asks:
each read makes :class:`SessionRecord` and :class:`Entry` objects afresh, as things
stand. Secrets (the PASS argument) are kept but masked in every view unless a caller
asks for them with ``show_secrets=True``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Literal

from ._changes import Changes
from ._expectations import command_difference, fail
from ._session_log import SessionLog, SessionRecorder
from ._session_record import SessionRecord

__all__ = ["Transcript"]


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

    def __init__(self, changed: Callable[[], None] | Changes | None = None) -> None:
        """``changed`` is called after every change to the record, from the thread
        that made it. (The server passes its store's change notifier instead, which
        is told only while someone waits.)"""
        if changed is None or isinstance(changed, Changes):
            self._log = SessionLog(changed)
        else:
            self._log = SessionLog(Changes())
            self._log.changes.add_waker(changed)

    def start_session(
        self, number: int, peer: tuple[str, int] | None, clock: Callable[[], float]
    ) -> SessionRecorder:
        """Begin the record of session ``number`` (called by the server, which numbers
        sessions for the transcript and the faults alike)."""
        return SessionRecorder(self._log, number, peer, clock)

    def clear(self) -> None:
        """Forget every session recorded so far."""
        self._log.clear()

    def pop_finished(self) -> list[SessionRecord]:
        """Remove the sessions that have ended and return them, in order; open ones
        stay. Session ids come from the server, so they count on regardless."""
        return self._log.pop_finished()

    # -- queries ------------------------------------------------------------------
    @property
    def sessions(self) -> list[SessionRecord]:
        """Every session, as it stands now."""
        return self._log.records()

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self._log)

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
