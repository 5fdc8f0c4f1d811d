"""Waiting for what the server saw, without sleeping: ``wait_for`` and its shortcuts
(docs/howto/waiting.md).

The notifier is tested on its own first (a version that moves on every change, thread
waiters and event-loop wakers); then every server flavour through real sockets:
``Pop3ServerThread`` from sync code, from an ``asyncio.run`` loop and from a Trio run,
and ``Pop3Server`` in the test's own Trio run, under ``autojump_clock`` where a timeout
takes no real time. The application under test polls from a background thread, as a
mail importer would; the test only waits. Nothing here sleeps: where a test needs a
real timeout to expire, it is a fraction of a second of the server's own deadline.
"""

from __future__ import annotations

import asyncio
import poplib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from fakepop import (
    ConfigError,
    EndReason,
    MailStore,
    Pop3Server,
    Pop3ServerThread,
    Reply,
    Transcript,
    UsageError,
    WaitTimeout,
    open_pop3_server,
)
from fakepop._changes import Changes
from fakepop._session_log import SessionRecorder
from fakepop._waiting import DEFAULT_TIMEOUT, sessions_ended
from tests.clients import CLIENT_TIMEOUT
from tests.trio_client import TrioPop3Client

MESSAGE = "Subject: hi\n\nHello\n"
MAILBOXES = {"alice": {"password": "secret", "messages": [MESSAGE, MESSAGE]}}
#: A timeout for waits that must time out in real time: short, and the test stays fast.
EXPIRES = 0.2


def fetch_and_delete(host: str, port: int, user: str = "alice", password: str = "secret") -> int:
    """One poll of the application under test: fetch and delete everything, QUIT."""
    client = poplib.POP3(host, port, timeout=CLIENT_TIMEOUT)
    try:
        client.user(user)
        client.pass_(password)
        count, _ = client.stat()
        for number in range(1, count + 1):
            client.retr(number)
            client.dele(number)
        client.quit()
    finally:
        client.close()
    return count


@contextmanager
def polling_in_a_thread(host: str, port: int, interval: float = 0.01) -> Iterator[list[int]]:
    """The application: a thread that polls the mailbox every ``interval`` seconds, as
    a background worker would, until the block ends. Yields what each poll fetched."""
    stop = threading.Event()
    fetched: list[int] = []

    def poll() -> None:
        while not stop.is_set():
            fetched.append(fetch_and_delete(host, port))
            stop.wait(interval)  # the application's own polling interval

    worker = threading.Thread(target=poll, name="mail-poller")
    worker.start()
    try:
        yield fetched
    finally:
        stop.set()
        worker.join(CLIENT_TIMEOUT)
        assert not worker.is_alive()


class InAThread:
    """Runs ``function()`` in a thread of its own; :meth:`result` joins it and returns
    what it returned, or raises what it raised."""

    def __init__(self, function: Callable[[], object]) -> None:
        self._outcome: list[tuple[bool, object]] = []

        def run() -> None:
            try:
                self._outcome.append((True, function()))
            except BaseException as exc:  # handed to result()
                self._outcome.append((False, exc))

        self._thread = threading.Thread(target=run)
        self._thread.start()

    def result(self) -> object:
        self._thread.join(CLIENT_TIMEOUT * 2)
        assert not self._thread.is_alive(), "the waiting thread is still waiting"
        [(returned, value)] = self._outcome
        if not returned:
            assert isinstance(value, BaseException)
            raise value
        return value


# -- the notifier ---------------------------------------------------------------------
def test_every_bump_moves_the_version_to_one_never_seen() -> None:
    changes = Changes()
    seen = {changes.version}
    for _ in range(100):
        changes.bump()
        assert changes.version not in seen
        seen.add(changes.version)


def test_a_thread_waiter_returns_at_once_for_a_change_it_has_not_seen() -> None:
    changes = Changes()
    seen = changes.version
    changes.bump()
    assert changes.wait_past(seen, time.monotonic() + DEFAULT_TIMEOUT)


def test_a_thread_waiter_gives_up_at_its_deadline() -> None:
    changes = Changes()
    assert not changes.wait_past(changes.version, time.monotonic())  # already past
    started = time.monotonic()
    assert not changes.wait_past(changes.version, started + EXPIRES)
    assert time.monotonic() - started >= EXPIRES
    assert changes.watchers == 0  # a bump with nobody waiting wakes nobody


