"""Model replay of how the recorded server treats errors (docs/howto/cassettes.md,
"Model replay"): the wording of SASL and STLS refusals, and a TLS policy that refuses
plaintext logins.

Sessions are recorded through the recording proxy in front of a fakepop configured
with the behaviour, the model is derived from the cassette, and a client drives the
model with commands in an order never recorded: it must answer as the upstream does.
Small hand-written
cassettes check the derivation's rules (docs/howto/cassettes.md, "What model replay
derives") where a recording would hide them.
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
