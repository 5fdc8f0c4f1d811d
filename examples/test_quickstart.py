"""The README's shortest example, kept here so that it is run and stays true."""

import poplib

import pytest


@pytest.mark.pop3({"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}})
def test_fetch(pop3_server):
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    client.user("alice")
    client.pass_("secret")
    assert client.stat() == (1, 22)
    client.dele(1)
    client.quit()
    assert pop3_server.store["alice"].messages == ()
    pop3_server.transcript.assert_commands(["USER alice", "PASS ****", "STAT", "DELE 1", "QUIT"])
