"""What a client sends in a SASL exchange, read by one rule (RFC 5034 section 4): a
response in base64, or ``*`` to cancel. The protocol engine answers by it, and the
recording proxy notes by it what a cassette cannot show of a redacted response."""

from __future__ import annotations

import base64
import re

__all__ = ["decode_sasl_base64", "is_sasl_cancel"]

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")


def decode_sasl_base64(text: str) -> bytes | None:
    """``text`` decoded, or None if it is not base64: strictly, only the alphabet,
    padding only at the end."""
    if not _BASE64.match(text):
        return None
    return base64.b64decode(text)


def is_sasl_cancel(line: str) -> bool:
    """Whether a line of a SASL exchange (without its line ending) cancels it."""
    return line.strip() == "*"
