"""TLS: STLS (RFC 2595), POP3S (RFC 8314), the plaintext-login policy (RFC 5034 section
4), failed handshakes, through poplib, curl, openssl and raw sockets."""

from __future__ import annotations

import functools
import poplib
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import pytest
import trio
import trio.testing

from fakepop import (
    EndReason,
    MailStore,
    Pop3Server,
    Pop3ServerThread,
    ServerConfig,
    TlsCertificates,
    open_pop3_server,
)

CERTS = TlsCertificates()
MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: a\n\nhello\n"]}}
TIMEOUT = 10


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[Pop3Server]:
    config = getattr(request, "param", None) or ServerConfig()
    async with open_pop3_server(
        MAILBOXES, config=config, ssl_context=CERTS.server_context(), pop3s_port=0
    ) as server:
        yield server


def capabilities(client: poplib.POP3) -> set[str]:
    return set(client.capa())


async def in_thread(function, *args):  # type: ignore[no-untyped-def]
    return await trio.to_thread.run_sync(function, *args)


async def test_stls_upgrades_and_capa_follows_the_state(server: Pop3Server) -> None:
    """checklist #45, #46, #48: STLS listed only where it would be accepted; after it,
    CAPA omits STLS; in TRANSACTION it is never listed."""

    def session() -> None:
        client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        assert "STLS" in capabilities(client)
        assert client.stls(CERTS.client_context()) == b"+OK Begin TLS negotiation now"
        assert "STLS" not in capabilities(client)
        client.user("alice")
        client.pass_("secret")
        assert "STLS" not in capabilities(client)
        assert client.stat() == (1, 21)
        client.quit()

    await in_thread(session)
    await server.wait_idle()
    (record,) = server.transcript.sessions
    assert record.quit
    assert any(e.text.startswith("TLS started: TLSv1.") for e in record.entries)


async def test_a_second_stls_is_refused(server: Pop3Server) -> None:
    """checklist #50"""

    def session() -> bytes:
        client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        client.stls(CERTS.client_context())
        try:
            client._shortcmd("STLS")
        except poplib.error_proto as refusal:
            return refusal.args[0]  # type: ignore[no-any-return]
        finally:
            client.quit()
        raise AssertionError("a second STLS was accepted")

    assert await in_thread(session) == b"-ERR TLS is already active"


async def test_pop3s_greets_after_the_handshake_and_refuses_stls(server: Pop3Server) -> None:
    """checklist #3 and #50: on the POP3S port the handshake comes first; STLS there
    gets -ERR and CAPA does not list it."""

    def session() -> None:
        client = poplib.POP3_SSL(
            "localhost", server.pop3s_port, context=CERTS.client_context(), timeout=TIMEOUT
        )
        assert client.getwelcome().startswith(b"+OK fakepop POP3 server ready.")
        assert "STLS" not in capabilities(client)
        with pytest.raises(poplib.error_proto, match="TLS is already active"):
            client._shortcmd("STLS")
        client.user("alice")
        client.pass_("secret")
        assert client.retr(1)[1] == [b"Subject: a", b"", b"hello"]
        client.quit()

    await in_thread(session)


async def test_commands_pipelined_after_stls_are_discarded(server: Pop3Server) -> None:
    """checklist #49: octets after STLS's CRLF are not commands. The USER pipelined
    behind STLS is dropped, so a PASS after the handshake has no USER to follow."""

    def session() -> bytes:
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as raw:
            reader = raw.makefile("rb")
            assert reader.readline().startswith(b"+OK")
            raw.sendall(b"STLS\r\nUSER alice\r\nCAPA\r\n")
            assert reader.readline() == b"+OK Begin TLS negotiation now\r\n"
            context = CERTS.client_context()
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"PASS secret\r\n")
                return tls.recv(1024)

    assert await in_thread(session) == b"-ERR PASS must come right after a successful USER\r\n"


async def test_stls_after_user_starts_the_login_again(server: Pop3Server) -> None:
    def session() -> None:
        client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        client.user("alice")
        client.stls(CERTS.client_context())
        with pytest.raises(poplib.error_proto, match="PASS must come right after"):
            client.pass_("secret")
        client.user("alice")
        client.pass_("secret")
        client.quit()

    await in_thread(session)


