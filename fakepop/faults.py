"""Faults: make the server fail the way real servers and networks fail, on purpose.

A fault is a small immutable description: what goes wrong (the constructors below),
where it applies (``.for_user()``, ``.in_session()``, ``.on()``, ``.matching()``) and
how often (``.nth()``, ``.once()``, ``.times()``, ``.always()``, ``.with_probability()``).
Add it to a running server from any thread; every fault that fires is written into
the transcript::

    from fakepop import faults

    # drop the connection after 1000 bytes of the second RETR for alice, once
    server.faults.add(faults.cut_payload(after_bytes=1000).for_user("alice").nth(2).once())
    server.faults.add(faults.error("PASS", code="SYS/TEMP").once())

Faults never corrupt the store: a session they end ends without UPDATE, deletes
nothing and releases its lock. This module only decides; the server carries out the
waiting, writing and closing, on trio's clock (so ``MockClock`` skips the waits).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

from ._protocol import Command, Pop3Protocol, Reply

__all__ = [
    "ArmedFault",
    "Close",
    "Delay",
    "Fault",
    "FaultContext",
    "FaultSet",
    "ReplyPlan",
    "Stage",
    "Stall",
    "auth_failure",
    "bandwidth",
    "bare_lf",
    "changing_uids",
    "close_after",
    "close_before",
    "cut_payload",
    "delay_greeting",
    "error",
    "garbage_line",
    "hook",
    "latency",
    "lock_failure",
    "login_delay",
    "missing_terminator",
    "overlong_line",
    "refuse_connection",
    "slice_replies",
    "stall",
    "unstuffed_dots",
    "wrong_list_size",
]


class Stage(enum.Enum):
    """The moments of a session at which a fault can act."""

    #: A connection was accepted; nothing was sent yet (before the greeting).
    CONNECT = "connect"
    #: A command has arrived and is not executed yet.
    COMMAND = "command"
    #: A login's credentials were found right, and the mailbox is not locked yet: for
    #: every login method (USER/PASS, APOP, each SASL mechanism).
    LOGIN = "login"
    #: A reply is about to be sent (the greeting included).
    REPLY = "reply"


# -- what happens when a fault fires ------------------------------------------------


@dataclass(frozen=True)
class Close:
    """End the connection now (a TCP reset with ``reset=True``)."""

    reset: bool = False


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (plus up to ``jitter``, seeded), then go on as usual."""

    seconds: float
    jitter: float = 0.0


@dataclass(frozen=True)
class Stall:
    """Answer nothing more: keep the connection open until the client gives up."""


@dataclass(frozen=True)
class _Refuse:
    text: str
    code: str | None


@dataclass(frozen=True)
class _Cut:
    after_bytes: int
    reset: bool


@dataclass(frozen=True)
class _Throttle:
    bytes_per_second: float


@dataclass(frozen=True)
class _Slice:
    size: int
    pause: float


@dataclass(frozen=True)
class _Rewrite:
    # Turns the reply's octets into broken ones: (reply octets, context) -> octets.
    rewrite: Callable[[bytes, FaultContext], bytes]


@dataclass(frozen=True)
class _Hook:
    function: Callable[[FaultContext], HookResult]


Action: TypeAlias = Close | Delay | Stall | _Refuse | _Cut | _Throttle | _Slice | _Rewrite | _Hook
#: What a hook may return: None to let the command through, a ``-ERR ...`` line to
#: answer instead, or Close, Delay or Stall.
HookResult: TypeAlias = str | Close | Delay | Stall | None


@dataclass(frozen=True)
class FaultContext:
    """What a fault (or a hook) knows about the moment it may fire."""

    #: 1 for the server's first connection, then 2, 3, ...
    session: int
    #: The logged-in user, or before login the name USER, PASS or APOP is about.
    user: str | None
    #: The command being handled, or None at connection time and for the greeting.
    #: At the login moment, the command that started the login (PASS, APOP or AUTH).
    command: Command | None
    #: At the login moment (``Stage.LOGIN``), how the user logs in: ``"USER"`` (for
    #: USER/PASS), ``"APOP"`` or the SASL mechanism; None at every other moment.
    login_method: str | None = None


