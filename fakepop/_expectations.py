"""Assertions a test reads like a sentence, about what a server's clients did.

``Pop3Server`` and ``Pop3ServerThread`` inherit :class:`MailAssertions`;
``Transcript.assert_commands`` and ``SessionRecord.assert_commands`` compare with
:func:`command_difference`. Every assertion fails with
:class:`~fakepop.errors.ExpectationError`, whose message shows the difference first
and then the transcript, and hides its own frames from pytest's traceback
(``__tracebackhide__``), so the report starts in the test.

What each one checks, from what the store and the transcript know:

- *retrieved*: the UIDs of the messages that RETR answered ``+OK`` for, in any
  session since the server started or was reset (``Mailbox.retrieved``). TOP does not
  count, nor does a RETR a fault refused or a hook answered. A RETR whose reply a
  fault cut short still counts: the server had begun sending the message.
- *deleted*: the UIDs removed at UPDATE, after a QUIT (``Mailbox.deleted``), EXPIRE 0
  removals included. A DELE only marks (RFC 1939 section 6): what an open session has
  marked is ``Mailbox.marked_for_deletion``, and it is not deleted.
- *untouched*: nothing retrieved and nothing deleted. Logging in, listing, TOP, and a
  DELE undone by RSET or by a session that ended without QUIT leave a mailbox
  untouched.
- UIDs compare as sets: order and repetitions do not matter.
- Commands compare line by line, their keywords ASCII case-insensitively (RFC 1939
  section 3) and their arguments exactly, as the transcript shows them (``PASS ****``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, NoReturn, Protocol, get_args

from ._lines import ascii_upper
from ._store import Mailbox, MailStore
from .errors import ConfigError, ExpectationError

if TYPE_CHECKING:
    from ._transcript import Transcript

__all__ = ["MATCHES", "MailAssertions", "Match", "command_difference", "fail"]

#: How ``assert_commands`` compares: the whole list, its start, or the expected lines in
#: order with any others between them.
Match = Literal["exact", "subsequence", "prefix"]
MATCHES: tuple[Match, ...] = get_args(Match)


def fail(difference: str, transcript: Transcript | None, shown: str) -> NoReturn:
    """Raise ExpectationError: the difference, then ``shown`` (the transcript, or the
    one session the assertion was about)."""
    __tracebackhide__ = True
    raise ExpectationError(f"{difference}\n\n{shown}", transcript)


# -- commands ---------------------------------------------------------------------------


def _normal(line: str, *, keywords_only: bool) -> str:
    keyword, space, rest = line.partition(" ")
    keyword = ascii_upper(keyword)
    return keyword if keywords_only else keyword + space + rest


def command_difference(
    expected: Sequence[str], actual: Sequence[str], *, match: str, keywords_only: bool
) -> str | None:
    """How ``actual`` client lines differ from ``expected`` under ``match``, or None if
    they agree. The text says what differs, for the start of a failure message."""
    if match not in MATCHES:
        raise ConfigError(f"match must be one of {', '.join(map(repr, MATCHES))}, not {match!r}")
    if isinstance(expected, str) or not all(isinstance(line, str) for line in expected):
        raise TypeError("expected must be a list of command lines, like ['USER alice', 'QUIT']")
    want = [_normal(line, keywords_only=keywords_only) for line in expected]
    got = [_normal(line, keywords_only=keywords_only) for line in actual]
    if match == "exact":
        return None if want == got else "differ from what was expected:\n" + _diff(want, got)
    if match == "prefix":
        start = got[: len(want)]
        if want == start:
            return None
        return "do not start with the expected ones:\n" + _diff(want, start)
    return _not_in_order(want, got)


def _diff(want: list[str], got: list[str]) -> str:
    lines = difflib.unified_diff(want, got, "expected", "actual", lineterm="", n=2)
    return "\n".join(lines)


def _not_in_order(want: list[str], got: list[str]) -> str | None:
    # Each expected line matched to the next equal actual one; the first that has none
    # is the difference.
    position = 0
    for index, line in enumerate(want):
        try:
            position = got.index(line, position) + 1
        except ValueError:
            after = f"after {got[position - 1]!r} (command {position})" if position else ""
            return (
                f"do not contain the expected ones in order: {line!r} (expected {index + 1} "
                f"of {len(want)}) is not among them {after}".rstrip()
                + f"\n  expected: {want}\n  actual:   {got}"
            )
    return None


# -- mailboxes --------------------------------------------------------------------------


class _Serving(Protocol):
    # What the assertions need of a server: Pop3Server and Pop3ServerThread alike.
    @property
    def store(self) -> MailStore: ...
    @property
    def transcript(self) -> Transcript: ...


def _uid_set(uids: Iterable[str]) -> list[str]:
    if isinstance(uids, str):
        raise TypeError(f"uids must be a collection of UIDs, like [{uids!r}], not one str")
    unique = list(dict.fromkeys(uids))
    if not all(isinstance(uid, str) for uid in unique):
        raise TypeError("uids must be str UIDs, as UIDL lists them")
    return unique


def _compare_uids(
    server: _Serving, mailbox: Mailbox, what: str, expected: Iterable[str], actual: Iterable[str]
) -> None:
    __tracebackhide__ = True
    want = _uid_set(expected)
    got = list(dict.fromkeys(actual))
    missing = [uid for uid in want if uid not in got]
    unexpected = [uid for uid in got if uid not in want]
    if not missing and not unexpected:
        return
    known = {message.uid for message in (*mailbox.messages, *mailbox.deleted)}
    lines = [f"{mailbox.user}'s {what} differ from what was expected:"]
    if missing:
        shown = ", ".join(
            repr(uid) if uid in known else f"{uid!r} (no such UID in the mailbox)"
            for uid in missing
        )
        lines.append(f"  missing:    {shown}")
    if unexpected:
        lines.append(f"  unexpected: {', '.join(map(repr, unexpected))}")
    lines += [f"  expected: {sorted(want)}", f"  actual:   {sorted(got)}"]
    fail("\n".join(lines), server.transcript, server.transcript.render())


class MailAssertions:
    """Assertions about what happened to a user's mail, for a server's tests; each
    passes or raises :class:`~fakepop.errors.ExpectationError`. Safe to call from any
    thread while the server runs."""

    def assert_retrieved(self: _Serving, user: str, uids: Iterable[str]) -> None:
        """Assert that the messages RETR sent to ``user``'s clients were exactly
        ``uids``: RETR answered ``+OK`` for each, in any session, and for no other.
        Order and repetitions do not matter; TOP does not count."""
        __tracebackhide__ = True
        mailbox = self.store[user]
        _compare_uids(self, mailbox, "retrieved messages", uids, mailbox.retrieved)

    def assert_deleted(self: _Serving, user: str, uids: Iterable[str]) -> None:
        """Assert that the messages removed from ``user``'s mailbox at UPDATE (after a
        QUIT; EXPIRE 0 removals too) were exactly ``uids``, in whatever order. Marked
        with DELE in a session that has not quit yet is not deleted."""
        __tracebackhide__ = True
        mailbox = self.store[user]
        deleted = [message.uid for message in mailbox.deleted]
        _compare_uids(self, mailbox, "deleted messages", uids, deleted)

    def assert_untouched(self: _Serving, user: str) -> None:
        """Assert that no message of ``user``'s was retrieved (RETR) or deleted (at
        UPDATE). Logging in, listing, TOP, and DELE without a QUIT are allowed."""
        __tracebackhide__ = True
        mailbox = self.store[user]
        retrieved = list(dict.fromkeys(mailbox.retrieved))
        deleted = [message.uid for message in mailbox.deleted]
        if not retrieved and not deleted:
            return
        lines = [f"{user}'s mailbox was expected untouched, but:"]
        if retrieved:
            lines.append(f"  retrieved: {', '.join(map(repr, retrieved))}")
        if deleted:
            lines.append(f"  deleted:   {', '.join(map(repr, deleted))}")
        fail("\n".join(lines), self.transcript, self.transcript.render())
