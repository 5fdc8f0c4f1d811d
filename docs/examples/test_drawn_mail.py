"""Drawn mail: fakepop.strategies for code that reads mail, and the corpus served."""

import email
import email.policy
import poplib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings

from fakepop import Pop3ServerThread, corpus
from fakepop.strategies import Malformed, mailboxes, malformed_messages, messages


def text_of(raw: bytes) -> str:
    """The code under test: the text of a message, for a search index."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain", "html"))
    if body is None:
        return ""  # attachments only: found by messages()
    try:
        return str(body.get_content())
    except LookupError:  # a charset Python does not know: found by malformed_messages()
        payload = body.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


@given(messages())
def test_every_valid_message_has_text_or_none(raw: bytes) -> None:
    assert isinstance(text_of(raw), str)


@given(malformed_messages())
def test_broken_mail_does_not_break_the_index(broken: Malformed) -> None:
    assert isinstance(text_of(broken.data), str), broken.defect


@pytest.fixture(scope="module")
def server() -> Iterator[Pop3ServerThread]:
    # One server for all examples: hypothesis calls the test many times per fixture.
    with Pop3ServerThread() as running:
        yield running


@settings(max_examples=20, deadline=None)
@given(mail=mailboxes(messages(max_size=10_000)))
def test_stat_counts_what_the_mailbox_holds(
    server: Pop3ServerThread, mail: dict[str, dict[str, dict[str, bytes]]]
) -> None:
    server.reset(mail)  # drawn users, passwords, UIDs and messages, as they are
    for user, mailbox in mail.items():
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user(user)
            client.pass_(mailbox["password"])  # type: ignore[arg-type]
            count, _ = client.stat()
            client.quit()
        finally:
            client.close()
        assert count == len(mailbox["messages"])


@pytest.mark.pop3({"alice": {"password": "pw", "messages": corpus.all()}})
def test_the_corpus_indexes_without_an_error(
    pop3_server: Pop3ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(poplib, "_MAXLINE", 20_000)  # a line of 10,000 octets in there
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        client.utf8()  # the corpus has a message with raw UTF-8 headers (RFC 6856)
        client.user("alice")
        client.pass_("pw")
        texts = {}
        for line in client.uidl()[1]:
            number, uid = line.decode().split()
            texts[uid] = text_of(b"\r\n".join(client.retr(int(number))[1]))
        client.quit()
    finally:
        client.close()
    assert set(texts) == set(corpus.names())  # the UIDs are the names of the traps
    assert texts["only_dot_line"].splitlines() == ["before the dot", ".", "after the dot"]
    assert texts["unknown_charset"].strip() == "caf\ufffd"
    assert texts["multipart_without_text"] == ""
