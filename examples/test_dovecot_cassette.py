"""A cassette recorded from a real Dovecot 2.3, replayed strictly to poplib.

``examples/cassettes/dovecot-2.3.jsonl`` was made with fakepop's recording proxy in
front of Dovecot (``tests/record_dovecot_cassette.py`` made it); the password in it
is ``****``, so any password replays. Whatever ``fetch_and_delete`` sends must be
what was recorded: send another command, and the test fails naming the line.
"""

from __future__ import annotations

import poplib

import pytest


def fetch_and_delete(host: str, port: int, user: str, password: str) -> list[bytes]:
    """The code under test: fetch every message, then delete them all."""
    client = poplib.POP3(host, port, timeout=10)
    client.user(user)
    client.pass_(password)
    messages = []
    for number in range(1, len(client.list()[1]) + 1):
        messages.append(b"\r\n".join(client.retr(number)[1]))
        client.dele(number)
    client.quit()
    return messages


@pytest.mark.pop3_cassette("cassettes/dovecot-2.3.jsonl")
def test_fetch_against_recorded_dovecot(pop3_cassette_server):
    messages = fetch_and_delete(
        pop3_cassette_server.host, pop3_cassette_server.port, "alice", "any password"
    )
    assert [m.split(b"\r\n")[0] for m in messages] == [b"Subject: first", b"Subject: second"]


@pytest.mark.pop3_cassette("cassettes/dovecot-2.3.jsonl", mode="model", password="pw")
def test_fetch_against_a_model_of_dovecot(pop3_cassette_server):
    # The model serves the same mail with Dovecot's greeting and CAPA, to any client.
    client = poplib.POP3(pop3_cassette_server.host, pop3_cassette_server.port, timeout=10)
    assert client.getwelcome() == b"+OK Dovecot (Debian) ready."
    client.user("alice")
    client.pass_("pw")
    assert client.stat()[0] == 2
    assert client.top(2, 0)[1][0] == b"Subject: second"
    client.quit()
