"""The fault engine: which armed faults fire at a moment of a session, and how the
server sends a reply after the faults that fired at it.

``fakepop.faults`` only describes faults; the session asks this module at each moment
(connection, command, login, reply) and carries out what it answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from ._fault_types import (
    Action,
    Answer,
    Close,
    Delay,
    FaultContext,
    Stage,
    Stall,
    _Cut,
    _Hook,
    _Refuse,
    _Rewrite,
    _Slice,
    _Throttle,
)
from ._message import dot_stuff
from ._protocol import Pop3Protocol
from ._replies import Command, Reply, multiline, ok
from .faults import ArmedFault, FaultSet

__all__ = [
    "Fired",
    "LoginFaults",
    "ReplyPlan",
    "answer_reply",
    "context_for",
    "fire",
    "plan_reply",
]


# -- which faults fire ------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    """A fault firing at a moment: what the server must do."""

    armed: ArmedFault
    action: Action
    jitter: float = 0.0  # the seeded share of a Delay's jitter, drawn when it fired

    @property
    def refusal(self) -> tuple[str, str | None] | None:
        """(text, response code) if this fault answers -ERR instead of the command."""
        if isinstance(self.action, _Refuse):
            return self.action.text, self.action.code
        return None

    @property
    def answer(self) -> Reply | None:
        """The ``+OK`` reply this fault sends instead of the command, if it answers one."""
        if isinstance(self.action, Answer):
            return answer_reply(self.action)
        return None


def answer_reply(answer: Answer) -> Reply:
    """The reply an Answer stands for: its status line, and for a multi-line answer
    its lines dot-stuffed and ended by the ``.`` line (RFC 1939 section 3), so that no
    hook can send a payload the client would misread."""
    if answer.lines is None:
        return ok(answer.text)
    wire = b"".join(
        (line.encode() if isinstance(line, str) else line) + b"\r\n" for line in answer.lines
    )
    return multiline(answer.text, dot_stuff(wire), len(answer.lines))


def fire(faults: FaultSet, stage: Stage, context: FaultContext) -> Iterator[Fired]:
    """The faults of ``faults`` that fire at this moment, in the order they were added;
    lazily, so a fault after one that ends the moment is neither counted nor fired."""
    for armed in faults:
        if not (_matches(armed, stage, context) and _due(armed)):
            continue
        armed.fired += 1  # a hook's call counts, whatever it returns
        action = _action(armed, context)
        if action is None:
            continue
        jitter = 0.0
        if isinstance(action, Delay) and action.jitter:
            jitter = armed._rng.uniform(0.0, action.jitter)
        yield Fired(armed, action, jitter)


def _matches(armed: ArmedFault, stage: Stage, context: FaultContext) -> bool:
    fault = armed.fault
    if fault.stage is not stage:
        return False
    if fault.session is not None and context.session != fault.session:
        return False
    if fault.user is not None and context.user != fault.user:
        return False
    command = context.command
    keywords = fault.keywords
    if keywords is not None and (
        command is None
        or (command.keyword not in keywords and context.login_method not in keywords)
    ):
        return False
    return fault.pattern is None or (
        command is not None
        and re.fullmatch(fault.pattern, command.line.decode("utf-8", "replace")) is not None
    )


def _due(armed: ArmedFault) -> bool:
    # Called for a matching moment: counts it, then decides whether to fire.
    fault = armed.fault
    armed.seen += 1
    if armed.seen < fault.first:
        return False
    if fault.limit is not None and armed.fired >= fault.limit:
        return False
    return fault.probability >= 1.0 or armed._rng.random() < fault.probability


def _action(armed: ArmedFault, context: FaultContext) -> Action | None:
    # What firing means now; a hook decides at each moment (None: let the
    # command through). Calling the hook is what counts as firing.
    action = armed.fault.action
    if not isinstance(action, _Hook):
        return action
    result = action.function(context)
    if result is None or isinstance(result, (Close, Delay, Stall, Answer)):
        return result
    if isinstance(result, str) and result.startswith("-ERR"):
        return _Refuse(result.removeprefix("-ERR").strip(), None)
    if isinstance(result, str) and (result == "+OK" or result.startswith("+OK ")):
        return Answer(result.removeprefix("+OK").removeprefix(" "))  # checked as any Answer
    raise TypeError(
        f"fault hook {armed.fault.description!r} returned {result!r}; it may return "
        "None, a '-ERR ...' or '+OK ...' line, or faults.Answer(), Close(), Delay() "
        "or Stall()"
    )


def context_for(session: int, protocol: Pop3Protocol, command: Command | None) -> FaultContext:
    """The FaultContext of a session at a command (or at its start)."""
    if command is None:
        return FaultContext(session, protocol.user, None)
    return FaultContext(session, protocol.login_name(command), command)


# -- how a reply goes out ---------------------------------------------------------------


@dataclass(frozen=True)
class ReplyPlan:
    """How the server sends a reply after the faults that fired at it: wait ``delay``,
    write ``octets`` in pieces of ``chunk`` octets (all at once if None), pausing
    ``pause`` after each and keeping under ``bytes_per_second``, then, if ``close``
    says so, end the connection."""

    octets: bytes
    delay: float = 0.0
    chunk: int | None = None
    pause: float = 0.0
    bytes_per_second: float | None = None
    close: Close | None = None

    def pause_after(self, written: int) -> float:
        """Seconds to wait after writing ``written`` octets."""
        if self.bytes_per_second is None:
            return self.pause
        return max(self.pause, written / self.bytes_per_second)


def plan_reply(reply: Reply, fired: list[Fired], context: FaultContext) -> ReplyPlan:
    """Turn the reply-stage faults that fired into one plan for sending the reply."""
    octets = bytes(reply)
    delay = 0.0
    chunk: int | None = None
    pause = 0.0
    bytes_per_second: float | None = None
    close: Close | None = None
    for item in fired:
        action = item.action
        if isinstance(action, _Rewrite):
            octets = action.rewrite(octets, context)
        elif isinstance(action, Delay):
            delay += action.seconds + item.jitter
        elif isinstance(action, _Slice):
            chunk, pause = action.size, action.pause
        elif isinstance(action, _Throttle):
            bytes_per_second = action.bytes_per_second
        elif isinstance(action, Close) and close is None:
            close = action
    for item in fired:  # a cut applies to the octets as the rewrites left them
        if isinstance(item.action, _Cut):
            octets = octets[: item.action.after_bytes]
            close = close or Close(item.action.reset)
            break
    if bytes_per_second is not None and chunk is None:
        # A tenth of a second's worth per write under a bandwidth limit.
        chunk = max(1, int(bytes_per_second / 10))
    return ReplyPlan(octets, delay, chunk, pause, bytes_per_second, close)


class _Events(Protocol):
    # What the login gate records: the faults that fire (a session's recorder).
    def event(self, text: str) -> None: ...


class LoginFaults:
    """The protocol's login gate: the faults that fire at a login whose credentials
    were right. Not a method of the Session, which keeps the protocol: the protocol
    keeping the Session in turn would make every session a reference cycle, freed only
    by the cyclic garbage collector."""

    __slots__ = ("_faults", "_number", "_recorder")

    def __init__(self, faults: FaultSet, number: int, recorder: _Events) -> None:
        self._faults = faults
        self._number = number
        self._recorder = recorder

    def __call__(self, user: str, method: str, command: Command) -> tuple[str, str | None] | None:
        if not self._faults:
            return None
        context = FaultContext(self._number, user, command, method)
        for fired in fire(self._faults, Stage.LOGIN, context):
            self._recorder.event(f"fault: {fired.armed.fault}")
            if fired.refusal is not None:
                return fired.refusal
        return None
