"""The assertion helpers: assert_retrieved, assert_deleted, assert_untouched on both
server classes, assert_commands on the transcript and on one session, and the view of
what an open session has marked for deletion.

Each is driven through stdlib ``poplib`` on a real socket, and each is seen to pass
and to fail; a failure is an ExpectationError (an AssertionError) whose message shows
the difference first, then the transcript, and whose frames pytest hides, so the
report starts in the test (docs/howto/assertions.md).
"""

from __future__ import annotations

import poplib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio

from fakepop import (
    ConfigError,
    ExpectationError,
    Pop3ServerThread,
    open_pop3_server,
)

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"a": "Subject: a\n\nA\n", "b": "Subject: b\n\nB\n", "c": "Subject: c\n\nC\n"},
    },
    "bob": "pw",
}
pytestmark = pytest.mark.pop3(MAILBOXES)


@contextmanager
def session(server: Pop3ServerThread, user: str = "alice") -> Iterator[poplib.POP3]:
    """A logged-in poplib client; closed (without QUIT unless the test sent it)."""
    client = poplib.POP3(server.host, server.port, timeout=10)
    try:
        client.user(user)
        client.pass_("secret" if user == "alice" else "pw")
        yield client
    finally:
        client.close()
        server.wait_idle()


def failure(check: Callable[[], None]) -> ExpectationError:
    """The ExpectationError ``check`` raises, whose traceback, once pytest hides the
    frames that ask to be hidden, ends in this test file."""
    with pytest.raises(ExpectationError) as caught:
        check()
    shown = caught.traceback.filter(caught)
    assert Path(shown[-1].path) == Path(__file__), [str(entry.path) for entry in shown]
    return caught.value


# -- assert_retrieved -------------------------------------------------------------------


def test_retrieved_is_what_retr_sent_as_a_set(pop3_server: Pop3ServerThread) -> None:
    """RFC 1939 section 5: RETR sends a message; TOP (section 7) does not count, and
    neither order nor repetition matters."""
    with session(pop3_server) as client:
        client.retr(2)
        client.retr(1)
        client.retr(2)
        client.top(3, 0)
        client.quit()
    pop3_server.assert_retrieved("alice", ["a", "b"])
    pop3_server.assert_retrieved("alice", ("b", "a", "a"))
    pop3_server.assert_retrieved("bob", [])

    error = failure(lambda: pop3_server.assert_retrieved("alice", ["a", "c", "zz"]))
    message = str(error)
    assert message.startswith(
        "alice's retrieved messages differ from what was expected:\n"
        "  missing:    'c', 'zz' (no such UID in the mailbox)\n"
        "  unexpected: 'b'\n"
        "  expected: ['a', 'c', 'zz']\n"
        "  actual:   ['a', 'b']\n\n"
        "--- session 1"
    )
    assert "C: TOP 3 0" in message  # the transcript follows the difference
    assert error.transcript is pop3_server.transcript
    assert isinstance(error, AssertionError)


def test_retrieved_counts_across_sessions_while_they_run(pop3_server: Pop3ServerThread) -> None:
    with session(pop3_server) as client:
        client.retr(1)
        pop3_server.assert_retrieved("alice", ["a"])  # the client is still connected
    with session(pop3_server) as client:
        client.retr(3)
    pop3_server.assert_retrieved("alice", ["a", "c"])


def test_uids_must_be_a_collection(pop3_server: Pop3ServerThread) -> None:
    with pytest.raises(TypeError, match=r"like \['a'\], not one str"):
        pop3_server.assert_retrieved("alice", "a")
    with pytest.raises(KeyError, match="no mailbox for user 'carol'"):
        pop3_server.assert_untouched("carol")


# -- assert_deleted and marked_for_deletion ---------------------------------------------


