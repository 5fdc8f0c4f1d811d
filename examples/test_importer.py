"""The importer, tested against a real POP3 server running inside the test."""

from __future__ import annotations

import email
from pathlib import Path

import trio

from examples.importer import import_mail
from fakepop import open_pop3_server

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\n.\nPay again.\n",
        },
    }
}


async def test_importer_saves_then_deletes(tmp_path: Path) -> None:
    async with open_pop3_server(MAILBOXES) as server:
        saved = await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
        await server.wait_idle()
        mailbox = server.store["alice"]
    assert saved == ["invoice-1", "invoice-2"]
    assert mailbox.messages == ()
    assert [m.uid for m in mailbox.deleted] == ["invoice-1", "invoice-2"]
    second = email.message_from_bytes((tmp_path / "invoice-2.eml").read_bytes())
    assert second["Subject"] == "Invoice 2"
    assert second.get_payload() == ".\r\nPay again.\r\n"


async def test_a_second_run_imports_only_new_mail(tmp_path: Path) -> None:
    async with open_pop3_server(MAILBOXES) as server:
        await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
        server.store.deliver("alice", "Subject: Invoice 3\n\nNew.\n", uid="invoice-3")
        saved = await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
    assert saved == ["invoice-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "invoice-1.eml",
        "invoice-2.eml",
        "invoice-3.eml",
    ]
