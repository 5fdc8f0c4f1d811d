"""A tiny POP3 client over any trio stream, for server tests that need no thread."""

from __future__ import annotations

import trio


class TrioPop3Client:
    """Reads replies line by line; ``async with`` closes the connection."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._buffer = bytearray()

    async def __aenter__(self) -> TrioPop3Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stream.aclose()

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self._buffer += data
        return bool(data)

    async def line(self) -> bytes:
        """The next line without CRLF; EOFError if the server closed first."""
        while (end := self._buffer.find(b"\r\n")) < 0:
            if not await self._fill():
                raise EOFError(bytes(self._buffer))
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    async def command(self, text: str) -> bytes:
        await self.stream.send_all(text.encode() + b"\r\n")
        return await self.line()

    async def multiline(self, text: str) -> tuple[bytes, list[bytes]]:
        status = await self.command(text)
        body = []
        if status.startswith(b"+OK"):
            while (line := await self.line()) != b".":
                body.append(line)
        return status, body

    async def closed_by_server(self) -> bool:
        """True once the server closes the connection (with nothing more to read)."""
        try:
            return not await self._fill()
        except trio.BrokenResourceError:
            return True
