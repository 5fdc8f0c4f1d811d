"""How a command's arguments are read: every argument rule of the server, in one place.

Strictly, as RFC 1939 writes commands (the default): words are separated by exactly
one space, each command takes exactly its arguments, and a message number or line
count is one word of digits. Leniently, as Dovecot reads them
(``ServerConfig.lenient_arguments``): spaces before an argument are skipped, commands
without arguments ignore what follows them, USER takes the rest of the line (even
nothing) and PASS may be empty, a number ends at its last digit (what follows it is
"noise"), and numbers beyond what Dovecot can hold are "too large".

The command modules ask here and get either the arguments or a :class:`Refused`
whose text is worded by the config's texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._config import ServerConfig
from ._quick_init import quick_init
from ._replies import Command
from ._state import NO_ARGUMENTS

__all__ = [
    "MessageNumber",
    "Refused",
    "bounded_int",
    "extra_arguments",
    "line_count",
    "message_arguments",
    "password",
    "user_name",
]

_DIGITS = re.compile(r"[0-9]+\Z")
_LEADING_DIGITS = re.compile(r"[0-9]*")
# Dovecot reads a message number as an unsigned int and a line count as a uoff_t.
_MAX_NUMBER = 2**32 - 1
_MAX_LINE_COUNT = 2**64 - 1
# How many octets a strict argument is echoed with.
_ECHO = 40


@dataclass(frozen=True)
class Refused:
    """Arguments refused: the text of the ``-ERR`` reply."""

    text: str


@quick_init
@dataclass(frozen=True)
class MessageNumber:
    """A message-number argument: its value (0 if no message can have it, as with
    more digits than any mailbox needs) and how a reply names it."""

    value: int
    shown: str


def bounded_int(digits: str, too_big: int) -> int:
    """The value of a string of digits, leading zeros and all; ``too_big`` for more
    significant digits than any mailbox or message could need, without a big int."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 20 else too_big


def extra_arguments(command: Command, config: ServerConfig) -> Refused | None:
    """Why a command that takes no argument cannot have the one it was given."""
    if command.argument is None or command.keyword not in NO_ARGUMENTS:
        return None
    if config.lenient_arguments:
        return None  # ignored, as Dovecot ignores it
    return Refused(f"{command.keyword} takes no arguments")


def user_name(command: Command, config: ServerConfig) -> str | Refused:
    """USER's argument: the user name."""
    if config.lenient_arguments:
        return command.argument or ""  # the rest of the line, spaces and all
    args = command.args
    if len(args) != 1 or not args[0]:
        return Refused("USER needs exactly one argument: the user name")
    return args[0]


def password(command: Command, config: ServerConfig) -> str | Refused:
    """PASS's argument: the rest of the line, spaces included (RFC 1939 section 7)."""
    if command.argument or config.lenient_arguments:
        return command.argument or ""
    return Refused("PASS needs the password as its argument")


def message_arguments(
    command: Command, config: ServerConfig, *, optional: bool = False, top: bool = False
) -> tuple[MessageNumber | None, str] | Refused:
    """The message number of LIST, UIDL (``optional``), RETR, DELE and TOP (``top``),
    and the text of TOP's line count (read by :func:`line_count` once the message is
    known to exist, as both RFC 1939 servers and Dovecot check the number first).
    None for a number that may be left out and was."""
    if config.lenient_arguments:
        return _lenient_message_arguments(command, config, optional=optional, top=top)
    args = command.args
    keyword = command.keyword
    if top and len(args) != 2:
        return Refused("TOP needs two arguments: a message number and a line count")
    if optional and len(args) > 1:
        return Refused(f"{keyword} takes at most one argument: a message number")
    if not (top or optional) and len(args) != 1:
        return Refused(f"{keyword} needs exactly one argument: a message number")
    if not args:
        return None, ""
    token = args[0]
    if not _DIGITS.match(token):
        return Refused(config.text("invalid_number", argument=token[:_ECHO]))
    return MessageNumber(bounded_int(token, 0), token[:_ECHO]), args[1] if top else ""


def line_count(text: str, config: ServerConfig) -> int | Refused:
    """TOP's line count."""
    if config.lenient_arguments:
        digits = _LEADING_DIGITS.match(text).group()  # type: ignore[union-attr]
        if not digits:
            return Refused(config.text("invalid_line_count", argument=text))
        value = bounded_int(digits, _MAX_LINE_COUNT + 1)
        if value > _MAX_LINE_COUNT:
            return Refused(config.text("line_count_too_large", argument=text))
        if len(digits) < len(text):
            return Refused(config.text("noise_after_line_count", argument=text[len(digits) :]))
        return value
    if not _DIGITS.match(text):
        return Refused(config.text("invalid_line_count", argument=text[:_ECHO]))
    return bounded_int(text, 10**12)


def _lenient_message_arguments(
    command: Command, config: ServerConfig, *, optional: bool, top: bool
) -> tuple[MessageNumber | None, str] | Refused:
    text = (command.argument or "").lstrip(" ")
    if optional and not text:
        return None, ""
    digits = _LEADING_DIGITS.match(text).group()  # type: ignore[union-attr]
    if not digits:
        return Refused(config.text("invalid_number", argument=text))
    after = text[len(digits) :]
    value = bounded_int(digits, _MAX_LINE_COUNT + 1)
    if value > _MAX_NUMBER:
        # Dovecot echoes what follows the digits, or all of it when the digits do not
        # even fit 64 bits.
        echo = after if value <= _MAX_LINE_COUNT else text
        return Refused(config.text("number_too_large", argument=echo))
    if after[:1] != (" " if top else ""):
        return Refused(config.text("noise_after_number", argument=after))
    return MessageNumber(value, str(value)), after.lstrip(" ")
