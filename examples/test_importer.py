"""The importer, tested against a real POP3 server running inside the test.

The README shows this file's first test, from the first import on: keep that part as
it is shown there (tests/test_docs.py checks it).
"""

from __future__ import annotations

import email
from pathlib import Path

import pytest
import trio

from examples.importer import import_mail
from fakepop import open_pop3_server

pytestmark = pytest.mark.trio  # pytest-trio runs these tests (or set trio_mode = true)

MAILBOXES = {
    "alice": {"password": "secret", "messages": {"invoice-1": "Subject: Invoice 1\n\nPay.\n"}},
}


async def test_importer_saves_then_deletes(tmp_path):
    async with open_pop3_server(MAILBOXES) as server:
        saved = await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
        await server.wait_idle()  # every session has ended
        mailbox = server.store["alice"]
    assert saved == ["invoice-1"]
    assert mailbox.messages == ()  # what is left
    assert [m.uid for m in mailbox.deleted] == ["invoice-1"]  # deleted at QUIT


async def test_a_message_is_saved_as_it_was_sent(tmp_path: Path) -> None:
    dotted = {"alice": {"password": "pw", "messages": {"d": "Subject: D\n\n.\nPay again.\n"}}}
    async with open_pop3_server(dotted) as server:
        await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "pw", tmp_path
        )
    saved = email.message_from_bytes((tmp_path / "d.eml").read_bytes())
    assert saved["Subject"] == "D"
    assert saved.get_payload() == ".\r\nPay again.\r\n"  # dot-stuffing undone


async def test_a_second_run_imports_only_new_mail(tmp_path: Path) -> None:
    async with open_pop3_server(MAILBOXES) as server:
        await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
        server.store.deliver("alice", "Subject: Invoice 2\n\nNew.\n", uid="invoice-2")
        saved = await trio.to_thread.run_sync(
            import_mail, server.host, server.port, "alice", "secret", tmp_path
        )
    assert saved == ["invoice-2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["invoice-1.eml", "invoice-2.eml"]