@dataclass(frozen=True)
class Fault:
    """One way to fail, where, and how often. Build it with this module's functions."""

    description: str
    stage: Stage
    action: Action
    keywords: frozenset[str] | None = None
    pattern: str | None = None
    user: str | None = None
    session: int | None = None
    first: int = 1  # the first matching moment at which it fires (see nth())
    limit: int | None = None  # None: every time
    probability: float = 1.0
    seed: int = 0

    # -- where ---------------------------------------------------------------------
    def for_user(self, user: str) -> Fault:
        """Only in sessions of ``user`` (before login: the name given to USER/APOP)."""
        return dataclasses.replace(self, user=user)

    def in_session(self, number: int) -> Fault:
        """Only in the server's ``number``-th connection (1 is the first)."""
        _positive(number, "session number")
        return dataclasses.replace(self, session=number)

    def on(self, *keywords: str) -> Fault:
        """Only for these commands (case-insensitive keywords); for a login fault, the
        command that started the login (PASS, APOP, AUTH) or the login method (USER,
        APOP, PLAIN, CRAM-MD5, ...)."""
        if self.stage is Stage.CONNECT:
            raise ValueError(f"{self.description!r} happens before any command")
        return dataclasses.replace(self, keywords=frozenset(k.upper() for k in keywords))

    def matching(self, pattern: str) -> Fault:
        """Only for command lines that match this regular expression (fullmatch)."""
        re.compile(pattern)
        return dataclasses.replace(self, pattern=pattern)

    # -- how often -----------------------------------------------------------------
    def nth(self, occurrence: int) -> Fault:
        """Let the first ``occurrence - 1`` matching moments pass; fire from this one."""
        _positive(occurrence, "occurrence")
        return dataclasses.replace(self, first=occurrence)

    def once(self) -> Fault:
        return dataclasses.replace(self, limit=1)

    def times(self, count: int) -> Fault:
        _positive(count, "count")
        return dataclasses.replace(self, limit=count)

    def always(self) -> Fault:
        return dataclasses.replace(self, limit=None)

    def with_probability(self, probability: float, *, seed: int = 0) -> Fault:
        """Fire at each matching moment with this probability, from a generator
        seeded with ``seed``: the same run of a test fails the same way every time."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, not {probability!r}")
        return dataclasses.replace(self, probability=probability, seed=seed)

    def __str__(self) -> str:
        return self.description


def _positive(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a whole number from 1, not {value!r}")


def _keywords(commands: tuple[str, ...]) -> frozenset[str] | None:
    return frozenset(c.upper() for c in commands) if commands else None


def _named(commands: tuple[str, ...], default: str = "any command") -> str:
    return "/".join(c.upper() for c in commands) if commands else default


# -- connection faults -----------------------------------------------------------------


def refuse_connection(*, reset: bool = False) -> Fault:
    """Close each new connection before the greeting (a TCP reset with ``reset``)."""
    return Fault("refuse the connection", Stage.CONNECT, Close(reset))


def close_before(*commands: str, reset: bool = False) -> Fault:
    """Close the connection when one of ``commands`` arrives, without answering it."""
    how = "reset" if reset else "close"
    return Fault(
        f"{how} before answering {_named(commands)}",
        Stage.COMMAND,
        Close(reset),
        keywords=_keywords(commands),
    )


def close_after(*commands: str, reset: bool = False) -> Fault:
    """Close the connection right after answering one of ``commands``."""
    how = "reset" if reset else "close"
    return Fault(
        f"{how} after answering {_named(commands)}",
        Stage.REPLY,
        Close(reset),
        keywords=_keywords(commands),
    )


def cut_payload(*commands: str, after_bytes: int, reset: bool = False) -> Fault:
    """Send only the first ``after_bytes`` octets of the reply, then close: a drop in
    the middle of a message. By default for RETR and TOP."""
    commands = commands or ("RETR", "TOP")
    if after_bytes < 0:
        raise ValueError(f"after_bytes must be 0 or more, not {after_bytes!r}")
    how = "reset" if reset else "close"
    return Fault(
        f"{how} after {after_bytes} octets of the {_named(commands)} reply",
        Stage.REPLY,
        _Cut(after_bytes, reset),
        keywords=_keywords(commands),
    )


# -- timing faults ---------------------------------------------------------------------


def _seconds(value: float, what: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number of seconds >= 0, not {value!r}")


def delay_greeting(seconds: float) -> Fault:
    """Wait before sending the greeting."""
    _seconds(seconds, "seconds")
    return Fault(f"delay the greeting {seconds} s", Stage.CONNECT, Delay(seconds))


def latency(seconds: float, *, jitter: float = 0.0, seed: int = 0) -> Fault:
    """Wait before every reply (plus a seeded random share of ``jitter``)."""
    _seconds(seconds, "seconds")
    _seconds(jitter, "jitter")
    return Fault(
        f"latency {seconds} s (+ up to {jitter} s)",
        Stage.REPLY,
        Delay(seconds, jitter),
        seed=seed,
    )


def bandwidth(bytes_per_second: float) -> Fault:
    """Send replies no faster than this."""
    if bytes_per_second <= 0:
        raise ValueError("bytes_per_second must be positive")
    return Fault(
        f"bandwidth {bytes_per_second} octets/s", Stage.REPLY, _Throttle(bytes_per_second)
    )


def slice_replies(size: int = 1, *, pause: float = 0.0) -> Fault:
    """Send every reply in writes of ``size`` octets, ``pause`` seconds apart: catches
    clients that take one read for one reply."""
    _positive(size, "size")
    _seconds(pause, "pause")
    return Fault(f"slice replies into {size}-octet writes", Stage.REPLY, _Slice(size, pause))


def stall(*commands: str) -> Fault:
    """Answer nothing from this point on (from the greeting, with no command given),
    keeping the connection open until the client's timeout gives up on it."""
    if not commands:
        return Fault("stall before the greeting", Stage.CONNECT, Stall())
    return Fault(
        f"stall at {_named(commands)}", Stage.COMMAND, Stall(), keywords=_keywords(commands)
    )