def test_a_bump_from_another_thread_wakes_a_blocked_waiter() -> None:
    changes = Changes()
    seen = changes.version
    waiter = InAThread(lambda: changes.wait_past(seen, time.monotonic() + CLIENT_TIMEOUT))
    changes.bump()
    assert waiter.result() is True


def test_a_waker_is_called_on_every_bump_until_removed() -> None:
    changes = Changes()
    calls: list[int] = []

    def wake() -> None:
        calls.append(changes.version)

    changes.add_waker(wake)
    changes.bump()
    changes.bump()
    changes.remove_waker(wake)
    changes.bump()
    assert len(calls) == 2
    assert changes.watchers == 0


STORE_CHANGES: dict[str, Callable[[MailStore], object]] = {
    "deliver": lambda store: store.deliver("alice", MESSAGE),
    "add_user": lambda store: store.add_user("bob", "pw"),
    "remove_user": lambda store: store.remove_user("alice"),
    "set_password": lambda store: store.set_password("alice", "new"),
    "load": lambda store: store.load({"carol": "pw"}),
    "replace": lambda store: store.replace({"carol": "pw"}),
    "clear": lambda store: store.clear(),
    "open_maildrop": lambda store: store.open_maildrop("alice", now=0),
}


@pytest.mark.parametrize("change", list(STORE_CHANGES), ids=list(STORE_CHANGES))
def test_every_change_to_the_store_bumps_its_version(change: str) -> None:
    store = MailStore(MAILBOXES)
    before = store._changes.version
    STORE_CHANGES[change](store)
    assert store._changes.version != before


def test_a_sessions_maildrop_bumps_the_store_at_retr_update_and_release() -> None:
    store = MailStore(MAILBOXES)
    versions = [store._changes.version]
    maildrop = store.open_maildrop("alice", now=0)
    versions.append(store._changes.version)
    maildrop.note_retrieved(1)  # the store's "retrieved" changed
    versions.append(store._changes.version)
    maildrop.mark_deleted(1)
    maildrop.commit()  # UPDATE: removed, and unlocked
    versions.append(store._changes.version)
    again = store.open_maildrop("alice", now=1)
    again.release()
    versions.append(store._changes.version)
    assert len(set(versions)) == len(versions)


def test_every_line_of_the_transcript_and_its_clearing_call_changed() -> None:
    calls: list[None] = []
    transcript = Transcript(lambda: calls.append(None))
    recorder = transcript.start_session(1, None, lambda: 0.0)
    assert len(calls) == 1
    recorder.event("something worth knowing")
    recorder.reply(Reply(b"+OK\r\n"))
    recorder.unsent("client gone")
    recorder.end(EndReason.QUIT)
    transcript.clear()
    assert len(calls) == 6  # start, event, reply, its taking back, end, clear


# -- Pop3ServerThread, from sync code -------------------------------------------------
def test_a_test_waits_for_a_polling_application_without_sleeping() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        with polling_in_a_thread(server.host, server.port) as fetched:
            server.wait_for_command("DELE", count=2)
            server.wait_until_empty("alice")
            server.wait_for_sessions(1)
            assert server.store["alice"].messages == ()
            assert server.ended_sessions >= 1
            server.store.deliver("alice", MESSAGE)  # new mail: the poller takes it too
            server.wait_for_command("dele", count=3)  # RFC 1939 §3: keywords ignore case
            server.wait_until_empty("alice")
    assert sum(fetched) == 3
    assert [m.uid for m in server.store["alice"].deleted] == ["uid000001", "uid000002", "uid000003"]


def test_wait_for_command_counts_only_the_given_users_answered_commands() -> None:
    mailboxes = {**MAILBOXES, "bob": {"password": "pw", "messages": [MESSAGE]}}
    with Pop3ServerThread(mailboxes) as server:
        fetch_and_delete(server.host, server.port, "bob", "pw")
        with pytest.raises(WaitTimeout, match="a DELE command of alice to be answered once"):
            server.wait_for_command("DELE", user="alice", timeout=EXPIRES)
        server.wait_for_command("DELE", user="bob")
        with pytest.raises(WaitTimeout, match=r"answered 1 time so far"):
            server.wait_for_command("DELE", count=2, timeout=EXPIRES)


