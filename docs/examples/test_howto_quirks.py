"""Quirks: Gmail hides mail a client already downloaded; Dovecot waits and hangs up."""

import poplib

import pytest
import trio
import trio.testing

from fakepop import Pop3ServerThread, open_pop3_server, profiles

MAIL = ["Subject: 1\n\n1\n", "Subject: 2\n\n2\n"]
MAILBOXES = {"alice": {"password": "secret", "messages": MAIL}}


def fetch_all(server: Pop3ServerThread, user: str) -> int:
    """A client that downloads everything and keeps it on the server (no DELE)."""
    client = poplib.POP3(server.host, server.port, timeout=10)
    try:
        client.user(user)
        client.pass_("secret")
        count = client.stat()[0]
        for number in range(1, count + 1):
            client.retr(number)
        client.quit()
    finally:
        client.close()
    return count


@pytest.mark.pop3(MAILBOXES, profile="gmail")
def test_gmail_offers_downloaded_mail_once(pop3_server: Pop3ServerThread) -> None:
    assert fetch_all(pop3_server, "alice") == 2
    assert fetch_all(pop3_server, "alice") == 0  # "popped": Gmail does not offer it again
    assert fetch_all(pop3_server, "recent:alice") == 2  # recent mode does
    assert len(pop3_server.store["alice"]) == 2  # still in the mailbox


async def read_lines(stream: trio.SocketStream, count: int) -> bytes:
    received = b""
    while received.count(b"\r\n") < count:
        received += await stream.receive_some()
    return received


@pytest.mark.trio  # pytest-trio runs it (not needed where trio_mode = true is set)
async def test_dovecot_makes_a_wrong_password_wait(autojump_clock: trio.testing.MockClock) -> None:
    async with (
        open_pop3_server(MAILBOXES, config=profiles.dovecot()) as server,
        await trio.open_tcp_stream(server.host, server.port) as stream,
    ):
        await read_lines(stream, 1)  # the greeting
        start = trio.current_time()
        await stream.send_all(b"USER alice\r\nPASS wrong\r\n")
        replies = await read_lines(stream, 2)
        assert replies.endswith(b"-ERR [AUTH] Authentication failed.\r\n")
        assert trio.current_time() - start == pytest.approx(2)  # virtual seconds: 2 s
