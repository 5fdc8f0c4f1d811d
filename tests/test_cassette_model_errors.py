"""Model replay of how the recorded server treats errors (docs/howto/cassettes.md,
"Model replay"): hang-ups after bad commands, long lines, delays, the wording of SASL,
STLS and line-length refusals, and a TLS policy that refuses plaintext logins.

Sessions are recorded through the recording proxy in front of a fakepop configured
with the behaviour, the model is derived from the cassette, and a client drives the
model with commands in an order never recorded: it must answer as the upstream does.
Delays are measured on trio's clock under ``autojump_clock``. Small hand-written
cassettes check the derivation's rules (docs/howto/cassettes.md, "How the recorded
server treats errors") where a recording would hide them.
"""

from __future__ import annotations

import base64
import poplib
import shutil
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import fakepop
from fakepop import (
    Pop3ServerThread,
    RecordingProxy,
    ServerConfig,
    TlsCertificates,
    open_pop3_server,
    profiles,
    serve_in_thread,
)
from fakepop._cassette import CassetteEntry, CassetteWriter
from fakepop._cassette_rules import Conversation
from tests.clients import curl
from tests.trio_client import TrioPop3Client

MAIL: dict[str, Any] = {
    "alice": {"password": "pw", "messages": {"u-1": "Subject: a\n\nA\n", "u-2": "B" * 300}}
}
LOGIN = ["USER alice", "PASS pw"]
CLOSED = b"<closed>"


def _sized(prefix: str, octets: int, pad: str = "a") -> str:
    """A command line of exactly ``octets`` octets with its CRLF (RFC 2449 §4 counts
    it): ``prefix`` padded with ``pad``."""
    return prefix + pad * (octets - 2 - len(prefix))


def _multiline(line: str) -> bool:
    """Whether a +OK to ``line`` is multi-line (RFC 1939 §5, RFC 2449 §5)."""
    keyword, _, argument = line.partition(" ")
    return keyword in {"CAPA", "TOP", "RETR"} or (keyword in {"LIST", "UIDL"} and not argument)


def _converse(
    address: tuple[str, int], script: Sequence[str], context: ssl.SSLContext | None = None
) -> list[bytes]:
    """What the server answers to each line of ``script`` (poplib): a status line, or
    a multi-line reply's lines joined; STLS starts TLS when accepted. Then every line
    the server sent after the last reply, until it closed."""
    client = poplib.POP3(*address, timeout=10)
    statuses: list[bytes] = []
    for line in script:
        try:
            if _multiline(line):
                status, lines, _ = client._longcmd(line)
                statuses.append(b"|".join([status, *lines]))
                continue
            statuses.append(client._shortcmd(line))
        except poplib.error_proto as refused:
            statuses.append(refused.args[0])
            continue
        if line == "STLS" and context is not None:  # as poplib.POP3.stls, without its CAPA
            client.sock = context.wrap_socket(client.sock, server_hostname=client.host)
            client.file = client.sock.makefile("rb")
    while (rest := client.file.readline()) != b"":
        statuses.append(rest.rstrip(b"\r\n"))
    client.close()
    return [*statuses, CLOSED]


def _record(
    cassette: Path, config: ServerConfig, scripts: Sequence[Sequence[str]], *, tls: bool = False
) -> Path:
    """``scripts`` played through the recording proxy in front of a fakepop with
    ``config`` (and a certificate for STLS if ``tls``)."""
    certificates = TlsCertificates()
    server_context = certificates.server_context() if tls else None
    with Pop3ServerThread(MAIL, config=config, ssl_context=server_context) as upstream:
        proxy = RecordingProxy(
            cassette, upstream.address, upstream_ssl_context=certificates.client_context()
        )
        with serve_in_thread(proxy):
            for script in scripts:
                _converse(proxy.address, script, proxy.tls.client_context())
    return cassette


