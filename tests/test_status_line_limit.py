"""Status lines are at most 512 octets, CRLF included, whatever they echo.

RFC 1939 §3: "Responses may be up to 512 characters long, including the terminating
CRLF"; RFC 2449 §4 keeps that limit for every response line. Replies that echo what
the client sent (a user name, SASL identities) or wording from ``ServerConfig(texts=)``
are shortened to fit, ending in "...", and a response code (RFC 2449 §8) at the start
of the text is never cut.
"""

from __future__ import annotations

import base64
import re

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepop import DEFAULT_TEXTS, Command, Pop3Server, Reply, ServerConfig, open_pop3_server
from tests.clients import expect_err, mailboxes, pop3
from tests.sansio import LOGGED_IN, LOGIN, converse, feed, lines, new_session

LIMIT = 512  # octets, CRLF included (RFC 1939 §3, RFC 2449 §4)
RESPONSE_CODE = re.compile(rb"\[[\x21-\x2e\x30-\x5c\x5e-\x7e]+(/[^/\]\s]+)*\] ")
WIDE = ServerConfig(max_line_length=4096)  # lets long arguments reach the commands


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def assert_status_line(line: bytes) -> None:
    """One status line as sent: at most 512 octets, ending in its only CRLF."""
    assert len(line) <= LIMIT, (len(line), line[:80])
    assert line.endswith(b"\r\n"), line[-20:]
    assert b"\r" not in line[:-2], line
    assert b"\n" not in line[:-2], line


def test_auth_plain_with_long_identities_gets_an_err_line_within_512_octets() -> None:
    """RFC 4616 §2 allows 255-octet authzid and authcid; echoing both in "may not act
    as" made a 539-octet line. It is cut to 512 (RFC 1939 §3), [AUTH] kept whole
    (RFC 2449 §8); whole, byte by byte and pipelined with the STAT after it."""
    response = b64(b"z" * 255 + b"\0" + b"c" * 255 + b"\0secret")
    out = converse(b"AUTH PLAIN\r\n" + response + b"\r\nSTAT\r\n")
    status = out.split(b"\r\n")[1] + b"\r\n"
    assert_status_line(status)
    assert len(status) == LIMIT
    assert status.startswith(b"-ERR [AUTH] " + b"c" * 255 + b" may not act as zzz")
    assert status.endswith(b"...\r\n")
    assert lines(out)[2] == b"-ERR STAT is not allowed before login"


def test_user_with_a_long_name_gets_an_ok_line_within_512_octets() -> None:
    """``USER <1000 octets>`` (with a longer line limit, RFC 2449 §4 allows it) echoed
    the whole name after "+OK Send PASS for"; the line is cut, the name kept for PASS."""
    name = b"u" * 1000
    out = converse(b"USER " + name + b"\r\nPASS wrong\r\n", WIDE)
    status = out.split(b"\r\n")[0] + b"\r\n"
    assert_status_line(status)
    assert status == b"+OK Send PASS for " + b"u" * (LIMIT - 23) + b"...\r\n"
    assert lines(out)[1] == b"-ERR [AUTH] Authentication failed"


def test_long_configured_texts_give_lines_within_512_octets() -> None:
    """RFC 1939 §3: wording from ServerConfig(texts=...) is shortened to fit too, and
    the response code before it stays whole (RFC 2449 §8)."""
    config = ServerConfig(
        texts={"logged_in": "{user} " + "w" * 600, "auth_failed": "f" * 600}
    )
    out = converse(b"USER alice\r\nPASS wrong\r\n" + LOGIN + b"NOOP\r\n", config)
    statuses = [line + b"\r\n" for line in lines(out)]
    for status in statuses:
        assert_status_line(status)
    assert statuses[1] == b"-ERR [AUTH] " + b"f" * (LIMIT - 17) + b"...\r\n"
    assert statuses[3] == b"+OK alice " + b"w" * (LIMIT - 15) + b"...\r\n"
    assert statuses[4] == b"+OK\r\n"  # logged in all the same


