"""The importer of ``importer.py``, for asyncio programs.

The same steps (save every message not saved before as ``<uid>.eml``, delete it from
the server, QUIT) with a tiny POP3 client on asyncio streams instead of poplib.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

__all__ = ["Pop3Error", "import_mail"]

TIMEOUT = 10.0


class Pop3Error(Exception):
    """The server answered -ERR."""


class Pop3Client:
    """Just enough POP3 for the importer: one command, one reply, in turn."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, host: str, port: int) -> Pop3Client:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        client = cls(reader, writer)
        try:
            await client._status()  # the greeting
        except BaseException:
            await client.close()
            raise
        return client

    async def _line(self) -> bytes:
        line = await asyncio.wait_for(self._reader.readline(), TIMEOUT)
        if not line.endswith(b"\n"):
            raise ConnectionError("the server closed the connection")
        return line.rstrip(b"\r\n")

    async def _status(self) -> bytes:
        status = await self._line()
        if not status.startswith(b"+OK"):
            raise Pop3Error(status.decode("utf-8", "replace"))
        return status

    async def command(self, line: str) -> bytes:
        """Send one command; return its +OK status line."""
        self._writer.write(line.encode() + b"\r\n")
        await self._writer.drain()
        return await self._status()

    async def multiline(self, line: str) -> list[bytes]:
        """Send one command; return the lines of its multi-line reply, unstuffed."""
        await self.command(line)
        lines = []
        while (body_line := await self._line()) != b".":
            # A line that starts with a dot has had one more put in front (RFC 1939).
            lines.append(body_line[1:] if body_line.startswith(b".") else body_line)
        return lines

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # the connection was broken already
            await self._writer.wait_closed()


async def import_mail(host: str, port: int, user: str, password: str, folder: Path) -> list[str]:
    """Import new mail into ``folder``; return the UIDs saved by this run."""
    folder.mkdir(parents=True, exist_ok=True)
    client = await Pop3Client.connect(host, port)
    try:
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
                partial = target.with_suffix(".part")
                partial.write_bytes(b"".join(line + b"\r\n" for line in lines))
                partial.replace(target)
                saved.append(uid)
            await client.command(f"DELE {number}")
        await client.command("QUIT")
    finally:
        await client.close()
    return saved