def _model_answers_as_upstream(
    cassette: Path, config: ServerConfig, script: Sequence[str], *, tls: bool = False
) -> list[bytes]:
    """What the model of ``cassette`` answers to ``script``, checked against what a
    fakepop with ``config`` answers."""
    certificates = TlsCertificates()
    context = certificates.server_context() if tls else None
    model = profiles.from_cassette(cassette)
    mailboxes = profiles.mailboxes_from_cassette(cassette, password="pw")
    with Pop3ServerThread(mailboxes, config=model, ssl_context=context) as server:
        replayed = _converse(server.address, script, certificates.client_context())
    with Pop3ServerThread(MAIL, config=config, ssl_context=context) as live:
        expected = _converse(live.address, script, certificates.client_context())
    assert replayed == expected
    return replayed


# -- hang-ups after bad commands -------------------------------------------------------------

BAD = ServerConfig(
    max_bad_commands=3,
    max_bad_commands_before_login=2,
    texts={
        "too_many_bad_commands": "Too many bad commands, goodbye.",
        "too_many_bad_commands_before_login": "Go away.",
    },
)


def test_the_model_hangs_up_after_as_many_bad_commands_as_the_recorded_server(
    tmp_path: Path,
) -> None:
    """A server that closes the connection after too many bad commands (RFC 1939 §3
    lets it end a session; Dovecot does) is modelled with its counts and notices, on
    commands it was never seen hanging up after."""
    cassette = _record(
        tmp_path / "bad.jsonl",
        BAD,
        [
            ["FOO", "BAR"],
            [*LOGIN, "LIST", "XYZZY", "NOOP", "RETR 9", "FROB", "TOP 1"],
            [*LOGIN, "LIST", "RETR 7", "RETR 8", "NOOP", "QUIT"],
        ],
    )
    config = profiles.from_cassette(cassette)
    assert (config.max_bad_commands, config.max_bad_commands_before_login) == (3, 2)
    assert config.texts["too_many_bad_commands"] == "Too many bad commands, goodbye."
    after = _model_answers_as_upstream(
        cassette, BAD, [*LOGIN, "LIST 7", "NOOP", "DELE 8", "BLAH", "UIDL 9"]
    )
    notice = b"-ERR Too many bad commands, goodbye."
    assert after[-3:] == [b"-ERR No such message: 9", notice, CLOSED]
    before = _model_answers_as_upstream(cassette, BAD, ["STAT", "RETR 1"])
    assert before[-2:] == [b"-ERR Go away.", CLOSED]
    # Below the limit the model answers on, as the upstream did.
    _model_answers_as_upstream(cassette, BAD, [*LOGIN, "RETR 7", "RETR 8", "NOOP", "QUIT"])


# -- long lines ------------------------------------------------------------------------------

LONG = ServerConfig(
    max_line_length=400,
    max_line_length_before_login=300,
    close_on_long_line=True,
    texts={
        "line_too_long": "Input line too long.",
        "line_too_long_before_login": "Input buffer full, aborting",
    },
)


def test_the_model_refuses_lines_as_long_as_the_recorded_server_refused(tmp_path: Path) -> None:
    """RFC 2449 §4: a server takes command lines of at least 255 octets; the recorded
    one took 300 before login and 400 after, refused longer ones in its own words, and
    closed the connection after them."""
    cassette = _record(
        tmp_path / "long.jsonl",
        LONG,
        [
            [_sized("USER ", 301)],
            [_sized("USER ", 300), *LOGIN, "LIST", _sized("TOP 1 ", 400, "0"), "QUIT"],
            [*LOGIN, _sized("TOP 1 ", 401, "0")],
        ],
    )
    config = profiles.from_cassette(cassette)
    assert (config.max_line_length, config.max_line_length_before_login) == (400, 300)
    assert config.close_on_long_line is True
    never_recorded = [*LOGIN, _sized("LIST ", 399, "0") + "1", _sized("RETR ", 401, "0")]
    after = _model_answers_as_upstream(cassette, LONG, never_recorded)
    assert after[-2:] == [b"-ERR Input line too long.", CLOSED]
    before = _model_answers_as_upstream(cassette, LONG, ["USER bob", _sized("APOP alice ", 301)])
    assert before[-2:] == [b"-ERR Input buffer full, aborting", CLOSED]


