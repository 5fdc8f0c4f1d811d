"""The dovecot profile against a cassette recorded from a real Dovecot 2.3.

``examples/cassettes/dovecot-2.3.jsonl`` holds sessions fakepop's recording proxy took
from Dovecot (docs/howto/cassettes.md). Here every client line of it is played, in
order, to the sans-IO engine configured with ``profiles.dovecot()`` and serving the
mailboxes the cassette shows, and every line the engine answers must be the line
Dovecot sent, octet for octet. This check needs no Dovecot: where one can run,
tests/test_dovecot_differential.py compares the profile with it live.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from fakepop import MailStore, Pop3Protocol, profiles, read_cassette

CASSETTE = Path(__file__).parents[1] / "examples" / "cassettes" / "dovecot-2.3.jsonl"
PASSWORD = "pw"  # a cassette keeps no password: the replayed mailboxes get this one


def _played(session_entries: Sequence[tuple[str, bytes]]) -> tuple[list[bytes], list[bytes]]:
    """(what Dovecot sent, what the profile sends) for one session's lines."""
    store = MailStore(profiles.mailboxes_from_cassette(CASSETTE, password=PASSWORD))
    protocol = Pop3Protocol(store, profiles.dovecot(failed_login_delay=0))
    expected: list[bytes] = []
    said = bytes(protocol.greeting())
    for side, data in session_entries:
        if side == "server":
            expected.append(data)
            continue
        protocol.receive_data(data.replace(b"****", PASSWORD.encode()))
        while (command := protocol.next_command()) is not None:
            said += bytes(protocol.handle(command))
    protocol.connection_lost()
    return expected, said.splitlines(keepends=True)


def test_the_cassette_holds_a_whole_dovecot_session() -> None:
    cassette = read_cassette(CASSETTE)
    assert cassette.sessions, "no session recorded"
    lines = [entry for entry in cassette.sessions[0].entries if entry.kind == "line"]
    assert lines[0].data == b"+OK Dovecot (Debian) ready.\r\n"
    assert {entry.data.split(b" ")[0].strip() for entry in lines if entry.side == "client"} >= {
        b"USER",
        b"PASS",
        b"LIST",
        b"RETR",
        b"DELE",
        b"QUIT",
    }


@pytest.mark.parametrize("number", range(len(read_cassette(CASSETTE).sessions)))
def test_the_dovecot_profile_says_what_dovecot_said(number: int) -> None:
    """RFC 1939 §3-§6 as Dovecot words it: greeting, USER, PASS, LIST, RETR (with
    its dot-stuffed line), DELE, QUIT."""
    session = read_cassette(CASSETTE).sessions[number]
    entries = [(e.side or "", e.data) for e in session.entries if e.kind == "line"]
    expected, said = _played(entries)
    assert said == expected
