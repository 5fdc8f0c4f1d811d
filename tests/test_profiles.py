"""Server profiles: greeting, capabilities and reply wording of real servers."""

from __future__ import annotations

import poplib
from pathlib import Path

import pytest

from fakepop import MailStore, Pop3ServerThread, ServerConfig, profiles
from tests.sansio import feed, lines, new_session

DOVECOT_TRANSCRIPTS = Path(__file__).parents[2] / "shared/reference/dovecot-2.3-transcripts.txt"
MAIL = ["Subject: one\n\n1\n", "Subject: two\n\n.dot\n", "Subject: three\n\n3\n"]


def session(config: ServerConfig, commands: bytes) -> list[bytes]:
    store = MailStore({"alice": {"password": "secret", "messages": MAIL}})
    protocol = new_session(store, config)
    return [bytes(protocol.greeting())[:-2], *lines(feed(protocol, [commands]))]


DOVECOT_SESSION = (
    b"USER alice\r\nPASS secret\r\nLIST 99\r\nDELE 1\r\nDELE 1\r\nRETR 1\r\n"
    b"LIST\r\nUIDL\r\nTOP 2 0\r\nRSET\r\nNOOP\r\nFOO\r\nUSER alice\r\nQUIT\r\n"
)


def test_dovecot_words_its_replies_as_the_recorded_server_does() -> None:
    out = session(profiles.dovecot(), DOVECOT_SESSION)
    assert out[0] == b"+OK Dovecot (Debian) ready."
    assert out[1:3] == [b"+OK", b"+OK Logged in."]
    assert out[3] == b"-ERR There's no message 99."
    assert out[4] == b"+OK Marked to be deleted."
    assert out[5:7] == [b"-ERR Message is deleted."] * 2
    assert out[7] == b"+OK 2 messages:"
    assert b"-ERR Unknown command: FOO" in out
    assert b"-ERR Unknown command: USER" in out
    assert out[-1] == b"+OK Logging out."  # RSET took the mark back
    deleted = session(profiles.dovecot(), b"USER alice\r\nPASS secret\r\nDELE 3\r\nQUIT\r\n")
    assert deleted[-1] == b"+OK Logging out, messages deleted."


def test_the_dovecot_profile_agrees_with_the_recorded_transcript() -> None:
    """Every reply line the profile gives here also appears, word for word, in the
    transcript recorded from a real Dovecot 2.3 (when that file is at hand)."""
    if not DOVECOT_TRANSCRIPTS.exists():
        pytest.skip("the recorded Dovecot transcripts are not beside this checkout")
    recorded = {
        line.split("S: ", 1)[1].removesuffix("\\r\\n").encode()
        for line in DOVECOT_TRANSCRIPTS.read_text().splitlines()
        if "] S: " in line
    }
    out = session(profiles.dovecot(), DOVECOT_SESSION)
    statuses = [line for line in out if line.startswith((b"+OK", b"-ERR"))]
    assert [line for line in statuses if line not in recorded] == []
    capa = session(profiles.dovecot(), b"CAPA\r\n")
    assert [c for c in capa[2:-1] if c not in recorded] == []


def test_dovecot_says_unknown_command_before_login() -> None:
    out = session(profiles.dovecot(), b"STAT\r\nQUIT\r\n")
    assert out[1:] == [b"-ERR Unknown command.", b"+OK Logging out"]


def test_gmail_and_outlook() -> None:
    gmail = session(profiles.gmail(), b"USER alice\r\nPASS secret\r\nLIST\r\nQUIT\r\n")
    assert gmail[0] == b"+OK Gpop ready for requests from 127.0.0.1 fakepop"
    assert gmail[1:3] == [b"+OK send PASS", b"+OK Welcome."]
    assert gmail[3].startswith(b"+OK 3 messages (")
    assert gmail[3].endswith(b" bytes)")
    assert gmail[-1] == b"+OK Farewell."
    wrong = session(profiles.gmail(), b"USER alice\r\nPASS nope\r\n")
    assert wrong[-1] == b"-ERR [AUTH] Username and password not accepted."
    outlook = session(profiles.outlook(), b"CAPA\r\nUSER alice\r\n")
    assert outlook[0].startswith(b"+OK The Microsoft Exchange POP3 service is ready. [")
    assert outlook[1:4] == [b"+OK", b"TOP", b"UIDL"]  # no login before TLS
    assert outlook[-1] == b"-ERR TLS is required before login; use STLS first"


def test_a_bare_rfc1939_server_makes_clients_fall_back() -> None:
    out = session(profiles.rfc1939(), b"CAPA\r\nAUTH PLAIN\r\nUSER alice\r\nPASS nope\r\n")
    assert out[1:3] == [b"-ERR Unknown command: CAPA", b"-ERR Unknown command: AUTH"]
    assert out[-1] == b"-ERR Authentication failed"  # no response codes


def test_profiles_are_only_defaults() -> None:
    config = profiles.profile("dovecot", autologout=5, texts={"quit": "Bye"})
    assert config.autologout == 5
    assert config.texts["quit"] == "Bye"
    assert config.texts["logged_in"] == "Logged in."
    with pytest.raises(ValueError, match="unknown server profile 'exim'"):
        profiles.profile("exim")
    with pytest.raises(ValueError, match="unknown texts"):
        ServerConfig(texts={"greeting": "hi"})


def test_poplib_against_the_dovecot_profile() -> None:
    with Pop3ServerThread({"alice": "secret"}, config=profiles.dovecot()) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        assert client.getwelcome() == b"+OK Dovecot (Debian) ready."
        assert set(client.capa()) >= {"TOP", "UIDL", "USER", "SASL", "RESP-CODES"}
        client.user("alice")
        assert client.pass_("secret") == b"+OK Logged in."
        assert client.quit() == b"+OK Logging out."


@pytest.mark.pop3({"alice": "secret"}, profile="gmail")
def test_the_marker_takes_a_profile(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    assert client.getwelcome().startswith(b"+OK Gpop ready")
    client.quit()
