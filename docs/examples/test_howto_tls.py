"""TLS: STLS on the POP3 port and POP3S on a port of its own, with throwaway certificates."""

import poplib

import pytest

from fakepop import Pop3ServerThread, TlsCertificates

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}


@pytest.mark.pop3(MAILBOXES, tls=True, cleartext_login=False)
def test_stls_before_the_password(pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        before = client.capa()
        assert "STLS" in before
        assert "USER" not in before  # cleartext_login=False: no password in the clear
        client.stls(context=pop3_tls.client_context())  # verifies the certificate
        assert "USER" in client.capa()
        client.user("alice")
        client.pass_("secret")
        assert client.stat() == (1, 22)
        client.quit()
    finally:
        client.close()
    pop3_server.wait_idle()
    commands = pop3_server.transcript.commands()
    assert commands.index("STLS") < commands.index("PASS ****")  # the password went encrypted


@pytest.mark.pop3(MAILBOXES, tls=True)
def test_pop3s_from_the_first_octet(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    client = poplib.POP3_SSL(
        pop3_server.host, pop3_server.pop3s_port, context=pop3_tls.client_context(), timeout=10
    )
    try:
        client.user("alice")
        client.pass_("secret")
        assert client.stat() == (1, 22)
        client.quit()
    finally:
        client.close()
