"""Cassettes (docs/howto/cassettes.md): record a server through the proxy with real clients,
then replay the cassette to the same clients, which must see the same octets.

The upstream is a fakepop with a non-default profile (Dovecot's) and faults, so what
is replayed is not what a default fakepop would say anyway.
"""

from __future__ import annotations

import json
import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import trio

import fakepop
from fakepop import CassetteServer, TlsCertificates, faults, open_pop3_server, profiles
from fakepop.errors import CassetteError, ExpectationError, ServerError
from tests.clients import CLIENT_TIMEOUT, curl

MAILBOXES: dict[str, Any] = {
    "alice": {
        "password": "s3cret",
        "messages": [
            "Subject: one\n\nHello\n.dotted line\n",
            "Subject: two\n\n" + "x" * 70 + "\n",
        ],
    }
}

Session = Callable[[poplib.POP3], list[object]]


def _poplib_session(client: poplib.POP3) -> list[object]:
    replies: list[object] = [client.getwelcome(), client.capa()]
    replies += [client.user("alice"), client.pass_("s3cret"), client.stat(), client.list()]
    replies += [client.retr(1), client.top(2, 0), client.uidl(), client.noop()]
    try:
        client.dele(2)  # the fault answers -ERR
    except poplib.error_proto as exc:
        replies.append(exc.args)
    replies.append(client.quit())
    return replies


def _connect(
    address: tuple[str, int], mode: str, context: Any
) -> poplib.POP3:  # "plain", "stls" or "pop3s"
    host, port = address
    if mode == "pop3s":
        return poplib.POP3_SSL(host, port, timeout=10, context=context)
    client = poplib.POP3(host, port, timeout=10)
    if mode == "stls":
        client.stls(context=context)
    return client


def _upstream(certificates: TlsCertificates) -> fakepop.Pop3Server:
    server = fakepop.Pop3Server(
        MAILBOXES,
        config=profiles.dovecot(failed_login_delay=0, sasl=("PLAIN", "XOAUTH2")),
        ssl_context=certificates.server_context(),
        pop3s_port=0,
    )
    server.faults.add(faults.wrong_list_size(delta=3))
    server.faults.add(faults.error("DELE", code="SYS/TEMP", text="Try later"))
    return server


async def _record(
    cassette: Path, mode: str, run: Callable[[tuple[str, int], TlsCertificates], object]
) -> object:
    certificates = TlsCertificates()
    upstream = _upstream(certificates)
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream.serve)
        address = upstream.pop3s_address if mode == "pop3s" else upstream.address
        async with fakepop.record_to(
            cassette,
            address,
            upstream_tls=mode == "pop3s",
            upstream_ssl_context=certificates.client_context(),
        ) as proxy:
            result = await trio.to_thread.run_sync(run, proxy.address, proxy.tls)
        nursery.cancel_scope.cancel()
    upstream.check()
    return result


