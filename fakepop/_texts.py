"""The wording of a server's replies: the defaults and the checked overrides.

``ServerConfig(texts={...})`` rewords any reply a real server words differently; the
keys and the fields each text may use are those of :data:`DEFAULT_TEXTS`, and a
:class:`Texts` is checked when it is made, so a typo fails at once, not mid-session.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping

from .errors import ConfigError

__all__ = ["DEFAULT_TEXTS", "Texts"]

#: The wording of the replies that real servers word differently, after +OK or -ERR
#: (response codes are added by the server). ServerConfig(texts={...}) overrides any
#: of them; the fields in braces are filled in. An empty text sends a bare +OK.
DEFAULT_TEXTS: dict[str, str] = {
    "user": "Send PASS for {user}",
    "logged_in": "{user}'s maildrop is locked and ready: {messages} ({octets} octets)",
    "auth_failed": "Authentication failed",
    "sasl_failed": "Authentication failed",
    "in_use": "Mailbox is locked by another session",
    "quit": "Logging out",
    "quit_update": "Logging out, {deleted} deleted",
    "quit_nothing_deleted": "Logging out, {deleted} deleted",
    "unknown_command": "Unknown command: {keyword}",
    "before_login": "{keyword} is not allowed before login",
    "after_login": "{keyword} is not allowed after login",
    "no_such_message": "No such message: {number}",
    "message_deleted": "Message {number} is deleted",
    "capa": "Capability list follows",
    "list": "{messages} ({octets} octets)",
    "uidl": "Unique-ID listing follows",
    "retr": "{size} octets",
    "top": "Top of message follows",
    "dele": "Message {number} marked for deletion",
    "rset": "{messages} ({octets} octets)",
    "noop": "",
    "stls": "Begin TLS negotiation now",
    # Refusals of what the client sent.
    "unknown_before_login": "Unknown command: {keyword}",
    "empty_command": "Empty command",
    "pass_without_user": "PASS must come right after a successful USER",
    # A login refused for want of TLS (cleartext_login=False, require_tls=True); the
    # server adds [AUTH].
    "cleartext_refused": "Plaintext authentication is not allowed without TLS; use STLS first",
    "tls_required": "TLS is required before login; use STLS first",
    "apop_disabled": "Unknown command: {keyword}",
    "tls_active": "TLS is already active",
    "line_too_long": "Line too long (at most {limit} octets including CRLF)",
    "line_too_long_before_login": "Line too long (at most {limit} octets including CRLF)",
    "too_many_bad_commands": "Too many bad commands",
    "too_many_bad_commands_before_login": "Too many bad commands",
    # Message numbers and TOP's line count; "too large" and "noise" come only with
    # lenient_arguments (strictly read, an argument is one word of digits).
    "invalid_number": "Invalid message number: {argument}",
    "number_too_large": "Message number too large: {argument}",
    "noise_after_number": "Noise after message number: {argument}",
    "invalid_line_count": "Invalid line count: {argument}",
    "line_count_too_large": "Line count too large: {argument}",
    "noise_after_line_count": "Noise after line count: {argument}",
    # AUTH (RFC 5034).
    "sasl_mechanisms": "Supported SASL mechanisms follow",
    "unsupported_mechanism": "Unsupported SASL mechanism: {mechanism}",
    "sasl_cancelled": "Authentication cancelled",
    "bad_initial_response": "The initial response is not valid base64",
    "bad_sasl_response": "The response is not valid base64",
}


def _fields(template: str) -> set[str]:
    # The names in braces of a str.format template; ValueError if it is malformed.
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


_FIELDS = {key: _fields(template) for key, template in DEFAULT_TEXTS.items()}


class Texts(Mapping[str, str]):
    """The reply wording a ServerConfig overrides: read-only, hashable, and checked
    when made (known keys, one line each, only the fields each reply has)."""

    __slots__ = ("_hash", "_items")

    def __init__(self, texts: Mapping[str, str] | None = None) -> None:
        items = dict(texts or {})
        strange = sorted(set(items) - set(DEFAULT_TEXTS))
        if strange:
            raise ConfigError(
                f"unknown texts {strange}; the replies that can be worded are "
                f"{', '.join(sorted(DEFAULT_TEXTS))}"
            )
        for key, text in items.items():
            if not isinstance(text, str):
                raise ConfigError(f"text {key!r} must be a str, not {type(text).__name__}")
            if "\r" in text or "\n" in text:
                raise ConfigError(f"text {key!r} must be one line")
            try:
                unknown = sorted(_fields(text) - _FIELDS[key])
            except ValueError as problem:
                raise ConfigError(f"text {key!r} is not a valid template: {problem}") from None
            if unknown:
                allowed = ", ".join(f"{{{name}}}" for name in sorted(_FIELDS[key])) or "none"
                raise ConfigError(
                    f"text {key!r} uses {', '.join(f'{{{n}}}' for n in unknown)}; "
                    f"its fields are: {allowed}"
                )
        self._items = items
        self._hash = hash(frozenset(items.items()))

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __contains__(self, key: object) -> bool:
        # Without raising and catching a KeyError, as Mapping's would for a text that
        # is not overridden: the usual case, at every reply.
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"Texts({self._items!r})"
