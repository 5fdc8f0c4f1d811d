"""UTF8 and LANG (RFC 6856). Tests citing "checklist #N" implement that test vector."""

from __future__ import annotations

import poplib

import pytest
import trio

from fakepop import MailStore, ServerConfig, open_pop3_server
from fakepop._saslprep import SaslprepError, saslprep
from tests.sansio import converse, feed, lines, new_session

RAW_UTF8_HEADER = "Subject: Grüße aus Köln\nFrom: jürgen@example.de\n\nHallo\n"
ENCODED_HEADER = "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n\nGrüße im Text\n"


def utf8_store() -> MailStore:
    return MailStore({"eve": {"password": "pw", "messages": [RAW_UTF8_HEADER, ENCODED_HEADER]}})


LOGIN = b"USER eve\r\nPASS pw\r\n"


def test_utf8_then_stls_and_capabilities() -> None:
    """checklist #65: UTF8 answers +OK in AUTHORIZATION; CAPA lists UTF8 and LANG."""
    out = lines(feed(new_session(utf8_store()), [b"CAPA\r\nUTF8\r\n"]))
    assert b"UTF8 USER" in out
    assert b"LANG" in out
    assert out[-1] == b"+OK UTF8 mode enabled"


def test_a_raw_utf8_header_needs_utf8_mode() -> None:
    """checklist #66: without UTF8, RETR and TOP of a message with a raw UTF-8 header
    get -ERR [UTF8] and no 8-bit octet is sent; an encoded header with an 8-bit body
    is fine; after UTF8 the message comes whole."""
    out = feed(new_session(utf8_store()), [LOGIN + b"RETR 1\r\nTOP 1 0\r\nRETR 2\r\n"])
    replies = lines(out)
    assert replies[2] == b"-ERR [UTF8] This message needs UTF8 mode; send UTF8 first"
    assert replies[3] == replies[2]
    assert replies[4].startswith(b"+OK")
    assert "Grüße im Text".encode() in out
    assert "Köln".encode() not in out
    after = feed(new_session(utf8_store()), [b"UTF8\r\n" + LOGIN + b"RETR 1\r\n"])
    assert "Subject: Grüße aus Köln".encode() in after


def test_a_server_without_rfc_6856_sends_such_messages_as_they_are() -> None:
    config = ServerConfig(utf8=False)
    out = feed(new_session(utf8_store(), config), [b"CAPA\r\n" + LOGIN + b"RETR 1\r\n"])
    assert b"UTF8" not in out.split(b"\r\n.\r\n")[0]
    assert "Köln".encode() in out
    assert lines(converse(b"UTF8\r\n", config)) == [b"-ERR Unknown command: UTF8"]


def test_lang() -> None:
    """checklist #67: a listing; an unknown tag leaves the language; en and *."""
    out = lines(converse(b"LANG\r\nLANG zz\r\nLANG en\r\nLANG *\r\n"))
    assert out == [
        b"+OK Language listing follows",
        b"en English",
        b".",
        b"-ERR Unsupported language zz; still en",
        b"+OK en Language is English",
        b"+OK en Language is English",
    ]


def test_utf8_is_only_for_authorization() -> None:
    out = lines(converse(b"UTF8 x\r\n"))
    assert out == [b"-ERR UTF8 takes no arguments"]


async def test_poplib_utf8_and_a_raw_utf8_header() -> None:
    async with open_pop3_server(utf8_store()) as server:

        def session() -> tuple[bytes, list[bytes]]:
            client = poplib.POP3(server.host, server.port, timeout=10)
            try:
                answer = client.utf8()
                client.user("eve")
                client.pass_("pw")
                return answer, client.retr(1)[1]
            finally:
                client.quit()

        answer, message = await trio.to_thread.run_sync(session)
    assert answer == b"+OK UTF8 mode enabled"
    assert message[0] == "Subject: Grüße aus Köln".encode()


def test_utf8_user_names_and_passwords_are_checked_and_saslprepped() -> None:
    """RFC 6856 section 2.2: with UTF8 USER advertised, invalid UTF-8 and characters
    SASLprep prohibits are rejected, and passwords compare after SASLprep."""
    store = MailStore({"jürgen": "pass\u00a0word"})  # a no-break space
    out = lines(feed(new_session(store), ["USER jürgen\r\nPASS pass word\r\n".encode()]))
    assert out[1].startswith(b"+OK j")  # the no-break space maps to a space
    out = lines(feed(new_session(store), [b"USER j\xfcrgen\r\n"]))  # latin-1, not UTF-8
    assert out == [b"-ERR The user name is not valid UTF-8"]
    out = lines(feed(new_session(store), ["USER bad\u0007name\r\n".encode()]))
    assert out == [b"-ERR The user name contains a control character (U+0007)"]
    out = lines(feed(new_session(store), ["USER jürgen\r\nPASS x\ue000\r\nSTAT\r\n".encode()]))
    assert out[1] == b"-ERR The password contains a private use character (U+E000)"
    assert out[2] == b"-ERR STAT is not allowed before login"


def test_without_rfc_6856_credentials_are_compared_octet_for_octet() -> None:
    store = MailStore({"jürgen": "pass\u00a0word"})
    config = ServerConfig(utf8=False)
    session = new_session(store, config)
    out = lines(feed(session, ["USER jürgen\r\nPASS pass word\r\n".encode()]))
    assert out[1] == b"-ERR [AUTH] Authentication failed"
    out = lines(feed(new_session(store, config), [b"USER j\xfcrgen\r\n"]))
    assert out[0].startswith(b"+OK")


@pytest.mark.parametrize(
    ("given", "prepared"),
    [("I\u00adX", "IX"), ("user", "user"), ("USER", "USER"), ("\u00aa", "a"), ("\u2168", "IX")],
)
def test_saslprep_examples_of_rfc_4013(given: str, prepared: str) -> None:
    assert saslprep(given) == prepared


@pytest.mark.parametrize(
    ("given", "problem"), [("\u0007", "control"), ("\u0627\u0031", "right-to-left")]
)
def test_saslprep_refusals_of_rfc_4013(given: str, problem: str) -> None:
    with pytest.raises(SaslprepError, match=problem):
        saslprep(given)


def test_saslprep_normalises_with_the_unicode_3_2_tables() -> None:
    """RFC 4013 §2.2 and RFC 3454 §1.3: stringprep is defined on Unicode 3.2. U+2F868
    (a CJK compatibility ideograph) normalised to U+2136A then; later Unicode versions
    changed its mapping to U+36FC, which a SASLprep on today's tables would give."""
    assert saslprep("\U0002f868") == "\U0002136a"
