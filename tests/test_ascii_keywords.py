"""Command keywords are ASCII: a keyword that only Unicode case folding turns into a
POP3 keyword is an unknown command.

RFC 1939 §3: "Commands in the POP3 consist of a case-insensitive keyword" and
"keywords and arguments consist of printable ASCII characters". Python's ``str.upper()``
maps U+017F LATIN SMALL LETTER LONG S to "S" and U+0131 LATIN SMALL LETTER DOTLESS I
to "I", so ``<long s>tat`` and ``qu<dotless i>t`` must not be taken for STAT and QUIT.
"""

from __future__ import annotations

import pytest
import trio

from fakepop import Pop3Server, ServerConfig, State, open_pop3_server
from tests.clients import ALICE_WIRE, expect_err, mailboxes, pop3
from tests.sansio import LOGGED_IN, LOGIN, TOTAL, converse, feed, lines, new_session

LONG_S = "\u017f"  # long s, upper-cased by Python to "S"
DOTLESS_I = "\u0131"  # dotless i, upper-cased by Python to "I"
KELVIN = "\u212a"  # Kelvin sign: looks like K, is not ASCII


def test_non_ascii_stat_is_an_unknown_command() -> None:
    """RFC 1939 §3: ``<long s>tat`` is no STAT; it gets -ERR, and STAT works after it."""
    out = lines(converse(LOGIN + f"{LONG_S}tat\r\nSTAT\r\n".encode()))
    assert out[:2] == LOGGED_IN
    assert out[2] == b"-ERR Unknown command: ?tat"  # one "?" for the long s
    assert out[3] == f"+OK 3 {TOTAL}".encode()


def test_non_ascii_quit_neither_closes_nor_deletes() -> None:
    """RFC 1939 §3, §6: ``qu<dotless i>t`` after DELE is no QUIT: no UPDATE, nothing
    removed, the session stays in TRANSACTION; pipelined, whole and byte by byte."""
    data = LOGIN + f"DELE 1\r\nqu{DOTLESS_I}t\r\nNOOP\r\n".encode()
    out = lines(converse(data))
    assert out[3] == b"-ERR Unknown command: qu?t"
    assert out[4] == b"+OK"
    session = new_session()
    store = session.store
    answers = feed(session, [data[i : i + 1] for i in range(len(data))])
    assert b"Logging out" not in answers
    assert session.state is State.TRANSACTION
    assert session.removed == []
    session.connection_lost()
    assert len(store["alice"].messages) == 3


@pytest.mark.parametrize(
    "line",
    [
        f"u{LONG_S}er alice",  # USER
        f"capa{KELVIN}",  # no fold, but not ASCII either
        f"{LONG_S}tls",  # STLS
        f"u{LONG_S}er",
    ],
)
def test_non_ascii_keywords_before_login_change_nothing(line: str) -> None:
    """RFC 1939 §3: an unknown command gets -ERR and leaves AUTHORIZATION as it was,
    so PASS right after it is still refused."""
    session = new_session()
    out = lines(feed(session, [line.encode() + b"\r\nPASS secret\r\n"]))
    assert out[0].startswith(b"-ERR Unknown command: ")
    assert out[1] == b"-ERR PASS must come right after a successful USER"
    assert session.state is State.AUTHORIZATION


def test_non_ascii_pass_is_no_password() -> None:
    """RFC 1939 §3, §7: ``pa<long s>s`` after USER is unknown, so it neither logs in nor
    restarts the login: the real PASS after it still works."""
    out = lines(converse(f"USER alice\r\npa{LONG_S}s secret\r\nPASS secret\r\n".encode()))
    assert out[0] == LOGGED_IN[0]
    assert out[1] == b"-ERR Unknown command: pa?s"
    assert out[2] == LOGGED_IN[1]


def test_non_ascii_sasl_mechanism_is_unsupported() -> None:
    """RFC 4422 §3.1: mechanism names are upper-case ASCII letters, digits, "-" and
    "_"; ``PLA<dotless i>N`` is not PLAIN (RFC 5034 §4: an unknown mechanism gets -ERR)."""
    initial = "AGFsaWNlAHNlY3JldA=="  # \0alice\0secret
    out = lines(converse(f"AUTH PLA{DOTLESS_I}N {initial}\r\nSTAT\r\n".encode()))
    assert out[0] == b"-ERR Unsupported SASL mechanism: PLA?N"
    assert out[1] == b"-ERR STAT is not allowed before login"


def test_ascii_keywords_still_fold_case() -> None:
    """RFC 1939 §3: ASCII keywords stay case-insensitive."""
    out = lines(converse(b"uSeR alice\r\npAsS secret\r\nsTaT\r\nqUiT\r\n"))
    assert out[:2] == LOGGED_IN
    assert out[2] == f"+OK 3 {TOTAL}".encode()
    assert out[3].startswith(b"+OK Logging out")
    config = ServerConfig(sasl=("PLAIN",))
    assert lines(converse(b"auth plain AGFsaWNlAHNlY3JldA==\r\n", config)) == LOGGED_IN[1:]


async def test_non_ascii_stat_and_quit_over_poplib_run_nothing() -> None:
    """RFC 1939 §3 through a real socket: poplib sends ``<long s>tat`` and
    ``qu<dotless i>t`` as UTF-8; both get -ERR, the session goes on, and the DELE
    before them is not carried out."""

    def session(server: Pop3Server) -> None:
        with pop3(server, "alice", "secret") as client:
            client.dele(1)
            assert expect_err(client._shortcmd, f"{LONG_S}tat").startswith(
                b"-ERR Unknown command"
            )
            assert expect_err(client._shortcmd, f"qu{DOTLESS_I}t").startswith(
                b"-ERR Unknown command"
            )
            assert client.noop().startswith(b"+OK")
            assert client.stat() == (3, sum(len(wire) for wire in ALICE_WIRE[1:]))

    async with open_pop3_server(mailboxes()) as server:
        await trio.to_thread.run_sync(session, server)
        await server.wait_idle()
        assert len(server.store["alice"].messages) == len(ALICE_WIRE)
        assert server.store["alice"].deleted == ()
