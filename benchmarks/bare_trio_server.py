"""The bare Trio floor: a minimal POP3 server over pre-built reply bytes.

It knows USER, PASS, STAT, LIST, UIDL, RETR and QUIT, without arguments to LIST and
UIDL, without locking, deleting or timeouts, and with every reply built once at start.
What is left is what any Trio POP3 server pays: accepting, one ``receive_some`` per
chunk of commands, one ``send_all`` per reply. fakepop's figures are read against it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import trio

__all__ = ["FloorMailbox", "listings", "serve"]

_OK, _BYE = b"+OK\r\n", b"+OK bye\r\n"
_ERR = b"-ERR no\r\n"


@dataclass(frozen=True, slots=True)
class FloorMailbox:
    password: bytes
    stat: bytes  # the whole STAT reply
    listing: bytes  # the whole LIST reply, status line to terminating dot
    uidl: bytes  # the whole UIDL reply
    retr: tuple[bytes, ...]  # the whole RETR reply of each message

    @classmethod
    def build(cls, password: str, messages: Iterable[bytes]) -> FloorMailbox:
        retr: list[bytes] = []
        sizes: list[int] = []
        for message in messages:  # already CRLF-terminated lines
            stuffed = message.replace(b"\r\n.", b"\r\n..")
            stuffed = b"." + stuffed if stuffed.startswith(b".") else stuffed
            retr.append(b"+OK %d octets\r\n%s.\r\n" % (len(message), stuffed))
            sizes.append(len(message))
        listing, uidl = listings(sizes)
        return cls(
            password.encode(),
            b"+OK %d %d\r\n" % (len(sizes), sum(sizes)),
            b"+OK\r\n" + listing + b".\r\n",
            b"+OK\r\n" + uidl + b".\r\n",
            tuple(retr),
        )


def listings(sizes: list[int]) -> tuple[bytes, bytes]:
    """The LIST and UIDL lines for messages of these sizes, formatted line by line."""
    listing = b"".join(b"%d %d\r\n" % (n, size) for n, size in enumerate(sizes, 1))
    uidl = b"".join(b"%d uid%06d\r\n" % (n, n) for n in range(1, len(sizes) + 1))
    return listing, uidl


async def _session(stream: trio.SocketStream, boxes: Mapping[bytes, FloorMailbox]) -> None:
    async with stream:
        await stream.send_all(b"+OK floor ready\r\n")
        user, box, pending = b"", None, b""
        while data := await stream.receive_some(16384):
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                verb, _, arg = line.rstrip(b"\r").partition(b" ")
                verb = verb.upper()
                reply = _ERR
                if verb == b"QUIT":
                    await stream.send_all(_BYE)
                    return
                if box is None:
                    if verb == b"USER":
                        user, reply = arg, _OK
                    elif verb == b"PASS" and (found := boxes.get(user)) and found.password == arg:
                        box, reply = found, _OK
                elif verb == b"RETR" and arg.isdigit() and 0 < int(arg) <= len(box.retr):
                    reply = box.retr[int(arg) - 1]
                elif verb in (b"STAT", b"LIST", b"UIDL"):
                    reply = {b"STAT": box.stat, b"LIST": box.listing, b"UIDL": box.uidl}[verb]
                await stream.send_all(reply)


async def serve(
    boxes: Mapping[str, FloorMailbox],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on 127.0.0.1, a free port, until cancelled; ``nursery.start`` gives the port."""
    by_name = {user.encode(): box for user, box in boxes.items()}
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(functools.partial(_session, boxes=by_name), listeners)
