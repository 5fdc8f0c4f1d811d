"""What a session says: the client's commands as parsed, and the server's replies.

Every status line is built by :func:`status_line`, the one place that keeps echoed
client text printable and every line within RFC 1939's 512 octets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._masking import secret_start
from ._quick_init import quick_init

__all__ = ["Command", "Reply", "fits_status_line", "multiline", "ok", "status_line"]

# The only commands whose lines secret_start can find a secret in.
_MAY_HOLD_SECRETS = frozenset({"PASS", "AUTH"})


@quick_init
@dataclass(frozen=True)
class Command:
    """One command line from the client, as parsed (or not) by the server."""

    #: The line as received, without its line ending (of a line too long, the octets
    #: kept).
    line: bytes
    #: The command keyword, ASCII letters in upper case ("" for an empty or unreadable
    #: line); a keyword with other characters is kept as sent and matches no command.
    keyword: str
    #: Everything after the first space, or None if there was no space.
    argument: str | None
    #: Why the line cannot be a command at all (too long), or None.
    problem: str | None = None
    #: True for a line of a SASL exchange: a response, not a command.
    sasl_response: bool = False

    @property
    def secret(self) -> bool:
        """Whether the line carries a secret (a password, a SASL response)."""
        if not self.sasl_response and self.keyword not in _MAY_HOLD_SECRETS:
            return False  # the common case, without decoding the line
        text = self.line.decode("utf-8", "surrogateescape")
        return secret_start(text, sasl_response=self.sasl_response) is not None

    @property
    def args(self) -> list[str]:
        """The arguments, split on single spaces (so doubled spaces give empty ones)."""
        return [] if self.argument is None else self.argument.split(" ")


@quick_init
@dataclass(frozen=True)
class Reply:
    """What the server answers to one command (or the greeting)."""

    #: The status line, CRLF included: ``b"+OK ...\\r\\n"`` or ``b"-ERR ...\\r\\n"``.
    status: bytes
    #: For multi-line replies: the dot-stuffed lines and the terminating ``.\\r\\n``.
    payload: bytes | None = None
    #: Whether the server closes the connection after sending this reply.
    close: bool = False
    #: For multi-line replies: how many lines the payload holds, the terminating dot
    #: not counted (known when the reply is made, so nobody has to count them).
    lines: int = 0
    #: The TLS handshake starts right after this reply (the +OK to STLS).
    starttls: bool = False
    #: Seconds the server waits before sending this reply (a refused login's delay).
    delay: float = 0.0
    #: A reply the server sends right after this one, unasked: the notice of a server
    #: that hangs up (Dovecot's "-ERR Too many bad commands."). ``bytes(reply)`` is
    #: this reply alone.
    followed_by: Reply | None = None

    @property
    def ok(self) -> bool:
        return self.status.startswith(b"+OK")

    def __bytes__(self) -> bytes:
        return self.status if self.payload is None else self.status + self.payload


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
# RFC 1939 section 3, RFC 2449 section 4: a response line is at most 512 octets, CRLF
# included.
_STATUS_LIMIT = 512
_CUT = "..."
# RFC 2449 section 8: a response code opens the text; a shortened line keeps it whole.
_RESPONSE_CODE = re.compile(r"\[[^\]]*\] ")


def status_line(indicator: bytes, text: str, ending: str = "") -> bytes:
    # Reply text may echo what the client sent; anything but printable ASCII becomes
    # "?", so an echo can never break the line or smuggle 8-bit octets into it. A text
    # too long for the line is cut and ends in "..."; ``ending`` (the APOP timestamp)
    # follows the text after a space and is never cut.
    built = _BUILT.get(indicator)
    if ending or built is None:
        return _build_status_line(indicator, text, ending)
    # Most texts come back again and again ("+OK", a size, a count): each is built
    # once and shared, within a bounded cache (a text that echoes the client is kept
    # too, but the cache is emptied whenever it fills up).
    line = built.get(text)
    if line is None:
        if len(built) >= _BUILT_LIMIT:
            built.clear()
        line = built[text] = _build_status_line(indicator, text, "")
    return line


def _build_status_line(indicator: bytes, text: str, ending: str) -> bytes:
    if ending:
        ending = " " + _printable(ending)
    elif not text:
        return indicator + b"\r\n"
    text = _printable(text)
    room = _STATUS_LIMIT - len(indicator) - len(" \r\n") - len(ending)
    if len(text) > room:
        code = _RESPONSE_CODE.match(text)
        if code is not None and code.end() > room - len(_CUT):
            text = text[code.end() :]  # a code that cannot fit is left out, not cut
        if len(text) > room:
            text = text[: max(room - len(_CUT), 0)] + _CUT
    return (indicator + b" " + (text + ending).encode())[: _STATUS_LIMIT - 2] + b"\r\n"


# Status lines built so far, by indicator and text (see status_line).
_BUILT: dict[bytes, dict[str, bytes]] = {b"+OK": {}, b"-ERR": {}}
_BUILT_LIMIT = 1024


def _printable(text: str) -> str:
    # Printable ASCII is what str.isprintable() accepts of ASCII text: checked without
    # the regular expression, as nearly every text is.
    return text if text.isascii() and text.isprintable() else _UNPRINTABLE.sub("?", text)


def fits_status_line(indicator: bytes, text: str) -> bool:
    """Whether ``indicator`` and ``text`` (in UTF-8) fit one status line of at most 512
    octets, CRLF included, without being cut."""
    octets = len(indicator) + (len(" ") + len(text.encode()) if text else 0) + len("\r\n")
    return octets <= _STATUS_LIMIT


def ok(text: str = "") -> Reply:
    return Reply(status_line(b"+OK", text))


def multiline(text: str, payload: bytes, lines: int) -> Reply:
    return Reply(status_line(b"+OK", text), payload, lines=lines)
