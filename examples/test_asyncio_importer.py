"""The asyncio importer, tested with pytest-asyncio and the ``pop3_server`` fixture.

``pop3_server`` runs in a thread of its own, so an asyncio test just connects to it.
Its ``wait_idle()`` blocks: from a running loop, call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from examples.asyncio_importer import Pop3Error, import_mail
from fakepop import Pop3ServerThread

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\n.\n..dots\n",
        },
    }
}

pytestmark = [pytest.mark.asyncio, pytest.mark.pop3(MAILBOXES)]


async def run_importer(
    server: Pop3ServerThread, folder: Path, password: str = "secret"
) -> list[str]:
    try:
        return await import_mail(server.host, server.port, "alice", password, folder)
    finally:
        await asyncio.to_thread(server.wait_idle)  # the server is done with the session


async def test_importer_saves_then_deletes(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    wire = {message.uid: message.data for message in pop3_server.store["alice"].messages}

    assert await run_importer(pop3_server, tmp_path) == ["invoice-1", "invoice-2"]

    # Byte for byte what the server stored: the dot-stuffed lines came back unstuffed.
    for uid, data in wire.items():
        assert (tmp_path / f"{uid}.eml").read_bytes() == data
    assert pop3_server.store["alice"].messages == ()
    assert pop3_server.transcript.removed(user="alice") == ["invoice-1", "invoice-2"]


async def test_a_second_run_imports_only_new_mail(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    await run_importer(pop3_server, tmp_path)
    pop3_server.store.deliver("alice", "Subject: Invoice 3\n\nNew.\n", uid="invoice-3")

    assert await run_importer(pop3_server, tmp_path) == ["invoice-3"]
    assert sorted(path.stem for path in tmp_path.iterdir()) == [
        "invoice-1",
        "invoice-2",
        "invoice-3",
    ]


async def test_a_wrong_password_saves_and_deletes_nothing(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    with pytest.raises(Pop3Error, match=r"^-ERR \[AUTH\]"):
        await run_importer(pop3_server, tmp_path, password="wrong")
    assert list(tmp_path.iterdir()) == []
    assert pop3_server.store["alice"].uids == ["invoice-1", "invoice-2"]
