"""The Trio importer, tested with pytest-trio and the ``trio_pop3_server`` fixture.

``trio_pop3_server`` runs in the test's own Trio run, with no thread: its timers (the
autologout, the login delay) follow the run's clock, so with ``autojump_clock`` a test
lets minutes pass in no time. It does so whenever every task is waiting, including
on a worker thread (``trio.Path``, ``trio.to_thread``): while a thread works, the
server's ten-minute autologout would fire, and fakepop fails the session saying so.
The importer writes its files directly.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from examples.trio_importer import Pop3Error, import_mail
from fakepop import Pop3Server

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\n.\n..dots\n",
        },
    }
}

# Trio tests even where pytest-trio's trio_mode is off (in this repository it is on).
pytestmark = pytest.mark.trio


async def run_importer(server: Pop3Server, folder: Path) -> list[str]:
    try:
        return await import_mail(server.host, server.port, "alice", "secret", folder)
    finally:
        await server.wait_idle()  # the server is done with the session


@pytest.mark.pop3(MAILBOXES)
async def test_importer_saves_then_deletes(trio_pop3_server: Pop3Server, tmp_path: Path) -> None:
    wire = {message.uid: message.data for message in trio_pop3_server.store["alice"].messages}

    assert await run_importer(trio_pop3_server, tmp_path) == ["invoice-1", "invoice-2"]

    # Byte for byte what the server stored: the dot-stuffed lines came back unstuffed.
    for uid, data in wire.items():
        assert (tmp_path / f"{uid}.eml").read_bytes() == data
    assert trio_pop3_server.store["alice"].messages == ()
    trio_pop3_server.transcript.assert_commands(
        ["USER alice", "PASS ****", "UIDL", "RETR 1", "DELE 1", "RETR 2", "DELE 2", "QUIT"],
        user="alice",
    )


@pytest.mark.pop3(MAILBOXES, login_delay=300)
async def test_a_run_within_the_login_delay_is_refused_and_retried_later(
    trio_pop3_server: Pop3Server, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    server = trio_pop3_server
    await run_importer(server, tmp_path)
    server.store.deliver("alice", "Subject: Invoice 3\n\nNew.\n", uid="invoice-3")

    with pytest.raises(Pop3Error, match=r"^-ERR \[LOGIN-DELAY\]"):
        await run_importer(server, tmp_path)
    await trio.sleep(300)  # five minutes, in virtual time: the test takes milliseconds
    assert await run_importer(server, tmp_path) == ["invoice-3"]
    assert server.store["alice"].messages == ()