def test_the_test_threads_own_store_change_wakes_a_waiter() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        looked = threading.Event()

        def bob_exists(server: Pop3ServerThread) -> bool:
            looked.set()
            return "bob" in server.store

        waiter = InAThread(lambda: server.wait_for(bob_exists))
        assert looked.wait(CLIENT_TIMEOUT)  # it looked once and found no bob
        server.store.add_user("bob", "pw")
        waiter.result()


def test_a_reset_wakes_a_waiter() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        fetch_and_delete(server.host, server.port)
        server.wait_for_sessions(1)
        waiter = InAThread(lambda: server.wait_for(lambda s: s.ended_sessions == 0))
        server.reset(MAILBOXES)  # session numbers, and so the count, start afresh
        waiter.result()


def test_a_change_while_the_predicate_runs_is_not_missed() -> None:
    """The version is read before the predicate runs: a change that lands during the
    first look must lead to a second look at once, not to a wait until the timeout."""
    with Pop3ServerThread(MAILBOXES) as server:
        looks: list[int] = []

        def delivers_on_its_first_look(server: Pop3ServerThread) -> bool:
            looks.append(len(server.store["alice"]))
            if len(looks) == 1:
                server.store.deliver("alice", MESSAGE)  # lands while the predicate runs
                return False
            return True

        started = time.monotonic()
        server.wait_for(delivers_on_its_first_look, timeout=CLIENT_TIMEOUT)
        assert looks == [2, 3]
        assert time.monotonic() - started < CLIENT_TIMEOUT / 2


def records_on_its_first_look(
    recorder: SessionRecorder, looks: list[int]
) -> Callable[[Pop3Server | Pop3ServerThread], bool]:
    """A predicate that records a line in the server's transcript during its first
    look (so that look cannot see it), and holds at the next; ``looks`` gets the
    number of entries each look saw."""

    def predicate(server: Pop3Server | Pop3ServerThread) -> bool:
        looks.append(len(server.transcript.sessions[-1].entries))
        if len(looks) == 1:
            recorder.event("said while the predicate runs")
            return False
        return True

    return predicate


def test_a_line_recorded_while_the_predicate_runs_wakes_a_waiting_thread() -> None:
    """The recorder tells the notifier of a line only while someone watches, so a
    waiting thread must count as watching before its first look: a line recorded
    during that look must lead to a second look at once."""
    with Pop3ServerThread(MAILBOXES) as server:
        recorder = server.transcript.start_session(99, None, time.monotonic)
        looks: list[int] = []
        started = time.monotonic()
        server.wait_for(records_on_its_first_look(recorder, looks), timeout=CLIENT_TIMEOUT)
        assert looks == [0, 1]
        assert time.monotonic() - started < CLIENT_TIMEOUT / 2
        recorder.end(EndReason.QUIT)


def test_the_recorder_tells_the_notifier_only_while_someone_watches() -> None:
    changes = Changes()
    recorder = Transcript(changes).start_session(1, None, lambda: 0.0)
    seen = changes.version
    recorder.event("nobody waits")
    recorder.reply(Reply(b"+OK\r\n"))
    assert changes.version == seen  # no call into the notifier at all
    with changes.watching():
        recorder.event("a thread waits")
        assert changes.version != seen
    assert changes.watchers == 0


def test_an_exception_of_the_predicate_propagates() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        with pytest.raises(KeyError, match="no mailbox for user 'nobody'"):
            server.wait_for(lambda s: s.store["nobody"].messages == ())
        with pytest.raises(KeyError, match="nobody"):  # no typo passes for an empty mailbox
            server.wait_until_empty("nobody")


def test_a_mailbox_removed_while_waiting_counts_as_empty() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        waiter = InAThread(lambda: server.wait_until_empty("alice"))
        server.store.remove_user("alice")
        waiter.result()


def test_a_timeout_names_what_was_awaited_and_shows_the_transcript() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
        try:
            client.user("alice")
            client.pass_("secret")

            def alice_is_done(server: Pop3ServerThread) -> bool:
                return server.store["alice"].messages == ()

            started = time.monotonic()
            with pytest.raises(WaitTimeout) as caught:
                server.wait_for(alice_is_done, timeout=EXPIRES)
            assert time.monotonic() - started >= EXPIRES  # a real deadline, in this form
            with pytest.raises(WaitTimeout) as shortcut:
                server.wait_for_sessions(1, timeout=EXPIRES)
            client.quit()
        finally:
            client.close()
    message = str(caught.value)
    assert message.startswith(f"gave up after {EXPIRES:g} s waiting for the predicate ")
    assert "alice_is_done (test_waiting.py:" in message
    assert "C: USER alice" in message
    assert "C: PASS ****" in message
    assert caught.value.transcript is server.transcript
    assert isinstance(caught.value, TimeoutError)
    assert str(shortcut.value).startswith(
        f"gave up after {EXPIRES:g} s waiting for at least 1 POP3 session to end "
        "(0 ended, 1 still open)"
    )
    for timed_out in (caught, shortcut):
        assert_report_starts_in_this_test(timed_out)