# -- protocol faults -------------------------------------------------------------------


def error(*commands: str, code: str | None = None, text: str | None = None) -> Fault:
    """Answer ``-ERR`` (with a response code such as ``SYS/TEMP``) instead of executing
    the command. The session goes on as after a real refusal: a refused PASS needs a
    new USER, a refused QUIT closes without deleting anything."""
    reason = text or ("Temporary system failure" if code == "SYS/TEMP" else "Failure")
    shown = f" [{code}]" if code else ""
    return Fault(
        f"-ERR{shown} to {_named(commands)}",
        Stage.COMMAND,
        _Refuse(reason, code),
        keywords=_keywords(commands),
    )


def _login_refusal(description: str, text: str, code: str) -> Fault:
    # At the login moment, when the credentials were right: that is when a real
    # server says this. Every login method gets there, SASL mechanisms included.
    return Fault(description, Stage.LOGIN, _Refuse(text, code))


def lock_failure() -> Fault:
    """A correct login gets ``-ERR [IN-USE]``, as if another session held the lock."""
    return _login_refusal(
        "lock failure [IN-USE]", "Mailbox is locked by another session", "IN-USE"
    )


def auth_failure() -> Fault:
    """A correct login gets ``-ERR [AUTH]``, as if the password were wrong."""
    return _login_refusal("authentication failure [AUTH]", "Authentication failed", "AUTH")


