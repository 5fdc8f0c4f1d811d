"""Markers at several levels: a module's mailboxes with a class's and a test's options."""

import poplib

import pytest

from fakepop import Pop3ServerThread

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}

# Every test of this module gets these mailboxes and this greeting...
pytestmark = pytest.mark.pop3(MAILBOXES, greeting="Module server.")


def greeting_stat_capa(
    server: Pop3ServerThread,
) -> tuple[bytes, tuple[int, int], dict[str, list[str]]]:
    client = poplib.POP3(server.host, server.port, timeout=10)
    try:
        greeting = client.getwelcome()
        capabilities = client.capa()
        client.user("alice")
        client.pass_("secret")
        stat = client.stat()
        client.quit()
    finally:
        client.close()
    return greeting, stat, capabilities


# ... and a closer marker sets only the keys it names: the module's others stay.
@pytest.mark.pop3(expire=0)
def test_a_test_adds_an_option(pop3_server: Pop3ServerThread) -> None:
    greeting, stat, capabilities = greeting_stat_capa(pop3_server)
    assert greeting.startswith(b"+OK Module server.")
    assert stat == (1, 22)  # the module's mailboxes
    assert capabilities["EXPIRE"] == ["0"]


@pytest.mark.pop3(greeting="Class server.")
class TestAClass:
    def test_the_class_is_closer_than_the_module(self, pop3_server: Pop3ServerThread) -> None:
        greeting, stat, _ = greeting_stat_capa(pop3_server)
        assert greeting.startswith(b"+OK Class server.")
        assert stat == (1, 22)

    @pytest.mark.pop3({"alice": "secret"})  # mailboxes replace the module's, whole
    def test_the_function_is_the_closest(self, pop3_server: Pop3ServerThread) -> None:
        greeting, stat, _ = greeting_stat_capa(pop3_server)
        assert greeting.startswith(b"+OK Class server.")
        assert stat == (0, 0)
