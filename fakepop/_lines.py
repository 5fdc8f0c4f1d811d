"""Splitting the client's byte stream into command lines, with a hard length cap, and
the one rule for reading a line's keyword."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LineReader", "TooLong", "ascii_upper"]


def ascii_upper(word: str) -> str:
    """A command keyword (or mechanism name) as fakepop compares it: ASCII letters in
    upper case. RFC 1939 section 3: keywords are ASCII; ``str.upper()`` would also fold
    "\u017ftat" onto STAT and "qu\u0131t" onto QUIT, so a word with any other character
    is kept as it is and matches no keyword."""
    return word.upper() if word.isascii() else word


@dataclass(frozen=True)
class TooLong:
    """Stands in for a line longer than the limit; its content was thrown away."""

    prefix: bytes  # the first octets, kept so the transcript can show what it was


class LineReader:
    """Accumulates received bytes and hands out complete lines.

    Lines end in LF; a CR before it is removed. A line longer than ``limit`` octets
    (CRLF included) is never returned: the reader yields one :class:`TooLong` for it
    and discards everything up to its end. The buffer never holds more than ``limit``
    octets of an unfinished line, so a client sending an endless line cannot make it
    grow.
    """

    def __init__(self, limit: int) -> None:
        #: The longest line accepted, CRLF included; may change between lines.
        self.limit = limit
        self._buffer = bytearray()
        self._scanned = 0  # the buffer's first _scanned octets hold no LF
        self._discarding = False  # inside the tail of an over-long line

    @property
    def pending(self) -> int:
        """Octets received and not yet returned as a line."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray) -> None:
        self._buffer += data

    def next_line(self) -> bytes | TooLong | None:
        """The next complete line without its line ending, a TooLong, or None."""
        while True:
            buffer = self._buffer
            end = buffer.find(b"\n", self._scanned)
            if end < 0:
                if self._discarding:
                    buffer.clear()
                    self._scanned = 0
                    return None
                if len(buffer) >= self.limit:
                    # Can no longer end within the limit (the LF would be octet limit+1).
                    prefix = bytes(buffer[:64])
                    buffer.clear()
                    self._scanned = 0
                    self._discarding = True
                    return TooLong(prefix)
                self._scanned = len(buffer)
                return None
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            self._scanned = 0
            if self._discarding:
                self._discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            # The limit counts CRLF, whichever line ending the client used.
            if len(line) + 2 > self.limit:
                return TooLong(line[:64])
            return line
