"""The one rule for the secret in a client line, and the line with it masked.

The protocol engine asks it whether a command carries a secret (``Command.secret``) and
the transcript uses it to show lines, whole or cut short for being too long: a line
that is cut keeps its start, so masking the start masks everything of the secret that
was kept.
"""

from __future__ import annotations

from ._lines import ascii_upper
from ._sasl_lines import is_sasl_cancel

__all__ = ["MASK", "mask_command_line", "secret_start"]

#: What a transcript shows instead of a secret.
MASK = "****"


def secret_start(line: str, *, sasl_response: bool) -> int | None:
    """Where the secret in a client line (without its line ending) begins, or None if
    the line carries none.

    A SASL response is secret as a whole (RFC 5034 §4), but for the ``*`` that cancels
    the exchange, which carries nothing; in ``PASS <password>`` the
    secret is the rest of the line after the keyword, spaces included (RFC 1939 §7);
    in ``AUTH <mechanism> <initial response>`` it is the initial response (RFC 5034
    §4). Keywords are ASCII (RFC 1939 §3), so a keyword that only Unicode case folding
    makes PASS or AUTH is neither.
    """
    if sasl_response:
        return None if is_sasl_cancel(line) else 0
    keyword, space, rest = line.partition(" ")
    if not space:
        return None
    keyword = ascii_upper(keyword)
    if keyword == "PASS":
        return len(keyword) + 1
    if keyword == "AUTH":
        mechanism, space, _ = rest.partition(" ")
        if space:
            return len(keyword) + len(mechanism) + 2
    return None


def mask_command_line(line: str, *, sasl_response: bool) -> str:
    """The line with its secret replaced by MASK: ``PASS ****``, ``AUTH PLAIN ****``,
    or ``****`` for a SASL response; a line without a secret as it is."""
    start = secret_start(line, sasl_response=sasl_response)
    return line if start is None else line[:start] + MASK
