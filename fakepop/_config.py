"""Server options: what the server says, what it offers, and its limits."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from ._sasl import MECHANISMS
from ._texts import DEFAULT_TEXTS, Texts
from .errors import ConfigError

__all__ = ["CAPABILITY_NAMES", "DEFAULT_CONFIG", "DEFAULT_TEXTS", "ServerConfig", "Texts"]

ExpirePolicy: TypeAlias = int | Literal["NEVER"] | None

# RFC 1939 section 3: an autologout timer, if there is one, is at least 10 minutes.
RFC_MIN_AUTOLOGOUT = 600.0
SASL_MECHANISMS = tuple(MECHANISMS)
#: The login methods that send the password itself: refused without TLS when
#: ``cleartext_login`` is off (RFC 5034 section 4, RFC 2595 section 2.1).
PLAINTEXT_METHODS = frozenset(
    {"USER"} | {name for name, mechanism in MECHANISMS.items() if mechanism.sends_password}
)
#: The login methods that send an OAuth 2.0 token: the only ones ``oauth_only`` takes.
BEARER_METHODS = frozenset(name for name, mechanism in MECHANISMS.items() if mechanism.bearer)

#: The capabilities CAPA can list (``capa_listing`` orders them); "CAPA" is not an
#: RFC 2449 capability, but Dovecot lists it.
CAPABILITY_NAMES = (
    "CAPA", "TOP", "UIDL", "USER", "STLS", "SASL", "RESP-CODES", "AUTH-RESP-CODE",
    "PIPELINING", "EXPIRE", "LOGIN-DELAY", "UTF8", "LANG", "IMPLEMENTATION",
)
# A capability line or prefix: printable ASCII, not starting with "." (RFC 2449 section 5).
_BAD_LINE = re.compile(r"[^\x20-\x7e]|\A\.")
# RFC 2449 section 4: a server with CAPA accepts commands of 255 octets including CRLF.
RFC_MIN_LINE_LENGTH = 255


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
    #: Longest command line accepted before login; None: ``max_line_length``.
    max_line_length_before_login: int | None = None
    #: Close the connection after refusing a line too long, instead of reading on.
    close_on_long_line: bool = False
    #: Read arguments as Dovecot does rather than as RFC 1939's one space between
    #: words: spaces before an argument are skipped; commands without arguments
    #: ignore what follows them; USER takes the rest of the line, even nothing, and
    #: PASS may be empty (the login then fails); a message number ends at its last
    #: digit, anything after it is refused as noise, and it is at most 2**32 - 1;
    #: TOP's line count is at most 2**64 - 1.
    lenient_arguments: bool = False
    #: Close the connection after this many bad commands in a row in TRANSACTION
    #: (each answered ``-ERR``), with ``too_many_bad_commands``; None: never.
    max_bad_commands: int | None = None
    #: The same before login, with ``too_many_bad_commands_before_login``. A bad
    #: command is one the server does not know or does not take before login; AUTH
    #: neither counts nor breaks the row, any other command breaks it.
    max_bad_commands_before_login: int | None = None
    #: Seconds a refused login (``-ERR [AUTH]``) waits before its answer, on trio's
    #: clock (``autojump_clock`` skips it). Dovecot waits 2 s.
    failed_login_delay: float = 0.0
    #: Seconds a login waits for another session's lock before ``-ERR [IN-USE]``, on
    #: trio's clock. Dovecot waits up to 10 s; fakepop checks the lock when the login
    #: arrives and answers after the wait even if the lock was released meanwhile.
    lock_wait: float = 0.0
    #: Close the connection after ``-ERR [IN-USE]``, as Dovecot does.
    close_on_in_use: bool = False
    #: Answer STLS with ``+OK`` and close, instead of starting TLS, when commands were
    #: pipelined behind it (which RFC 2595 section 4 forbids clients); Dovecot's TLS
    #: handshake fails on them. False: they are discarded unread.
    close_on_stls_pipelining: bool = False
    #: Say why a SASL exchange failed (a malformed response, a missing field). False:
    #: every failed exchange is answered as a refused login (``auth_failed``, ``[AUTH]``,
    #: ``failed_login_delay``), as Dovecot does.
    sasl_failure_reasons: bool = True
    #: What CAPA lists before login, in this order. A name of CAPABILITY_NAMES stands
    #: for that capability as fakepop offers it ("CAPA" lists CAPA itself, as Dovecot
    #: does), and is left out when the server does not offer it at the time; any other
    #: line is listed as it is: a vendor's capability that changes nothing in fakepop
    #: (Gmail's X-GOOGLE-VERHOEVEN), or one a server advertises without fakepop enforcing it
    #: (Gmail's "LOGIN-DELAY 300"). None: every capability offered, in fakepop's order.
    capa_listing: tuple[str, ...] | None = None
    #: The same after login; None: as ``capa_listing``.
    capa_listing_after_login: tuple[str, ...] | None = None
    #: Gmail's normal mode: a message retrieved with RETR, or marked with DELE, in a
    #: session that ended with QUIT is "popped": it stays in the mailbox (see
    #: Mailbox.popped) but no later session is offered it, and DELE removes nothing
    #: (Gmail's default, "keep Gmail's copy in the Inbox"); it also takes the place of
    #: ``expire=0``'s removal. A session that ends any other way pops nothing.
    hide_popped: bool = False
    #: Gmail's recent mode: a login name that starts with this prefix (``"recent:"``)
    #: opens the mailbox of the rest of the name, popped mail included. fakepop's mail
    #: has no dates, so every message counts as one of Gmail's last 30 days.
    recent_prefix: str | None = None
    #: A session is offered only the oldest this many messages (Gmail offers "about
    #: 250" a session); None: all of them.
    max_messages_offered: int | None = None
    #: Refuse every login but XOAUTH2 and OAUTHBEARER, whatever the password, with the
    #: wrong-credentials reply (``auth_failed``, ``sasl_failed``); the other methods
    #: stay offered. Exchange Online has refused basic authentication so since 2022.
    oauth_only: bool = False
    #: Answer a refused bearer token with the JSON error challenge that the client
    #: acknowledges before the ``-ERR`` (Google, RFC 7628); False: the ``-ERR`` at once,
    #: as Exchange Online does.
    token_error_challenge: bool = True
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
    #: Offer UTF8 USER and LANG (RFC 6856): user names and passwords must then be valid
    #: UTF-8 that SASLprep allows (compared after SASLprep). False: a server that knows
    #: nothing of RFC 6856 and compares credentials octet for octet.
    utf8: bool = True
    #: Refuse RETR and TOP of a message with raw UTF-8 in its headers with
    #: ``-ERR [UTF8]`` until the client has sent UTF8, the strict reading of RFC 6856
    #: (section 2.1). False (the default): send such a message as it is, as Dovecot,
    #: Gmail and Exchange do. Needs ``utf8``, without which the client could never
    #: send UTF8.
    utf8_refuse_unless_enabled: bool = False
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
        if self.utf8_refuse_unless_enabled and not self.utf8:
            raise ConfigError(
                "utf8_refuse_unless_enabled needs utf8=True: without the UTF8 command a "
                "client could never get a message with raw UTF-8 headers"
            )
        self._check_limits()
        self._check_listings()

    def _check_limits(self) -> None:
        # Line lengths, counts and durations.
        for name in ("max_line_length", "max_line_length_before_login"):
            value = getattr(self, name)
            if value is None and name != "max_line_length":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name} must be a number of octets, not {value!r}")
            if value < RFC_MIN_LINE_LENGTH:
                raise ConfigError(
                    f"{name} must be at least {RFC_MIN_LINE_LENGTH} (RFC 2449 section 4)"
                )
        for name in ("max_bad_commands", "max_bad_commands_before_login", "max_messages_offered"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"{name} must be a count >= 1 or None, not {value!r}")
        for name in ("failed_login_delay", "lock_wait"):
            if not _seconds(getattr(self, name), allow_zero=True):
                raise ConfigError(f"{name} must be seconds >= 0, not {getattr(self, name)!r}")

    def _check_listings(self) -> None:
        # The CAPA listings and the recent-mode prefix.
        for name in ("capa_listing", "capa_listing_after_login"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{name} must be a tuple of capability lines, not {value!r}")
            bad = [v for v in value if not v.strip() or v != v.strip() or _BAD_LINE.search(v)]
            if bad or len(set(value)) != len(value):
                raise ConfigError(
                    f"{name} must list each capability once, on one line of printable "
                    f"ASCII that does not start with '.', not {bad or value!r}"
                )
            object.__setattr__(self, name, tuple(value))
        if self.recent_prefix is not None and (
            not isinstance(self.recent_prefix, str)
            or not self.recent_prefix
            or _BAD_LINE.search(self.recent_prefix)
            or " " in self.recent_prefix
        ):
            raise ConfigError(
                f"recent_prefix must be printable ASCII without spaces, not {self.recent_prefix!r}"
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
            return self.text("tls_required")
        if method in PLAINTEXT_METHODS and not self.cleartext_login:
            return self.text("cleartext_refused")
        return None

    def plaintext_login_allowed(self, *, tls_active: bool) -> bool:
        """Whether USER/PASS may be used on a connection with or without TLS."""
        return self.tls_refusal("USER", tls_active=tls_active) is None

    def sasl_mechanisms(self, *, tls_active: bool) -> list[str]:
        """The mechanisms AUTH accepts on a connection with or without TLS."""
        return [m for m in self.sasl if self.tls_refusal(m, tls_active=tls_active) is None]

    def login_mailbox(self, name: str) -> tuple[str, bool]:
        """The mailbox a login name opens, and whether in recent mode (``recent_prefix``)."""
        prefix = self.recent_prefix
        if prefix is not None and name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :], True
        return name, False

    @property
    def login_line_limit(self) -> int:
        """The longest command line accepted before login."""
        if self.max_line_length_before_login is None:
            return self.max_line_length
        return self.max_line_length_before_login

    def capabilities(
        self, *, stls: bool = False, tls_active: bool = False, logged_in: bool = False
    ) -> list[str]:
        """The CAPA listing. ``stls``: STLS would be accepted now (RFC 2595 section 4
        lists it only then); ``tls_active``: the connection is encrypted, which
        decides whether USER is offered; ``logged_in``: the session is in
        TRANSACTION (``capa_listing_after_login`` applies)."""
        offered = self._offered(stls=stls, tls_active=tls_active)
        listing = self.capa_listing
        if logged_in and self.capa_listing_after_login is not None:
            listing = self.capa_listing_after_login
        if listing is None:
            return offered
        by_name = {line.partition(" ")[0]: line for line in ["CAPA", *offered]}
        return [
            by_name[name] if name in CAPABILITY_NAMES else name
            for name in listing
            if name in by_name or name not in CAPABILITY_NAMES
        ]

    def _offered(self, *, stls: bool, tls_active: bool) -> list[str]:
        # Every capability offered now, in fakepop's order.
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


#: The options of every server made without a ``config``: one instance for all, made
#: once, since checking 40 fields costs more than the rest of a server's construction.
#: Sharing it is safe because a ServerConfig is frozen and so is everything it holds
#: (strs, numbers, tuples, a read-only Texts, a function).
DEFAULT_CONFIG = ServerConfig()
