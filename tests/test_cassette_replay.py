"""Replaying cassettes: model replay serves commands that were never recorded from
the mail the cassette shows (docs/howto/cassettes.md, "Model replay"), and the pytest
marker ``pop3_cassette`` replays, or records with ``--fakepop-record``."""

from __future__ import annotations

import poplib
import textwrap
from pathlib import Path

import pytest

import fakepop
from fakepop import Pop3ServerThread, RecordingProxy, profiles, serve_in_thread

DOVECOT = Path(__file__).resolve().parent.parent / "examples/cassettes/dovecot-2.3.jsonl"
LEAN = ("-p", "no:asyncio", "-p", "no:trio", "-p", "no:hypothesispytest", "-p", "no:xdist")


def _recorded(tmp_path: Path) -> Path:
    """A cassette of a fakepop with Dovecot's profile: CAPA before and after login,
    LIST, UIDL and RETR of one message of two (the other seen in LIST only)."""
    cassette = tmp_path / "model.jsonl"
    mail = {"bob": {"password": "pw", "messages": {"u-1": "Subject: a\n\nA\n", "u-2": "B" * 300}}}
    config = profiles.dovecot(failed_login_delay=0, greeting="Upstream says hi.")
    with Pop3ServerThread(mail, config=config) as upstream:
        with serve_in_thread(RecordingProxy(cassette, upstream.address)) as proxy:
            client = poplib.POP3(proxy.host, proxy.port, timeout=10)
            client.capa()
            client.user("bob")
            client.pass_("pw")
            client.capa()
            client.list()
            client.uidl()
            client.retr(1)
            client._shortcmd("NOOP extra")  # Dovecot's leniency, recorded
            client.quit()
    return cassette


def test_the_model_serves_what_was_never_recorded(tmp_path: Path) -> None:
    """TOP, LIST n, UIDL n, RETR of the message only LIST saw, DELE, RSET and QUIT
    all answer from the derived mailbox (RFC 1939 §5, §7), with the recorded
    server's greeting, CAPA and leniency."""
    cassette = _recorded(tmp_path)
    config = profiles.from_cassette(cassette)
    assert config.greeting == "Upstream says hi."
    assert config.apop is False
    dovecot_capa = ("CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE")
    # What the upstream listed: no STLS, since it had no certificate.
    assert config.capa_listing == (*dovecot_capa, "USER", "SASL PLAIN LOGIN CRAM-MD5")
    assert config.capa_listing_after_login == dovecot_capa
    assert config.lenient_arguments is True
    assert config.sasl == ("PLAIN", "LOGIN", "CRAM-MD5")
    mailboxes = profiles.mailboxes_from_cassette(cassette, password="new")
    with Pop3ServerThread(mailboxes, config=config) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        assert client.getwelcome() == b"+OK Upstream says hi."
        client.user("bob")
        client.pass_("new")
        assert client.stat() == (2, 17 + 302)
        assert client.list(2) == b"+OK 2 302"
        assert client.uidl(1) == b"+OK 1 u-1"
        assert client.top(1, 0)[1] == [b"Subject: a", b""]
        synthetic = client.retr(2)
        assert synthetic[2] == 302  # the size LIST gave, though RETR 2 was never seen
        client.dele(1)
        assert client.stat() == (1, 302)
        client.rset()
        assert client.stat() == (2, 319)
        client.dele(2)
        client.quit()
    assert server.store["bob"].uids == ["u-1"]


def test_the_shipped_dovecot_cassette_reads_as_dovecot() -> None:
    config = profiles.from_cassette(DOVECOT)
    assert config.greeting == "Dovecot (Debian) ready."
    assert not config.apop
    assert list(profiles.mailboxes_from_cassette(DOVECOT)) == ["alice"]


# -- the pytest marker -------------------------------------------------------------------

SOURCE = """
import poplib
import pytest

def session(server, command="STAT"):
    client = poplib.POP3(server.host, server.port, timeout=10)
    client.user("alice")
    client.pass_("pw")
    reply = client._shortcmd(command)
    client.quit()
    return reply

@pytest.mark.pop3_cassette("cassettes/alice.jsonl")
def test_stat(pop3_cassette_server):
    assert session(pop3_cassette_server) == b"+OK 1 5"
"""


@pytest.fixture(autouse=True)
def _this_fakepop(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner pytest runs in a subprocess: make it import this fakepop.
    monkeypatch.setenv("PYTHONPATH", str(Path(fakepop.__file__).resolve().parent.parent))


def _run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(textwrap.dedent(source))
    return pytester.runpytest_subprocess(*LEAN, *args)


def test_the_marker_records_once_then_replays(pytester: pytest.Pytester) -> None:
    """``--fakepop-record=once`` records a missing cassette through the upstream;
    the next run (``none``, the default) replays it without the upstream."""
    mail = {"alice": {"password": "pw", "messages": ["Hey\n"]}}
    with Pop3ServerThread(mail) as upstream:
        recorded = _run(
            pytester,
            SOURCE,
            "--fakepop-record=once",
            f"--fakepop-upstream={upstream.host}:{upstream.port}",
        )
    recorded.assert_outcomes(passed=1)
    cassette = pytester.path / "cassettes/alice.jsonl"
    assert "PASS ****" in cassette.read_text()
    replayed = pytester.runpytest_subprocess(*LEAN)
    replayed.assert_outcomes(passed=1)


def test_a_deviation_fails_the_test_showing_both_lines(pytester: pytest.Pytester) -> None:
    """Strict replay: a command that was not recorded gets -ERR, and the test fails
    with the expected and the actual client line."""
    mail = {"alice": {"password": "pw", "messages": ["Hey\n"]}}
    with Pop3ServerThread(mail) as upstream:
        _run(
            pytester,
            SOURCE,
            "--fakepop-record=all",
            f"--fakepop-upstream={upstream.host}:{upstream.port}",
        )
    deviating = SOURCE.replace(
        'session(pop3_cassette_server) == b"+OK 1 5"', 'session(pop3_cassette_server, "NOOP")'
    )
    result = _run(pytester, deviating)
    # The client's error fails the test; the deviation fails its teardown too.
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ServerError*deviated from the cassette*"])
    result.stdout.fnmatch_lines(
        [
            "*expected the client to send b'STAT\\\\r\\\\n', got b'NOOP\\\\r\\\\n'*",
        ]
    )


def test_recording_without_an_upstream_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKEPOP_UPSTREAM", raising=False)
    result = _run(pytester, SOURCE, "--fakepop-record=all")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*recording a cassette needs the real server*"])


def test_a_missing_cassette_names_its_path(pytester: pytest.Pytester) -> None:
    result = _run(pytester, SOURCE)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cassettes/alice.jsonl: cannot read the cassette*"])
