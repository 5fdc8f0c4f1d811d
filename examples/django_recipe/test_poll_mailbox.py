"""``manage.py poll_mailbox`` against fakepop, through Django's call_command: new mail
only, nothing twice, and deletion of stored mail only (RFC 1939 §6, §7)."""

from __future__ import annotations

import io
import poplib

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from examples.django_recipe.mailpoll.models import FetchedMessage
from fakepop import Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"a": "Subject: A\n\nOne.\n", "b": "Subject: B\n\nTwo.\n"},
    },
}


def poll(server: Pop3ServerThread, *options: str, password: str = "secret") -> str:
    mailbox = {"HOST": server.host, "PORT": server.port, "USER": "alice", "PASSWORD": password}
    out = io.StringIO()
    with override_settings(POP3_MAILBOX=mailbox):
        call_command("poll_mailbox", *options, stdout=out)
    return out.getvalue()


def stored() -> dict[str, bytes]:
    return {m.uid: bytes(m.raw) for m in FetchedMessage.objects.order_by("uid")}


@pytest.mark.usefixtures("db")
@pytest.mark.pop3(MAILBOXES)
def test_new_mail_is_stored_once(pop3_server: Pop3ServerThread) -> None:
    assert poll(pop3_server) == "2 new message(s) from alice\n"
    pop3_server.store.deliver("alice", "Subject: C\n\nThree.\n", uid="c")
    assert poll(pop3_server) == "1 new message(s) from alice\n"
    assert stored() == {
        "a": b"Subject: A\r\n\r\nOne.\r\n",
        "b": b"Subject: B\r\n\r\nTwo.\r\n",
        "c": b"Subject: C\r\n\r\nThree.\r\n",
    }
    pop3_server.wait_idle()
    pop3_server.assert_retrieved("alice", ["a", "b", "c"])  # each message once
    assert len(pop3_server.store["alice"].messages) == 3  # left on the server


@pytest.mark.usefixtures("db")
@pytest.mark.pop3(MAILBOXES)
def test_a_drop_deletes_nothing_and_the_next_run_finishes(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.close_before("RETR").nth(2).once())
    with pytest.raises(CommandError):
        poll(pop3_server, "--delete")
    pop3_server.wait_idle()
    assert set(stored()) == {"a"}  # stored before the drop
    assert len(pop3_server.store["alice"].messages) == 2  # no QUIT, no deletion

    assert poll(pop3_server, "--delete") == "1 new message(s) from alice\n"
    pop3_server.wait_idle()
    assert set(stored()) == {"a", "b"}
    pop3_server.assert_deleted("alice", ["a", "b"])


@pytest.mark.usefixtures("db")
@pytest.mark.pop3(MAILBOXES)
def test_a_wrong_password_is_a_command_error(pop3_server: Pop3ServerThread) -> None:
    with pytest.raises(CommandError, match=r"-ERR") as failed:
        poll(pop3_server, password="wrong")
    assert isinstance(failed.value.__cause__, poplib.error_proto)
    assert stored() == {}
