"""The values faults are made of: the moments they act at, what they know there, and
what happens when one fires.

``fakepop.faults`` builds faults from these and exports the public ones;
``fakepop._fault_engine`` decides with them. Neither is imported here, so the two
never import each other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ._replies import Command, fits_status_line
from .errors import ConfigError

__all__ = [
    "Action",
    "Answer",
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
class Answer:
    """A ``+OK`` reply a hook sends instead of executing the command.

    ``text`` follows ``+OK`` on the status line; with ``lines`` the reply is multi-line
    and these are its lines, each without a line end: the server dot-stuffs them and
    ends the reply with the ``.`` line, so ``Answer(lines=[".x"])`` sends ``..x``.
    ``Answer("2 320")`` answers STAT; ``Answer(lines=["1 a", "2 b"])`` answers UIDL;
    ``Answer(lines=[])`` is an empty listing. The text must fit RFC 1939's 512-octet
    status line and, like every line, holds no CR or LF (ConfigError otherwise);
    characters outside printable ASCII are sent as ``?``, as in every status line.
    """

    text: str = ""
    #: The payload lines (str, sent as UTF-8, or bytes); None for a single-line reply.
    lines: Sequence[str | bytes] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"an Answer's text must be a str, not {type(self.text).__name__}")
        if "\r" in self.text or "\n" in self.text:
            raise ConfigError(f"an Answer's text must hold no CR or LF: {self.text!r}")
        if not fits_status_line(b"+OK", self.text):
            raise ConfigError(
                "an Answer's text must fit the status line: +OK, the text and CRLF in at "
                f"most 512 octets (RFC 1939 section 3), not {len(self.text.encode())} octets"
            )
        if self.lines is None:
            return
        if isinstance(self.lines, (str, bytes)):
            raise TypeError("an Answer's lines must be a list of lines, not one str or bytes")
        lines = tuple(self.lines)
        for line in lines:
            if isinstance(line, bytes):
                text = line.decode("latin-1")
            elif isinstance(line, str):
                text = line
            else:
                raise TypeError(f"an Answer's lines are str or bytes, not {type(line).__name__}")
            if "\r" in text or "\n" in text:
                raise ConfigError(f"an Answer's line must hold no CR or LF: {line!r}")
        # Frozen, and hashable like the other actions: the lines as a tuple.
        object.__setattr__(self, "lines", lines)


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


#: What a fault does when it fires: Close, Delay, Stall or Answer (a hook's), or one of
#: the actions the constructors of ``fakepop.faults`` build (refuse, cut, throttle,
#: slice, rewrite, call a hook). Read it from ``Fault.action``; build faults with the
#: constructors.
Action: TypeAlias = (
    Close | Delay | Stall | Answer | _Refuse | _Cut | _Throttle | _Slice | _Rewrite | _Hook
)
#: What a hook may return: None to let the command through; a ``-ERR ...`` or
#: ``+OK ...`` line, or an Answer (``+OK`` with payload lines), to answer instead; or
#: Close, Delay or Stall.
HookResult: TypeAlias = str | Answer | Close | Delay | Stall | None
