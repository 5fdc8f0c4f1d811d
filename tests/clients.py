"""Shared helpers for the real-socket tests that drive fakepop with real POP3 clients.

The blocking clients (``poplib``, raw sockets) run in trio worker threads through
``trio.to_thread.run_sync``; curl runs as a subprocess. Every socket has a timeout and
every curl run a ``--max-time``, so a server that stops answering fails the test
instead of hanging it. Nothing here waits with a fixed sleep; a test waits for the
server with its own ``wait_for`` methods.
"""

from __future__ import annotations

import email.message
import poplib
import socket
import struct
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

import pytest
import trio

from fakepop import MailboxSpec, Pop3Server

__all__ = [
    "ALICE_MESSAGES",
    "ALICE_WIRE",
    "CLIENT_TIMEOUT",
    "RawPop3",
    "crlf",
    "curl",
    "expect_err",
    "headers_of",
    "mailboxes",
    "pop3",
    "pop3_url",
]

#: Seconds any client waits for the server before giving up.
CLIENT_TIMEOUT = 10

# -- the mail the tests start from ------------------------------------------------------
# Checklist section 3 fixture: alice's mail is stored with LF endings and M1's body
# holds the lines ".x" and ".". Each message comes in a different form a test may use.

#: str with LF endings; body lines ".x" and "." must be dot-stuffed on the wire.
M_DOTS = (
    "From: carol@example.org\n"
    "To: alice@example.org\n"
    "Subject: dot-stuffing\n"
    "\n"
    "first line\n"
    ".x\n"
    ".\n"
    "last line\n"
)
#: bytes with CRLF endings and an 8-bit UTF-8 body.
M_UTF8 = (
    b"From: dave@example.org\r\n"
    b"Subject: 8-bit body\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Caf\xc3\xa9 cr\xc3\xa8me \xe2\x82\xac5\r\n"
)
#: bytes with LF endings and no line ending after the last line.
M_NO_EOL = b"From: erin@example.org\nSubject: no final newline\n\nthe last line has no line ending"


def _email_message() -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = "frank@example.org"
    message["To"] = "alice@example.org"
    message["Subject"] = "an EmailMessage"
    message.set_content("Hello Alice,\n\nsee you at 10.\n")
    return message


M_EMAIL = _email_message()


def crlf(raw: bytes) -> bytes:
    """``raw`` (LF endings only) with CRLF endings, as POP3 transmits it."""
    assert b"\r" not in raw
    return raw.replace(b"\n", b"\r\n")


#: alice's messages in mailbox order, as handed to fakepop.
ALICE_MESSAGES: list[str | bytes | email.message.EmailMessage] = [
    M_DOTS,
    M_UTF8,
    M_NO_EOL,
    M_EMAIL,
]
#: The octets RETR must deliver for each of alice's messages (unstuffed, CRLF endings,
#: a final CRLF added where the message had none), worked out here by hand rather than
#: with fakepop's own conversion.
ALICE_WIRE: list[bytes] = [
    crlf(M_DOTS.encode()),
    M_UTF8,
    crlf(M_NO_EOL) + b"\r\n",
    crlf(M_EMAIL.as_bytes()),
]


def headers_of(wire: bytes) -> bytes:
    """The header section and the empty separator line of a CRLF message."""
    return wire[: wire.index(b"\r\n\r\n") + 4]


def mailboxes() -> dict[str, MailboxSpec]:
    """A fresh mailbox dict: alice (4 messages), carol (user-given UIDs), empty bob."""
    return {
        "alice": {"password": "secret", "messages": list(ALICE_MESSAGES)},
        "carol": {
            "password": "carol-pw",
            "messages": {
                "uid-a": "Subject: a\n\nfirst\n",
                "uid-b": "Subject: b\n\nsecond\n",
            },
        },
        "bob": "tanstaaf",
    }


# -- poplib ---------------------------------------------------------------------------
@contextmanager
def pop3(
    server: Pop3Server, user: str | None = None, password: str | None = None
) -> Iterator[poplib.POP3]:
    """A poplib connection to ``server`` (logged in with USER/PASS if ``user`` is given).

    The socket is closed on exit whatever happened; after ``quit()`` that is a no-op,
    without it the session ends as a dropped connection (no UPDATE).
    """
    client = poplib.POP3(server.host, server.port, timeout=CLIENT_TIMEOUT)
    try:
        if user is not None:
            assert password is not None
            client.user(user)
            client.pass_(password)
        yield client
    finally:
        client.close()


def expect_err(call: Callable[..., object], *args: object) -> bytes:
    """Call a poplib method that must fail; return the server's ``-ERR`` line."""
    with pytest.raises(poplib.error_proto) as excinfo:
        call(*args)
    reply = excinfo.value.args[0]
    assert isinstance(reply, bytes), reply
    assert reply.startswith(b"-ERR"), reply
    return reply


# -- raw sockets ------------------------------------------------------------------------
class RawPop3:
    """A bare TCP connection for checking exact bytes (stuffing, pipelining)."""

    def __init__(self, server: Pop3Server) -> None:
        self.sock = socket.create_connection(
            (server.host, server.port), timeout=CLIENT_TIMEOUT
        )
        self._file = self.sock.makefile("rb")

    def __enter__(self) -> RawPop3:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        """Send ``data`` in one write."""
        self.sock.sendall(data)

    def line(self) -> bytes:
        """The next line, CRLF included; fails if the server closed the connection."""
        line = self._file.readline(4096)
        if not line:
            raise EOFError("the server closed the connection")
        return line

    def multiline(self) -> list[bytes]:
        """The data lines of a multi-line reply as sent (still stuffed), CRLF included,
        without the terminating ``.`` line."""
        lines = []
        while (line := self.line()) != b".\r\n":
            lines.append(line)
        return lines

    def at_eof(self) -> bool:
        """Whether the server has closed its side (nothing more to read)."""
        return self._file.read() == b""

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of an orderly close."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        self._file.close()
        self.sock.close()


# -- curl -------------------------------------------------------------------------------
def pop3_url(
    server: Pop3Server, user: str, password: str, path: str = "/", *, auth: str | None = None
) -> str:
    """``pop3://user[;AUTH=auth]:password@127.0.0.1:port/path`` (RFC 2384)."""
    userinfo = user if auth is None else f"{user};AUTH={auth}"
    host, port = server.address
    assert host == "127.0.0.1", host
    return f"pop3://{userinfo}:{password}@{host}:{port}{path}"


async def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run curl (no ~/.curlrc, no proxy, at most CLIENT_TIMEOUT s) and capture output."""
    return await trio.run_process(
        ["curl", "-q", "-sS", "--noproxy", "*", "--max-time", str(CLIENT_TIMEOUT), *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