def assert_report_starts_in_this_test(caught: pytest.ExceptionInfo[WaitTimeout]) -> None:
    # The waits hide their own frames, as the assertion helpers do, so that pytest's
    # report of a timeout ends in the test that waited.
    shown = caught.traceback.filter(caught)
    assert Path(shown[-1].path) == Path(__file__), [str(entry.path) for entry in shown]


def test_without_a_transcript_the_store_and_the_session_count_can_be_awaited() -> None:
    with Pop3ServerThread(MAILBOXES, record_transcript=False) as server:
        assert not server.record_transcript
        with polling_in_a_thread(server.host, server.port):
            server.wait_until_empty("alice")
            server.wait_for_sessions(1)
            server.wait_for(lambda s: s.store["alice"].logins >= 1)
        with pytest.raises(UsageError, match=r"reads the transcript.*record_transcript=False"):
            server.wait_for_command("QUIT")
        with pytest.raises(WaitTimeout, match="no transcript"):
            server.wait_for_sessions(1000, timeout=0)
    assert server.transcript.sessions == []


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda s: s.wait_for_sessions(-1), ConfigError, "at least 0"),
        (lambda s: s.wait_for_sessions(1.5), TypeError, "must be an int"),
        (lambda s: s.wait_for_command("RETR 1"), ConfigError, "no POP3 command keyword"),
        (lambda s: s.wait_for_command("RETR", count=0), ConfigError, "at least 1"),
        (lambda s: s.wait_for(lambda _: True, timeout=-1), ConfigError, "timeout"),
        (lambda s: s.wait_for(lambda _: True, timeout=float("inf")), ConfigError, "finite"),
        (lambda s: s.wait_for("ready"), TypeError, "function of the server"),
    ],
)
def test_bad_arguments_are_clear_errors(
    call: Callable[[Pop3ServerThread], object], error: type[Exception], match: str
) -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        with pytest.raises(error, match=match):
            call(server)


def test_waiting_needs_a_running_server_and_ends_when_it_stops() -> None:
    server = Pop3ServerThread(MAILBOXES)
    with pytest.raises(UsageError, match="not running"):
        server.wait_for_sessions(1)
    server.start()
    looked = threading.Event()

    def a_session_ended(server: Pop3ServerThread) -> bool:
        looked.set()
        return server.ended_sessions > 0

    waiter = InAThread(lambda: server.wait_for(a_session_ended, timeout=CLIENT_TIMEOUT))
    assert looked.wait(CLIENT_TIMEOUT)  # it is waiting
    server.stop()
    with pytest.raises(UsageError, match=r"server stopped while waiting for the predicate .*"):
        waiter.result()


def test_a_predicate_that_holds_at_once_returns_at_once() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        server.wait_for(lambda s: True, timeout=0)
        server.wait_for_sessions(0, timeout=0)


# -- Pop3ServerThread, from an event loop ----------------------------------------------
async def the_application_in_a_worker_thread(host: str, port: int) -> None:
    await trio.to_thread.run_sync(fetch_and_delete, host, port)


def test_the_async_forms_from_an_asyncio_run() -> None:
    async def main(server: Pop3ServerThread) -> None:
        with polling_in_a_thread(server.host, server.port):
            await server.async_wait_for_command("DELE", count=2)
            await server.async_wait_until_empty("alice")
            await server.async_wait_for_sessions(1)
            await server.async_wait_for(lambda s: not s.store["alice"].locked)
        with pytest.raises(UsageError, match=r"from a asyncio task; use await server\.async_"):
            server.wait_for_sessions(1)  # would block the loop
        with pytest.raises(WaitTimeout, match="at least 1000 POP3 sessions"):
            await server.async_wait_for_sessions(1000, timeout=EXPIRES)
        with pytest.raises(ZeroDivisionError):
            await server.async_wait_for(lambda s: 1 / 0)

    with Pop3ServerThread(MAILBOXES) as server:
        asyncio.run(main(server))


