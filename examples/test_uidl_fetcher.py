"""The UIDL fetcher against fakepop: new mail only, and nothing twice after a drop."""

import poplib
from pathlib import Path

import pytest

from examples.uidl_fetcher import fetch_new
from fakepop import Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"a": "Subject: A\n\nOne.\n", "b": "Subject: B\n\nTwo.\n"},
    },
}


@pytest.mark.pop3(MAILBOXES)
def test_only_new_mail_is_saved(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    fetch = (pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)
    assert fetch_new(*fetch, state_file=state) == ["a", "b"]
    pop3_server.store.deliver("alice", "Subject: C\n\nThree.\n", uid="c")
    assert fetch_new(*fetch, state_file=state) == ["c"]  # a and b are not fetched again
    pop3_server.wait_idle()
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == ["a.eml", "b.eml", "c.eml"]
    assert len(pop3_server.store["alice"].messages) == 3  # mail stays on the server


@pytest.mark.pop3(MAILBOXES)
def test_a_drop_mid_message_loses_and_duplicates_nothing(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    # RFC 1939 §6: a session that never reaches QUIT deletes nothing.
    pop3_server.faults.add(faults.cut_payload("RETR", after_bytes=5).nth(2).once())
    state = tmp_path / "state.json"
    fetch = (pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        fetch_new(*fetch, state_file=state, delete=True)
    pop3_server.wait_idle()
    assert fetch_new(*fetch, state_file=state, delete=True) == ["b"]
    pop3_server.wait_idle()
    pop3_server.assert_retrieved("alice", ["a", "b"])
    pop3_server.assert_deleted("alice", ["a", "b"])
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == ["a.eml", "b.eml"]
