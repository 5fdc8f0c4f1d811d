"""How the malformed-reply faults break a reply: functions from the octets the server
would send (and the moment's FaultContext) to the octets a broken server sends.

``fakepop.faults`` wraps each in a fault; the octets are a whole reply, status line
first, with CRLF line ends and a multi-line reply's terminating dot.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from ._fault_types import FaultContext

__all__ = [
    "bare_lf",
    "changing_uids",
    "garbage_status",
    "missing_terminator",
    "overlong_status",
    "shifted_list_sizes",
    "unstuffed_dots",
]

Rewrite = Callable[[bytes, FaultContext], bytes]

_LIST_LINE = re.compile(rb"^(\+OK )?(\d+) (\d+)$", re.MULTILINE)
_UIDL_LINE = re.compile(rb"^(\+OK )?(\d+) (\S+)$", re.MULTILINE)


def missing_terminator(octets: bytes, context: FaultContext) -> bytes:
    """Without the ``.`` line that ends a multi-line reply."""
    return octets[:-3] if octets.endswith(b"\r\n.\r\n") else octets


def unstuffed_dots(octets: bytes, context: FaultContext) -> bytes:
    """Payload lines that start with a dot lose the extra dot."""
    status, crlf, payload = octets.partition(b"\r\n")
    first = 1 if payload.startswith(b"..") else 0  # never the lone terminating dot
    return status + crlf + payload.replace(b"\r\n..", b"\r\n.")[first:]


def bare_lf(octets: bytes, context: FaultContext) -> bytes:
    """Lines end with LF alone."""
    return octets.replace(b"\r\n", b"\n")


def shifted_list_sizes(delta: int) -> Rewrite:
    """Every size of a LIST reply ``delta`` octets off (never under 0)."""

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        def shift(match: re.Match[bytes]) -> bytes:
            size = max(0, int(match.group(3)) + delta)
            return b"%s%s %d" % (match.group(1) or b"", match.group(2), size)

        return _per_line(_LIST_LINE, shift, octets)

    return rewrite


def garbage_status(line: bytes) -> Rewrite:
    """The status line replaced with ``line``."""

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        return line + b"\r\n" + octets.partition(b"\r\n")[2]

    return rewrite


def overlong_status(length: int) -> Rewrite:
    """The status line padded to ``length`` octets, CRLF included."""

    def rewrite(octets: bytes, context: FaultContext) -> bytes:
        status, _, rest = octets.partition(b"\r\n")
        return status.ljust(length - 2, b"x") + b"\r\n" + rest

    return rewrite


def changing_uids(octets: bytes, context: FaultContext) -> bytes:
    """Every UID of a UIDL reply suffixed with the session number: unique and valid,
    but different in every session."""
    suffix = b".s%d" % context.session

    def change(match: re.Match[bytes]) -> bytes:
        uid = match.group(3) + suffix
        if len(uid) > 70:  # still unique and valid: a digest of the real UID
            uid = hashlib.sha1(match.group(3)).hexdigest().encode() + suffix
        return b"%s%s %s" % (match.group(1) or b"", match.group(2), uid)

    return _per_line(_UIDL_LINE, change, octets)


def _per_line(
    pattern: re.Pattern[bytes], replace: Callable[[re.Match[bytes]], bytes], octets: bytes
) -> bytes:
    # The patterns match whole lines, so CRLF becomes LF for re's MULTILINE and back.
    return pattern.sub(replace, octets.replace(b"\r\n", b"\n")).replace(b"\n", b"\r\n")
