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

The constructors share one argument order: a value the fault cannot do without comes
first (``latency(seconds)``, ``bandwidth(bytes_per_second)``, ``hook(function)``),
then the commands it applies to as ``*commands`` (each constructor says which it
takes when given none), then options, always by keyword (``reset=``, ``code=``,
``after_bytes=``, ``delta=``, ``length=``, ``line=``, ``pause=``, ...).

Faults never corrupt the store: a session they end ends without UPDATE, deletes
nothing and releases its lock. This module only describes; the server decides when a
fault fires and carries out the waiting, writing and closing, on trio's clock (so
``MockClock`` skips the waits).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from . import _fault_rewrites as _rewrites
from ._fault_types import (
    Action,
    Answer,
    Close,
    Delay,
    FaultContext,
    HookResult,
    Stage,
    Stall,
    _Cut,
    _Hook,
    _Refuse,
    _Rewrite,
    _Slice,
    _Throttle,
)
from ._replies import Command
from .errors import ConfigError

__all__ = [
    "Action",
    "Answer",
    "ArmedFault",
    "Close",
    "Command",
    "Delay",
    "Fault",
    "FaultContext",
    "FaultSet",
    "HookResult",
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
    "login_too_soon",
    "missing_terminator",
    "overlong_line",
    "refuse_connection",
    "slice_replies",
    "stall",
    "unstuffed_dots",
    "wrong_list_size",
]


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
            raise ConfigError(f"{self.description!r} happens before any command")
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
            raise ConfigError(f"probability must be between 0 and 1, not {probability!r}")
        return dataclasses.replace(self, probability=probability, seed=seed)

    def __str__(self) -> str:
        return self.description