def test_deleted_is_what_update_removed(pop3_server: Pop3ServerThread) -> None:
    """RFC 1939 section 6: DELE marks, and only QUIT's UPDATE removes; what the open
    session has marked is visible meanwhile, and it is not deleted."""
    with session(pop3_server) as client:
        client.dele(3)
        client.dele(1)
        assert pop3_server.store["alice"].marked_for_deletion == ("a", "c")
        pop3_server.assert_deleted("alice", [])
        client.quit()
    mailbox = pop3_server.store["alice"]
    assert mailbox.marked_for_deletion == ()
    pop3_server.assert_deleted("alice", {"c", "a"})

    error = failure(lambda: pop3_server.assert_deleted("alice", ["a"]))
    assert str(error).startswith(
        "alice's deleted messages differ from what was expected:\n  unexpected: 'c'\n"
    )


def test_marks_of_a_session_without_quit_go_with_it(pop3_server: Pop3ServerThread) -> None:
    with session(pop3_server) as client:
        client.dele(2)
        assert pop3_server.store["alice"].marked_for_deletion == ("b",)
        client.rset()
        assert pop3_server.store["alice"].marked_for_deletion == ()
        client.dele(2)
    # Closed without QUIT: nothing was deleted, and nothing is marked any more.
    assert pop3_server.store["alice"].marked_for_deletion == ()
    pop3_server.assert_deleted("alice", [])
    pop3_server.assert_untouched("alice")


