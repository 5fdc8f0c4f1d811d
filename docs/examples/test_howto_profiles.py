"""Profiles: a server that greets and words its replies like Dovecot, Gmail or Outlook."""

import poplib

import pytest

from fakepop import Pop3ServerThread, profiles

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}


@pytest.mark.pop3(MAILBOXES, profile="dovecot")
def test_a_client_meets_dovecot(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        assert client.getwelcome() == b"+OK Dovecot (Debian) ready."
        assert "APOP" not in client.capa()  # Dovecot offers no APOP
        client.user("alice")
        assert client.pass_("secret") == b"+OK Logged in."
        client.dele(1)
        assert client.quit() == b"+OK Logging out, messages deleted."
    finally:
        client.close()


@pytest.mark.pop3(MAILBOXES, profile="gmail", texts={"quit": "Bye."})  # plus any option
def test_options_go_on_top_of_a_profile(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        assert client.getwelcome().startswith(b"+OK Gpop ready for requests")
        client.user("alice")
        with pytest.raises(poplib.error_proto, match="Username and password not accepted"):
            client.pass_("wrong")
        assert client.quit() == b"+OK Bye."
    finally:
        client.close()


def test_a_profile_without_pytest() -> None:
    config = profiles.rfc1939()  # no CAPA: the client must fall back to RFC 1939
    with Pop3ServerThread(MAILBOXES, config=config) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            with pytest.raises(poplib.error_proto):
                client.capa()
            client.quit()
        finally:
            client.close()
