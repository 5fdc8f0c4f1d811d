"""UTF8 and LANG (RFC 6856). Tests citing "checklist #N" implement that test vector."""

from __future__ import annotations

import poplib

import pytest
import trio

from fakepop import ConfigError, MailStore, ServerConfig, open_pop3_server, profiles
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


STRICT = ServerConfig(utf8_refuse_unless_enabled=True)


def test_a_raw_utf8_header_needs_utf8_mode_on_a_strict_server() -> None:
    """checklist #66, RFC 6856 section 2.1 read strictly: without UTF8, RETR and TOP of
    a message with a raw UTF-8 header get -ERR [UTF8] and no 8-bit octet is sent; an
    encoded header with an 8-bit body is fine; after UTF8 the message comes whole."""
    data = LOGIN + b"RETR 1\r\nTOP 1 0\r\nRETR 2\r\n"
    out = feed(new_session(utf8_store(), STRICT), [data])
    replies = lines(out)
    assert replies[2] == b"-ERR [UTF8] This message needs UTF8 mode; send UTF8 first"
    assert replies[3] == replies[2]
    assert replies[4].startswith(b"+OK")
    assert "Grüße im Text".encode() in out
    assert "Köln".encode() not in out
    after = feed(new_session(utf8_store(), STRICT), [b"UTF8\r\n" + LOGIN + b"RETR 1\r\n"])
    assert "Subject: Grüße aus Köln".encode() in after


def test_by_default_a_raw_utf8_header_is_sent_as_it_is() -> None:
    """RFC 6856 section 2.1 leaves a server a choice; Dovecot, Gmail and Exchange send
    such a message as it is to any client, and so does fakepop by default, while it
    still offers UTF8 and LANG. RETR sends exactly the octets LIST counts."""
    out = feed(new_session(utf8_store()), [LOGIN + b"LIST 1\r\nRETR 1\r\nTOP 1 0\r\n"])
    size = len(RAW_UTF8_HEADER.replace("\n", "\r\n").encode())
    assert lines(out)[2] == b"+OK 1 %d" % size
    assert lines(out)[3] == b"+OK %d octets" % size
    assert out.count("Subject: Grüße aus Köln\r\n".encode()) == 2  # RETR and TOP
    assert b"[UTF8]" not in out


def test_the_strict_refusal_needs_the_utf8_command() -> None:
    """Without UTF8 (``utf8=False``) a client could never get such a message."""
    with pytest.raises(ConfigError, match="utf8_refuse_unless_enabled needs utf8=True"):
        ServerConfig(utf8=False, utf8_refuse_unless_enabled=True)


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
    async with open_pop3_server(utf8_store(), config=STRICT) as server:

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


def fetch_first_without_utf8(host: str, port: int) -> tuple[int, list[bytes]]:
    """What poplib, which never sends UTF8 by itself, gets for message 1."""
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("eve")
        client.pass_("pw")
        _, lines, octets = client.retr(1)
        client.quit()
    finally:
        client.close()
    return octets, lines


@pytest.mark.parametrize(
    "config",
    [
        ServerConfig(),
        profiles.dovecot(),
        profiles.gmail(),
        # Exchange takes OAuth logins over TLS only; what RETR sends is the point here.
        profiles.outlook(require_tls=False, oauth_only=False),
        profiles.rfc1939(),
    ],
    ids=["default", "dovecot", "gmail", "outlook", "rfc1939"],
)
async def test_poplib_gets_a_raw_utf8_header_as_real_servers_send_it(
    config: ServerConfig,
) -> None:
    """RFC 6856 section 2.1: the default and every profile send the message as it is to
    a client that never sent UTF8, byte for byte, as the real servers do."""
    async with open_pop3_server(utf8_store(), config=config) as server:
        octets, message = await trio.to_thread.run_sync(
            fetch_first_without_utf8, server.host, server.port
        )
    assert message == RAW_UTF8_HEADER.encode().split(b"\n")[:-1]
    assert message[0] == "Subject: Grüße aus Köln".encode()
    assert octets == len(RAW_UTF8_HEADER.replace("\n", "\r\n").encode())  # what LIST says


async def test_poplib_meets_the_strict_refusal_when_it_is_asked_for() -> None:
    """checklist #66 through poplib: a strict server refuses the message with [UTF8]
    and the session goes on; the message stays in the mailbox."""
    async with open_pop3_server(utf8_store(), config=STRICT) as server:
        with pytest.raises(poplib.error_proto, match=r"^b'-ERR \[UTF8\] "):
            await trio.to_thread.run_sync(fetch_first_without_utf8, server.host, server.port)
        await server.wait_idle()
        assert not server.store["eve"].locked
        assert len(server.store["eve"]) == 2
        assert server.transcript.replies_to("RETR") == [
            "-ERR [UTF8] This message needs UTF8 mode; send UTF8 first"
        ]


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
