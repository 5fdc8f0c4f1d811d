"""The importer, checked with the server's assertion helpers.

``assert_retrieved``, ``assert_deleted`` and ``assert_untouched`` say in one line what
the importer did to the mail, and ``assert_commands`` what it said; when one fails,
its message names the UIDs or lines that differ, then shows the whole transcript.
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
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\nPay again.\n",
        },
    },
    "bob": {"password": "pw", "messages": ["Subject: not for alice\n\nHi.\n"]},
}


@pytest.mark.pop3(MAILBOXES)
def test_the_importer_fetches_and_deletes_only_alices_mail(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    import_mail(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)

    pop3_server.assert_retrieved("alice", ["invoice-1", "invoice-2"])
    pop3_server.assert_deleted("alice", ["invoice-1", "invoice-2"])
    pop3_server.assert_untouched("bob")
    # It asked for the UIDs before fetching anything, and ended with QUIT.
    pop3_server.transcript.assert_commands(["UIDL", "RETR 1", "QUIT"], match="subsequence")


@pytest.mark.pop3(MAILBOXES)
def test_a_run_that_fails_before_quit_deletes_nothing(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    pop3_server.faults.add(faults.close_before("QUIT").once())

    with pytest.raises(poplib.error_proto, match="EOF"):  # the connection died at QUIT
        import_mail(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)
    pop3_server.wait_idle()

    pop3_server.assert_retrieved("alice", ["invoice-1", "invoice-2"])
    pop3_server.assert_deleted("alice", [])  # the DELEs never reached UPDATE
    # The next run saves nothing twice: it only deletes what it already has.
    assert import_mail(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path) == []
    pop3_server.assert_retrieved("alice", ["invoice-1", "invoice-2"])
    pop3_server.assert_deleted("alice", ["invoice-1", "invoice-2"])
    second = pop3_server.transcript.sessions[1]
    second.assert_commands(["USER alice", "PASS ****", "UIDL", "DELE 1", "DELE 2", "QUIT"])