async def _replay(
    cassette: Path, mode: str, run: Callable[[tuple[str, int], TlsCertificates], object]
) -> tuple[object, CassetteServer]:
    certificates = TlsCertificates()
    server = CassetteServer(cassette, ssl_context=certificates.server_context(), pop3s_port=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        address = (server.host, server.pop3s_port) if mode == "pop3s" else server.address
        result = await trio.to_thread.run_sync(run, address, certificates)
        await server.wait_idle()  # the session counted, not cut off by the cancel
        nursery.cancel_scope.cancel()
    return result, server


@pytest.mark.parametrize("mode", ["plain", "stls", "pop3s"])
async def test_poplib_sees_the_recorded_octets_again(tmp_path: Path, mode: str) -> None:
    """Every reply poplib got from the real server it gets again from the cassette,
    byte for byte: greeting, CAPA, the faulty LIST sizes, RETR with its dot-stuffed
    line, TOP, UIDL, an -ERR with its response code (RFC 2449 §8), QUIT."""
    cassette = tmp_path / "session.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> list[object]:
        return _poplib_session(_connect(address, mode, tls.client_context()))

    recorded = await _record(cassette, mode, run)
    replayed, server = await _replay(cassette, mode, run)
    assert replayed == recorded
    assert server.errors == []
    assert server.sessions_replayed == 1
    assert b"Dovecot (Debian) ready." in recorded[0]  # type: ignore[index, operator]


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("mode", ["plain", "stls", "pop3s"])
async def test_curl_sees_the_recorded_octets_again(tmp_path: Path, mode: str) -> None:
    """curl's LIST (with the faulty sizes) and RETR replay to the same output."""
    cassette = tmp_path / "curl.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> list[bytes]:
        ca = tmp_path / f"ca-{address[1]}.pem"
        tls.write_ca_pem(ca)
        scheme = "pop3s" if mode == "pop3s" else "pop3"
        options = ["--cacert", str(ca)] + (["--ssl-reqd"] if mode == "stls" else [])
        outputs = []
        for path in ("/", "/1"):
            url = f"{scheme}://alice:s3cret@127.0.0.1:{address[1]}{path}"
            result = trio.from_thread.run(curl, *options, url)
            assert result.returncode == 0, result.stderr
            outputs.append(result.stdout)
        return outputs

    recorded = await _record(cassette, mode, run)
    replayed, server = await _replay(cassette, mode, run)
    assert replayed == recorded
    assert server.errors == []
    assert server.sessions_replayed == 2


async def test_a_deviating_client_gets_err_and_the_test_an_expectation_error(
    tmp_path: Path,
) -> None:
    """Strict replay: the first client line that differs from the cassette gets -ERR
    and fails the test with the expected and the actual line (docs/howto/cassettes.md)."""
    cassette = tmp_path / "session.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> list[object]:
        return _poplib_session(_connect(address, "plain", None))

    await _record(cassette, "plain", run)

    def deviate(address: tuple[str, int], tls: TlsCertificates) -> bytes:
        client = _connect(address, "plain", None)
        client.capa()
        with pytest.raises(poplib.error_proto) as refused:
            client.user("mallory")
        client.close()
        return refused.value.args[0]  # type: ignore[no-any-return]

    refusal, server = await _replay(cassette, "plain", deviate)
    assert refusal.startswith(b"-ERR ")
    assert b"USER mallory" in refusal
    [error] = server.errors
    assert isinstance(error, ExpectationError)
    assert "expected the client to send b'USER alice\\r\\n'" in str(error)
    assert "got b'USER mallory\\r\\n'" in str(error)
    with pytest.raises(ServerError, match="deviated from the cassette"):
        server.check()


async def test_a_redacted_password_matches_any_password(tmp_path: Path) -> None:
    """PASS is stored as ``PASS ****`` and matches by keyword and shape on replay,
    so a test needs no real password."""
    cassette = tmp_path / "session.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> object:
        client = _connect(address, "plain", None)
        client.user("alice")
        replies = [client.pass_("s3cret"), client.stat()]
        client.quit()
        return replies

    recorded = await _record(cassette, "plain", run)
    assert "s3cret" not in cassette.read_text()

    def other_password(address: tuple[str, int], tls: TlsCertificates) -> object:
        client = _connect(address, "plain", None)
        client.user("alice")
        replies = [client.pass_("anything else"), client.stat()]
        client.quit()
        return replies

    replayed, server = await _replay(cassette, "plain", other_password)
    assert replayed == recorded
    assert server.errors == []


def _entries(cassette: Path) -> list[dict[str, Any]]:
    return [json.loads(row) for row in cassette.read_text().splitlines()]


async def test_the_cassette_records_state_answers_and_tls(tmp_path: Path) -> None:
    """The header names format, version and upstream; each line has its direction,
    session, POP3 state and the command a status line answers; STLS is a ``tls``
    entry (docs/howto/cassettes.md, "The format")."""
    cassette = tmp_path / "session.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> list[object]:
        return _poplib_session(_connect(address, "stls", tls.client_context()))

    await _record(cassette, "stls", run)
    header, *entries = _entries(cassette)
    assert header["format"] == "fakepop-cassette"
    assert header["version"] == 1
    assert header["redaction"] == {"secrets": "****", "bodies": "keep"}
    assert entries[0] == {"kind": "connect", "session": 1, "t": entries[0]["t"], "tls": False}
    assert entries[-1]["kind"] == "close"
    kinds = [e["kind"] for e in entries]
    assert kinds.count("tls") == 1
    pass_reply = next(e for e in entries if e.get("answers") == "PASS ****")
    assert pass_reply["state"] == "TRANSACTION"
    retr = [e["text"] for e in entries if e.get("payload") and e["state"] == "TRANSACTION"]
    assert "..dotted line\r\n" in retr


@pytest.mark.parametrize("mode", ["synthetic", "hash"])
async def test_bodies_can_be_redacted(tmp_path: Path, mode: str) -> None:
    """``redact_bodies``: synthetic keeps every RETR/TOP line's size and structure,
    hash replaces each line with a digest; neither keeps the message text."""
    cassette = tmp_path / "session.jsonl"
    async with open_pop3_server(MAILBOXES) as upstream:
        async with fakepop.record_to(cassette, upstream.address, redact_bodies=mode) as proxy:

            def run() -> tuple[bytes, list[bytes], int]:
                client = poplib.POP3(proxy.host, proxy.port, timeout=10)
                client.user("alice")
                client.pass_("s3cret")
                result = client.retr(1)
                client.quit()
                return result

            await trio.to_thread.run_sync(run)
    text = cassette.read_text()
    assert "Hello" not in text
    assert "Subject: one" not in text
    body = [e for e in _entries(cassette)[1:] if e.get("redacted") == "body"]
    if mode == "synthetic":
        assert [e["text"] for e in body] == [
            "xxxxxxxxxxxx\r\n",
            "xxxxx\r\n",
            ".xxxxxxxxxxxx\r\n",
        ]
    else:
        assert len(body) == 3
        assert all(len(e["text"]) == 18 for e in body)


async def test_the_recording_cli_writes_a_cassette_and_the_ca(tmp_path: Path) -> None:
    """``fakepop record --upstream ... --cassette ... --listen 127.0.0.1:0 --ca-file``
    prints where it listens, relays, and stops on SIGINT with every entry written."""
    cassette, ca = tmp_path / "cli.jsonl", tmp_path / "ca.pem"
    async with open_pop3_server(MAILBOXES) as upstream:
        host, port = upstream.address
        command = [
            sys.executable,
            "-m",
            "fakepop",
            "record",
            "--upstream",
            f"{host}:{port}",
            "--cassette",
            str(cassette),
            "--listen",
            "127.0.0.1:0",
            "--ca-file",
            str(ca),
        ]
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                lambda task_status: trio.run_process(
                    command, stdout=-1, check=False, task_status=task_status
                )
            )
            assert process.stdout is not None
            first = b""
            while not first.endswith(b"\n"):
                first += await process.stdout.receive_some(1)
            listen_port = int(first.decode().rsplit(":", 1)[1])

            def run() -> object:
                client = poplib.POP3("127.0.0.1", listen_port, timeout=10)
                client.user("alice")
                client.pass_("s3cret")
                return client.quit()

            await trio.to_thread.run_sync(run)
            process.send_signal(signal.SIGINT)
        assert process.returncode == 0
    assert first.startswith(b"fakepop listening on 127.0.0.1:")
    assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    lines = [e for e in _entries(cassette)[1:] if e["kind"] == "line"]
    assert [e["text"] for e in lines if e["from"] == "client"] == [
        "USER alice\r\n",
        "PASS ****\r\n",
        "QUIT\r\n",
    ]