def test_the_limit_a_refusal_names_is_the_limit(tmp_path: Path) -> None:
    """fakepop's own refusal names its limit (RFC 2449 §4): a line of 350 octets
    refused "at most 300 octets" gives 300 (and ``{limit}`` in the text), not 349;
    a refusal that does not end the session keeps the connection open."""
    upstream = ServerConfig(max_line_length=300)
    cassette = _record(tmp_path / "named.jsonl", upstream, [[_sized("USER ", 350), "QUIT"]])
    config = profiles.from_cassette(cassette)
    assert config.max_line_length == 300
    assert config.close_on_long_line is False
    assert config.texts["line_too_long_before_login"] == (
        "Line too long (at most {limit} octets including CRLF)"
    )
    _model_answers_as_upstream(
        cassette, upstream, [_sized("USER ", 300), _sized("USER ", 301), "QUIT"]
    )


# -- refusals of SASL and STLS ---------------------------------------------------------------

WORDED = ServerConfig(
    sasl=("PLAIN", "LOGIN"),
    texts={
        "unsupported_mechanism": "[AUTH] Unsupported authentication mechanism.",
        "sasl_cancelled": "Authentication aborted by client.",
        "bad_sasl_response": "[AUTH] Invalid base64 in response",
        "bad_initial_response": "[AUTH] Invalid base64 data in initial response",
        "tls_active": "TLS is already active.",
    },
)


def test_the_model_words_sasl_and_stls_refusals_as_recorded(tmp_path: Path) -> None:
    """RFC 5034 §4: an unknown mechanism, an exchange cancelled with ``*``, a response
    and an initial response that are not base64; RFC 2595 §4: STLS with TLS active.
    Each is worded as the recorded server worded it, response code and all."""
    cassette = _record(
        tmp_path / "sasl.jsonl",
        WORDED,
        [
            ["CAPA", "AUTH FOO", "AUTH PLAIN", "*", "AUTH LOGIN", "!!", "AUTH PLAIN !!", "QUIT"],
            ["STLS", "STLS", "QUIT"],
        ],
        tls=True,
    )
    texts = profiles.from_cassette(cassette).texts
    assert {key: texts[key] for key in WORDED.texts} == dict(WORDED.texts)
    answered = _model_answers_as_upstream(
        cassette,
        WORDED,
        ["STLS", "AUTH LOGIN", "*", "AUTH PLAIN", "%%", "AUTH LOGIN @@", "STLS", "AUTH XY", "QUIT"],
        tls=True,
    )
    assert answered[-3] == b"-ERR [AUTH] Unsupported authentication mechanism."


def test_stls_refused_where_it_is_not_offered_is_an_unknown_command(tmp_path: Path) -> None:
    """RFC 2595 §4: without TLS there is no STLS; fakepop answers it as an unknown
    command, worded as the recorded server worded its refusal."""
    upstream = ServerConfig(texts={"unknown_before_login": "Unknown command."})
    cassette = _record(tmp_path / "nostls.jsonl", upstream, [["CAPA", "STLS", "QUIT"]])
    assert profiles.from_cassette(cassette).texts["unknown_before_login"] == "Unknown command."
    _model_answers_as_upstream(cassette, upstream, ["FOO", "STLS", "QUIT"])


# -- a TLS policy ----------------------------------------------------------------------------

REFUSAL = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
POLICY = ServerConfig(
    cleartext_login=False,
    sasl=("PLAIN", "CRAM-MD5"),
    texts={"cleartext_refused": REFUSAL, "auth_failed": "Authentication failed."},
)
PLAIN_PW = "AUTH PLAIN " + base64.b64encode(b"\0alice\0pw").decode()


