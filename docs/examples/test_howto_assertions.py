"""Assertions: what the client did to the mail, and what it said, in one line each."""

import poplib

import pytest

from fakepop import ExpectationError, Pop3ServerThread

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"m1": "Subject: one\n\n1\n", "m2": "Subject: two\n\n2\n"},
    },
    "bob": "hunter2",
}


def fetch_first_and_delete_it(host: str, port: int) -> None:
    """The code under test."""
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        client.top(2, 0)  # a peek is no retrieval
        client.retr(1)
        client.dele(1)
        client.quit()
    finally:
        client.close()


@pytest.mark.pop3(MAILBOXES)
def test_what_happened_to_the_mail(pop3_server: Pop3ServerThread) -> None:
    fetch_first_and_delete_it(pop3_server.host, pop3_server.port)

    pop3_server.assert_retrieved("alice", ["m1"])  # sent by RETR, in any session
    pop3_server.assert_deleted("alice", ["m1"])  # removed at QUIT
    pop3_server.assert_untouched("bob")

    # A failure says what differs first, then shows the transcript.
    with pytest.raises(ExpectationError) as failure:
        pop3_server.assert_retrieved("alice", ["m1", "m2"])
    assert str(failure.value).startswith(
        "alice's retrieved messages differ from what was expected:\n  missing:    'm2'\n"
    )


@pytest.mark.pop3(MAILBOXES)
def test_what_the_client_said(pop3_server: Pop3ServerThread) -> None:
    fetch_first_and_delete_it(pop3_server.host, pop3_server.port)
    transcript = pop3_server.transcript

    transcript.assert_commands(["USER alice", "PASS ****", "TOP 2 0", "RETR 1", "DELE 1", "QUIT"])
    transcript.assert_commands(["USER alice", "PASS ****"], match="prefix")
    transcript.assert_commands(["RETR 1", "QUIT"], match="subsequence", user="alice")
    transcript.assert_commands(["retr", "dele"], match="subsequence", keywords_only=True)
    transcript.sessions[0].assert_commands(["QUIT"], match="subsequence")  # one session


@pytest.mark.pop3(MAILBOXES)
def test_what_an_open_session_has_marked(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        client.dele(2)
        # Still connected: DELE has marked m2, and nothing is deleted until QUIT.
        assert pop3_server.store["alice"].marked_for_deletion == ("m2",)
        pop3_server.assert_deleted("alice", [])
        client.quit()
    finally:
        client.close()
    pop3_server.assert_deleted("alice", ["m2"])