def test_an_asyncio_waiter_is_woken_by_a_change_from_another_thread() -> None:
    async def main(server: Pop3ServerThread) -> None:
        waiting = asyncio.ensure_future(server.async_wait_for(lambda s: "bob" in s.store))
        await asyncio.sleep(0)  # sleep-ok: let it take its first look (no time passes)
        assert not waiting.done()
        await asyncio.to_thread(server.store.add_user, "bob", "pw")
        await asyncio.wait_for(waiting, CLIENT_TIMEOUT)

    with Pop3ServerThread(MAILBOXES) as server:
        asyncio.run(main(server))


async def test_the_async_forms_from_a_trio_run() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(the_application_in_a_worker_thread, server.host, server.port)
            await server.async_wait_for_command("QUIT")
            await server.async_wait_until_empty("alice")
            await server.async_wait_for_sessions(1)
        with pytest.raises(UsageError, match="from a trio task"):
            server.wait_for_command("QUIT")
        # A worker thread of the loop may block: the loop goes on.
        await trio.to_thread.run_sync(server.wait_for_command, "QUIT")
        with pytest.raises(WaitTimeout):
            await server.async_wait_for_sessions(2, timeout=EXPIRES)


# -- Pop3Server, in the test's own Trio run ---------------------------------------------
async def test_the_trio_server_waits_for_a_client_in_a_worker_thread() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(the_application_in_a_worker_thread, server.host, server.port)
            await server.wait_for_command("DELE", user="alice", count=2)
            await server.wait_until_empty("alice")
            await server.wait_for_sessions(1)
        assert server.ended_sessions == 1
        assert server.store["alice"].messages == ()


async def test_a_trio_timeout_takes_no_real_time(autojump_clock: trio.testing.MockClock) -> None:
    async with open_pop3_server(MAILBOXES) as server:
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with TrioPop3Client(stream) as client:
            assert (await client.line()).startswith(b"+OK")
            await client.command("USER alice")
            started, real = trio.current_time(), time.monotonic()
            # Five minutes, shorter than the autologout time (ten), in virtual time.
            with pytest.raises(WaitTimeout, match="gave up after 300 s") as caught:
                await server.wait_for_sessions(1, timeout=300)
            assert trio.current_time() - started == pytest.approx(300)
            assert time.monotonic() - real < 30  # not five minutes
            assert "C: USER alice" in str(caught.value)
            assert_report_starts_in_this_test(caught)
            await client.command("QUIT")
        await server.wait_for_sessions(1)


async def test_a_trio_waiter_wakes_for_a_change_by_another_task_or_thread() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        async with trio.open_nursery() as nursery:

            async def deliver_then_add_bob() -> None:
                await trio.testing.wait_all_tasks_blocked()  # the waiter is waiting
                server.store.deliver("alice", MESSAGE)
                await trio.to_thread.run_sync(server.store.add_user, "bob", "pw")

            nursery.start_soon(deliver_then_add_bob)
            await server.wait_for(lambda s: len(s.store["alice"]) == 3)
            await server.wait_for(lambda s: "bob" in s.store)


async def test_a_line_recorded_while_the_predicate_runs_wakes_a_trio_waiter() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        recorder = server.transcript.start_session(99, None, time.monotonic)
        looks: list[int] = []
        with trio.fail_after(CLIENT_TIMEOUT / 2):
            predicate = records_on_its_first_look(recorder, looks)
            await server.wait_for(predicate, timeout=CLIENT_TIMEOUT)
        assert looks == [0, 1]
        recorder.end(EndReason.QUIT)


async def test_the_trio_server_waits_for_sessions_without_sockets() -> None:
    """handle_stream over a memory stream: the same waits, no network at all."""
    server = Pop3Server(MAILBOXES, record_transcript=False)
    client_end, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_stream, server_end)
        client = TrioPop3Client(client_end)
        assert (await client.line()).startswith(b"+OK")
        for command in ("USER alice", "PASS secret", "DELE 1", "DELE 2", "QUIT"):
            assert (await client.command(command)).startswith(b"+OK")
        await server.wait_until_empty("alice")
        await server.wait_for_sessions(1)
    with pytest.raises(ZeroDivisionError):
        await server.wait_for(lambda s: 1 / 0)


def test_a_shortcut_describes_itself() -> None:
    assert repr(sessions_ended(2)) == "<Awaited: at least 2 POP3 sessions to end>"