# -- bad cassettes ----------------------------------------------------------------------

GOOD = [
    '{"format": "fakepop-cassette", "version": 1, "fakepop": "0.1.0", "upstream": "h:1"}',
    '{"kind": "connect", "session": 1, "t": 0, "tls": false}',
    '{"kind": "line", "session": 1, "t": 0, "from": "server", "state": "AUTHORIZATION",'
    ' "text": "+OK hi\\r\\n"}',
    '{"kind": "close", "session": 1, "t": 0, "by": "client"}',
]


@pytest.mark.parametrize(
    ("rows", "line", "reason"),
    [
        (GOOD[:3], None, "session 1 never ends"),
        ([*GOOD[:2], GOOD[2][:40]], 3, "not JSON"),
        ([GOOD[0].replace('"version": 1', '"version": 2'), *GOOD[1:]], 1, "version 2"),
        (['{"format": "har"}'], 1, "not a fakepop cassette"),
        (GOOD[:1] + GOOD[2:], 2, "session 1 was never connected"),
        ([*GOOD, GOOD[2]], 5, "session 1 has ended already"),
        ([*GOOD[:2], GOOD[2].replace("AUTHORIZATION", "DANCING"), *GOOD[3:]], 3, "DANCING"),
        ([*GOOD[:1], GOOD[1].replace('"session": 1', '"session": 2')], 2, "numbered 1, 2"),
    ],
)
def test_a_bad_cassette_names_its_file_and_line(
    tmp_path: Path, rows: list[str], line: int | None, reason: str
) -> None:
    """Truncated, of another version, or edited by hand into something no recording
    could be: CassetteError says which file and line, and why."""
    cassette = tmp_path / "bad.jsonl"
    cassette.write_text("\n".join(rows) + "\n")
    with pytest.raises(CassetteError, match=reason) as raised:
        fakepop.read_cassette(cassette)
    assert raised.value.path == str(cassette)
    assert raised.value.line == line
    where = str(cassette) if line is None else f"{cassette}, line {line}"
    assert str(raised.value).startswith(where + ": ")


