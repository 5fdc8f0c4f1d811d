"""Server profiles: defaults that make fakepop greet, advertise, word its replies and
behave like a particular real server, so a client meets the quirks it will meet in
production.

A profile only chooses ServerConfig defaults; every option can still be given::

    config = profiles.dovecot(autologout=5)
    config = profiles.profile("gmail", texts={"quit": "Bye."})

docs/reference/quirks.md has the table of profiles and quirks. What each profile reproduces,
where the facts come from, and what it leaves out:

- ``dovecot``: Dovecot 2.3 (Debian), proven line by line against a real Dovecot
  2.3.19 by tests/test_dovecot_differential.py (scenarios and results in
  docs/explanation/dovecot.md); the limits below were read in Dovecot's source (src/pop3,
  src/pop3-login, src/login-common) before being measured. Reproduced: its greeting;
  CAPA with CAPA itself first and USER, STLS and SASL only before login; SASL PLAIN
  LOGIN CRAM-MD5 and no APOP ("APOP not enabled."); the wording of every reply;
  arguments read as Dovecot reads them (``lenient_arguments``: ``STAT 1``, ``LIST  2``,
  ``USER`` alone, "Noise after message number", a message number below 2**32 and a
  line count below 2**64); lines of up to 1031 octets before login and 2048 after, and
  the connection closed after a longer one; the connection closed after three bad
  commands in a row before login ("Too many invalid bad commands.") and 21 after
  ("Too many bad commands."), after ``[IN-USE]`` and after commands pipelined behind
  STLS; 2 s before the answer to a refused login (``auth_failure_delay``) and up to
  10 s waiting for another session's lock (``pop3_lock_session = yes``, as in the
  recorded sessions). Not reproduced: its auth penalty (later logins from an address
  that failed one are slowed down, up to 15 s); a lock released during the wait
  (fakepop answers ``[IN-USE]`` after the wait all the same); control characters and
  over-long keywords echoed beyond 512 octets (fakepop keeps every reply printable and
  within RFC 1939's 512 octets); "-ERR Disconnected for inactivity." at autologout
  (fakepop closes silently); Dovecot's default ``pop3_lock_session = no`` (two sessions
  of one mailbox at once); its 8-character keywords before login; ``TOP n
  18446744073709551615``, which Dovecot answers as RETR.
- ``gmail``: pop.gmail.com. Sources: public ``fetchmail -v`` logs of pop.gmail.com
  (greeting, "send PASS", "Welcome.", "Farewell.", "Capability list follows" and its
  lines USER, RESP-CODES, EXPIRE 0, LOGIN-DELAY 300, TOP, UIDL, X-GOOGLE-VERHOEVEN and,
  in recent ones, SASL PLAIN XOAUTH2; UIDL's bare +OK; LIST's "N messages (S bytes)");
  Google's help
  "How does POP work in Gmail?" (support.google.com/a/answer/6089246): normal mode
  offers the oldest "about 250" messages not yet downloaded, a message downloaded with
  RETR is marked "popped" when the session ends with QUIT and is not offered again
  (even without DELE), a session that ends otherwise marks nothing, and recent mode
  ("recent:" before the user name) offers the last 30 days of mail, popped or not;
  the "When messages are accessed with POP" setting (the Gmail API's
  PopSettings.disposition: leave in the inbox, mark read, archive, trash) decides what
  becomes of a popped message, and fakepop does what leaving it in the inbox does: DELE
  removes nothing; Google's XOAUTH2 protocol page (XOAUTH2 over POP, its JSON error
  challenge); "Username and password not accepted." from public client reports.
  Unknown without an account, so fakepop's own behaviour: whether LOGIN-DELAY 300 is
  enforced (it is only advertised); OAUTHBEARER (some recent logs list it, it is not
  offered); the wording of refusals other than a wrong password; how app passwords
  differ from account passwords (any matching password is accepted); the other
  dispositions (archive, trash, mark read); conversations (Gmail's 250 are
  conversations, fakepop's are messages); dates (fakepop's mail has none, so all of it
  counts as the last 30 days).
- ``outlook``: Exchange Online (outlook.office365.com). Sources: Microsoft's
  "Authenticate an IMAP, POP or SMTP connection using OAuth"
  (learn.microsoft.com/exchange/client-developer/legacy-protocols/
  how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth): AUTH XOAUTH2 with
  the token on a continuation line, "+OK User successfully authenticated.", "-ERR
  Authentication failure: unknown user name or bad password."; public client logs of
  outlook.office365.com (the greeting "The Microsoft Exchange POP3 service is ready."
  followed by the server's name, UTF-16LE in base64, in brackets; CAPA as a bare +OK
  with TOP, UIDL, SASL PLAIN XOAUTH2 and USER on POP3S, and only TOP, UIDL and STLS
  before STLS on port 110; "+OK Begin TLS negotiation."); Microsoft's retirement of
  basic authentication for POP in Exchange Online (October 2022), after which a
  password login gets "-ERR Logon failure: unknown user name or bad password." even
  with the right password. Unknown without an account, so fakepop's own behaviour:
  whether a token sent as an initial response is accepted (the documentation sends it
  on a continuation line and client libraries report that only that works; fakepop
  accepts both); the wording of a login refused before TLS; response codes (RESP-CODES
  is not advertised, so none are sent); its autologout and UIDL format; its newer
  greeting "Microsoft Exchange POP3 server ready (tcpproxy/...)" seen in 2025 logs.
- ``rfc1939``: a bare RFC 1939 server, no CAPA at all (``-ERR`` to it), no response
  codes and no extensions, so clients must fall back to what RFC 1939 guarantees.

None of them offers UTF8 or LANG (RFC 6856), and each sends a message with raw UTF-8
headers as it is, as these servers do.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

from ._config import ServerConfig
from .errors import ConfigError

__all__ = [
    "PROFILES",
    "dovecot",
    "from_cassette",
    "gmail",
    "mailboxes_from_cassette",
    "outlook",
    "profile",
    "rfc1939",
]


# What Dovecot's CAPA lists in every state, CAPA itself first.
_DOVECOT_CAPA = ("CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE")


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
        "lenient_arguments": True,
        # Its login process reads 1026 octets after the keyword and its space; the
        # mail process 2048. A longer line is refused and the connection closed.
        "max_line_length": 2048,
        "max_line_length_before_login": 1031,
        "close_on_long_line": True,
        "max_bad_commands": 21,
        "max_bad_commands_before_login": 3,
        "failed_login_delay": 2.0,
        # pop3_lock_session = yes: a second session waits for the lock, then gives up.
        "lock_wait": 10.0,
        "close_on_in_use": True,
        "close_on_stls_pipelining": True,
        "sasl_failure_reasons": False,
        "capa_listing": (*_DOVECOT_CAPA, "STLS", "USER", "SASL"),
        "capa_listing_after_login": _DOVECOT_CAPA,
        "texts": {
            "user": "",
            "logged_in": "Logged in.",
            "auth_failed": "Authentication failed.",
            "sasl_failed": "Authentication failed.",
            "in_use": "Mailbox is locked by another POP3 session.",
            "quit": "Logging out",
            "quit_update": "Logging out, messages deleted.",
            "quit_nothing_deleted": "Logging out.",
            "unknown_command": "Unknown command: {keyword}",
            "unknown_before_login": "Unknown command.",
            "before_login": "Unknown command.",
            "after_login": "Unknown command: {keyword}",
            "empty_command": "Unknown command.",
            "pass_without_user": "No username given.",
            "apop_disabled": "APOP not enabled.",
            "no_such_message": "There's no message {number}.",
            "message_deleted": "Message is deleted.",
            "capa": "",
            "list": "{messages}:",
            "uidl": "",
            "top": "",
            "dele": "Marked to be deleted.",
            "rset": "",
            "stls": "Begin TLS negotiation now.",
            "tls_active": "TLS is already active.",
            "line_too_long": "Input line too long.",
            "line_too_long_before_login": "Input buffer full, aborting",
            "too_many_bad_commands": "Too many bad commands.",
            "too_many_bad_commands_before_login": "Too many invalid bad commands.",
            "invalid_line_count": "Invalid size: {argument}",
            "line_count_too_large": "Size too large: {argument}",
            "noise_after_line_count": "Noise after size: {argument}",
            "sasl_mechanisms": "",
            "unsupported_mechanism": "[AUTH] Unsupported authentication mechanism.",
            "sasl_cancelled": "Authentication aborted by client.",
            "bad_initial_response": "[AUTH] Invalid base64 data in initial response",
            "bad_sasl_response": "[AUTH] Invalid base64 in response",
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
        "pipelining": False,
        "sasl": ("PLAIN", "XOAUTH2"),
        "capa_listing": (
            "USER", "RESP-CODES", "EXPIRE 0", "LOGIN-DELAY 300", "TOP", "UIDL",
            "X-GOOGLE-VERHOEVEN", "SASL",
        ),
        "hide_popped": True,
        "recent_prefix": "recent:",
        "max_messages_offered": 250,
        "texts": {
            "user": "send PASS",
            "logged_in": "Welcome.",
            "auth_failed": "Username and password not accepted.",
            "sasl_failed": "Username and password not accepted.",
            "quit": "Farewell.",
            "quit_update": "Farewell.",
            "quit_nothing_deleted": "Farewell.",
            "list": "{messages} ({octets} bytes)",
            "uidl": "",
            "retr": "message follows",
            "capa": "Capability list follows",
        },
    }
    return _config(base, overrides)


def outlook(**overrides: Any) -> ServerConfig:
    """Exchange Online (outlook.office365.com), which takes OAuth 2.0 logins only."""
    # Exchange ends its greeting with its server's name, UTF-16LE in base64.
    name = str(overrides.get("hostname", "localhost")).upper()
    tag = base64.b64encode(name.encode("utf-16-le")).decode()
    base: dict[str, Any] = {
        "greeting": f"The Microsoft Exchange POP3 service is ready. [{tag}]",
        "apop": False,
        "implementation": None,
        "utf8": False,
        "resp_codes": False,
        "pipelining": False,
        "require_tls": True,
        "sasl": ("PLAIN", "XOAUTH2"),
        "oauth_only": True,
        "token_error_challenge": False,
        "capa_listing": ("TOP", "UIDL", "STLS", "SASL", "USER"),
        "texts": {
            "logged_in": "User successfully authenticated.",
            "auth_failed": "Logon failure: unknown user name or bad password.",
            "sasl_failed": "Authentication failure: unknown user name or bad password.",
            "capa": "",
            "stls": "Begin TLS negotiation.",
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


#: Every profile by name, as ``profile(name)``, ``--profile`` and
#: ``@pytest.mark.pop3(profile=...)`` take it.
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


def from_cassette(path: str | os.PathLike[str], **overrides: Any) -> ServerConfig:
    """A ServerConfig derived from a cassette (docs/howto/cassettes.md, "Model replay"): its
    greeting, APOP, CAPA listings before and after login and what they announce,
    whether replies carry response codes, the wording of every recorded reply the
    engine takes from its texts (with the user, counts, octets, message numbers and
    keyword turned back into fields), ``lenient_arguments`` when the recorded server
    accepted an argument where none belongs, and how it treats errors where the
    recording shows it: hang-ups after bad commands, line limits, the delays of
    refused logins and locked mailboxes, and a TLS policy refusing plaintext logins.
    ``overrides`` win. Serve it with :func:`mailboxes_from_cassette`'s mailboxes."""
    from ._cassette_model import config_from_cassette  # noqa: PLC0415

    return config_from_cassette(path, **overrides)


def mailboxes_from_cassette(
    path: str | os.PathLike[str], *, password: str = "secret"
) -> dict[str, dict[str, Any]]:
    """The mailboxes a cassette shows: each logged-in user's messages with the UIDs
    UIDL gave, the octets RETR gave (or synthetic text of the size LIST gave), and
    ``password``, since a cassette keeps no password (docs/howto/cassettes.md)."""
    from ._cassette_model import mailboxes_from_cassette as derive  # noqa: PLC0415

    return derive(path, password=password)
