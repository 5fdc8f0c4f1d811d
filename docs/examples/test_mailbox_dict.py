"""The mailbox dict: every form a mailbox may take, as a test hands it to fakepop."""

import poplib

import pytest

from fakepop import Pop3ServerThread

MSG1 = "Subject: one\n\nFirst.\n"
MSG2 = "Subject: two\n\nSecond.\n"

MAILBOXES = {
    "alice": {"password": "secret", "messages": [MSG1, MSG2]},  # the common case
    "bob": "hunter2",  # empty mailbox
    "carol": {"password": "pw", "messages": {"uid-a": MSG1}},  # your own UIDs
    "dave": {"password": "pw", "methods": ["APOP", "XOAUTH2"]},  # only these logins
}


def test_each_form_of_mailbox() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        assert [m.uid for m in server.store["alice"].messages] == ["uid000001", "uid000002"]
        assert server.store["bob"].messages == ()
        assert [m.uid for m in server.store["carol"].messages] == ["uid-a"]

        client = poplib.POP3(server.host, server.port, timeout=10)
        client.user("dave")
        with pytest.raises(poplib.error_proto, match="-ERR"):
            client.pass_("pw")  # USER/PASS is not one of dave's methods
        client.quit()
        server.wait_idle()