def test_a_cassette_cut_in_the_middle_of_a_line_is_reported(tmp_path: Path) -> None:
    cassette = tmp_path / "cut.jsonl"
    cassette.write_text("\n".join(GOOD)[:-10])
    with pytest.raises(CassetteError, match="line 4: the last line has no line end"):
        fakepop.read_cassette(cassette)


def test_the_minimal_cassette_is_valid(tmp_path: Path) -> None:
    cassette = tmp_path / "good.jsonl"
    cassette.write_text("\n".join(GOOD) + "\n")
    read = fakepop.read_cassette(cassette)
    assert [s.number for s in read.sessions] == [1]
    assert [e.data for e in read.sessions[0].lines()] == [b"+OK hi\r\n"]


PERL_CLIENT = r"""
use Net::POP3;
my ($host, $port) = @ARGV;
my $pop = Net::POP3->new($host, Port => $port, Timeout => 10) or die "connect";
print "banner: ", $pop->banner();
my $count = $pop->login("alice", "s3cret");
print "count: $count\n";
my $list = $pop->list();
print "size $_: $list->{$_}\n" for sort keys %$list;
my $uidl = $pop->uidl();
print "uid $_: $uidl->{$_}\n" for sort keys %$uidl;
print @{ $pop->get(1) };
$pop->quit();
"""


def _perl_has_net_pop3() -> bool:
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MNet::POP3", "-e", "1"], check=False).returncode == 0


@pytest.mark.skipif(not _perl_has_net_pop3(), reason="perl's Net::POP3 is not installed")
async def test_perl_net_pop3_sees_the_recorded_octets_again(tmp_path: Path) -> None:
    """A third client, Perl's Net::POP3: banner, login count, LIST, UIDL and RETR
    replay to the same output."""
    cassette = tmp_path / "perl.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> bytes:
        result = subprocess.run(
            ["perl", "-e", PERL_CLIENT, address[0], str(address[1])],
            capture_output=True,
            timeout=20,
            check=True,
        )
        return result.stdout

    recorded = await _record(cassette, "plain", run)
    replayed, server = await _replay(cassette, "plain", run)
    assert replayed == recorded
    assert server.errors == []
    assert b"banner: Dovecot (Debian) ready." in recorded  # type: ignore[operator]
    assert b"..dotted" not in recorded  # type: ignore[operator]
    assert b".dotted line" in recorded  # type: ignore[operator]


