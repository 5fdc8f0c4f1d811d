"""The pytest fixture: each test gets a server of its own, filled from its marker."""

import poplib

import pytest

from fakepop import Pop3ServerThread

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"invoice-1": "Subject: Invoice 1\n\nPlease pay.\n"},
    },
    "bob": "hunter2",  # a password alone: an empty mailbox
}


def fetch_and_delete(host: str, port: int, user: str, password: str) -> list[bytes]:
    """The code under test: download every message, then delete it."""
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user(user)
        client.pass_(password)
        count, _ = client.stat()
        messages = []
        for number in range(1, count + 1):
            _, lines, _ = client.retr(number)
            messages.append(b"\r\n".join(lines) + b"\r\n")
            client.dele(number)
        client.quit()
    finally:
        client.close()
    return messages


@pytest.mark.pop3(MAILBOXES)
def test_fetch_and_delete(pop3_server: Pop3ServerThread) -> None:
    messages = fetch_and_delete(pop3_server.host, pop3_server.port, "alice", "secret")

    assert messages == [b"Subject: Invoice 1\r\n\r\nPlease pay.\r\n"]
    mailbox = pop3_server.store["alice"]
    assert mailbox.messages == ()  # what is left
    assert [message.uid for message in mailbox.deleted] == ["invoice-1"]


@pytest.mark.pop3(MAILBOXES, expire=0, login_delay=300)  # any ServerConfig option
def test_options_come_from_the_marker(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        capabilities = client.capa()
        client.quit()
    finally:
        client.close()
    assert capabilities["EXPIRE"] == ["0"]
    assert capabilities["LOGIN-DELAY"] == ["300"]


@pytest.mark.pop3(MAILBOXES)
def test_mail_can_arrive_during_the_test(pop3_server: Pop3ServerThread) -> None:
    pop3_server.store.deliver("bob", "Subject: Hello Bob\n\nHi.\n", uid="hello")

    assert fetch_and_delete(pop3_server.host, pop3_server.port, "bob", "hunter2") == [
        b"Subject: Hello Bob\r\n\r\nHi.\r\n"
    ]


def test_one_server_for_the_whole_session(pop3_shared_server: Pop3ServerThread) -> None:
    # Started once per test session and reset before each test: fast for big suites.
    server = pop3_shared_server
    server.store.add_user("carol", "pw", ["Subject: shared\n\nx\n"])

    assert len(fetch_and_delete(server.host, server.port, "carol", "pw")) == 1
