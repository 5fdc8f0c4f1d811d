"""Server options: what the server says, what it offers, and its limits."""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._sasl import MECHANISMS
from .errors import ConfigError

__all__ = ["ServerConfig", "Texts"]

ExpirePolicy: TypeAlias = int | Literal["NEVER"] | None

# RFC 1939 section 3: an autologout timer, if there is one, is at least 10 minutes.
RFC_MIN_AUTOLOGOUT = 600.0
SASL_MECHANISMS = tuple(MECHANISMS)
#: The login methods that send the password itself: refused without TLS when
#: ``cleartext_login`` is off (RFC 5034 section 4, RFC 2595 section 2.1).
PLAINTEXT_METHODS = frozenset(
    {"USER"} | {name for name, mechanism in MECHANISMS.items() if mechanism.sends_password}
)

#: The wording of the replies that real servers word differently, after +OK or -ERR
#: (response codes are added by the server). ServerConfig(texts={...}) overrides any
#: of them; the fields in braces are filled in. An empty text sends a bare +OK.
DEFAULT_TEXTS: dict[str, str] = {
    "user": "Send PASS for {user}",
    "logged_in": "{user}'s maildrop is locked and ready: {messages} ({octets} octets)",
    "auth_failed": "Authentication failed",
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
}
# RFC 2449 section 4: a server with CAPA accepts commands of 255 octets including CRLF.
RFC_MIN_LINE_LENGTH = 255


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


