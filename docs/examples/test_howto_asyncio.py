"""asyncio: the pop3_server fixture runs in its own thread, so any event loop can use it."""

import asyncio

import pytest

from fakepop import Pop3ServerThread

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.pop3({"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}),
]


async def stat(host: str, port: int, user: str, password: str) -> bytes:
    """The code under test: a tiny asyncio POP3 client."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        await reader.readline()  # the greeting
        for command in (f"USER {user}", f"PASS {password}", "STAT", "QUIT"):
            writer.write(command.encode() + b"\r\n")
            reply = await reader.readline()
            if command == "STAT":
                answer = reply
        return answer
    finally:
        writer.close()
        await writer.wait_closed()


async def test_an_asyncio_client(pop3_server: Pop3ServerThread) -> None:
    reply = await stat(pop3_server.host, pop3_server.port, "alice", "secret")

    assert reply == b"+OK 1 22\r\n"
    # wait_idle() blocks: from a running loop, call it in a thread.
    await asyncio.to_thread(pop3_server.wait_idle)
    assert not pop3_server.store["alice"].locked