@pytest.mark.parametrize("server", [ServerConfig(cleartext_login=False)], indirect=True)
async def test_plaintext_login_can_wait_for_tls(server: Pop3Server) -> None:
    """checklist #16 in the configuration RFC 5034 section 4 requires: without TLS,
    USER is neither listed nor accepted; APOP (no plaintext password) still is."""

    def session() -> None:
        client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        assert "USER" not in capabilities(client)
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] Plaintext authentication"):
            client.user("alice")
        client.stls(CERTS.client_context())
        assert "USER" in capabilities(client)
        client.user("alice")
        client.pass_("secret")
        client.quit()
        apop = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        apop.apop("alice", "secret")
        apop.quit()

    await in_thread(session)


@pytest.mark.parametrize("server", [ServerConfig(require_tls=True)], indirect=True)
async def test_every_login_can_require_tls(server: Pop3Server) -> None:
    def session() -> None:
        client = poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] TLS is required"):
            client.apop("alice", "secret")
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\] TLS is required"):
            client.user("alice")
        client.stls(CERTS.client_context())
        client.apop("alice", "secret")
        client.quit()

    await in_thread(session)


async def test_a_failed_handshake_is_recorded_and_the_server_goes_on(
    server: Pop3Server,
) -> None:
    def garbage_after_stls() -> None:
        with socket.create_connection((server.host, server.port), timeout=TIMEOUT) as raw:
            reader = raw.makefile("rb")
            reader.readline()
            raw.sendall(b"STLS\r\n")
            assert reader.readline().startswith(b"+OK")
            raw.sendall(b"this is not a TLS ClientHello\r\n" * 4)
            assert reader.read() == b""  # the server hangs up

    def plaintext_on_pop3s() -> None:
        with socket.create_connection((server.host, server.pop3s_port), timeout=TIMEOUT) as raw:
            raw.sendall(b"CAPA\r\n")
            assert raw.makefile("rb").read() == b""

    await in_thread(garbage_after_stls)
    await in_thread(plaintext_on_pop3s)
    await server.wait_idle()
    sessions = server.transcript.sessions
    assert [s.ended_by for s in sessions] == [EndReason.TLS_FAILED, EndReason.TLS_FAILED]
    assert all("TLS handshake failed" in s.render() for s in sessions)
    assert server.errors == []

    def still_serving() -> None:
        client = poplib.POP3_SSL(
            "localhost", server.pop3s_port, context=CERTS.client_context(), timeout=TIMEOUT
        )
        client.quit()

    await in_thread(still_serving)


async def test_a_stalled_handshake_ends_after_the_autologout_time(
    autojump_clock: object,
) -> None:
    config = ServerConfig(autologout=30)
    async with open_pop3_server(
        MAILBOXES, config=config, ssl_context=CERTS.server_context(), pop3s_port=0
    ) as server:
        stream = await trio.open_tcp_stream(server.host, server.pop3s_port)
        async with stream:
            start = trio.current_time()
            assert await stream.receive_some(100) == b""
            assert trio.current_time() - start == pytest.approx(30)
    assert server.transcript.sessions[0].ended_by is EndReason.TLS_FAILED


async def test_tls_over_memory_streams() -> None:
    server = Pop3Server(MAILBOXES, ssl_context=CERTS.server_context())
    client_raw, server_raw = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(functools.partial(server.handle_stream, implicit_tls=True), server_raw)
        client = trio.SSLStream(client_raw, CERTS.client_context(), server_hostname="localhost")
        greeting = await client.receive_some(1000)
        assert greeting.startswith(b"+OK")
        await client.send_all(b"QUIT\r\n")
        assert await client.receive_some(1000) == b"+OK Logging out\r\n"
        await client.aclose()


def test_the_certificates_are_trusted_only_through_their_ca(tmp_path: Path) -> None:
    pem = CERTS.write_ca_pem(tmp_path / "ca.pem")
    assert pem.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert CERTS.ca_pem == pem.read_bytes()
    assert CERTS.client_context().verify_mode is ssl.CERT_REQUIRED
    assert CERTS.server_context().minimum_version >= ssl.TLSVersion.TLSv1_2
    assert TlsCertificates("mail.test").identities == ("mail.test",)