def login_delay() -> Fault:
    """A correct login gets ``-ERR [LOGIN-DELAY]``: logged in too recently."""
    return _login_refusal(
        "login refused [LOGIN-DELAY]", "Logged in too recently; try later", "LOGIN-DELAY"
    )


def hook(function: Callable[[FaultContext], HookResult], *commands: str) -> Fault:
    """Call ``function(context)`` for each command (or only these); it returns None to
    let the command through, a ``-ERR ...`` line to answer instead, or a Close, Delay or
    Stall. ``once()``, ``times(n)`` and ``nth(k)`` count calls of the hook, whatever it
    returned: ``hook(deliver, "RETR").nth(2).once()`` calls ``deliver`` at the second
    RETR and never again. A hook that raises fails the session like any error inside
    the server."""
    return Fault(
        f"hook {getattr(function, '__name__', 'function')}",
        Stage.COMMAND,
        _Hook(function),
        keywords=_keywords(commands),
    )


# -- malformed replies, as broken servers send them ---------------------------------------


def _rewrite(
    description: str, rewrite: Callable[[bytes, FaultContext], bytes], *commands: str
) -> Fault:
    return Fault(description, Stage.REPLY, _Rewrite(rewrite), keywords=_keywords(commands))


def missing_terminator(*commands: str) -> Fault:
    """Leave out the ``.`` line that ends a multi-line reply (RETR by default)."""
    commands = commands or ("RETR",)

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        return octets[:-3] if octets.endswith(b"\r\n.\r\n") else octets

    return _rewrite(f"no terminating dot after {_named(commands)}", rewrite, *commands)


def unstuffed_dots(*commands: str) -> Fault:
    """Send lines that start with a dot without the extra dot (RETR and TOP by default)."""
    commands = commands or ("RETR", "TOP")

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        status, crlf, payload = octets.partition(b"\r\n")
        first = 1 if payload.startswith(b"..") else 0  # never the lone terminating dot
        return status + crlf + payload.replace(b"\r\n..", b"\r\n.")[first:]

    return _rewrite(f"unstuffed leading dots in {_named(commands)}", rewrite, *commands)