def _positive(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a whole number from 1, not {value!r}")


def _keywords(commands: tuple[str, ...]) -> frozenset[str] | None:
    return frozenset(c.upper() for c in commands) if commands else None


def _at(commands: tuple[str, ...], description: str, stage: Stage, action: Action) -> Fault:
    # A fault for these commands (any command if none).
    return Fault(description, stage, action, keywords=_keywords(commands))


def _named(commands: tuple[str, ...], default: str = "any command") -> str:
    return "/".join(c.upper() for c in commands) if commands else default


# -- connection faults -----------------------------------------------------------------


def refuse_connection(*, reset: bool = False) -> Fault:
    """Close each new connection before the greeting (a TCP reset with ``reset``)."""
    return Fault("refuse the connection", Stage.CONNECT, Close(reset))


def close_before(*commands: str, reset: bool = False) -> Fault:
    """Close the connection when one of ``commands`` arrives, without answering it."""
    how = "reset" if reset else "close"
    return _at(commands, f"{how} before answering {_named(commands)}", Stage.COMMAND, Close(reset))


def close_after(*commands: str, reset: bool = False) -> Fault:
    """Close the connection right after answering one of ``commands``."""
    how = "reset" if reset else "close"
    return _at(commands, f"{how} after answering {_named(commands)}", Stage.REPLY, Close(reset))


def cut_payload(*commands: str, after_bytes: int, reset: bool = False) -> Fault:
    """Send only the first ``after_bytes`` octets of the reply, then close: a drop in
    the middle of a message. By default for RETR and TOP."""
    commands = commands or ("RETR", "TOP")
    if after_bytes < 0:
        raise ConfigError(f"after_bytes must be 0 or more, not {after_bytes!r}")
    how = "reset" if reset else "close"
    description = f"{how} after {after_bytes} octets of the {_named(commands)} reply"
    return _at(commands, description, Stage.REPLY, _Cut(after_bytes, reset))


# -- timing faults ---------------------------------------------------------------------


def _seconds(value: float, what: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{what} must be a finite number of seconds >= 0, not {value!r}")


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
        raise ConfigError("bytes_per_second must be positive")
    return Fault(f"bandwidth {bytes_per_second} octets/s", Stage.REPLY, _Throttle(bytes_per_second))


def slice_replies(*, size: int = 1, pause: float = 0.0) -> Fault:
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
    return _at(commands, f"stall at {_named(commands)}", Stage.COMMAND, Stall())


# -- protocol faults -------------------------------------------------------------------


def error(*commands: str, code: str | None = None, text: str | None = None) -> Fault:
    """Answer ``-ERR`` (with a response code such as ``SYS/TEMP``) instead of executing
    the command. The session goes on as after a real refusal: a refused PASS needs a
    new USER, a refused QUIT closes without deleting anything."""
    reason = text or ("Temporary system failure" if code == "SYS/TEMP" else "Failure")
    shown = f" [{code}]" if code else ""
    return _at(commands, f"-ERR{shown} to {_named(commands)}", Stage.COMMAND, _Refuse(reason, code))


def _login_refusal(description: str, text: str, code: str) -> Fault:
    # At the login moment, when the credentials were right: that is when a real
    # server says this. Every login method gets there, SASL mechanisms included.
    return Fault(description, Stage.LOGIN, _Refuse(text, code))


def lock_failure() -> Fault:
    """A correct login gets ``-ERR [IN-USE]``, as if another session held the lock."""
    return _login_refusal("lock failure [IN-USE]", "Mailbox is locked by another session", "IN-USE")


def auth_failure() -> Fault:
    """A correct login gets ``-ERR [AUTH]``, as if the password were wrong."""
    return _login_refusal("authentication failure [AUTH]", "Authentication failed", "AUTH")


def login_too_soon() -> Fault:
    """A correct login gets ``-ERR [LOGIN-DELAY]``: logged in too recently."""
    return _login_refusal(
        "login refused [LOGIN-DELAY]", "Logged in too recently; try later", "LOGIN-DELAY"
    )


def hook(function: Callable[[FaultContext], HookResult], *commands: str) -> Fault:
    """Call ``function(context)`` for each command (or only for ``commands``); it
    returns None to let the command through, a Close, Delay or Stall, or a reply to
    send instead of executing the command: a ``-ERR ...`` line, a ``+OK ...`` line, or
    an :class:`Answer` (a ``+OK`` with payload lines, which the server dot-stuffs and
    ends with the ``.`` line). The reply replaces the command: the command does not
    run, whatever the reply says (an answered RETR marks nothing retrieved, an
    answered PASS logs nobody in, an answered QUIT closes without deleting anything).

    The function comes first, before the commands, because a hook cannot do without
    it. ``once()``, ``times(n)`` and ``nth(k)`` count calls of the hook, whatever it
    returned: ``hook(deliver, "RETR").nth(2).once()`` calls ``deliver`` at the second
    RETR and never again. A hook that raises, or returns anything else, fails the
    session like any error inside the server."""
    name = getattr(function, "__name__", "function")
    return _at(commands, f"hook {name}", Stage.COMMAND, _Hook(function))


# -- malformed replies, as broken servers send them ---------------------------------------


def _rewrite(description: str, rewrite: _rewrites.Rewrite, *commands: str) -> Fault:
    return _at(commands, description, Stage.REPLY, _Rewrite(rewrite))


def missing_terminator(*commands: str) -> Fault:
    """Leave out the ``.`` line that ends a multi-line reply (RETR by default)."""
    commands = commands or ("RETR",)
    return _rewrite(
        f"no terminating dot after {_named(commands)}", _rewrites.missing_terminator, *commands
    )


def unstuffed_dots(*commands: str) -> Fault:
    """Send lines that start with a dot without the extra dot (RETR and TOP by default)."""
    commands = commands or ("RETR", "TOP")
    return _rewrite(
        f"unstuffed leading dots in {_named(commands)}", _rewrites.unstuffed_dots, *commands
    )


def wrong_list_size(*, delta: int = 1) -> Fault:
    """LIST reports every size ``delta`` octets off from what RETR sends."""
    return _rewrite(f"LIST sizes off by {delta}", _rewrites.shifted_list_sizes(delta), "LIST")


def bare_lf(*commands: str) -> Fault:
    """End reply lines with a bare LF instead of CRLF (RETR by default)."""
    commands = commands or ("RETR",)
    return _rewrite(f"bare LF line endings in {_named(commands)}", _rewrites.bare_lf, *commands)


def garbage_line(*commands: str, line: bytes = b"\x00\xff\xfe garbage \x1b[0m") -> Fault:
    """Replace the reply's status line with garbage octets."""
    return _rewrite(
        f"garbage status line for {_named(commands)}", _rewrites.garbage_status(line), *commands
    )


def overlong_line(*commands: str, length: int = 4096) -> Fault:
    """Pad the reply's status line to ``length`` octets, far over RFC 1939's 512."""
    return _rewrite(
        f"{length}-octet status line for {_named(commands)}",
        _rewrites.overlong_status(length),
        *commands,
    )


def changing_uids() -> Fault:
    """UIDL gives every message a different UID in every session."""
    return _rewrite("UIDs that change between sessions", _rewrites.changing_uids, "UIDL")


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
