"""Server profiles: defaults that make fakepop greet, advertise and word its replies
like a particular real server, so a client meets the quirks it will meet in production.

A profile only chooses ServerConfig defaults; every option can still be given::

    config = profiles.dovecot(autologout=5)
    config = profiles.profile("gmail", texts={"quit": "Bye."})

What each profile reproduces, and where the facts come from:

- ``dovecot``: Dovecot 2.3 as in recorded sessions with a real server on loopback
  (greeting, CAPA, SASL PLAIN LOGIN CRAM-MD5, no APOP, the wording of every reply
  below, "Unknown command." for commands that need a login). Not reproduced: its 2 s
  delay after a failed login, its disconnect after three bad commands before login,
  its 10 s wait for a lock, "No username given." for PASS without USER, the CAPA line
  it lists for CAPA itself, and "Unknown command." (without the keyword) for unknown
  commands before login.
- ``gmail``: pop.gmail.com as public session logs show it ("Gpop ready for
  requests", "send PASS", "Welcome.", "Farewell.", "message follows", "Username and
  password not accepted.", LIST's "N messages (S bytes)"), and Google's documentation
  (XOAUTH2 over POP, no APOP). Not reproduced: Gmail hiding every message a client
  has retrieved from later sessions, and its "recent:" user names.
- ``outlook``: Exchange Online's POP3 service as Microsoft documents it (the greeting
  "The Microsoft Exchange POP3 service is ready.", XOAUTH2 with the token on a
  continuation line, "Authentication failure: unknown user name or bad password.").
- ``rfc1939``: a bare RFC 1939 server, no CAPA at all (``-ERR`` to it), no response
  codes and no extensions, so clients must fall back to what RFC 1939 guarantees.

None of them offers UTF8 or LANG (RFC 6856), and each sends a message with raw UTF-8
headers as it is, as these servers do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._config import ServerConfig
from .errors import ConfigError

__all__ = ["PROFILES", "dovecot", "gmail", "outlook", "profile", "rfc1939"]


def _config(base: dict[str, Any], overrides: dict[str, Any]) -> ServerConfig:
    texts = {**base.pop("texts", {}), **overrides.pop("texts", {})}
    return ServerConfig(**{**base, **overrides, "texts": texts})


def dovecot(**overrides: Any) -> ServerConfig:
    """Dovecot 2.3 (Debian), without TLS-only policies."""
    base: dict[str, Any] = {
        "greeting": "Dovecot (Debian) ready.",
        "apop": False,
        "implementation": None,
        "utf8": False,
        "sasl": ("PLAIN", "LOGIN", "CRAM-MD5"),
        "texts": {
            "user": "",
            "logged_in": "Logged in.",
            "auth_failed": "Authentication failed.",
            "in_use": "Mailbox is locked by another POP3 session.",
            "quit": "Logging out",
            "quit_update": "Logging out, messages deleted.",
            "quit_nothing_deleted": "Logging out.",
            "unknown_command": "Unknown command: {keyword}",
            "before_login": "Unknown command.",
            "after_login": "Unknown command: {keyword}",
            "no_such_message": "There's no message {number}.",
            "message_deleted": "Message is deleted.",
            "capa": "",
            "list": "{messages}:",
            "uidl": "",
            "top": "",
            "dele": "Marked to be deleted.",
            "rset": "",
            "stls": "Begin TLS negotiation now.",
        },
    }
    return _config(base, overrides)


def gmail(**overrides: Any) -> ServerConfig:
    """pop.gmail.com (which clients reach over POP3S on port 995)."""
    base: dict[str, Any] = {
        "greeting": "Gpop ready for requests from 127.0.0.1 fakepop",
        "apop": False,
        "implementation": None,
        "utf8": False,
        "sasl": ("XOAUTH2",),
        "texts": {
            "user": "send PASS",
            "logged_in": "Welcome.",
            "auth_failed": "Username and password not accepted.",
            "quit": "Farewell.",
            "quit_update": "Farewell.",
            "quit_nothing_deleted": "Farewell.",
            "list": "{messages} ({octets} bytes)",
            "retr": "message follows",
            "capa": "Capability list follows",
        },
    }
    return _config(base, overrides)


def outlook(**overrides: Any) -> ServerConfig:
    """Exchange Online (outlook.office365.com)."""
    base: dict[str, Any] = {
        "greeting": "The Microsoft Exchange POP3 service is ready.",
        "apop": False,
        "implementation": None,
        "utf8": False,
        "sasl": ("PLAIN", "XOAUTH2"),
        "texts": {
            "auth_failed": "Authentication failure: unknown user name or bad password.",
        },
    }
    return _config(base, overrides)


def rfc1939(**overrides: Any) -> ServerConfig:
    """A server that knows RFC 1939 and nothing newer."""
    base: dict[str, Any] = {
        "capa": False,
        "resp_codes": False,
        "implementation": None,
        "utf8": False,
        "sasl": (),
        "stls": False,
    }
    return _config(base, overrides)


PROFILES: dict[str, Callable[..., ServerConfig]] = {
    "dovecot": dovecot,
    "gmail": gmail,
    "outlook": outlook,
    "rfc1939": rfc1939,
}


def profile(name: str, **overrides: Any) -> ServerConfig:
    """The ServerConfig of profile ``name`` (see PROFILES), with ``overrides``."""
    try:
        make = PROFILES[name]
    except KeyError:
        raise ConfigError(
            f"unknown server profile {name!r}; choose from {', '.join(sorted(PROFILES))}"
        ) from None
    return make(**overrides)
