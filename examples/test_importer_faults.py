"""The importer against a server that fails on purpose, with ``fakepop.faults``.

A fault added to ``pop3_server.faults`` breaks the next matching moment the way a real
server or network would. Each test lets the first run of the importer fail, checks
that it failed loudly, then runs it again: across both runs every message must be
saved exactly once, byte for byte, and the mailbox must end up empty.
"""

from __future__ import annotations

import poplib
from pathlib import Path

import pytest

from examples.importer import import_mail
from fakepop import Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\n.\nPay again.\n",
            "invoice-3": "From: billing@example.com\nSubject: Invoice 3\n\nLast call.\n",
        },
    }
}


def run_importer(server: Pop3ServerThread, folder: Path) -> list[str]:
    try:
        return import_mail(server.host, server.port, "alice", "secret", folder)
    finally:
        server.wait_idle()  # the server has finished with the session, however it ended


def saved_mail(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.mark.pop3(MAILBOXES)
def test_a_drop_in_the_middle_of_the_second_message(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    original = {f"{m.uid}.eml": m.data for m in pop3_server.store["alice"].messages}
    # The connection drops after 40 octets of the second RETR, once.
    pop3_server.faults.add(faults.cut_payload(after_bytes=40).nth(2).once())

    with pytest.raises(poplib.error_proto, match="EOF"):
        run_importer(pop3_server, tmp_path)
    assert saved_mail(tmp_path) == {"invoice-1.eml": original["invoice-1.eml"]}
    assert pop3_server.store["alice"].uids == ["invoice-1", "invoice-2", "invoice-3"]

    assert run_importer(pop3_server, tmp_path) == ["invoice-2", "invoice-3"]
    assert saved_mail(tmp_path) == original
    assert pop3_server.store["alice"].messages == ()
    assert pop3_server.transcript.removed(user="alice") == ["invoice-1", "invoice-2", "invoice-3"]


@pytest.mark.pop3(MAILBOXES)
def test_a_temporary_login_failure(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    original = {f"{m.uid}.eml": m.data for m in pop3_server.store["alice"].messages}
    pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP").once())

    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
        run_importer(pop3_server, tmp_path)
    assert saved_mail(tmp_path) == {}
    assert not pop3_server.store["alice"].locked

    assert run_importer(pop3_server, tmp_path) == ["invoice-1", "invoice-2", "invoice-3"]
    assert saved_mail(tmp_path) == original
    assert pop3_server.store["alice"].messages == ()
    assert pop3_server.transcript.removed(user="alice") == ["invoice-1", "invoice-2", "invoice-3"]
