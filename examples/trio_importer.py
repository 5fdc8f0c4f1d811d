"""The importer of ``importer.py``, for Trio programs.

The same steps (save every message not saved before as ``<uid>.eml``, delete it from
the server, QUIT) with a tiny POP3 client on a Trio stream instead of poplib.
"""

from __future__ import annotations

from pathlib import Path

import trio

__all__ = ["Pop3Error", "import_mail"]

TIMEOUT = 10.0


class Pop3Error(Exception):
    """The server answered -ERR."""


class Pop3Client:
    """Just enough POP3 for the importer: one command, one reply, in turn."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def _line(self) -> bytes:
        with trio.fail_after(TIMEOUT):
            while (end := self._buffer.find(b"\r\n")) < 0:
                data = await self._stream.receive_some()
                if not data:
                    raise ConnectionError("the server closed the connection")
                self._buffer += data
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def status(self) -> bytes:
        """Read a status line; return it if it is +OK."""
        status = await self._line()
        if not status.startswith(b"+OK"):
            raise Pop3Error(status.decode("utf-8", "replace"))
        return status

    async def command(self, line: str) -> bytes:
        """Send one command; return its +OK status line."""
        await self._stream.send_all(line.encode() + b"\r\n")
        return await self.status()

    async def multiline(self, line: str) -> list[bytes]:
        """Send one command; return the lines of its multi-line reply, unstuffed."""
        await self.command(line)
        lines = []
        while (body_line := await self._line()) != b".":
            # A line that starts with a dot has had one more put in front (RFC 1939).
            lines.append(body_line[1:] if body_line.startswith(b".") else body_line)
        return lines


async def import_mail(host: str, port: int, user: str, password: str, folder: Path) -> list[str]:
    """Import new mail into ``folder``; return the UIDs saved by this run."""
    folder.mkdir(parents=True, exist_ok=True)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(host, port)
    async with stream:
        client = Pop3Client(stream)
        await client.status()  # the greeting
        await client.command(f"USER {user}")
        await client.command(f"PASS {password}")
        saved = []
        for entry in await client.multiline("UIDL"):
            number, uid = entry.decode("ascii").split(" ", 1)
            target = folder / f"{uid}.eml"
            if not target.exists():
                lines = await client.multiline(f"RETR {number}")
                # Written under another name first, as in importer.py: a crash never
                # leaves half a file that a later run would take for a saved message.
                # A mail is small, so it is written at once rather than through
                # trio.Path, which would hand the writing to a worker thread.
                partial = target.with_suffix(".part")
                partial.write_bytes(b"".join(line + b"\r\n" for line in lines))
                partial.replace(target)
                saved.append(uid)
            await client.command(f"DELE {number}")
        await client.command("QUIT")
    return saved