def test_the_model_refuses_plaintext_logins_as_recorded_and_takes_them_after_stls(
    tmp_path: Path,
) -> None:
    """RFC 2595 §2.1, RFC 5034 §4: a server may refuse passwords without TLS. The
    recorded USER refused without TLS and taken over it, with the CAPA listings, give
    ``cleartext_login=False`` and the refusal's words; the model refuses AUTH PLAIN
    the same way, lists USER and PLAIN only over TLS, and logs in after STLS."""
    cassette = _record(
        tmp_path / "policy.jsonl",
        POLICY,
        [["CAPA", "USER alice", "STLS", "CAPA", "USER alice", "PASS no", *LOGIN, "LIST", "QUIT"]],
        tls=True,
    )
    config = profiles.from_cassette(cassette)
    assert config.cleartext_login is False
    assert config.texts["cleartext_refused"] == REFUSAL
    assert config.sasl == ("PLAIN", "CRAM-MD5")
    answered = _model_answers_as_upstream(
        cassette, POLICY, [PLAIN_PW, "USER alice", "STLS", PLAIN_PW, "STAT", "QUIT"], tls=True
    )
    assert answered[:2] == [b"-ERR [AUTH] " + REFUSAL.encode()] * 2
    assert answered[3].startswith(b"+OK")


def test_a_server_that_takes_no_login_without_tls_requires_it(tmp_path: Path) -> None:
    """RFC 2595 §2.1: CAPA without TLS listed no login at all, not even CRAM-MD5,
    which sends no password: the model gets ``require_tls=True`` and refuses APOP and
    CRAM-MD5 without TLS in the recorded words, which it never saw them refused in."""
    upstream = ServerConfig(
        require_tls=True, sasl=("PLAIN", "CRAM-MD5"), texts={"tls_required": "Use STLS."}
    )
    cassette = _record(
        tmp_path / "require.jsonl",
        upstream,
        [["CAPA", "USER alice", "STLS", "CAPA", *LOGIN, "LIST", "QUIT"]],
        tls=True,
    )
    config = profiles.from_cassette(cassette)
    assert config.require_tls is True
    answered = _model_answers_as_upstream(
        cassette,
        upstream,
        ["APOP alice 0123456789abcdef0123456789abcdef", "AUTH CRAM-MD5", "STLS", *LOGIN, "QUIT"],
        tls=True,
    )
    assert answered[:2] == [b"-ERR [AUTH] Use STLS."] * 2


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_logs_in_with_a_password_only_after_stls(tmp_path: Path) -> None:
    """curl's --ssl-reqd sends STLS before it logs in (RFC 2595 §4) and then gets the
    mail with SASL PLAIN; without TLS the model does not offer PLAIN, as the recorded
    server did not, so curl cannot send the password in the clear."""
    cassette = await trio.to_thread.run_sync(
        lambda: _record(
            tmp_path / "curl.jsonl",
            POLICY,
            [["CAPA", "STLS", "CAPA", *LOGIN, "LIST", "QUIT"]],
            tls=True,
        )
    )
    certificates = TlsCertificates()
    ca = tmp_path / "ca.pem"
    certificates.write_ca_pem(ca)
    mailboxes = profiles.mailboxes_from_cassette(cassette, password="pw")
    model = profiles.from_cassette(cassette)
    async with open_pop3_server(
        mailboxes, config=model, ssl_context=certificates.server_context()
    ) as server:
        url = f"pop3://alice:pw@127.0.0.1:{server.port}/"
        options = ["--login-options", "AUTH=PLAIN", "--cacert", str(ca)]
        secure = await curl("--ssl-reqd", *options, url)
        plain = await curl(*options, url)
    assert secure.returncode == 0, secure.stderr
    assert secure.stdout.splitlines() == [b"1 17", b"2 302"]
    assert plain.returncode != 0
    tls_session, plain_session = server.transcript.sessions
    assert tls_session.commands()[:3] == ["CAPA", "STLS", "CAPA"]
    assert "AUTH PLAIN" in tls_session.commands()
    assert not any(line.startswith(("AUTH", "USER", "PASS")) for line in plain_session.commands())


# -- delays, on trio's clock -----------------------------------------------------------------

SLOW = ServerConfig(failed_login_delay=2.0, lock_wait=5.0, close_on_in_use=True)


