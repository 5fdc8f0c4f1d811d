"""``with server.expect_errors(SomeError):``: an error inside the server that is the
point of the test (docs/howto/waiting.md).

The errors come from a fault hook that raises, as a test's own hook might: a session
that meets it ends with ``-ERR [SYS/TEMP]`` and the error is recorded in
``server.errors``, which fails the test when the server stops unless the block
expected it.
"""

from __future__ import annotations

import poplib
import socket

import pytest
import trio

from fakepop import (
    ExpectationError,
    FaultContext,
    Pop3ServerThread,
    ServerError,
    faults,
    open_pop3_server,
)
from tests.clients import CLIENT_TIMEOUT

MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}
#: How long a block that expects an error that never comes waits for it: short.
EXPIRES = 0.2


class Outage(Exception):
    """What the test's backend raises, inside the server."""


def backend_down(context: FaultContext) -> None:
    raise Outage(f"the mail backend is down ({context.user})")


def stat_fails(host: str, port: int) -> bytes:
    """A client whose STAT meets the failing hook; the server's ``-ERR`` line."""
    client = poplib.POP3(host, port, timeout=CLIENT_TIMEOUT)
    try:
        client.user("alice")
        client.pass_("secret")
        with pytest.raises(poplib.error_proto) as caught:
            client.stat()
    finally:
        client.close()
    reply = caught.value.args[0]
    assert isinstance(reply, bytes)
    return reply


def test_an_expected_error_is_taken_and_the_server_stops_cleanly() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        server.faults.add(faults.hook(backend_down, "STAT"))
        with server.expect_errors(Outage) as expected:
            reply = stat_fails(server.host, server.port)
        assert reply.startswith(b"-ERR [SYS/TEMP] Internal server error")
        assert [str(e) for e in expected.errors] == ["the mail backend is down (alice)"]
        assert server.errors == []
    # Leaving the server's block raised no ServerError: the error was expected.


def test_the_end_of_the_block_waits_for_the_error_to_be_recorded() -> None:
    """The client does not read the reply: the block ends while the server may still be
    handling STAT, and expect_errors waits (through the notifier) for the error."""
    with Pop3ServerThread(MAILBOXES) as server:
        server.faults.add(faults.hook(backend_down, "STAT"))
        with socket.create_connection(server.address, timeout=CLIENT_TIMEOUT) as sock:
            with server.expect_errors(Outage) as expected:
                sock.sendall(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
            assert len(expected.errors) == 1


def test_a_missing_error_fails_with_the_transcript() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
        try:
            with pytest.raises(ExpectationError) as caught:
                with server.expect_errors(Outage, KeyError, timeout=EXPIRES):
                    client.user("alice")
            client.quit()
        finally:
            client.close()
    message = str(caught.value)
    assert message.startswith(
        "expected a session to raise Outage or KeyError inside the server while the "
        "block ran, but none did"
    )
    assert "C: USER alice" in message
    assert caught.value.transcript is server.transcript


def test_an_error_of_another_type_stays_and_is_reported_at_stop() -> None:
    with pytest.raises(ServerError, match="Outage: the mail backend is down"):
        with Pop3ServerThread(MAILBOXES) as server:
            server.faults.add(faults.hook(backend_down, "STAT"))
            with pytest.raises(ExpectationError, match="none did; it raised Outage: the mail"):
                with server.expect_errors(KeyError, timeout=EXPIRES):
                    stat_fails(server.host, server.port)
            assert [type(e) for e in server.errors] == [Outage]


def test_an_error_from_before_the_block_is_not_taken() -> None:
    with pytest.raises(ServerError, match="1 error"):
        with Pop3ServerThread(MAILBOXES) as server:
            server.faults.add(faults.hook(backend_down, "STAT"))
            stat_fails(server.host, server.port)
            server.wait_for_sessions(1)
            with server.expect_errors(Outage) as expected:
                stat_fails(server.host, server.port)
            assert len(expected.errors) == 1
            assert len(server.errors) == 1  # the first one, not expected: reported at stop


def test_the_blocks_own_failure_is_what_is_raised() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        with pytest.raises(RuntimeError, match="the test's own"):
            with server.expect_errors(Outage, timeout=CLIENT_TIMEOUT):
                raise RuntimeError("the test's own failure")  # no wait for an Outage


def test_expect_errors_needs_exception_types() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        with pytest.raises(TypeError, match="at least one exception type"):
            server.expect_errors()
        with pytest.raises(TypeError, match="exception types, not 'Outage'"):
            server.expect_errors("Outage")  # type: ignore[arg-type]


async def test_the_trio_server_takes_an_expected_error() -> None:
    async with open_pop3_server(MAILBOXES) as server:
        server.faults.add(faults.hook(backend_down, "STAT"))
        with server.expect_errors(Outage) as expected:
            reply = await trio.to_thread.run_sync(stat_fails, server.host, server.port)
        assert reply.startswith(b"-ERR [SYS/TEMP]")
        assert len(expected.errors) == 1
        with pytest.raises(ExpectationError, match="none did"):
            with server.expect_errors(Outage):  # nothing happened in this block
                pass


async def test_the_thread_server_in_a_trio_test_does_not_block_at_the_end() -> None:
    with Pop3ServerThread(MAILBOXES) as server:
        server.faults.add(faults.hook(backend_down, "STAT"))
        with server.expect_errors(Outage) as expected:
            await trio.to_thread.run_sync(stat_fails, server.host, server.port)
            await server.async_wait_for(lambda s: s.errors != [])
        assert len(expected.errors) == 1