def _seconds(value: object, *, allow_zero: bool) -> bool:
    # Whether ``value`` is a finite number of seconds (int or float, not bool), > 0 or
    # >= 0: every duration option takes the same kind of value.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and (value >= 0 if allow_zero else value > 0)


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """What a fakepop server says and offers. Every field has a sensible default.

    The capability switches (``top``, ``uidl``, ``user_pass``, ``pipelining``,
    ``resp_codes``) turn the command or behaviour off and drop it from CAPA together,
    so the server never advertises what it would refuse. ``capa=False`` gives a bare
    RFC 1939 server that answers CAPA with ``-ERR``.
    """

    #: Name in the APOP timestamp ``<...@hostname>`` and in the greeting.
    hostname: str = "localhost"
    #: Text of the greeting after ``+OK`` (the APOP timestamp is appended).
    greeting: str = "fakepop POP3 server ready."
    #: The CAPA IMPLEMENTATION value; None leaves the capability out.
    implementation: str | None = "fakepop"
    #: Put an APOP timestamp in the greeting and accept APOP.
    apop: bool = True
    #: Answer CAPA (RFC 2449). False: CAPA gets ``-ERR``, as from a bare RFC 1939 server.
    capa: bool = True
    #: Accept USER/PASS and advertise USER.
    user_pass: bool = True
    #: Accept TOP and advertise it.
    top: bool = True
    #: Accept UIDL and advertise it.
    uidl: bool = True
    #: Advertise PIPELINING (pipelined input is always processed in order).
    pipelining: bool = True
    #: Send response codes such as ``[IN-USE]`` and advertise RESP-CODES and AUTH-RESP-CODE.
    resp_codes: bool = True
    #: EXPIRE capability: days mail is kept, ``"NEVER"``, or None (not advertised).
    #: ``0`` means every message retrieved with RETR is deleted at UPDATE (after QUIT).
    expire: ExpirePolicy = None
    #: LOGIN-DELAY capability: seconds between two logins of a user, enforced with
    #: ``-ERR [LOGIN-DELAY]``; None (the default) means no delay and no capability.
    login_delay: float | None = None
    #: Seconds of client silence after which a session is closed without UPDATE.
    #: RFC 1939 asks for at least 600; tests may set less (use trio's MockClock).
    autologout: float = RFC_MIN_AUTOLOGOUT
    #: Longest command line accepted, in octets including CRLF.
    max_line_length: int = RFC_MIN_LINE_LENGTH
    #: Offer STLS (RFC 2595) when the server has a TLS context.
    stls: bool = True
    #: Accept USER/PASS before TLS is active. RFC 5034 section 4 asks servers to be
    #: able to refuse plaintext passwords on unencrypted connections: set False for
    #: that (USER is then neither advertised nor accepted until STLS or POP3S).
    cleartext_login: bool = True
    #: Refuse every login (USER, APOP, AUTH) until TLS is active.
    require_tls: bool = False
    #: SASL mechanisms AUTH accepts (RFC 5034), in the order CAPA lists them; empty
    #: turns AUTH off. PLAIN and LOGIN follow ``cleartext_login`` like USER/PASS.
    sasl: tuple[str, ...] = SASL_MECHANISMS
    #: Offer UTF8 USER and LANG (RFC 6856). Then a message with raw UTF-8 in its headers
    #: is refused with ``-ERR [UTF8]`` until the client has sent UTF8, and user names
    #: and passwords must be valid UTF-8 that SASLprep allows (compared after
    #: SASLprep). False: a server that knows nothing of RFC 6856, sends such messages
    #: as they are and compares credentials octet for octet.
    utf8: bool = True
    #: Reply wording to use instead of fakepop's: keys and fields of DEFAULT_TEXTS.
    #: Stored as a read-only, hashable Texts, checked when the config is made.
    texts: Mapping[str, str] = field(default_factory=Texts)
    #: ``validator(user, token) -> bool`` for XOAUTH2 and OAUTHBEARER; it may raise
    #: fakepop.TemporaryFailure for ``-ERR [SYS/TEMP]``. None: the token is the
    #: user's password.
    token_validator: Callable[[str, str], bool] | None = None

    def __post_init__(self) -> None:
        for name in ("hostname", "greeting"):
            value = getattr(self, name)
            if not isinstance(value, str) or any(c in value for c in "\r\n<>"):
                raise ConfigError(f"{name} must be a str without CR, LF, '<' or '>': {value!r}")
        if not self.hostname or " " in self.hostname:
            raise ConfigError(
                f"hostname must be a non-empty name without spaces: {self.hostname!r}"
            )
        # +OK, the greeting, the timestamp (about 60 octets) and CRLF within 512 octets.
        if len(self.greeting.encode()) > 400:
            raise ConfigError("greeting must be at most 400 octets (the line limit is 512)")
        if self.implementation is not None and (
            not self.implementation or any(c in self.implementation for c in "\r\n")
        ):
            raise ConfigError(f"implementation must be one line of text: {self.implementation!r}")
        if self.expire is not None and self.expire != "NEVER" and (
            isinstance(self.expire, bool) or not isinstance(self.expire, int) or self.expire < 0
        ):
            raise ConfigError(f"expire must be days >= 0, 'NEVER' or None, not {self.expire!r}")
        if self.login_delay is not None and not _seconds(self.login_delay, allow_zero=True):
            raise ConfigError(f"login_delay must be seconds >= 0 or None, not {self.login_delay!r}")
        if not _seconds(self.autologout, allow_zero=False):
            raise ConfigError(
                f"autologout must be a positive number of seconds: {self.autologout!r}"
            )
        if not isinstance(self.texts, Texts):
            # A frozen dataclass: the one place a field is replaced by its checked form.
            object.__setattr__(self, "texts", Texts(self.texts))
        unknown = [m for m in self.sasl if m not in SASL_MECHANISMS]
        if unknown or len(set(self.sasl)) != len(self.sasl):
            raise ConfigError(
                f"sasl must name each of {', '.join(SASL_MECHANISMS)} at most once, "
                f"not {self.sasl!r}"
            )
        if self.max_line_length < RFC_MIN_LINE_LENGTH:
            raise ConfigError(
                f"max_line_length must be at least {RFC_MIN_LINE_LENGTH} (RFC 2449 section 4)"
            )

    def text(self, key: str, **fields: object) -> str:
        """The wording of reply ``key`` with its fields filled in."""
        texts = self.texts
        template = texts[key] if key in texts else DEFAULT_TEXTS[key]
        return template.format(**fields)

    # -- the TLS policy: one rule, and everything advertised derives from it ---------
    def tls_refusal(self, method: str, *, tls_active: bool) -> str | None:
        """Why a login with ``method`` (``"USER"``, ``"APOP"`` or a SASL mechanism)
        is refused on a connection with or without TLS; None if TLS is no obstacle.

        The one place the TLS policy lives: CAPA's USER and SASL lines, AUTH's listing
        and every refusal come from it, so fakepop never advertises what it refuses.
        """
        if tls_active:
            return None
        if self.require_tls:
            return "TLS is required before login; use STLS first"
        if method in PLAINTEXT_METHODS and not self.cleartext_login:
            return "Plaintext authentication is not allowed without TLS; use STLS first"
        return None

    def plaintext_login_allowed(self, *, tls_active: bool) -> bool:
        """Whether USER/PASS may be used on a connection with or without TLS."""
        return self.tls_refusal("USER", tls_active=tls_active) is None

    def sasl_mechanisms(self, *, tls_active: bool) -> list[str]:
        """The mechanisms AUTH accepts on a connection with or without TLS."""
        return [m for m in self.sasl if self.tls_refusal(m, tls_active=tls_active) is None]

    def capabilities(self, *, stls: bool = False, tls_active: bool = False) -> list[str]:
        """The CAPA listing. ``stls``: STLS would be accepted now (RFC 2595 section 4
        lists it only then); ``tls_active``: the connection is encrypted, which
        decides whether USER is offered."""
        lines = []
        if self.top:
            lines.append("TOP")
        if self.uidl:
            lines.append("UIDL")
        if self.user_pass and self.plaintext_login_allowed(tls_active=tls_active):
            lines.append("USER")
        if stls:
            lines.append("STLS")
        mechanisms = self.sasl_mechanisms(tls_active=tls_active)
        if mechanisms:
            lines.append("SASL " + " ".join(mechanisms))
        if self.resp_codes:
            lines += ["RESP-CODES", "AUTH-RESP-CODE"]
        if self.pipelining:
            lines.append("PIPELINING")
        if self.expire is not None:
            lines.append(f"EXPIRE {self.expire}")
        if self.login_delay is not None:
            # RFC 2449 section 6.8: whole seconds; a fraction rounds up, never promising
            # a login sooner than the server allows one.
            lines.append(f"LOGIN-DELAY {math.ceil(self.login_delay)}")
        if self.utf8:
            # USER: UTF-8 names and passwords work before the UTF8 command too.
            lines += ["UTF8 USER", "LANG"]
        if self.implementation is not None:
            lines.append(f"IMPLEMENTATION {self.implementation}")
        return lines
