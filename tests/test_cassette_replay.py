"""Replaying cassettes: model replay serves commands that were never recorded from
the mail the cassette shows (docs/howto/cassettes.md, "Model replay"), and the pytest
marker ``pop3_cassette`` replays, or records with ``--fakepop-record``."""

from __future__ import annotations

import poplib
import textwrap
from collections.abc import Callable
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
    # What the upstream listed: no STLS, since it had no certificate. The SASL line
    # lists what the model offers at the time, as fakepop's does.
    assert config.capa_listing == (*dovecot_capa, "USER", "SASL")
    assert config.capabilities()[-1] == "SASL PLAIN LOGIN CRAM-MD5"
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


# -- the wording of replies ---------------------------------------------------------------

Script = list[tuple[str, bool]]  # a command line, and whether its reply is multi-line
MAIL = {"bob": {"password": "pw", "messages": {"u-1": "Subject: a\n\nA\n", "u-2": "B" * 300}}}
# Recorded: every reply whose wording the engine takes from its texts, in one order.
RECORDED: list[Script] = [
    [("BLAH", False), ("APOP bob 0123456789abcdef0123456789abcdef", False), ("QUIT", False)],
    [("USER bob", False), ("PASS wrong", False), ("QUIT", False)],
    [
        ("RETR 1", False),
        ("PASS pw", False),
        ("USER bob", False),
        ("PASS pw", False),
        ("STAT", False),
        ("LIST", True),
        ("RETR 1", True),
        ("RETR 2", True),
        ("DELE 1", False),
        ("RETR 1", False),
        ("LIST 3", False),
        ("XYZZY", False),
        ("USER bob", False),
        ("RSET", False),
        ("DELE 2", False),
        ("QUIT", False),
    ],
    [("USER bob", False), ("PASS pw", False), ("QUIT", False)],
]
# Never recorded in this order, nor with these numbers and keywords.
UNRECORDED: Script = [
    ("FOO", False),
    ("APOP eve 00000000000000000000000000000000", False),
    ("USER bob", False),
    ("PASS pw", False),
    ("DELE 2", False),
    ("RSET", False),
    ("LIST 1", False),
    ("DELE 2", False),
    ("LIST", True),
    ("RETR 7", False),
    ("TOP 2 0", False),
    ("DELE 2", False),
    ("RETR 1", True),
    ("FROB", False),
    ("PASS pw", False),
    ("QUIT", False),
]


def _converse(address: tuple[str, int], script: Script) -> list[bytes]:
    """The status line of each reply to ``script``, -ERR included."""
    client = poplib.POP3(*address, timeout=10)
    statuses = [client.getwelcome()]
    for line, multiline in script:
        try:
            reply = client._longcmd(line) if multiline else client._shortcmd(line)
        except poplib.error_proto as refused:
            statuses.append(refused.args[0])
            continue
        statuses.append(reply[0] if isinstance(reply, tuple) else reply)
    client.close()
    return statuses


def _record(tmp_path: Path, config: fakepop.ServerConfig, scripts: list[Script]) -> Path:
    tmp_path.mkdir(exist_ok=True)
    cassette = tmp_path / "worded.jsonl"
    with Pop3ServerThread(MAIL, config=config) as upstream:
        with serve_in_thread(RecordingProxy(cassette, upstream.address)) as proxy:
            for script in scripts:
                _converse(proxy.address, script)
    return cassette


