"""The retrying importer against a server that answers too late, in virtual time.

``trio_pop3_server`` runs in the test's Trio run, so with ``autojump_clock`` the
latency fault, the importer's timeouts and its backoff all wait on one virtual clock:
the test below lives through 25 seconds of timeouts and pauses in milliseconds. The
importer's ``sleep`` is passed in only to record the pauses it took.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from examples.retrying_importer import import_with_retries, worth_retrying
from examples.trio_importer import TIMEOUT, Pop3Error
from fakepop import EndReason, Pop3Server, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\nPay again.\n",
            "invoice-3": "From: billing@example.com\nSubject: Invoice 3\n\nLast call.\n",
        },
    }
}


@pytest.mark.trio  # a Trio test even where pytest-trio's trio_mode is off
@pytest.mark.pop3(MAILBOXES)
async def test_a_timeout_then_in_use_until_the_server_lets_the_session_go(
    trio_pop3_server: Pop3Server, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """RFC 1939 section 4 (a session holds its maildrop's lock until it ends) and
    RFC 2449 section 8.1.2 ([IN-USE]): the retries wait for the abandoned session."""
    server = trio_pop3_server
    # The second RETR is answered after 20 s, once; the importer waits 10 s for a line.
    server.faults.add(faults.latency(20).on("RETR").nth(2).once())
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        await trio.sleep(seconds)  # virtual time: the clock jumps, nothing waits

    started = trio.current_time()
    saved = await import_with_retries(
        server.host, server.port, "alice", "secret", tmp_path, sleep=sleep
    )
    await server.wait_idle()

    # Run 1 saved invoice-1, then gave up on RETR 2 after 10 s and closed its socket.
    # Its session kept the lock until the server had answered, at 20 s, and found the
    # client gone: the runs at 11, 13 and 17 s met [IN-USE]; the run at 25 s got in.
    assert pauses == [1, 2, 4, 8]
    assert trio.current_time() - started == pytest.approx(TIMEOUT + sum(pauses))
    assert saved == ["invoice-2", "invoice-3"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "invoice-1.eml",
        "invoice-2.eml",
        "invoice-3.eml",
    ]
    assert server.store["alice"].messages == ()
    sessions = server.transcript.sessions
    assert sessions[0].ended_by is EndReason.CLIENT_CLOSED
    assert sessions[0].removed == ()  # no QUIT, so DELE 1 deleted nothing
    assert [s.replies_to("PASS")[0].split(" ", 2)[1] for s in sessions[1:4]] == ["[IN-USE]"] * 3
    assert sessions[4].quit
    assert server.transcript.removed(user="alice") == ["invoice-1", "invoice-2", "invoice-3"]


@pytest.mark.trio
@pytest.mark.pop3(MAILBOXES)
async def test_a_wrong_password_is_not_retried(
    trio_pop3_server: Pop3Server, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    with pytest.raises(Pop3Error, match=r"^-ERR \[AUTH\]"):
        await import_with_retries(
            trio_pop3_server.host, trio_pop3_server.port, "alice", "wrong", tmp_path, sleep=sleep
        )
    assert pauses == []
    assert len(trio_pop3_server.transcript.sessions) == 1


def test_which_failures_pass() -> None:
    assert worth_retrying(Pop3Error("-ERR [IN-USE] Mailbox is locked by another session"))
    assert worth_retrying(Pop3Error("-ERR [SYS/TEMP] Try again later"))
    assert worth_retrying(trio.TooSlowError())
    assert worth_retrying(ConnectionResetError())
    assert not worth_retrying(Pop3Error("-ERR [AUTH] Authentication failed"))
    assert not worth_retrying(Pop3Error("-ERR no such message"))
