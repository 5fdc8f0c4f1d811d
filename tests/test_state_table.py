"""The session's state machine is one table (fakepop/_state.py): every event the
engine reports has a transition there, and nothing else changes a state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import fakepop._authorization
import fakepop._protocol
import fakepop._transaction
from fakepop import State
from fakepop._state import next_state

# The engine and the command handlers it inherits.
SOURCE = "\n".join(
    Path(module.__file__ or "").read_text(encoding="utf-8")
    for module in (fakepop._protocol, fakepop._authorization, fakepop._transaction)
)
EVENTS = set(re.findall(r'self\._enter\("([^"]+)"\)', SOURCE))


def test_the_engine_assigns_a_state_only_through_the_table() -> None:
    assignments = re.findall(r"self\.state = (.*)", SOURCE)
    assert assignments == ["State.AUTHORIZATION", "next_state(self.state, event)"]
    assert len(EVENTS) >= 10


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_every_reported_event_has_a_transition(event: str) -> None:
    assert any(_leads_somewhere(state, event) for state in State), event


def _leads_somewhere(state: State, event: str) -> bool:
    try:
        next_state(state, event)
    except AssertionError:
        return False
    return True


def test_the_rfc_1939_transitions() -> None:
    """RFC 1939 §3-§6: QUIT closes before login, enters UPDATE after it; a dropped
    connection closes from anywhere, never through UPDATE."""
    assert next_state(State.AUTHORIZATION, "QUIT") is State.CLOSED
    assert next_state(State.TRANSACTION, "QUIT") is State.UPDATE
    assert next_state(State.UPDATE, "UPDATE done") is State.CLOSED
    for state in State:
        assert next_state(state, "connection lost") is State.CLOSED
    assert next_state(State.AWAITING_PASS, "TLS started") is State.AUTHORIZATION
    with pytest.raises(AssertionError, match="no transition for 'login accepted' in"):
        next_state(State.TRANSACTION, "login accepted")
