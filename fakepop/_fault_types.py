"""The values faults are made of: the moments they act at, what they know there, and
what happens when one fires.

``fakepop.faults`` builds faults from these and exports the public ones;
``fakepop._fault_engine`` decides with them. Neither is imported here, so the two
never import each other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from ._replies import Command

__all__ = [
    "Action",
    "Close",
    "Delay",
    "FaultContext",
    "HookResult",
    "Stage",
    "Stall",
    "_Cut",
    "_Hook",
    "_Refuse",
    "_Rewrite",
    "_Slice",
    "_Throttle",
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


#: What a fault does when it fires: Close, Delay or Stall, or one of the actions the
#: constructors of ``fakepop.faults`` build (refuse, cut, throttle, slice, rewrite,
#: call a hook). Read it from ``Fault.action``; build faults with the constructors.
Action: TypeAlias = Close | Delay | Stall | _Refuse | _Cut | _Throttle | _Slice | _Rewrite | _Hook
#: What a hook may return: None to let the command through, a ``-ERR ...`` line to
#: answer instead, or Close, Delay or Stall.
HookResult: TypeAlias = str | Close | Delay | Stall | None
