"""SASLprep (RFC 4013), the stringprep profile for user names and passwords, built on
the stdlib ``stringprep`` tables and ``unicodedata``."""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable

__all__ = ["SaslprepError", "saslprep"]


class SaslprepError(ValueError):
    """The string holds a character SASLprep prohibits, or breaks its bidi rules."""


# RFC 4013 section 2.3: the prohibited output tables, with what they hold.
_PROHIBITED: list[tuple[Callable[[str], bool], str]] = [
    (stringprep.in_table_c12, "a non-ASCII space"),
    (stringprep.in_table_c21_c22, "a control character"),
    (stringprep.in_table_c3, "a private use character"),
    (stringprep.in_table_c4, "a non-character code point"),
    (stringprep.in_table_c5, "a surrogate code point"),
    (stringprep.in_table_c6, "a character inappropriate for plain text"),
    (stringprep.in_table_c7, "a character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "a display property character"),
    (stringprep.in_table_c9, "a tagging character"),
    (stringprep.in_table_a1, "an unassigned code point"),
]


def saslprep(text: str) -> str:
    """The SASLprep form of ``text``; SaslprepError if SASLprep prohibits it."""
    if text.isascii() and text.isprintable():
        # Printable ASCII maps to itself: no RFC 4013 mapping table holds one of its
        # characters, NFKC leaves it alone, and only ASCII controls are prohibited.
        return text
    # 2.1 mapping: non-ASCII spaces become a space, "commonly mapped to nothing" go.
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    # 2.2 normalisation: KC, with the Unicode 3.2 tables stringprep is defined on
    # (RFC 3454 section 1.3), as the stdlib's IDNA codec does.
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for char in prepared:
        for prohibited, what in _PROHIBITED:
            if prohibited(char):
                raise SaslprepError(f"contains {what} (U+{ord(char):04X})")
    # 2.5 / RFC 3454 section 6: bidirectional text must be wholly right-to-left
    # (starting and ending so) or contain no right-to-left character at all.
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            raise SaslprepError("mixes right-to-left and left-to-right characters")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise SaslprepError("right-to-left text must start and end right-to-left")
    return prepared
