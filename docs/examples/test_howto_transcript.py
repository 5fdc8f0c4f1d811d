"""The transcript: what every session said, for assertions and for failure reports."""

import json
import poplib

import pytest

from fakepop import EndReason, Pop3ServerThread

MAILBOXES = {"alice": {"password": "secret", "messages": {"m1": "Subject: one\n\n1\n"}}}


def read_and_delete(host: str, port: int) -> None:
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        client.uidl()
        client.retr(1)
        client.dele(1)
        client.quit()
    finally:
        client.close()


@pytest.mark.pop3(MAILBOXES)
def test_what_the_client_said(pop3_server: Pop3ServerThread) -> None:
    read_and_delete(pop3_server.host, pop3_server.port)
    pop3_server.wait_idle()
    transcript = pop3_server.transcript

    # Every client line, the password masked; a mismatch fails with a diff.
    transcript.assert_commands(["USER alice", "PASS ****", "UIDL", "RETR 1", "DELE 1", "QUIT"])
    transcript.assert_commands(["USER", "PASS", "UIDL", "RETR", "DELE", "QUIT"], keywords_only=True)
    assert transcript.commands(user="alice", show_secrets=True)[1] == "PASS secret"

    # The status lines that answered a command, and what QUIT removed.
    assert transcript.replies_to("RETR") == ["+OK 19 octets"]
    assert transcript.removed(user="alice") == ["m1"]

    # One SessionRecord per connection.
    (session,) = transcript.sessions_of("alice")
    assert session.ended_by is EndReason.QUIT
    assert session.quit
    assert session.peer == ("127.0.0.1", session.peer[1])  # (host, port) of the client


@pytest.mark.pop3(MAILBOXES)
def test_render_and_json(pop3_server: Pop3ServerThread) -> None:
    read_and_delete(pop3_server.host, pop3_server.port)
    pop3_server.wait_idle()

    text = pop3_server.transcript.render()  # what a failing test's report shows
    assert "C: PASS ****" in text
    assert "secret" not in text
    assert "S: +OK 19 octets   [3 more lines, 22 octets]" in text

    sessions = json.loads(pop3_server.transcript.to_json())
    assert sessions[0]["user"] == "alice"
    assert sessions[0]["ended_by"] == "QUIT"