# -- fetchmail ----------------------------------------------------------------------------
# One poll, no daemon, from a generated rcfile. fetchmail appends what it fetched to a
# BSMTP file (the SMTP transaction it would have had with a mail server), so what a run
# delivered is one file to compare.

FETCHMAIL_TLS = {
    "plain": "sslproto ''",  # fetchmail would otherwise take the STLS that CAPA offers
    "stls": "sslproto 'tls1.2+' sslcertck",  # STLS, and no mail without it (RFC 2595 §4)
    "pop3s": "ssl sslproto 'tls1.2+' sslcertck",  # TLS from the first octet (RFC 8314 §3)
}
#: alice's messages as BSMTP's DATA holds them: CRLF, dot-stuffed (RFC 5321 §4.5.2).
FETCHED_ONE = b"Subject: one\r\n\r\nHello\r\n..dotted line\r\n"
FETCHED_TWO = b"Subject: two\r\n\r\n" + b"x" * 70 + b"\r\n"


class FetchmailRun(NamedTuple):
    status: int  # fetchmail's exit status
    delivered: bytes  # the BSMTP file it wrote
    log: str  # what it said (--verbose), to explain a failure


def _fetchmail(
    home: Path,
    address: tuple[str, int],
    tls: TlsCertificates,
    *,
    mode: str,
    flags: list[str],
    seen: list[str],
) -> FetchmailRun:
    """One fetchmail poll of alice's mail at ``address``, with ``home`` as its home
    directory and an idfile that lists the ``seen`` UIDs."""
    ca, bsmtp = tls.write_ca_pem(home / "ca.pem"), home / "delivered.bsmtp"
    # fetchmail's record of the UIDs it has fetched decides which messages it asks
    # for, so every run starts from the same one.
    idfile = home / "fetchids"
    idfile.write_text("".join(f"alice@localhost {uid}\n" for uid in seen))
    rcfile = home / "fetchmailrc"
    # "poll localhost": fetchmail checks the certificate for the name it polls, and
    # only among the certificate's DNS names, not its IP address. "invisible": no
    # Received header, whose time would differ between the runs. The lock (pidfile)
    # is by default one per user, which would keep parallel tests from polling.
    rcfile.write_text(
        "set no syslog\n"
        "set invisible\n"
        f'set idfile "{idfile}"\n'
        f'set pidfile "{home / "fetchmail.pid"}"\n'
        f"poll localhost with proto POP3 port {address[1]} timeout {CLIENT_TIMEOUT}\n"
        "    user alice there with password s3cret is alice here\n"
        f'    options {FETCHMAIL_TLS[mode]} sslcertfile "{ca}" bsmtp "{bsmtp}"\n'
    )
    for private in (rcfile, idfile):
        private.chmod(0o600)  # fetchmail refuses them readable by others
    result = subprocess.run(
        ["fetchmail", "--fetchmailrc", str(rcfile), "--verbose", *flags],
        env={"HOME": str(home), "PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        capture_output=True,
        timeout=2 * CLIENT_TIMEOUT,
        check=False,
    )
    delivered = bsmtp.read_bytes() if bsmtp.exists() else b""
    return FetchmailRun(result.returncode, delivered, (result.stdout + result.stderr).decode())


def _bsmtp_messages(bsmtp: bytes) -> list[bytes]:
    """The messages in a BSMTP file, each as its DATA section holds it."""
    return re.findall(rb"^DATA\r\n(.*?)^\.\r\n", bsmtp, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
@pytest.mark.parametrize(
    ("mode", "flags", "seen", "fetched"),
    [
        # RETR each message; the faulty LIST sizes tell fetchmail both came short.
        pytest.param("plain", ["--keep"], [], [FETCHED_ONE, FETCHED_TWO], id="plain-keep"),
        # fetchmail's default deletes what it fetched: DELE 1 gets -ERR [SYS/TEMP]
        # (RFC 3206 §4), a temporary failure, and the poll ends there.
        pytest.param("stls", [], [], [FETCHED_ONE], id="stls-delete"),
        # With UIDL, the idfile's uid000001 is mail fetchmail has seen: only 2 is new.
        pytest.param("pop3s", ["--uidl", "--keep"], ["uid000001"], [FETCHED_TWO], id="pop3s-uidl"),
    ],
)
async def test_fetchmail_delivers_the_recorded_mail_again(
    tmp_path: Path, mode: str, flags: list[str], seen: list[str], fetched: list[bytes]
) -> None:
    """A fourth client, fetchmail: what it delivers from the strict replay is, octet for
    octet, what it delivered from the recording, and it exits the same way."""
    cassette = tmp_path / "fetchmail.jsonl"

    def run(address: tuple[str, int], tls: TlsCertificates) -> FetchmailRun:
        home = Path(tempfile.mkdtemp(prefix="fetchmail-", dir=tmp_path))
        return _fetchmail(home, address, tls, mode=mode, flags=flags, seen=seen)

    recorded = await _record(cassette, mode, run)
    assert isinstance(recorded, FetchmailRun)
    assert _bsmtp_messages(recorded.delivered) == fetched, recorded.log
    replayed, server = await _replay(cassette, mode, run)
    assert isinstance(replayed, FetchmailRun)
    assert server.errors == [], replayed.log  # every command as recorded (strict replay)
    assert server.sessions_replayed == 1
    assert (replayed.status, replayed.delivered) == (recorded.status, recorded.delivered)


DOVECOT = Path(__file__).resolve().parent.parent / "examples/cassettes/dovecot-2.3.jsonl"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes are Python 3.11+")
def test_the_blocks_own_error_stays_and_carries_the_deviation() -> None:
    """serve_in_thread, like Pop3ServerThread: the client's own error is what the test
    reports, the deviation that caused it a note on it."""

    def deviate(server: CassetteServer) -> None:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user("bob")
        finally:
            client.close()

    server = CassetteServer(DOVECOT)
    with pytest.raises(poplib.error_proto) as raised, fakepop.serve_in_thread(server):
        deviate(server)
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "expected the client to send b'USER alice\\r\\n', got b'USER bob\\r\\n'" in notes


async def test_malformed_lines_are_relayed_and_replayed_as_received(tmp_path: Path) -> None:
    """A server that ends RETR's lines with a bare LF (RFC 1939 §3 wants CRLF) reaches
    the client unchanged, is flagged ``bare-lf`` in the cassette, and replays to the
    same octets."""
    cassette = tmp_path / "bare-lf.jsonl"
    script = b"USER alice\r\nPASS s3cret\r\nRETR 1\r\nQUIT\r\n"

    def run(address: tuple[str, int], tls: TlsCertificates) -> bytes:
        with socket.create_connection(address, timeout=10) as conn:
            conn.sendall(script)  # pipelined (RFC 2449 §6.6)
            received = b""
            while chunk := conn.recv(65536):
                received += chunk
        return received

    async with open_pop3_server(MAILBOXES) as upstream:
        upstream.faults.add(faults.bare_lf("RETR"))
        async with fakepop.record_to(cassette, upstream.address) as proxy:
            recorded = await trio.to_thread.run_sync(run, proxy.address, proxy.tls)
    assert b"Hello\n" in recorded
    assert b"Hello\r\n" not in recorded
    flagged = [e for e in _entries(cassette)[1:] if "bare-lf" in e.get("flags", [])]
    assert "Hello\n" in [e["text"] for e in flagged]
    replayed, server = await _replay(cassette, "plain", run)
    assert replayed == recorded
    assert server.errors == []
