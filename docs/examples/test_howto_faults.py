"""Faults: make the server fail the way real servers and networks do, on purpose."""

import poplib

import pytest

from fakepop import EndReason, FaultContext, Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"a": "Subject: A\n\n" + "a" * 500 + "\n", "b": "Subject: B\n\nb\n"},
    }
}


def download(server: Pop3ServerThread) -> list[bytes]:
    """The code under test: fetch everything, delete nothing."""
    client = poplib.POP3(server.host, server.port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        count, _ = client.stat()
        messages = [b"\r\n".join(client.retr(n)[1]) for n in range(1, count + 1)]
        client.quit()
        return messages
    finally:
        client.close()
        server.wait_idle()


@pytest.mark.pop3(MAILBOXES)
def test_a_temporary_login_failure(pop3_server: Pop3ServerThread) -> None:
    armed = pop3_server.faults.add(faults.error("PASS", code="SYS/TEMP").once())

    with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"):
        download(pop3_server)
    assert len(download(pop3_server)) == 2  # the retry works
    assert armed.fired == 1
    assert pop3_server.transcript.replies_to("PASS")[0].startswith("-ERR [SYS/TEMP]")


@pytest.mark.pop3(MAILBOXES)
def test_the_connection_drops_in_the_middle_of_a_message(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.cut_payload("RETR", after_bytes=100).once())

    with pytest.raises(poplib.error_proto):
        download(pop3_server)
    session = pop3_server.transcript.sessions[0]
    assert session.ended_by is EndReason.FAULT
    assert pop3_server.store["alice"].uids == ["a", "b"]  # nothing was deleted


@pytest.mark.pop3(MAILBOXES)
def test_where_and_how_often(pop3_server: Pop3ServerThread) -> None:
    # From the second RETR of alice's on, every RETR gets an error (add .once() for one).
    pop3_server.faults.add(faults.error("RETR", text="disk on fire").for_user("alice").nth(2))

    with pytest.raises(poplib.error_proto, match="disk on fire"):
        download(pop3_server)


@pytest.mark.pop3(MAILBOXES)
def test_a_hook_decides_at_each_moment(pop3_server: Pop3ServerThread) -> None:
    seen: list[str | None] = []

    def refuse_message_b(context: FaultContext) -> str | None:
        seen.append(context.user)
        if context.command is not None and context.command.line == b"RETR 2":
            return "-ERR message 2 is quarantined"
        return None  # let the command through

    pop3_server.faults.add(faults.hook(refuse_message_b, "RETR"))

    with pytest.raises(poplib.error_proto, match="quarantined"):
        download(pop3_server)
    assert seen == ["alice", "alice"]


@pytest.mark.pop3(MAILBOXES)
def test_a_hook_answers_in_the_servers_place(pop3_server: Pop3ServerThread) -> None:
    # A server that lists the same UID twice: the hook's lines are stuffed and ended by
    # the server. The answer replaces the command, which does not run.
    def duplicate_uids(context: FaultContext) -> faults.Answer:
        return faults.Answer("listing follows", lines=["1 same", "2 same"])

    pop3_server.faults.add(faults.hook(duplicate_uids, "UIDL"))
    pop3_server.faults.add(faults.hook(lambda context: "+OK 0 0", "STAT"))  # one line

    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        assert client.uidl()[1] == [b"1 same", b"2 same"]
        assert client.stat() == (0, 0)
        client.quit()
    finally:
        client.close()
