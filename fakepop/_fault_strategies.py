"""A hypothesis strategy for fault plans: a few faults of ``fakepop.faults``, each
with where and how often it strikes, armed on a server with one call.
``fakepop.strategies`` exports it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

from hypothesis import strategies as st

from . import faults
from .errors import ConfigError
from .faults import ArmedFault, Fault, FaultSet

__all__ = ["FAULT_KINDS", "SURVIVABLE_FAULT_KINDS", "FaultPlan", "fault_plans"]

#: The kinds of fault a correct client survives, given another try: the connection
#: refused, closed or reset at any moment (in the middle of a message too), a
#: temporary ``-ERR`` to any command, a login refused with ``[IN-USE]`` or
#: ``[LOGIN-DELAY]``, replies that are slow or come in pieces, a garbled or over-long
#: status line, bare LF line endings. ``fault_plans()`` draws these by default.
SURVIVABLE_FAULT_KINDS = (
    "cut_payload",
    "close_before",
    "close_after",
    "refuse_connection",
    "error",
    "lock_failure",
    "login_too_soon",
    "latency",
    "delay_greeting",
    "slice_replies",
    "garbage_line",
    "overlong_line",
    "bare_lf",
)
#: Every kind ``fault_plans(kinds=...)`` knows: the survivable ones, and those a
#: client cannot get past by trying again or that only its timeout ends: a refused
#: correct password, a server that stops answering, a multi-line reply without its
#: terminating dot, lines left unstuffed, UIDs that change between sessions, LIST
#: sizes that lie, a throttled connection.
FAULT_KINDS = (
    *SURVIVABLE_FAULT_KINDS,
    "auth_failure",
    "stall",
    "missing_terminator",
    "unstuffed_dots",
    "changing_uids",
    "wrong_list_size",
    "bandwidth",
)
# The commands an importer sends, for the faults that take commands.
_COMMANDS = ("RETR", "DELE", "QUIT", "UIDL", "LIST", "STAT", "USER", "PASS", "TOP", "CAPA")
_RETRIEVALS = ("RETR", "TOP")
# One in four: the less usual scopes.
_RARELY = st.sampled_from((False, False, False, True))
# Faults that strike when a connection opens, before anyone has logged in.
_AT_CONNECT = ("refuse_connection", "delay_greeting")


@dataclass(frozen=True)
class FaultPlan:
    """Faults to arm together: ``plan.arm(server.faults)`` adds them all.

    Its ``repr`` is Python that builds the same plan, so a falsifying example that
    hypothesis prints can be pasted into ``@example``.
    """

    #: The faults, in the order they are armed.
    faults: tuple[Fault, ...] = ()
    # How each fault was built, as the code that builds it (for repr).
    code: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def arm(self, target: FaultSet) -> list[ArmedFault]:
        """Add every fault to ``target`` (a server's ``faults``); return them armed."""
        return [target.add(fault) for fault in self.faults]

    def __iter__(self) -> Iterator[Fault]:
        return iter(self.faults)

    def __len__(self) -> int:
        return len(self.faults)

    def __str__(self) -> str:
        return "; ".join(str(fault) for fault in self.faults) or "no faults"

    def __repr__(self) -> str:
        if len(self.code) != len(self.faults):
            return f"FaultPlan({self.faults!r})"
        inner = "".join(f"{code}, " for code in self.code).rstrip(" ")
        return f"FaultPlan(({inner}))"


# A call: the name of a function or method, its arguments and keyword arguments.
_Step = tuple[str, tuple[object, ...], dict[str, object]]


def _step(name: str, *args: object, **kwargs: object) -> _Step:
    return name, args, kwargs


def _call_code(name: str, args: Sequence[object], kwargs: dict[str, object]) -> str:
    shown = [repr(arg) for arg in args] + [f"{key}={value!r}" for key, value in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _built(
    kind: str,
    args: tuple[object, ...],
    kwargs: dict[str, object],
    scopes: list[_Step],
) -> tuple[Fault, str]:
    # The fault and the code that builds it, from the same values.
    fault: Fault = getattr(faults, kind)(*args, **kwargs)
    code = "faults." + _call_code(kind, args, kwargs)
    for method, method_args, method_kwargs in scopes:
        fault = getattr(fault, method)(*method_args, **method_kwargs)
        code += "." + _call_code(method, method_args, method_kwargs)
    return fault, code


def fault_plans(
    *,
    kinds: Collection[str] = SURVIVABLE_FAULT_KINDS,
    users: Sequence[str] = (),
    min_faults: int = 0,
    max_faults: int = 3,
    max_times: int = 2,
    max_delay: float = 0.05,
    max_session: int = 3,
) -> st.SearchStrategy[FaultPlan]:
    """Plans of ``min_faults`` to ``max_faults`` faults of ``kinds`` (names of
    :data:`FAULT_KINDS`; by default :data:`SURVIVABLE_FAULT_KINDS`), to arm with
    ``plan.arm(server.faults)``.

    Each fault strikes at a drawn moment: the k-th matching command (``nth``), the
    commands it applies to, a cut after any number of octets of a reply, and, if
    ``users`` are given, sometimes only for one of them or in one session up to
    ``max_session``. Each strikes at most ``max_times`` times, so a client that tries
    again often enough gets through: a property test can assert that whatever fails,
    the code under test never loses nor duplicates a message and imports everything
    in the end. Waits (latency, a delayed greeting) are at most ``max_delay`` seconds,
    on the server's clock.
    """
    chosen = set(kinds) if not isinstance(kinds, str) else {kinds}
    unknown = chosen - set(FAULT_KINDS)
    if unknown or not chosen:
        raise ConfigError(
            f"kinds must name faults of {list(FAULT_KINDS)}, not {sorted(unknown) or 'none'}"
        )
    for name, value in (
        ("min_faults", min_faults),
        ("max_faults", max_faults),
        ("max_times", max_times),
        ("max_session", max_session),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a whole number from 0, not {value!r}")
    if max_times < 1 or max_session < 1:
        raise ConfigError("max_times and max_session must be at least 1")
    if not max_delay >= 0:
        raise ConfigError(f"max_delay must be 0 or more seconds, not {max_delay!r}")
    limits = _Limits(
        tuple(kind for kind in FAULT_KINDS if kind in chosen),
        tuple(users),
        max_times,
        float(max_delay),
        max_session,
    )
    one = _one_fault(limits)
    return st.lists(one, min_size=min_faults, max_size=max_faults).map(
        lambda built: FaultPlan(
            tuple(fault for fault, _ in built), tuple(code for _, code in built)
        )
    )


@dataclass(frozen=True)
class _Limits:
    kinds: tuple[str, ...]
    users: tuple[str, ...]
    max_times: int
    max_delay: float
    max_session: int


@st.composite
def _one_fault(draw: st.DrawFn, limits: _Limits) -> tuple[Fault, str]:
    kind = draw(st.sampled_from(limits.kinds))
    args, kwargs = _arguments(draw, kind, limits.max_delay)
    scopes: list[_Step] = []
    if limits.users != () and kind not in _AT_CONNECT and draw(st.booleans()):
        scopes.append(_step("for_user", draw(st.sampled_from(limits.users))))
    # Now and then only in one session, or from a later moment on: most faults strike
    # at the first matching moment, as most real failures a client meets in a run.
    if draw(_RARELY):
        scopes.append(_step("in_session", draw(st.integers(1, limits.max_session))))
    if draw(st.booleans()):
        scopes.append(_step("nth", draw(st.integers(2, 5))))
    times = draw(st.integers(1, limits.max_times))
    scopes.append(_step("once") if times == 1 else _step("times", times))
    return _built(kind, args, kwargs, scopes)


def _commands(draw: st.DrawFn, choices: tuple[str, ...] = _COMMANDS) -> tuple[str, ...]:
    # Mostly one command: a fault on two fires at the earlier one, so it reaches the
    # later one (QUIT, say) only if something else ended the session first.
    first = draw(st.sampled_from(choices))
    if not draw(_RARELY):
        return (first,)
    return (first, draw(st.sampled_from([c for c in choices if c != first])))


def _arguments(
    draw: st.DrawFn, kind: str, max_delay: float
) -> tuple[tuple[object, ...], dict[str, object]]:
    # The constructor's arguments for a fault of this kind, drawn.
    seconds = st.floats(0.0, max_delay, allow_nan=False)
    if kind == "cut_payload":
        commands = _commands(draw, (*_RETRIEVALS, "UIDL", "LIST"))
        # Small cuts land in the status line; 4096 +/- 1 at a typical buffer size.
        after = draw(
            st.one_of(
                st.integers(0, 64), st.sampled_from((4095, 4096, 4097)), st.integers(0, 100_000)
            )
        )
        return commands, {"after_bytes": after, "reset": draw(st.booleans())}
    if kind in ("close_before", "close_after"):
        return _commands(draw), {"reset": draw(st.booleans())}
    if kind == "refuse_connection":
        return (), {"reset": draw(st.booleans())}
    if kind == "error":
        return _commands(draw), {"code": draw(st.sampled_from((None, "SYS/TEMP")))}
    if kind == "latency":
        return (draw(seconds),), {"jitter": draw(seconds), "seed": draw(st.integers(0, 2**16))}
    if kind == "delay_greeting":
        return (draw(seconds),), {}
    if kind == "slice_replies":
        return (), {"size": draw(st.sampled_from((512, 1, 2, 3, 7, 64, 4096)))}
    if kind in ("garbage_line", "overlong_line", "stall"):
        return _commands(draw), {}
    if kind in ("bare_lf", "missing_terminator"):
        return ("RETR",), {}
    if kind == "unstuffed_dots":
        return _RETRIEVALS, {}
    if kind == "wrong_list_size":
        return (), {"delta": draw(st.sampled_from((1, -1, 100)))}
    if kind == "bandwidth":
        return (draw(st.sampled_from((1_000_000.0, 100_000.0))),), {}
    return (), {}  # lock_failure, login_too_soon, auth_failure, changing_uids
