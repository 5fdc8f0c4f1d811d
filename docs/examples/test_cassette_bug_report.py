import poplib
from pathlib import Path

import pytest

import fakepop

# The cassette attached to the bug report, checked in with the test.
CASSETTE = Path(__file__).parent.parent.parent / "examples/cassettes/dovecot-2.3.jsonl"


def import_mail(host, port):
    """The code under test, fixed: it read the count from LIST's status line, which
    this server words "+OK 2 messages:", and now counts the listing's lines."""
    client = poplib.POP3(host, port, timeout=10)
    client.user("alice")
    client.pass_("the reporter's password is not in the cassette")
    messages = []
    for number in range(1, len(client.list()[1]) + 1):
        messages.append(client.retr(number)[1])
        client.dele(number)
    client.quit()
    return messages


def test_import_mail_against_the_reporters_server():
    with fakepop.serve_in_thread(fakepop.CassetteServer(CASSETTE)) as server:
        messages = import_mail(server.host, server.port)
    assert [m[0] for m in messages] == [b"Subject: first", b"Subject: second"]


def stray(host, port):
    client = poplib.POP3(host, port, timeout=10)
    client.user("alice")
    client.pass_("pw")
    client.list()
    with pytest.raises(poplib.error_proto, match="fakepop cassette replay"):
        client.stat()  # not what was recorded: -ERR, and the deviation is kept
    client.close()


def test_a_client_that_strays_from_the_recording_fails():
    server = fakepop.CassetteServer(CASSETTE)
    expected = r"expected the client to send b'RETR 1\\r\\n', got b'STAT\\r\\n'"
    with pytest.raises(fakepop.ServerError, match=expected), fakepop.serve_in_thread(server):
        stray(server.host, server.port)