def test_a_refusal_with_a_long_text_keeps_its_response_code_whole() -> None:
    """RFC 2449 §8: the code is cut from neither end; a code that cannot fit at all is
    left out rather than sent as a broken ``[...``."""
    session = new_session()
    command = Command(b"NOOP", "NOOP", None)
    status = session.refuse(command, "t" * 600, "SYS/TEMP").status
    assert_status_line(status)
    assert status.startswith(b"-ERR [SYS/TEMP] ttt")
    assert status.endswith(b"...\r\n")
    status = session.refuse(command, "short text", "X" * 600).status
    assert status == b"-ERR short text\r\n"


def test_greeting_with_a_long_hostname_keeps_the_apop_timestamp_whole() -> None:
    """RFC 1939 §3, §7: a long greeting and hostname shorten the greeting's text, never
    the timestamp APOP clients need."""
    config = ServerConfig(hostname="h" * 200, greeting="g" * 400)
    session = new_session(config=config)
    stamp = "<1.2.3@" + "h" * 200 + ">"
    session.apop_timestamp = stamp
    greeting = session.greeting().status
    assert_status_line(greeting)
    assert greeting.startswith(b"+OK ggg")
    assert greeting.endswith(b"... " + stamp.encode() + b"\r\n")


# -- property: any command sequence -------------------------------------------------
KEYWORDS = [
    "USER", "PASS", "APOP", "AUTH", "QUIT", "CAPA", "STLS", "UTF8", "LANG", "STAT", "LIST",
    "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "XYZZY", "\u017ftat", "qu\u0131t", "",
]
MECHANISMS = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER", "plain", "NONE"]
LONG_TEXTS = {key: f"{text} {'y' * 520}" for key, text in DEFAULT_TEXTS.items()}
CONFIGS = [
    ServerConfig(),
    WIDE,
    ServerConfig(max_line_length=4096, texts=LONG_TEXTS),
    ServerConfig(max_line_length=4096, resp_codes=False, hostname="h" * 200, greeting="g" * 400),
]

_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=700)
_field = st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode))


def _line(keyword: str, argument: str | None) -> bytes:
    line = keyword if argument is None else f"{keyword} {argument}"
    return line.encode("utf-8")


_plain_command = st.builds(_line, st.sampled_from(KEYWORDS), st.none() | _text)
_login = st.sampled_from([b"USER alice", b"PASS secret", b"USER " + b"v" * 600, b"*"])
_plain_initial = st.builds(
    lambda z, c, p: b"AUTH PLAIN " + b64(z + b"\0" + c + b"\0" + p), _field, _field, _field
)
_login_initial = st.builds(lambda user: b"AUTH LOGIN " + b64(user), _field)
_auth = st.builds(
    lambda mechanism, initial: f"AUTH {mechanism}".encode() + initial,
    st.sampled_from(MECHANISMS),
    st.sampled_from([b"", b" =", b" !!"]) | _field.map(lambda data: b" " + b64(data)),
)
_sasl_line = _field.map(b64)  # a continuation line, whatever state the session is in
COMMANDS = st.builds(
    lambda logged_in, commands: [b"USER alice", b"PASS secret"] * logged_in + commands,
    st.booleans(),
    st.lists(
        st.one_of(_plain_command, _login, _plain_initial, _login_initial, _auth, _sasl_line),
        max_size=25,
    ),
)


