"""Faults and logins whose outcome or record must be exactly what went over the wire.

- QUIT and faults (RFC 1939 §6): a fault before QUIT runs (``close_before``,
  ``error``, ``stall``) ends the session before UPDATE, so nothing is deleted; a reply
  fault on QUIT (``close_after``, ``cut_payload``) acts after UPDATE: the mail is gone
  and the client never hears the whole ``+OK``.
- One credential rule for every login method (RFC 4616 §2, RFC 6856 §2.2), with no
  exception inside the server for odd digests (RFC 1939 §7, RFC 2195).
- A fault on a SASL step ends the exchange (RFC 5034 §4).
- The transcript records a fault when it fires and a reply when it was written.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import poplib

import pytest
import trio

import fakepop._credentials
from fakepop import EndReason, EntryKind, MailStore, Pop3ServerThread, faults, open_pop3_server
from tests.clients import CLIENT_TIMEOUT, RawPop3, mailboxes
from tests.sansio import new_session
from tests.trio_client import TrioPop3Client

ALICE_UIDS = ["uid000001", "uid000002", "uid000003", "uid000004"]


def logged_in_raw(server: Pop3ServerThread, user: str = "alice") -> RawPop3:
    client = RawPop3(server)  # type: ignore[arg-type]
    client.line()
    client.send(f"USER {user}\r\nPASS secret\r\n".encode())
    client.line()
    assert client.line().startswith(b"+OK")
    return client


# -- QUIT and faults ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [faults.close_before("QUIT"), faults.error("QUIT"), faults.close_before("QUIT", reset=True)],
    ids=["close_before", "error", "reset_before"],
)
def test_a_fault_before_quit_runs_deletes_nothing(fault: faults.Fault) -> None:
    with Pop3ServerThread(mailboxes()) as server:
        server.faults.add(fault)
        with logged_in_raw(server) as client:
            client.send(b"DELE 1\r\n")
            assert client.line().startswith(b"+OK")
            client.send(b"QUIT\r\n")
            try:
                heard = client.line()
            except (EOFError, ConnectionError):
                heard = b""
            assert not heard.startswith(b"+OK")
        server.wait_idle()
        assert server.store["alice"].uids == ALICE_UIDS
        (record,) = server.transcript.sessions
        assert record.removed == ()
        assert record.ended_by is EndReason.FAULT


@pytest.mark.parametrize(
    ("fault", "heard"),
    [
        (faults.close_after("QUIT"), b"+OK Logging out, 1 message deleted\r\n"),
        (faults.cut_payload("QUIT", after_bytes=0), b""),
        (faults.cut_payload("QUIT", after_bytes=7), b"+OK Log"),
    ],
    ids=["close_after", "cut_at_0", "cut_at_7"],
)
def test_a_reply_fault_on_quit_acts_after_update(fault: faults.Fault, heard: bytes) -> None:
    """QUIT applied, +OK (partly) lost: the case that makes a client fetch twice. The
    transcript shows the status line only if it went out whole."""
    with Pop3ServerThread(mailboxes()) as server:
        server.faults.add(fault)
        with logged_in_raw(server) as client:
            client.send(b"DELE 1\r\nQUIT\r\n")
            assert client.line().startswith(b"+OK")
            assert client._file.read() == heard
        server.wait_idle()
        assert server.store["alice"].uids == ALICE_UIDS[1:]
        (record,) = server.transcript.sessions
        assert record.removed == ("uid000001",)
        assert record.ended_by is EndReason.FAULT
        written = heard.endswith(b"\r\n")
        assert record.replies_to("QUIT") == ([heard.decode().rstrip()] if written else [])


# -- the transcript in wire order --------------------------------------------------------
async def test_a_delayed_reply_is_recorded_after_its_fault_when_written(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with open_pop3_server(mailboxes()) as server:
        server.faults.add(faults.latency(5.0).on("NOOP"))
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with TrioPop3Client(stream) as client:
            await client.line()
            await client.command("USER alice")
            await client.command("PASS secret")
            assert await client.command("NOOP") == b"+OK"
            await client.command("QUIT")
        await server.wait_idle()
    (record,) = server.transcript.sessions
    entries = record.entries
    kinds = [(entry.kind, entry.text) for entry in entries]
    fault_at = kinds.index((EntryKind.EVENT, "fault: latency 5.0 s (+ up to 0.0 s)"))
    assert kinds[fault_at - 1] == (EntryKind.CLIENT, "NOOP")
    assert kinds[fault_at + 1] == (EntryKind.SERVER, "+OK")
    assert entries[fault_at + 1].at - entries[fault_at].at >= 5.0


# -- one credential rule -----------------------------------------------------------------
def plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


LOGIN_B64 = base64.b64encode(b"alice").decode(), base64.b64encode(b"IX").decode()


@pytest.mark.parametrize(
    ("lines", "before"),
    [
        (["USER alice", "PASS IX"], 1),
        ([f"AUTH PLAIN {plain('alice', 'IX')}"], 0),
        (["AUTH LOGIN", *LOGIN_B64], 2),
    ],
    ids=["USER/PASS", "AUTH PLAIN", "AUTH LOGIN"],
)
def test_every_plaintext_method_compares_passwords_after_saslprep(
    lines: list[str], before: int
) -> None:
    """RFC 4013 §2.1: U+00AD SOFT HYPHEN maps to nothing, so "I\u00adX" and "IX" are
    the same password for USER/PASS and for the SASL mechanisms alike."""
    with Pop3ServerThread({"alice": "I\u00adX"}) as server, RawPop3(server) as client:  # type: ignore[arg-type]
        client.line()
        client.send("".join(f"{line}\r\n" for line in lines).encode())
        for _ in range(before):  # +OK to USER, or the LOGIN challenges
            assert client.line().startswith((b"+OK", b"+ "))
        assert client.line().startswith(b"+OK alice's maildrop is locked")


@pytest.mark.parametrize(
    "exchange",
    [
        b"AUTH CRAM-MD5\r\n" + base64.b64encode(b"alice " + "é".encode() * 32) + b"\r\n",
        "APOP alice é\r\n".encode(),
        b"APOP alice " + "é".encode() * 16 + b"\r\n",
    ],
    ids=["CRAM-MD5", "APOP-short", "APOP-32"],
)
@pytest.mark.parametrize("user", ["alice", "nobody"])
def test_non_ascii_digests_are_refused_without_an_error_inside_the_server(
    exchange: bytes, user: str
) -> None:
    """RFC 1939 §7, RFC 2195: a digest is hex; anything else is a refused login, with a
    fault armed too, and the same answer for a user who does not exist."""
    exchange = exchange.replace(b"alice", user.encode())
    with Pop3ServerThread(mailboxes()) as server:
        server.faults.add(faults.lock_failure())
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            client.send(exchange)
            reply = client.line()
            if reply.startswith(b"+ "):  # the CRAM-MD5 challenge
                reply = client.line()
            assert reply.startswith(b"-ERR")
            assert b"SYS/TEMP" not in reply
            client.send(b"QUIT\r\n")
            assert client.line().startswith(b"+OK")
        server.wait_idle()
        assert server.errors == []


def test_unknown_and_existing_users_cost_the_same_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 1939 §13: a failing login for an unknown user does what one for a known user
    does (SASLprep and a constant-time comparison), so its timing reveals nothing."""
    calls: list[str] = []
    real_saslprep, real_compare = fakepop._credentials.saslprep, hmac.compare_digest

    def counting_saslprep(text: str) -> str:
        calls.append("saslprep")
        return real_saslprep(text)

    def counting_compare(a: bytes, b: bytes) -> bool:
        calls.append("compare")
        return real_compare(a, b)

    monkeypatch.setattr(fakepop._credentials, "saslprep", counting_saslprep)
    monkeypatch.setattr(fakepop._credentials.hmac, "compare_digest", counting_compare)
    work = {}
    for user in ("alice", "nobody"):
        calls.clear()
        session = new_session(MailStore({"alice": "secret"}))
        for line in (f"USER {user}\r\n", "PASS wrong\r\n", f"APOP {user} {'0' * 32}\r\n"):
            session.receive_data(line.encode())
            command = session.next_command()
            assert command is not None
            assert session.handle(command).status.startswith((b"+OK", b"-ERR [AUTH]"))
        work[user] = list(calls)
    assert work["alice"] == work["nobody"]
    assert work["alice"].count("compare") == 2