async def _client(address: tuple[str, int]) -> TrioPop3Client:
    client = TrioPop3Client(await trio.open_tcp_stream(*address))
    await client.line()
    return client


async def _timed(client: TrioPop3Client, line: str) -> tuple[bytes, float]:
    start = trio.current_time()
    status = await client.command(line)
    return status, trio.current_time() - start


async def _slow_sessions(address: tuple[str, int]) -> list[tuple[bytes, float]]:
    """A refused APOP and a refused AUTH exchange, then a second login to a locked
    mailbox: each status with how long it took."""
    async with await _client(address) as first:
        timed = [await _timed(first, "APOP alice 0123456789abcdef0123456789abcdef")]
        timed.append(await _timed(first, "AUTH PLAIN"))
        timed.append(await _timed(first, base64.b64encode(b"\0alice\0wrong").decode()))
        for line in LOGIN:
            timed.append(await _timed(first, line))
        async with await _client(address) as second:
            for line in LOGIN:
                timed.append(await _timed(second, line))
            assert await second.closed_by_server()
        timed.append(await _timed(first, "QUIT"))
    return timed


async def test_the_model_waits_as_long_as_the_recorded_server(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A refused login answered 2 s late and an [IN-USE] 5 s late, then a hang-up
    (RFC 2449 §8.1 IN-USE; Dovecot waits so): the model waits as long on trio's clock
    for a refused APOP and SASL exchange it never saw, and hangs up as the upstream."""
    cassette = tmp_path / "slow.jsonl"
    async with open_pop3_server(MAIL, config=SLOW) as upstream:
        async with fakepop.record_to(cassette, upstream.address) as proxy:
            async with await _client(proxy.address) as first:
                for line in ["USER alice", "PASS wrong", *LOGIN]:
                    await first.command(line)
                await first.multiline("LIST")
                async with await _client(proxy.address) as second:
                    for line in LOGIN:
                        await second.command(line)
                    assert await second.closed_by_server()
                await first.command("QUIT")
    config = profiles.from_cassette(cassette)
    assert (config.failed_login_delay, config.lock_wait) == (2.0, 5.0)
    assert config.close_on_in_use is True
    mailboxes = profiles.mailboxes_from_cassette(cassette, password="pw")
    async with open_pop3_server(mailboxes, config=config) as model:
        replayed = await _slow_sessions(model.address)
    async with open_pop3_server(MAIL, config=SLOW) as live:
        expected = await _slow_sessions(live.address)
    assert replayed == expected
    assert [took for _, took in replayed] == pytest.approx([2.0, 0, 2.0, 0, 0, 0, 5.0, 0])


# -- the rules, on hand-written cassettes ----------------------------------------------------

Step = tuple[str, str] | tuple[str, str, float]


def _cassette(path: Path, *sessions: Sequence[Step]) -> Path:
    """A cassette as the recording proxy would write it: each session's steps are
    ``("C", line)`` from the client, ``("S", line)`` from the server, ``("tls", "")``,
    ``("close", "server" or "client")``, each 0.01 s after the one before unless a
    third item says how long after."""
    writer = CassetteWriter(path, upstream="pop.example.com:110", upstream_tls=False, bodies="keep")
    for number, steps in enumerate(sessions, start=1):
        conversation = Conversation()
        t = 0.0
        writer.write(CassetteEntry(kind="connect", session=number, t=t))
        writer.write(_server(conversation, number, t, "+OK ready"))
        for side, text, *after in steps:
            t = round(t + (after[0] if after else 0.01), 6)
            if side == "C":
                note = conversation.client_line(text.encode() + b"\r\n")
                flags = ("not-base64",) if note.not_base64 else ()
                redacted = "secret" if note.redacted else None
                entry = CassetteEntry(
                    kind="line", session=number, t=t, side="client", data=note.stored,
                    state=note.state, redacted=redacted, flags=flags,
                )  # fmt: skip
            elif side == "S":
                entry = _server(conversation, number, t, text)
            elif side == "tls":
                entry = CassetteEntry(kind="tls", session=number, t=t)
            else:
                by = "server" if text == "server" else "client"
                entry = CassetteEntry(kind="close", session=number, t=t, by=by)
            writer.write(entry)
    writer.close()
    return path


def _server(conversation: Conversation, number: int, t: float, text: str) -> CassetteEntry:
    data = text.encode() + b"\r\n"
    note = conversation.server_line(data)
    return CassetteEntry(
        kind="line", session=number, t=t, side="server", data=data, state=note.state,
        answers=None if note.payload else note.answers, payload=note.payload,
    )  # fmt: skip


def _bad(count: int, *, hang_up: bool) -> list[Step]:
    """``count`` unknown commands after login, and the server's hang-up or a QUIT."""
    steps: list[Step] = [("C", "USER alice"), ("S", "+OK"), ("C", "PASS ****"), ("S", "+OK in")]
    for number in range(count):
        steps += [("C", f"X{number}"), ("S", "-ERR Unknown command.")]
    if hang_up:
        return [*steps, ("S", "-ERR Too many bad commands."), ("close", "server")]
    return [*steps, ("C", "QUIT"), ("S", "+OK Bye"), ("close", "server")]


def test_a_session_answered_on_after_more_bad_commands_raises_the_limit(tmp_path: Path) -> None:
    """The limit is above every count the server answered on from: a hang-up at a
    count below that says nothing, one above it is the limit (module docstring of
    fakepop._cassette_limits)."""
    lower = _cassette(tmp_path / "a.jsonl", _bad(2, hang_up=True), _bad(3, hang_up=False))
    assert profiles.from_cassette(lower).max_bad_commands is None
    higher = _cassette(
        tmp_path / "b.jsonl", _bad(2, hang_up=True), _bad(3, hang_up=False), _bad(4, hang_up=True)
    )
    assert profiles.from_cassette(higher).max_bad_commands == 4
    assert profiles.from_cassette(higher).texts["too_many_bad_commands"] == "Too many bad commands."


def test_hang_ups_at_different_counts_give_the_one_no_session_went_past(tmp_path: Path) -> None:
    """Hang-ups at 3 and at 5 bad commands contradict each other: the session hung up
    on at 5 was answered on after 3, so 3 is not the limit, and 5 is (module docstring
    of fakepop._cassette_limits)."""
    cassette = _cassette(tmp_path / "c.jsonl", _bad(3, hang_up=True), _bad(5, hang_up=True))
    assert profiles.from_cassette(cassette).max_bad_commands == 5


def test_a_close_long_after_the_last_reply_is_no_hang_up(tmp_path: Path) -> None:
    """RFC 1939 §3: an idle client is logged out; a server that closed 30 s after a
    bad command closed for that, not for the command."""
    steps = _bad(2, hang_up=False)[:-3]
    cassette = _cassette(tmp_path / "idle.jsonl", [*steps, ("close", "server", 30.0)])
    assert profiles.from_cassette(cassette).max_bad_commands is None
    hung_up = _cassette(tmp_path / "quick.jsonl", [*steps, ("close", "server", 0.01)])
    assert profiles.from_cassette(hung_up).max_bad_commands == 2


def test_a_refused_login_delay_is_its_median_lateness_to_a_tenth(tmp_path: Path) -> None:
    """Each refused login's lateness beside its session's other replies (their median
    time), the median of those, rounded to 0.1 s; under 0.1 s is no delay."""

    def refused(late: float) -> list[Step]:
        return [
            ("C", "USER alice"), ("S", "+OK", 0.02), ("C", "PASS ****"),
            ("S", "-ERR [AUTH] Authentication failed.", late), ("C", "NOOP"),
            ("S", "-ERR Unknown command.", 0.04), ("C", "QUIT"), ("S", "+OK", 0.03),
            ("close", "server"),
        ]  # fmt: skip

    cassette = _cassette(tmp_path / "d.jsonl", refused(2.04), refused(1.98), refused(3.5))
    assert profiles.from_cassette(cassette).failed_login_delay == 2.0
    quick = _cassette(tmp_path / "e.jsonl", refused(0.05), refused(0.06))
    assert profiles.from_cassette(quick).failed_login_delay == 0.0


def test_a_refusal_the_lengths_do_not_bear_out_is_not_for_length(tmp_path: Path) -> None:
    """A long line of 350 octets refused in other words than lines of 500 and 600,
    where a line of 450 was taken: only the 500 and 600 were too long (the engine has
    one limit and one text), so the limit is 499 and the 350's refusal words nothing."""
    steps: list[Step] = [("C", "USER alice"), ("S", "+OK"), ("C", "PASS ****"), ("S", "+OK in")]
    for octets, status in [
        (350, "-ERR Invalid size."),
        (450, "+OK top follows"),
        (500, "-ERR Input line too long."),
        (600, "-ERR Input line too long."),
    ]:
        steps += [("C", _sized("TOP 1 ", octets, "0")), ("S", status)]
        if status.startswith("+OK"):
            steps.append(("S", "."))
    cassette = _cassette(
        tmp_path / "f.jsonl", [*steps, ("C", "QUIT"), ("S", "+OK"), ("close", "server")]
    )
    config = profiles.from_cassette(cassette)
    assert config.max_line_length == 499
    assert config.texts["line_too_long"] == "Input line too long."
    assert config.close_on_long_line is False


def test_a_long_line_answered_is_within_the_limit(tmp_path: Path) -> None:
    """RFC 2449 §4 asks for 255 octets at least; a server seen taking a line of 400
    is modelled taking it too, before login as after."""
    line = _sized("USER ", 400)
    cassette = _cassette(
        tmp_path / "taken.jsonl",
        [("C", line), ("S", "+OK"), ("C", "QUIT"), ("S", "+OK"), ("close", "server")],
    )
    config = profiles.from_cassette(cassette)
    assert (config.max_line_length, config.max_line_length_before_login) == (400, None)


def test_a_plaintext_pass_refused_in_other_words_than_a_wrong_password_over_tls(
    tmp_path: Path,
) -> None:
    """RFC 2595 §2.1: PASS refused without TLS with another text than a wrong
    password gets over TLS is a refusal of plaintext passwords."""
    login: list[Step] = [("C", "USER alice"), ("S", "+OK")]
    cassette = _cassette(
        tmp_path / "g.jsonl",
        [*login, ("C", "PASS ****"), ("S", "-ERR [AUTH] Use TLS."), ("close", "client")],
        [
            ("C", "STLS"), ("S", "+OK go"), ("tls", ""), *login, ("C", "PASS ****"),
            ("S", "-ERR [AUTH] Wrong."), ("close", "client"),
        ],
    )  # fmt: skip
    config = profiles.from_cassette(cassette)
    assert config.cleartext_login is False
    assert config.texts["cleartext_refused"] == "Use TLS."
    assert config.texts["auth_failed"] == "Wrong."
    # Without a wrong password over TLS to tell it from, a refused PASS is just that.
    alone = _cassette(
        tmp_path / "h.jsonl",
        [*login, ("C", "PASS ****"), ("S", "-ERR [AUTH] Use TLS."), ("close", "client")],
    )
    assert profiles.from_cassette(alone).cleartext_login is True


def test_a_mechanism_fakepop_lacks_is_listed_but_not_offered(tmp_path: Path) -> None:
    """RFC 5034 §4: a server may list mechanisms fakepop does not implement (GSSAPI);
    the model lists them as recorded and offers the ones it has."""
    capa = [("C", "CAPA"), ("S", "+OK"), ("S", "USER"), ("S", "SASL GSSAPI PLAIN"), ("S", ".")]
    cassette = _cassette(tmp_path / "gssapi.jsonl", [*capa, ("close", "client")])
    config = profiles.from_cassette(cassette)
    assert config.sasl == ("PLAIN",)
    assert config.capabilities() == ["USER", "SASL GSSAPI PLAIN"]