def _run(config: ServerConfig, pieces: list[bytes]) -> list[Reply]:
    session = new_session(config=config)
    replies = [session.greeting()]
    for piece in pieces:
        session.receive_data(piece)
        while (command := session.next_command()) is not None:
            replies.append(session.handle(command))
    return replies


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(CONFIGS), COMMANDS)
def test_every_status_line_fits_in_512_octets(
    config: ServerConfig, commands: list[bytes]
) -> None:
    """RFC 1939 §3, RFC 2449 §4: whatever the client sends, with any configured
    wording, every status line (and SASL continuation, RFC 5034 §4) is at most 512
    octets ending in one CRLF, and no command makes the engine fail (which a server
    would answer with an internal error). Fed pipelined, line by line and byte by
    byte, the replies are the same."""
    data = b"".join(command + b"\r\n" for command in commands)
    whole = _run(config, [data])
    for reply in whole:
        assert_status_line(reply.status)
        assert reply.status.startswith((b"+OK", b"-ERR", b"+ ")), reply.status
        assert b"Internal server error" not in reply.status
        text = reply.status.split(b" ", 1)[1] if b" " in reply.status else b""
        # RFC 2449 §8: with RESP-CODES advertised, a text opening with "[" is a code.
        if config.resp_codes and text.startswith(b"["):
            assert RESPONSE_CODE.match(text), reply.status
    by_line = _run(config, [command + b"\r\n" for command in commands])
    assert _comparable(by_line) == _comparable(whole)
    if len(data) <= 4000:
        bytewise = _run(config, [data[i : i + 1] for i in range(len(data))])
        assert _comparable(bytewise) == _comparable(whole)


def _comparable(replies: list[Reply]) -> list[bytes]:
    # Replies without what differs between sessions anyway: the greeting's timestamp
    # and SASL challenges (CRAM-MD5's is a fresh timestamp).
    return [b"" if reply.status.startswith(b"+ ") else bytes(reply) for reply in replies[1:]]


# -- through a real socket ----------------------------------------------------------
async def test_poplib_gets_status_lines_within_512_octets() -> None:
    """RFC 1939 §3 over TCP with the standard library client: the AUTH PLAIN refusal
    for a 255-octet authzid and authcid, and the +OK to a 1000-octet USER, are each at
    most 512 octets with CRLF (poplib strips the CRLF, hence 510)."""

    def session(server: Pop3Server) -> tuple[bytes, bytes]:
        with pop3(server) as client:
            assert client._shortcmd("AUTH PLAIN") == b"+ "
            response = b64(b"z" * 255 + b"\0" + b"c" * 255 + b"\0secret").decode()
            refused = expect_err(client._shortcmd, response)
            accepted = client.user("u" * 1000)
            client.user("alice")
            client.pass_("secret")
            client.quit()
        return refused, accepted

    async with open_pop3_server(mailboxes(), config=WIDE) as server:
        refused, accepted = await trio.to_thread.run_sync(session, server)
    assert refused.startswith(b"-ERR [AUTH] " + b"c" * 255 + b" may not act as z")
    assert len(refused) == LIMIT - 2
    assert refused.endswith(b"...")
    assert accepted.startswith(b"+OK Send PASS for uuu")
    assert len(accepted) == LIMIT - 2
    assert accepted.endswith(b"...")


def test_short_lines_are_unchanged() -> None:
    """Lines that fit are sent exactly as before (RFC 1939 §3)."""
    assert lines(feed(new_session(), [LOGIN])) == LOGGED_IN


def test_a_status_line_built_once_is_shared_and_the_cache_stays_bounded() -> None:
    """Status lines are cached by text (a reply's wording repeats): the same text gives
    the same line object, the rules above hold for what the cache returns, and texts
    that echo the client cannot make the cache grow without bound."""
    from fakepop import _replies  # noqa: PLC0415 - the cache is the module's own

    assert _replies.status_line(b"+OK", "1024 octets") is _replies.status_line(
        b"+OK", "1024 octets"
    )
    echoed = "no such user \u00e9" + "x" * 600
    for _ in range(2):  # built, then from the cache: the same rules
        line = _replies.status_line(b"-ERR", echoed)
        assert_status_line(line)
        assert line.startswith(b"-ERR no such user ?x")
        assert line.endswith(b"...\r\n")
    for number in range(3 * _replies._BUILT_LIMIT):
        line = _replies.status_line(b"-ERR", f"unknown {number}")
        assert line == b"-ERR unknown %d\r\n" % number
    assert all(len(built) <= _replies._BUILT_LIMIT for built in _replies._BUILT.values())
    greeting = _replies.status_line(b"+OK", "ready", "<1.2@host>")  # with an APOP timestamp
    assert greeting == b"+OK ready <1.2@host>\r\n"