def test_the_marks_can_be_read_from_another_thread_while_they_change(
    pop3_server: Pop3ServerThread,
) -> None:
    """The view is taken under the store's lock: a reader in another thread sees a
    consistent, growing set while the client marks 300 messages."""
    pop3_server.store.add_user("dave", "pw", [f"Subject: {n}\n\n{n}\n" for n in range(300)])
    seen: list[tuple[str, ...]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(pop3_server.store["dave"].marked_for_deletion)

    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    client.user("dave")
    client.pass_("pw")
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for number in range(1, 301):
            client.dele(number)
    finally:
        done.set()
        watcher.join()
    final = pop3_server.store["dave"].marked_for_deletion
    client.quit()
    assert len(final) == 300
    lengths = [len(marks) for marks in seen]
    assert lengths == sorted(lengths)  # it only grew
    assert all(marks == final[: len(marks)] for marks in seen)  # message order, no tears
    pop3_server.wait_idle()
    assert len(pop3_server.store["dave"].deleted) == 300


@pytest.mark.pop3(MAILBOXES, expire=0)
def test_with_expire_0_retrieved_mail_is_deleted_at_quit(pop3_server: Pop3ServerThread) -> None:
    """RFC 2449 section 6.7: EXPIRE 0 removes what RETR sent, at UPDATE."""
    with session(pop3_server) as client:
        client.retr(2)
        client.quit()
    pop3_server.assert_retrieved("alice", ["b"])
    pop3_server.assert_deleted("alice", ["b"])


# -- assert_untouched -------------------------------------------------------------------


def test_untouched_allows_logins_listings_and_top(pop3_server: Pop3ServerThread) -> None:
    with session(pop3_server) as client:
        client.list()
        client.uidl()
        client.top(1, 1)
        client.dele(1)
        client.rset()
        client.quit()
    pop3_server.assert_untouched("alice")
    pop3_server.assert_untouched("bob")  # never even logged in


def test_a_retrieval_or_a_deletion_touches(pop3_server: Pop3ServerThread) -> None:
    with session(pop3_server) as client:
        client.retr(1)
        client.dele(2)
        client.quit()
    error = failure(lambda: pop3_server.assert_untouched("alice"))
    assert str(error).startswith(
        "alice's mailbox was expected untouched, but:\n"
        "  retrieved: 'a'\n"
        "  deleted:   'b'\n\n"
        "--- session 1"
    )


async def test_the_trio_server_has_the_same_assertions() -> None:
    async with open_pop3_server(MAILBOXES) as server:

        def fetch() -> None:
            client = poplib.POP3(server.host, server.port, timeout=10)
            client.user("alice")
            client.pass_("secret")
            client.retr(1)
            client.dele(1)
            client.quit()

        await trio.to_thread.run_sync(fetch)
        await server.wait_idle()
        server.assert_retrieved("alice", ["a"])
        server.assert_deleted("alice", ["a"])
        server.assert_untouched("bob")
        with pytest.raises(ExpectationError, match=r"^alice's mailbox was expected untouched"):
            server.assert_untouched("alice")


# -- assert_commands --------------------------------------------------------------------


def two_sessions(server: Pop3ServerThread) -> None:
    """alice: USER, PASS, stat (lower case), RETR 1, QUIT; then bob: USER, PASS, QUIT."""
    with session(server) as client:
        client._shortcmd("stat")
        client.retr(1)
        client.quit()
    with session(server, "bob") as client:
        client.quit()


def test_commands_exact_prefix_and_subsequence(pop3_server: Pop3ServerThread) -> None:
    two_sessions(pop3_server)
    transcript = pop3_server.transcript
    alice = ["USER alice", "PASS ****", "STAT", "RETR 1", "QUIT"]
    transcript.assert_commands(alice, user="alice")  # "stat" matches STAT
    transcript.assert_commands([*alice, "USER bob", "PASS ****", "QUIT"])
    transcript.assert_commands(["USER alice", "PASS ****"], match="prefix")
    transcript.assert_commands(["user alice", "RETR 1", "QUIT"], match="subsequence")
    transcript.assert_commands(
        ["PASS", "QUIT", "PASS", "QUIT"], match="subsequence", keywords_only=True
    )
    transcript.assert_commands(["USER", "PASS", "QUIT"], user="bob", keywords_only=True)


def test_commands_failures_say_what_differs_first(pop3_server: Pop3ServerThread) -> None:
    two_sessions(pop3_server)
    transcript = pop3_server.transcript

    exact = str(failure(lambda: transcript.assert_commands(["USER alice", "QUIT"], user="alice")))
    assert exact.startswith("POP3 commands of alice differ from what was expected:\n--- expected")
    assert "\n+PASS ****\n" in exact
    assert "\n\n--- session 1 from " in exact  # then the whole transcript

    prefix = str(failure(lambda: transcript.assert_commands(["USER bob"], match="prefix")))
    assert prefix.startswith("POP3 commands do not start with the expected ones:\n")
    assert "-USER bob\n+USER alice" in prefix

    ordered = str(
        failure(
            lambda: transcript.assert_commands(
                ["USER alice", "QUIT", "RETR 1"], user="alice", match="subsequence"
            )
        )
    )
    assert ordered.startswith(
        "POP3 commands of alice do not contain the expected ones in order: 'RETR 1' "
        "(expected 3 of 3) is not among them after 'QUIT' (command 5)\n"
    )


def test_commands_of_one_session(pop3_server: Pop3ServerThread) -> None:
    two_sessions(pop3_server)
    transcript = pop3_server.transcript
    first, second = transcript.sessions
    transcript.assert_commands(["USER bob", "PASS ****", "QUIT"], session=2)
    transcript.assert_commands(
        ["USER", "PASS", "STAT"], session=first, match="prefix", keywords_only=True
    )
    second.assert_commands(["USER bob", "PASS ****", "QUIT"])
    second.assert_commands(["QUIT"], match="subsequence")

    error = failure(lambda: second.assert_commands(["USER bob", "QUIT"]))
    assert str(error).startswith("POP3 commands of session 2 differ from what was expected:\n")
    assert "--- session 1" not in str(error)  # only this session is shown
    assert error.transcript is None

    missing = failure(lambda: transcript.assert_commands(["QUIT"], user="bob", session=1))
    assert str(missing).startswith("There is no POP3 session 1 of bob; the sessions of bob: [2]\n")
    assert missing.transcript is transcript


def test_bad_options_are_refused(pop3_server: Pop3ServerThread) -> None:
    with pytest.raises(ConfigError, match="match must be one of 'exact', 'subsequence', 'prefix'"):
        pop3_server.transcript.assert_commands([], match="contains")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a list of command lines"):
        pop3_server.transcript.assert_commands("QUIT")


def test_replies_to_compares_keywords_as_ascii(pop3_server: Pop3ServerThread) -> None:
    """RFC 1939 section 3: "\u017ftat" is no STAT, in the transcript as in the server."""
    two_sessions(pop3_server)
    assert pop3_server.transcript.replies_to("stat") == ["+OK 3 51"]
    assert pop3_server.transcript.replies_to("\u017ftat") == []