@pytest.mark.parametrize("profile", [profiles.dovecot, profiles.gmail])
def test_the_model_words_unrecorded_replies_as_the_recorded_server(
    tmp_path: Path, profile: Callable[..., fakepop.ServerConfig]
) -> None:
    """Each reply the engine words from its texts (docs/howto/cassettes.md, "Model
    replay") is worded as the recorded server worded it, with the numbers and keyword
    of the new situation filled in: USER, PASS and QUIT (RFC 1939 §4, §6, §7), LIST,
    RETR, DELE and RSET (§5), a message that does not exist or is deleted, an unknown
    command, and the response codes (RFC 2449 §8)."""
    upstream = profile(failed_login_delay=0, lock_wait=0)
    cassette = _record(tmp_path, upstream, RECORDED)
    model = profiles.from_cassette(cassette, failed_login_delay=0)
    mailboxes = profiles.mailboxes_from_cassette(cassette, password="pw")
    with Pop3ServerThread(mailboxes, config=model) as server:
        replayed = _converse(server.address, UNRECORDED)
    with Pop3ServerThread(MAIL, config=upstream) as live:
        expected = _converse(live.address, UNRECORDED)
    assert replayed == expected


def test_response_codes_follow_what_the_replies_show(tmp_path: Path) -> None:
    """A server whose failed login carries no ``[AUTH]`` sends no response codes
    (RFC 2449 §8), even when no CAPA was recorded to say so."""
    upstream = fakepop.ServerConfig(resp_codes=False)
    cassette = _record(tmp_path, upstream, [RECORDED[1]])
    assert profiles.from_cassette(cassette).resp_codes is False
    coded = _record(tmp_path / "coded", fakepop.ServerConfig(), [RECORDED[1]])
    assert profiles.from_cassette(coded).resp_codes is True


def test_an_ambiguous_text_keeps_the_default(tmp_path: Path) -> None:
    """A value the engine fills in that the recorded text shows twice cannot be told
    from the wording around it: that text stays fakepop's own."""
    upstream = fakepop.ServerConfig(texts={"dele": "Message {number} of 1 marked"})
    cassette = _record(
        tmp_path,
        upstream,
        [[("USER bob", False), ("PASS pw", False), ("DELE 1", False), ("DELE 2", False)]],
    )
    # DELE 1 is ambiguous ("1" twice); DELE 2 alone would derive the template.
    assert profiles.from_cassette(cassette).texts["dele"] == "Message {number} of 1 marked"
    once = _record(
        tmp_path / "once", upstream, [[("USER bob", False), ("PASS pw", False), ("DELE 1", False)]]
    )
    assert "dele" not in profiles.from_cassette(once).texts


def test_a_refusal_that_may_not_be_about_the_message_keeps_the_default(tmp_path: Path) -> None:
    """TOP refused by a server without TOP (RFC 2449 §6.1) names a message the
    recording never listed: it is not taken for the wording of a missing message."""
    cassette = _record(
        tmp_path,
        fakepop.ServerConfig(top=False),
        [[("USER bob", False), ("PASS pw", False), ("TOP 1 0", False)]],
    )
    assert "no_such_message" not in profiles.from_cassette(cassette).texts


def test_the_shipped_dovecot_cassette_words_replies_as_dovecot() -> None:
    """The real Dovecot's wording of USER, PASS, LIST, RETR, DELE and QUIT."""
    texts = profiles.from_cassette(DOVECOT).texts
    assert dict(texts) == {
        "user": "",
        "logged_in": "Logged in.",
        "list": "{messages}:",
        "retr": "{size} octets",
        "dele": "Marked to be deleted.",
        "quit_update": "Logging out, messages deleted.",
    }
    mailboxes = profiles.mailboxes_from_cassette(DOVECOT, password="pw")
    with Pop3ServerThread(mailboxes, config=profiles.from_cassette(DOVECOT)) as server:
        statuses = _converse(
            server.address,
            [
                ("USER alice", False),
                ("PASS pw", False),
                ("LIST", True),
                ("RETR 2", True),
                ("DELE 2", False),
                ("QUIT", False),
            ],
        )
    assert statuses[1:] == [
        b"+OK",
        b"+OK Logged in.",
        b"+OK 2 messages:",
        b"+OK 54 octets",
        b"+OK Marked to be deleted.",
        b"+OK Logging out, messages deleted.",
    ]


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
