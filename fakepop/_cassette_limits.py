"""Model replay's limits and delays: how the recorded server treats errors, read from
what it did after them and when it answered.

Each reply comes judged: the texts entry the engine would use for it, or None (see
``_cassette_model``). From them:

- Bad commands (``max_bad_commands``, ``max_bad_commands_before_login``): counted in
  a row as the engine counts them; before login a command the server does not know or
  does not take there, an empty line and a line too long, AUTH neither counting nor
  breaking the row; after login any ``-ERR``. A session the server hung up on right
  after a bad command gives its count in the row as the limit of that state; a bad
  command the server answered on from says the limit is above its count, so a hang-up
  at that count or below (in another session: the two contradict each other) gives
  nothing. Of hang-ups above every such count, the smallest count wins. The notice the
  server sent before closing, if any, words ``too_many_bad_commands`` (or its
  ``_before_login`` twin); the model's engine always sends one.
- Line length (``max_line_length``, ``max_line_length_before_login``), before and
  after login apart: of the refusals judged to be of lines too long, those with the
  one text whose lines are all longer than every other line (the engine has one limit
  and one text for it; the others were refused for something else). Those lines are
  longer than the limit, every other line is not: the limit is the number the
  refusal's text names, where exactly one lies between those bounds, else one less
  than the shortest refused; with no refusal, the longest line answered, where that is
  over the engine's 255. A limit seen before login only is the limit after it too.
  ``close_on_long_line`` when the server hung up after such a refusal and never
  answered on after one.
- Delays (``failed_login_delay``, ``lock_wait``): how much later than the session's
  other replies (their median) a refused login (``auth_failed``, ``sasl_failed``) or
  an ``[IN-USE]`` refusal came, the median over the recording, to 0.1 s; less than
  0.1 s is no delay. ``close_on_in_use`` when the server hung up after an ``[IN-USE]``
  and never answered on after one.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._cassette_replies import Judged, RecordedReply, RecordedSession, status_words
from ._config import RFC_MIN_LINE_LENGTH
from ._state import State

__all__ = ["BAD_BEFORE_LOGIN", "Limits", "derive_limits"]

#: The refusals before login that count as bad commands (fakepop's
#: ``Pop3Protocol._unusable`` and the line limit): after login, every -ERR does.
BAD_BEFORE_LOGIN = frozenset(
    {"unknown_before_login", "before_login", "empty_command", "line_too_long_before_login"}
)
_TOO_LONG = {False: "line_too_long_before_login", True: "line_too_long"}
_REFUSED_LOGIN = frozenset({"auth_failed", "sasl_failed"})
_RESOLUTION = 0.1  # seconds


@dataclass
class Limits:
    """What the recording shows of the server's limits: ServerConfig options, the
    texts of the notices it hung up with, and the line limit each line-too-long
    refusal names (``{limit}`` in its text)."""

    options: dict[str, Any] = field(default_factory=dict)
    notices: dict[str, list[str]] = field(default_factory=dict)
    line_limits: dict[str, int] = field(default_factory=dict)
    #: Each session's replies judged again: a refusal taken for a line too long that
    #: the recorded lengths do not bear out is not one.
    judged: list[list[Judged]] = field(default_factory=list)


def derive_limits(sessions: Sequence[tuple[RecordedSession, Sequence[Judged]]]) -> Limits:
    """The limits and delays the recorded sessions show (see the module docstring)."""
    limits = Limits()
    too_long = _line_length(sessions, limits)
    # A refusal taken for a line's length that the lengths do not bear out is not one.
    confirmed = [
        (session, [_confirmed(item, too_long) for item in judged]) for session, judged in sessions
    ]
    limits.judged = [judged for _, judged in confirmed]
    _bad_commands(confirmed, limits)
    _delays(confirmed, limits)
    return limits


def _confirmed(item: Judged, too_long: set[int]) -> Judged:
    if item.key in _TOO_LONG.values() and id(item.reply) not in too_long:
        return Judged(item.reply, None)
    return item


def _logged_in(reply: RecordedReply) -> bool:
    return reply.before is State.TRANSACTION


def _hung_up_after(session: RecordedSession, index: int) -> bool:
    return session.hung_up and index == len(session.replies) - 1


# -- bad commands -----------------------------------------------------------------------


def _bad_commands(
    sessions: Sequence[tuple[RecordedSession, Sequence[Judged]]], limits: Limits
) -> None:
    closes: dict[bool, list[tuple[int, str | None]]] = {False: [], True: []}
    above: dict[bool, int] = {False: 0, True: 0}
    for session, judged in sessions:
        run = 0
        for index, (reply, key) in enumerate((j.reply, j.key) for j in judged):
            logged_in = _logged_in(reply)
            if not logged_in and reply.keyword == "AUTH":
                continue  # neither counts nor breaks the row
            bad = reply.negative and (logged_in or key in BAD_BEFORE_LOGIN)
            if not bad:
                run = 0
                continue
            run += 1
            if not _hung_up_after(session, index):
                if index < len(session.replies) - 1:  # answered on: the limit is higher
                    above[logged_in] = max(above[logged_in], run)
            elif key != _TOO_LONG[logged_in]:  # a hang-up for the line is its own rule
                notice = None if reply.notice is None else status_words(reply.notice)
                closes[logged_in].append((run, notice))
    for logged_in, option in ((True, "max_bad_commands"), (False, "max_bad_commands_before_login")):
        counts = [count for count, _ in closes[logged_in] if count > above[logged_in]]
        if not counts:
            continue
        limit = min(counts)
        limits.options[option] = limit
        key = "too_many_bad_commands" + ("" if logged_in else "_before_login")
        for count, notice in closes[logged_in]:
            if count == limit and notice is not None:
                limits.notices.setdefault(key, []).append(notice)


# -- line length ------------------------------------------------------------------------


def _line_length(
    sessions: Sequence[tuple[RecordedSession, Sequence[Judged]]], limits: Limits
) -> set[int]:
    # The limits, and the replies (by id) that were refusals of lines too long.
    lengths: dict[bool, list[tuple[int, Judged, bool | None]]] = {False: [], True: []}
    for session, judged in sessions:
        for index, item in enumerate(judged):
            length = item.reply.length
            if length is None:
                continue
            hung_up = _hung_up_after(session, index)
            went_on = index < len(session.replies) - 1
            lengths[_logged_in(item.reply)].append(
                (length, item, True if hung_up else False if went_on else None)
            )
    too_long: set[int] = set()
    closes: list[bool | None] = []
    found: dict[bool, int | None] = {}
    for logged_in, lines in lengths.items():
        refused = _too_long(lines, _TOO_LONG[logged_in])
        too_long |= {id(item.reply) for _, item, _ in refused}
        closes += [closed for _, _, closed in refused]
        accepted = max((n for n, item, _ in lines if id(item.reply) not in too_long), default=0)
        found[logged_in] = _line_limit(accepted, [(n, item.reply.words) for n, item, _ in refused])
    after, before = found[True], found[False]
    if after is None and before is not None:
        after = before  # one limit, as most servers have, unless the recording says not
    if after is not None:
        limits.options["max_line_length"] = after
        limits.line_limits[_TOO_LONG[True]] = after
    if before is not None and before != after:
        limits.options["max_line_length_before_login"] = before
    login_limit = after if before is None else before  # what the engine fills in
    if login_limit is not None:
        limits.line_limits[_TOO_LONG[False]] = login_limit
    if True in closes and False not in closes:
        limits.options["close_on_long_line"] = True
    return too_long


def _too_long(
    lines: list[tuple[int, Judged, bool | None]], key: str
) -> list[tuple[int, Judged, bool | None]]:
    # The refusals of lines too long: of those judged so, the ones with the one text
    # whose lines are all longer than every other line. The engine's limit is one
    # number, and so is its refusal's text.
    judged = [line for line in lines if line[1].key == key]
    found = []
    for words in {item.reply.words for _, item, _ in judged}:
        group = [line for line in judged if line[1].reply.words == words]
        shortest = min(length for length, _, _ in group)
        others = [n for n, item, _ in lines if (item.key, item.reply.words) != (key, words)]
        if all(n < shortest for n in others):
            found.append(group)
    return found[0] if len(found) == 1 else []


def _line_limit(accepted: int, refused: list[tuple[int, str]]) -> int | None:
    # The limit (octets, CRLF included): at least the longest line answered otherwise,
    # less than the shortest refused, and the one number the refusals name there if
    # they name one. None: the engine's default.
    if not refused:
        return accepted if accepted > RFC_MIN_LINE_LENGTH else None
    low, high = max(accepted, RFC_MIN_LINE_LENGTH), min(length for length, _ in refused) - 1
    named = {
        int(number)
        for _, words in refused
        for number in re.findall(r"(?<![0-9])[0-9]{3,7}(?![0-9])", words)
        if low <= int(number) <= high
    }
    return named.pop() if len(named) == 1 else high


# -- delays -----------------------------------------------------------------------------


def _delays(sessions: Sequence[tuple[RecordedSession, Sequence[Judged]]], limits: Limits) -> None:
    late: dict[str, list[float]] = {"failed_login_delay": [], "lock_wait": []}
    closed, went_on = False, False
    for session, judged in sessions:
        slow = [i for i, j in enumerate(judged) if j.key in _REFUSED_LOGIN or j.key == "in_use"]
        others = [j.reply.took for i, j in enumerate(judged) if i not in slow]
        usual = statistics.median(others) if others else 0.0
        for index in slow:
            item = judged[index]
            option = "lock_wait" if item.key == "in_use" else "failed_login_delay"
            late[option].append(item.reply.took - usual)
            if item.key != "in_use":
                continue
            if _hung_up_after(session, index):
                closed = True
            elif index < len(session.replies) - 1:
                went_on = True
    for option, excess in late.items():
        delay = round(statistics.median(excess), 1) if excess else 0.0
        if delay >= _RESOLUTION:
            limits.options[option] = delay
    if closed and not went_on:
        limits.options["close_on_in_use"] = True
