"""The importer, tested in plain sync pytest with the ``pop3_server`` fixture.

The fixture comes with fakepop (its pytest plugin is installed along with it): each
test gets a server of its own, started with the mailboxes of its ``pop3`` marker and
stopped after the test. A test that fails shows what was said on the wire in its
report, and an error inside the server fails the test even if its body passed.
"""

from __future__ import annotations

import poplib
import socket
from pathlib import Path

import pytest

from examples.importer import import_mail
from fakepop import EndReason, Pop3ServerThread

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\n.\nPay again.\n",
        },
    }
}


def run_importer(server: Pop3ServerThread, folder: Path) -> list[str]:
    saved = import_mail(server.host, server.port, "alice", "secret", folder)
    server.wait_idle()  # the server has finished with the session (QUIT committed)
    return saved


def saved_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.pop3(MAILBOXES)
def test_importer_saves_then_deletes(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    assert run_importer(pop3_server, tmp_path) == ["invoice-1", "invoice-2"]

    assert saved_files(tmp_path) == ["invoice-1.eml", "invoice-2.eml"]
    assert (tmp_path / "invoice-2.eml").read_bytes().endswith(b"\r\n.\r\nPay again.\r\n")
    assert pop3_server.store["alice"].messages == ()
    pop3_server.transcript.assert_commands(
        ["USER alice", "PASS ****", "UIDL", "RETR 1", "DELE 1", "RETR 2", "DELE 2", "QUIT"],
        user="alice",
    )


@pytest.mark.pop3(MAILBOXES)
def test_a_dropped_connection_loses_nothing_and_duplicates_nothing(
    pop3_server: Pop3ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dele = poplib.POP3.dele

    def dele_then_drop(client: poplib.POP3, which: int) -> bytes:
        reply = dele(client, which)
        client.sock.shutdown(socket.SHUT_RDWR)  # the network goes away
        return reply

    # First run: the connection drops right after the first DELE.
    with monkeypatch.context() as patch:
        patch.setattr(poplib.POP3, "dele", dele_then_drop)
        with pytest.raises(BrokenPipeError):  # RETR 2 has nowhere to go
            run_importer(pop3_server, tmp_path)
    pop3_server.wait_idle()
    (session,) = pop3_server.transcript.sessions
    assert session.ended_by is EndReason.CLIENT_CLOSED
    assert saved_files(tmp_path) == ["invoice-1.eml"]
    # QUIT never came, so the server deleted nothing, DELE 1 included.
    assert pop3_server.store["alice"].uids == ["invoice-1", "invoice-2"]

    # Second run: saves only what it has not saved before, then deletes everything.
    assert run_importer(pop3_server, tmp_path) == ["invoice-2"]
    assert saved_files(tmp_path) == ["invoice-1.eml", "invoice-2.eml"]
    assert pop3_server.store["alice"].messages == ()
    assert pop3_server.transcript.removed(user="alice") == ["invoice-1", "invoice-2"]
    second_run = pop3_server.transcript.sessions[1].commands()
    assert second_run == ["USER alice", "PASS ****", "UIDL", "DELE 1", "RETR 2", "DELE 2", "QUIT"]
