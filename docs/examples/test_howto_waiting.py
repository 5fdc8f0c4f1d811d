"""Waiting for the application: the test waits for what the server saw, never sleeps."""

import asyncio
import poplib
import threading

import pytest
import trio

from fakepop import FaultContext, Pop3Server, Pop3ServerThread, WaitTimeout, faults

MAILBOXES = {
    "alice": {"password": "secret", "messages": ["Subject: a\n\nA\n", "Subject: b\n\nB\n"]}
}


def fetch_and_delete(host: str, port: int) -> int:
    """One poll of the application under test."""
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        count, _ = client.stat()
        for number in range(1, count + 1):
            client.retr(number)
            client.dele(number)
        client.quit()
    finally:
        client.close()
    return count


def poll_until_stopped(host: str, port: int, stop: threading.Event) -> None:
    """The application's background worker: a poll every 50 ms until stopped."""
    while not stop.is_set():
        fetch_and_delete(host, port)
        stop.wait(0.05)


@pytest.mark.pop3(MAILBOXES)
def test_wait_for_a_background_worker(pop3_server: Pop3ServerThread) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=poll_until_stopped, args=(pop3_server.host, pop3_server.port, stop)
    )
    worker.start()
    try:
        pop3_server.wait_for_command("DELE", count=2)  # both messages marked
        pop3_server.wait_until_empty("alice")  # and removed by the worker's QUIT
        pop3_server.wait_for_sessions(1)  # that session has ended
        pop3_server.store.deliver("alice", "Subject: c\n\nC\n")
        # Any condition on the server: re-checked at every change, never on a timer.
        pop3_server.wait_for(lambda server: len(server.store["alice"].deleted) == 3)
    finally:
        stop.set()
        worker.join()


@pytest.mark.pop3(MAILBOXES)
def test_a_wait_that_times_out_shows_the_transcript(pop3_server: Pop3ServerThread) -> None:
    assert fetch_and_delete(pop3_server.host, pop3_server.port) == 2
    with pytest.raises(WaitTimeout) as caught:
        pop3_server.wait_for_command("TOP", timeout=0.1)  # the default is 10 s
    assert "waiting for a TOP command to be answered once" in str(caught.value)
    assert "C: RETR 1" in str(caught.value)  # what the application did say


@pytest.mark.asyncio
@pytest.mark.pop3(MAILBOXES)
async def test_wait_from_asyncio(pop3_server: Pop3ServerThread) -> None:
    application = asyncio.create_task(
        asyncio.to_thread(fetch_and_delete, pop3_server.host, pop3_server.port)
    )
    await pop3_server.async_wait_until_empty("alice")  # sleeps in the loop, never blocks it
    assert await application == 2


@pytest.mark.trio
@pytest.mark.pop3(MAILBOXES)
async def test_wait_from_trio(trio_pop3_server: Pop3Server) -> None:
    server = trio_pop3_server  # a Pop3Server: its waits are plain async methods
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, fetch_and_delete, server.host, server.port)
        await server.wait_for_command("QUIT")
    assert server.store["alice"].messages == ()


class BackendDown(Exception):
    """Raised by the test's own hook, inside the server."""


def backend_down(context: FaultContext) -> None:
    raise BackendDown("the mail backend is unreachable")


@pytest.mark.pop3(MAILBOXES)
def test_an_error_inside_the_server_that_is_the_point(pop3_server: Pop3ServerThread) -> None:
    pop3_server.faults.add(faults.hook(backend_down, "RETR"))

    with (
        pop3_server.expect_errors(BackendDown) as expected,
        pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\]"),
    ):
        fetch_and_delete(pop3_server.host, pop3_server.port)

    assert [str(error) for error in expected.errors] == ["the mail backend is unreachable"]
    assert pop3_server.store["alice"].uids == ["uid000001", "uid000002"]  # nothing deleted
    # The error was expected: the test passes, and the fixture's teardown reports nothing.