def test_cram_md5_checks_the_digest_with_the_one_credential_rule() -> None:
    with Pop3ServerThread(mailboxes()) as server, RawPop3(server) as client:  # type: ignore[arg-type]
        client.line()
        client.send(b"AUTH CRAM-MD5\r\n")
        challenge = base64.b64decode(client.line()[2:].strip())
        digest = hmac.new(b"secret", challenge, hashlib.md5).hexdigest().upper()
        client.send(base64.b64encode(f"alice {digest}".encode()) + b"\r\n")
        assert client.line().startswith(b"+OK alice's maildrop is locked")


# -- SASL and faults ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [faults.error(), faults.hook(lambda context: "-ERR [SYS/TEMP] busy")],
    ids=["error", "hook"],
)
def test_a_fault_on_a_sasl_step_ends_the_exchange(fault: faults.Fault) -> None:
    """RFC 5034 §4: after -ERR the exchange is over; the client's next line is a
    command again, never taken as a SASL response."""
    with Pop3ServerThread(mailboxes()) as server:
        with RawPop3(server) as client:  # type: ignore[arg-type]
            client.line()
            client.send(b"AUTH LOGIN\r\n")
            assert client.line() == b"+ " + base64.b64encode(b"Username:") + b"\r\n"
            server.faults.add(fault.once())
            client.send(base64.b64encode(b"alice") + b"\r\n")
            assert client.line().startswith(b"-ERR")
            client.send(b"USER alice\r\n")
            assert client.line().startswith(b"+OK Send PASS")
            client.send(b"PASS secret\r\n")
            assert client.line().startswith(b"+OK alice's maildrop")


def test_login_faults_reach_every_sasl_mechanism() -> None:
    """lock_failure() acts at the login moment, whatever the method: here AUTH PLAIN."""
    with Pop3ServerThread(mailboxes()) as server:
        armed = server.faults.add(faults.lock_failure().once())
        client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
        try:
            with pytest.raises(poplib.error_proto, match=r"IN-USE"):
                client._shortcmd(f"AUTH PLAIN {plain('alice', 'secret')}")
            assert client._shortcmd(f"AUTH PLAIN {plain('alice', 'secret')}").startswith(b"+OK")
            client.quit()
        finally:
            client.close()
        assert armed.fired == 1
        server.wait_idle()
        assert not server.store["alice"].locked
