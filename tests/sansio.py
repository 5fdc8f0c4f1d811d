"""Helpers to drive the sans-IO protocol engine in tests, without any I/O."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable

from fakepop import MailStore, Pop3Protocol, ServerConfig

# The checklist's fixture (section 3): alice's three messages stored with LF endings,
# M1's body holding the lines ".x" and ".".
M1 = (
    "From: carol@example.com\nTo: alice@example.com\nSubject: one\n\n"
    "first line\n.x\n.\nlast line\n"
)
M2 = "From: dave@example.com\nTo: alice@example.com\nSubject: two\n\nshort body\n"
M3 = (
    "From: eve@example.com\nTo: alice@example.com\nSubject: three\n\n"
    + "".join(f"body line {i}\n" for i in range(1, 11))
)
SIZES = [len(m.replace("\n", "\r\n").encode()) for m in (M1, M2, M3)]
TOTAL = sum(SIZES)
APOP_TIMESTAMP = "<1896.697170952@dbc.mtview.ca.us>"


def checklist_store() -> MailStore:
    return MailStore(
        {
            "alice": {"password": "secret", "messages": [M1, M2, M3]},
            "bob": "tanstaaf",
            "empty": "nothing",
            "spacey": "my secret",
        }
    )


def apop_digest(secret: str, timestamp: str = APOP_TIMESTAMP) -> str:
    return hashlib.md5((timestamp + secret).encode(), usedforsecurity=False).hexdigest()


def new_session(
    store: MailStore | None = None, config: ServerConfig | None = None, now: float = 0.0
) -> Pop3Protocol:
    return Pop3Protocol(
        store if store is not None else checklist_store(),
        config,
        apop_timestamp=APOP_TIMESTAMP if (config is None or config.apop) else None,
        clock=lambda: now,
    )


def feed(protocol: Pop3Protocol, pieces: Iterable[bytes]) -> bytes:
    """Feed the pieces one by one, answering every complete command; return all output."""
    out = bytearray()
    for piece in pieces:
        protocol.receive_data(piece)
        while (command := protocol.next_command()) is not None:
            reply = protocol.handle(command)
            out += bytes(reply)
            if reply.followed_by is not None:
                out += bytes(reply.followed_by)
    return bytes(out)


def chunkings(data: bytes) -> dict[str, list[bytes]]:
    """The same input whole, byte by byte, and in seeded random pieces."""
    rng = random.Random(1939)
    pieces = []
    i = 0
    while i < len(data):
        size = rng.randint(1, 7)
        pieces.append(data[i : i + size])
        i += size
    return {
        "whole": [data],
        "bytewise": [data[i : i + 1] for i in range(len(data))],
        "random": pieces,
    }


def converse(data: bytes, config: ServerConfig | None = None) -> bytes:
    """Send ``data`` to a fresh session in every chunking; all must answer the same."""
    outputs = {}
    for name, pieces in chunkings(data).items():
        outputs[name] = feed(new_session(config=config), pieces)
    assert outputs["bytewise"] == outputs["whole"]
    assert outputs["random"] == outputs["whole"]
    return outputs["whole"]


def lines(output: bytes) -> list[bytes]:
    """Output split into lines without CRLF (every line must end in CRLF)."""
    assert output.endswith(b"\r\n") or not output, output[-20:]
    return output.split(b"\r\n")[:-1]


LOGIN = b"USER alice\r\nPASS secret\r\n"
LOGGED_IN = [
    b"+OK Send PASS for alice",
    f"+OK alice's maildrop is locked and ready: 3 messages ({TOTAL} octets)".encode(),
]