def wrong_list_size(delta: int = 1) -> Fault:
    """LIST reports every size ``delta`` octets off from what RETR sends."""
    line = re.compile(rb"^(\+OK )?(\d+) (\d+)$", re.MULTILINE)

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        def shift(match: re.Match[bytes]) -> bytes:
            size = max(0, int(match.group(3)) + delta)
            return b"%s%s %d" % (match.group(1) or b"", match.group(2), size)

        return line.sub(shift, octets.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")

    return _rewrite(f"LIST sizes off by {delta}", rewrite, "LIST")


def bare_lf(*commands: str) -> Fault:
    """End reply lines with a bare LF instead of CRLF (RETR by default)."""
    commands = commands or ("RETR",)
    return _rewrite(
        f"bare LF line endings in {_named(commands)}",
        lambda octets, context: octets.replace(b"\r\n", b"\n"),
        *commands,
    )


def garbage_line(*commands: str, line: bytes = b"\x00\xff\xfe garbage \x1b[0m") -> Fault:
    """Replace the reply's status line with garbage octets."""

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        return line + b"\r\n" + octets.partition(b"\r\n")[2]

    return _rewrite(f"garbage status line for {_named(commands)}", rewrite, *commands)


def overlong_line(*commands: str, length: int = 4096) -> Fault:
    """Pad the reply's status line to ``length`` octets, far over RFC 1939's 512."""

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        status, _, rest = octets.partition(b"\r\n")
        return status.ljust(length - 2, b"x") + b"\r\n" + rest

    return _rewrite(f"{length}-octet status line for {_named(commands)}", rewrite, *commands)


def changing_uids() -> Fault:
    """UIDL gives every message a different UID in every session."""
    line = re.compile(rb"^(\+OK )?(\d+) (\S+)$", re.MULTILINE)

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        suffix = b".s%d" % context.session

        def change(match: re.Match[bytes]) -> bytes:
            uid = match.group(3) + suffix
            if len(uid) > 70:  # still unique and valid: a digest of the real UID
                uid = hashlib.sha1(match.group(3)).hexdigest().encode() + suffix
            return b"%s%s %s" % (match.group(1) or b"", match.group(2), uid)

        return line.sub(change, octets.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")

    return _rewrite("UIDs that change between sessions", rewrite, "UIDL")


# -- the faults of one server ----------------------------------------------------------


@dataclass
class ArmedFault:
    """A fault added to a server, with its counts. ``remove()`` takes it out."""

    fault: Fault
    #: How many matching moments it has seen, and how many times it fired.
    seen: int = 0
    fired: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _owner: FaultSet | None = field(default=None, repr=False)

    def remove(self) -> None:
        if self._owner is not None:
            self._owner.remove(self)

    def _matches(self, stage: Stage, context: FaultContext) -> bool:
        fault = self.fault
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

    def _due(self) -> bool:
        # Called for a matching moment: counts it, then decides whether to fire.
        fault = self.fault
        self.seen += 1
        if self.seen < fault.first:
            return False
        if fault.limit is not None and self.fired >= fault.limit:
            return False
        return fault.probability >= 1.0 or self._rng.random() < fault.probability

    def _action(self, context: FaultContext) -> Action | None:
        # What firing means now; a hook decides at each moment (None: let the
        # command through). Calling the hook is what counts as firing.
        action = self.fault.action
        if not isinstance(action, _Hook):
            return action
        result = action.function(context)
        if result is None or isinstance(result, (Close, Delay, Stall)):
            return result
        if isinstance(result, str) and result.startswith("-ERR"):
            return _Refuse(result.removeprefix("-ERR").strip(), None)
        raise TypeError(
            f"fault hook {self.fault.description!r} returned {result!r}; it may return "
            "None, a '-ERR ...' line, or faults.Close(), Delay() or Stall()"
        )


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


class FaultSet:
    """The faults of one server; add and remove them from any thread, at any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[ArmedFault] = []

    def add(self, fault: Fault) -> ArmedFault:
        if not isinstance(fault, Fault):
            raise TypeError(
                f"add() takes a Fault, such as fakepop.faults.error('RETR'), "
                f"not {type(fault).__name__}"
            )
        armed = ArmedFault(fault, _rng=random.Random(fault.seed), _owner=self)
        with self._lock:
            self._armed.append(armed)
        return armed

    def remove(self, armed: ArmedFault) -> None:
        with self._lock:
            if armed in self._armed:
                self._armed.remove(armed)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def __iter__(self) -> Iterator[ArmedFault]:
        with self._lock:
            return iter(list(self._armed))

    def __len__(self) -> int:
        return len(self._armed)

    def __bool__(self) -> bool:
        return bool(self._armed)

    def fire(self, stage: Stage, context: FaultContext) -> Iterator[Fired]:
        """The faults that fire at this moment, in the order they were added; lazily,
        so a fault after one that ends the moment is neither counted nor fired."""
        for armed in self:
            if not (armed._matches(stage, context) and armed._due()):
                continue
            armed.fired += 1  # a hook's call counts, whatever it returns
            action = armed._action(context)
            if action is None:
                continue
            jitter = 0.0
            if isinstance(action, Delay) and action.jitter:
                jitter = armed._rng.uniform(0.0, action.jitter)
            yield Fired(armed, action, jitter)


def context_for(
    session: int, protocol: Pop3Protocol, command: Command | None
) -> FaultContext:
    """The FaultContext of a session at a command (or at its start)."""
    if command is None:
        return FaultContext(session, protocol.user, None)
    return FaultContext(session, protocol.login_name(command), command)


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
