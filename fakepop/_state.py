"""The POP3 session's states and every transition between them, in one place.

Everything that changes a session's state is an event named here; the protocol
engine reports events and never assigns a state itself, so this table is the whole
state machine (RFC 1939 section 3, RFC 5034 for AUTHENTICATING):

    AUTHORIZATION --USER accepted------> AWAITING_PASS
    AWAITING_PASS --USER accepted------> AWAITING_PASS   (the login starts again)
    AUTHORIZATION, AWAITING_PASS
                  --SASL challenge-----> AUTHENTICATING  (AUTH, then "+ ..." lines)
    AUTHENTICATING --SASL challenge----> AUTHENTICATING
    AUTHORIZATION, AWAITING_PASS, AUTHENTICATING
                  --SASL ended---------> AUTHORIZATION   (cancelled, failed or done)
    AUTHORIZATION, AWAITING_PASS
                  --login attempted----> AUTHORIZATION   (PASS, APOP, AUTH: checking)
    AUTHORIZATION, AWAITING_PASS
                  --login refused------> AUTHORIZATION   (refused before checking)
    AUTHORIZATION --login accepted-----> TRANSACTION     (mailbox locked)
    AUTHORIZATION, AWAITING_PASS
                  --TLS started--------> AUTHORIZATION   (a half-done login restarts)
    AUTHORIZATION, AWAITING_PASS
                  --QUIT---------------> CLOSED          (nothing deleted)
    TRANSACTION   --QUIT---------------> UPDATE          (marked mail is removed)
    UPDATE        --UPDATE done--------> CLOSED
    any           --connection lost----> CLOSED          (nothing deleted)

A login is checked from AUTHORIZATION: PASS, APOP and AUTH report "login attempted"
as they start checking the secret (it also ends AWAITING_PASS), and "login accepted"
once the mailbox is locked; until then a refusal leaves the session where it is.
``ALLOWED`` says which commands each state accepts; any other gets ``-ERR`` and the
state does not change. An event a state has no transition for is a bug in fakepop,
raised as such.
"""

from __future__ import annotations

import enum

__all__ = ["ALLOWED", "KNOWN", "NO_ARGUMENTS", "State", "next_state"]


class State(enum.Enum):
    """Where a POP3 session is (RFC 1939 section 3)."""

    # Looked up in the transition table at every command: hashed by identity (each
    # state is one object), not by Enum's Python-level hash of its name.
    __hash__ = object.__hash__

    #: Greeted; waiting for USER or APOP.
    AUTHORIZATION = "AUTHORIZATION"
    #: USER was accepted; only PASS (or a new USER, APOP, QUIT, CAPA) may follow.
    AWAITING_PASS = "AWAITING_PASS"
    #: In a SASL exchange after AUTH: each line is a base64 response (or ``*``).
    AUTHENTICATING = "AUTHENTICATING"
    #: Logged in, mailbox locked; mail can be listed, fetched and marked.
    TRANSACTION = "TRANSACTION"
    #: QUIT from TRANSACTION: marked messages are being removed.
    UPDATE = "UPDATE"
    #: The session is over; nothing more is read.
    CLOSED = "CLOSED"


_A, _AP, _AU = State.AUTHORIZATION, State.AWAITING_PASS, State.AUTHENTICATING
_T, _U, _C = State.TRANSACTION, State.UPDATE, State.CLOSED

#: Which commands each state accepts (before the capability switches apply).
ALLOWED: dict[State, frozenset[str]] = {
    _A: frozenset({"USER", "APOP", "AUTH", "QUIT", "CAPA", "STLS", "UTF8", "LANG"}),
    _AP: frozenset({"PASS", "USER", "APOP", "AUTH", "QUIT", "CAPA", "STLS", "LANG"}),
    _T: frozenset(
        {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "QUIT", "CAPA", "LANG"}
    ),
}
#: Every command fakepop knows.
KNOWN = frozenset().union(*ALLOWED.values())
#: Commands that take no argument.
NO_ARGUMENTS = frozenset({"QUIT", "CAPA", "STAT", "NOOP", "RSET", "STLS", "UTF8"})

_BEFORE_LOGIN = {
    "USER accepted": _AP,
    "SASL challenge": _AU,
    "SASL ended": _A,
    "login attempted": _A,
    "login refused": _A,
    "TLS started": _A,
    "QUIT": _C,
}
_TRANSITIONS: dict[State, dict[str, State]] = {
    _A: {**_BEFORE_LOGIN, "login accepted": _T},
    _AP: dict(_BEFORE_LOGIN),
    _AU: {"SASL challenge": _AU, "SASL ended": _A},
    _T: {"QUIT": _U},
    _U: {"UPDATE done": _C},
    _C: {},
}
for _events in _TRANSITIONS.values():
    _events["connection lost"] = _C


def next_state(state: State, event: str) -> State:
    """The state ``event`` leads to from ``state``."""
    try:
        return _TRANSITIONS[state][event]
    except KeyError:
        raise AssertionError(f"fakepop bug: no transition for {event!r} in {state.name}") from None
