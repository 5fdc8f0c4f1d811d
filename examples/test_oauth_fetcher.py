"""The XOAUTH2 fetcher against fakepop over POP3S: a good token fetches the mail, a
refused one fetches nothing (docs/howto/sasl.md)."""

import pytest

from examples.oauth_fetcher import TokenRefused, fetch_with_token
from fakepop import Pop3ServerThread, TlsCertificates

#: An account that takes OAuth tokens only, as Exchange Online does: no password login.
MAILBOXES = {
    "alice@example.com": {
        "password": "not-a-way-in",
        "messages": ["Subject: A\n\nOne.\n", "Subject: B\n\nTwo.\n"],
        "methods": ["XOAUTH2"],
    },
}
GOOD_TOKEN = "ya29.good"
#: Real access tokens are long: with them the AUTH line passes 255 octets, and the
#: response goes on a line of its own (RFC 5034 §4).
LONG_TOKEN = "ya29." + "x" * 300


def accept(user: str, token: str) -> bool:
    """Stands in for the identity provider."""
    return user == "alice@example.com" and token in (GOOD_TOKEN, LONG_TOKEN)


SERVER = {"tls": True, "token_validator": accept}


@pytest.mark.pop3(MAILBOXES, **SERVER)
def test_a_good_token_fetches_the_mail(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    messages = fetch_with_token(
        pop3_server.host, pop3_server.pop3s_port, "alice@example.com", GOOD_TOKEN,
        context=pop3_tls.client_context(),
    )
    assert messages == [b"Subject: A\r\n\r\nOne.\r\n", b"Subject: B\r\n\r\nTwo.\r\n"]
    pop3_server.wait_idle()
    # One line with the initial response; the token is masked in the transcript.
    assert pop3_server.transcript.commands() == [
        "AUTH XOAUTH2 ****", "STAT", "RETR 1", "RETR 2", "QUIT",
    ]
    assert len(pop3_server.store["alice@example.com"].messages) == 2


@pytest.mark.pop3(MAILBOXES, **SERVER)
def test_a_long_token_goes_on_a_line_of_its_own(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    messages = fetch_with_token(
        pop3_server.host, pop3_server.pop3s_port, "alice@example.com", LONG_TOKEN,
        context=pop3_tls.client_context(),
    )
    assert len(messages) == 2
    pop3_server.wait_idle()
    assert pop3_server.transcript.commands()[:2] == ["AUTH XOAUTH2", "****"]


@pytest.mark.pop3(MAILBOXES, **SERVER)
def test_a_refused_token_fetches_nothing(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    with pytest.raises(TokenRefused) as refused:
        fetch_with_token(
            pop3_server.host, pop3_server.pop3s_port, "alice@example.com", "ya29.expired",
            context=pop3_tls.client_context(),
        )
    # RFC 7628 §3.2.2: the error challenge says why; then -ERR [AUTH] (RFC 3206).
    assert '"status": "401"' in refused.value.details
    assert refused.value.reply.startswith(b"-ERR [AUTH]")
    pop3_server.wait_idle()
    pop3_server.assert_untouched("alice@example.com")
    assert pop3_server.store["alice@example.com"].logins == 0


@pytest.mark.pop3(MAILBOXES, token_error_challenge=False, **SERVER)
def test_a_server_that_refuses_at_once(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    # Exchange Online sends the -ERR without an error challenge.
    with pytest.raises(TokenRefused) as refused:
        fetch_with_token(
            pop3_server.host, pop3_server.pop3s_port, "alice@example.com", "ya29.expired",
            context=pop3_tls.client_context(),
        )
    assert refused.value.details == ""
    assert refused.value.reply.startswith(b"-ERR")
    pop3_server.wait_idle()
    assert pop3_server.store["alice@example.com"].logins == 0
