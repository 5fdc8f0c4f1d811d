"""The background poller, tested with the ``pop3_server`` fixture.

The poller runs in a thread of its own, so the test cannot know when it has done its
work by looking at it. It waits instead for what the POP3 server saw:
``wait_until_empty`` (the poller's QUIT has committed its deletions),
``wait_for_command`` (a command was answered, so many times). Those return as soon as
it happened, with no sleep; if it never does they fail after 10 seconds with the
transcript of what the poller did say.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.mail_poller import MailPoller
from fakepop import Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {
            "invoice-1": "From: billing@example.com\nSubject: Invoice 1\n\nPlease pay.\n",
            "invoice-2": "From: billing@example.com\nSubject: Invoice 2\n\nPay again.\n",
        },
    }
}
#: How often the poller polls in these tests; in production it would be minutes.
INTERVAL = 0.05


def poller_for(server: Pop3ServerThread, folder: Path) -> MailPoller:
    return MailPoller(server.host, server.port, "alice", "secret", folder, interval=INTERVAL)


def saved_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.pop3(MAILBOXES)
def test_the_poller_saves_then_deletes(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    with poller_for(pop3_server, tmp_path):
        pop3_server.wait_until_empty("alice")  # deleted at QUIT: the files are saved

    assert saved_files(tmp_path) == ["invoice-1.eml", "invoice-2.eml"]
    assert [m.uid for m in pop3_server.store["alice"].deleted] == ["invoice-1", "invoice-2"]


@pytest.mark.pop3(MAILBOXES)
def test_mail_that_arrives_later_is_picked_up_by_a_later_poll(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    with poller_for(pop3_server, tmp_path) as poller:
        pop3_server.wait_until_empty("alice")
        pop3_server.store.deliver("alice", "Subject: Invoice 3\n\nNew.\n", uid="invoice-3")
        pop3_server.wait_for_command("DELE", count=3)  # its third DELE: the new mail
        pop3_server.wait_until_empty("alice")

    assert poller.saved == ["invoice-1", "invoice-2", "invoice-3"]
    assert saved_files(tmp_path) == ["invoice-1.eml", "invoice-2.eml", "invoice-3.eml"]


@pytest.mark.pop3(MAILBOXES)
def test_a_failed_poll_is_retried(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP").once())

    with poller_for(pop3_server, tmp_path) as poller:
        pop3_server.wait_for_command("PASS", count=2)  # refused once, then accepted
        pop3_server.wait_until_empty("alice")

    [failure] = poller.failures  # the poller noticed, and tried again
    assert "-ERR [SYS/TEMP]" in str(failure)
    assert poller.saved == ["invoice-1", "invoice-2"]