@pytest.mark.parametrize(
    ("identities", "common_name"),
    [
        ((), "localhost"),
        (("mail.test", "localhost"), "mail.test"),
        (("a" * 60 + ".example.org", "localhost"), "localhost"),  # RFC 5280: 64 at most
    ],
)
async def test_the_certificate_names_its_first_identity_as_its_common_name(
    identities: tuple[str, ...], common_name: str
) -> None:
    """docs/howto/tls.md: the subject's CommonName is the first name the certificate is
    for that fits in one (RFC 5280 appendix A.1), as on certificates public CAs issue,
    so that clients which check it (fetchmail refuses a certificate without one) trust
    the server too."""
    certificates = TlsCertificates(*identities)
    async with open_pop3_server(
        MAILBOXES, ssl_context=certificates.server_context(), pop3s_port=0
    ) as server:

        def subject() -> dict[str, str]:
            client = poplib.POP3_SSL(
                "localhost",
                server.pop3s_port,
                context=certificates.client_context(),
                timeout=TIMEOUT,
            )
            certificate = client.sock.getpeercert()
            client.quit()
            assert certificate is not None
            return dict(pair for rdn in certificate["subject"] for pair in rdn)

        assert (await in_thread(subject)).get("commonName") == common_name


def test_a_pop3s_port_needs_a_tls_context() -> None:
    """Refused when the server is made, before anything listens."""
    with pytest.raises(ValueError, match="POP3S port needs"):
        Pop3Server(MAILBOXES, pop3s_port=0)


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_curl_with_stls_and_with_pop3s(server: Pop3Server, tmp_path: Path) -> None:
    ca = str(CERTS.write_ca_pem(tmp_path / "ca.pem"))
    for url, options in (
        (f"pop3://alice:secret@localhost:{server.port}/1", ["--ssl-reqd"]),
        (f"pop3s://alice:secret@localhost:{server.pop3s_port}/1", []),
    ):
        result = await trio.run_process(
            ["curl", "-sS", "--max-time", "10", "--cacert", ca, *options, url],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"Subject: a\r\n\r\nhello\r\n"
    await server.wait_idle()
    stls, pop3s = server.transcript.sessions
    assert "STLS" in stls.commands()
    assert "TLS started" in pop3s.render()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_openssl_s_client_starttls_pop3(server: Pop3Server, tmp_path: Path) -> None:
    ca = str(CERTS.write_ca_pem(tmp_path / "ca.pem"))
    result = await trio.run_process(
        [
            "openssl", "s_client", "-connect", f"localhost:{server.port}",
            "-starttls", "pop3", "-CAfile", ca, "-verify_return_error", "-quiet",
        ],
        stdin=b"USER alice\r\nPASS secret\r\nSTAT\r\nQUIT\r\n",
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )  # fmt: skip
    assert b"+OK 1 21" in result.stdout, result.stderr
    assert result.returncode == 0


@pytest.mark.pop3(MAILBOXES, tls=True)
def test_the_fixture_serves_stls_and_pop3s_when_asked(
    pop3_server: Pop3ServerThread, pop3_tls: TlsCertificates
) -> None:
    plain = poplib.POP3(pop3_server.host, pop3_server.port, timeout=TIMEOUT)
    plain.stls(pop3_tls.client_context())
    plain.quit()
    secure = poplib.POP3_SSL(
        "localhost", pop3_server.pop3s_port, context=pop3_tls.client_context(), timeout=TIMEOUT
    )
    secure.user("alice")
    secure.pass_("secret")
    assert secure.stat() == (1, 21)
    secure.quit()


@pytest.mark.pop3(MAILBOXES)
def test_without_the_tls_option_the_fixture_offers_no_stls(pop3_server: Pop3ServerThread) -> None:
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=TIMEOUT)
    assert "STLS" not in capabilities(client)
    client.quit()


async def test_stopping_the_server_ends_tls_sessions_without_update() -> None:
    store = MailStore({"alice": {"password": "secret", "messages": ["Subject: a\n\nhello\n"]}})
    async with open_pop3_server(
        store, ssl_context=CERTS.server_context(), pop3s_port=0
    ) as server:
        raw = await trio.open_tcp_stream(server.host, server.pop3s_port)
        client = trio.SSLStream(raw, CERTS.client_context(), server_hostname="localhost")
        await client.receive_some(1000)
        await client.send_all(b"USER alice\r\nPASS secret\r\nDELE 1\r\n")
        received = b""
        while received.count(b"\r\n") < 3:
            received += await client.receive_some(1000)
        assert store["alice"].locked
    # The server has gone: the client reads to the end (or finds the stream broken).
    with suppress(trio.BrokenResourceError):
        while await client.receive_some(1000):
            pass
    await trio.aclose_forcefully(client)
    assert not store["alice"].locked
    assert len(store["alice"]) == 1
    assert server.transcript.sessions[0].ended_by is EndReason.SERVER_STOPPED
