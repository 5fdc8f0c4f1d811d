"""SASL mechanisms for AUTH (RFC 5034), sans I/O: responses in, challenges or a verdict out.

Each exchange is a small object. ``start(initial)`` takes the initial response (None if
the client sent none, ``b""`` for ``=``) and ``step(response)`` each decoded client line;
both return a :class:`Challenge` to send as ``+ <base64>``, :class:`Success` with the
user to log in, or :class:`Failure`. Base64 and the ``*`` cancel are the protocol
engine's business; here everything is already octets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from ._credentials import CredentialCheck, TokenValidator

__all__ = [
    "MECHANISMS",
    "Challenge",
    "Exchange",
    "Failure",
    "Mechanism",
    "Step",
    "Success",
    "TemporaryFailure",
    "TokenValidator",
    "start_exchange",
]


class TemporaryFailure(Exception):
    """Raise it from a token validator to answer ``-ERR [SYS/TEMP]`` (backend down)."""


@dataclass(frozen=True)
class Challenge:
    data: bytes


@dataclass(frozen=True)
class Success:
    user: str


@dataclass(frozen=True)
class Failure:
    text: str
    code: str | None = "AUTH"
    #: The exchange was well formed and the credentials were wrong: answered as any
    #: refused login is (the config's wording and delay).
    wrong_credentials: bool = False


Step = Challenge | Success | Failure

_PLAIN_FIELD_LIMIT = 255  # RFC 4616 section 2: accept each field up to 255 octets


class Exchange:
    def __init__(self, credentials: CredentialCheck, nonce: Callable[[], str]) -> None:
        self.credentials = credentials
        #: A fresh msg-id ``<...@host>`` for each challenge that must differ every time.
        self.nonce = nonce

    def start(self, initial: bytes | None) -> Step:
        raise NotImplementedError

    def step(self, response: bytes) -> Step:
        raise NotImplementedError

    def _check(self, user: str, password: str) -> Step:
        good = self.credentials.password(user, password)
        return Success(user) if good else Failure("Authentication failed", wrong_credentials=True)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class _Plain(Exchange):
    # RFC 4616: [authzid] NUL authcid NUL passwd
    def start(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.step(initial)

    def step(self, response: bytes) -> Step:
        fields = response.split(b"\0")
        if len(fields) != 3:
            return Failure("PLAIN needs authzid NUL authcid NUL password", None)
        authzid, authcid, password = fields
        if not authcid or not password:
            return Failure("PLAIN needs a user name and a password", None)
        if any(len(field) > _PLAIN_FIELD_LIMIT for field in fields):
            return Failure("PLAIN fields are at most 255 octets", None)
        if authzid and authzid != authcid:
            return Failure(f"{_text(authcid)} may not act as {_text(authzid)}")
        return self._check(_text(authcid), _text(password))


class _Login(Exchange):
    # The widespread, never standardised LOGIN: "Username:", then "Password:".
    user: str | None = None

    def start(self, initial: bytes | None) -> Step:
        if initial is not None:
            return self.step(initial)
        return Challenge(b"Username:")

    def step(self, response: bytes) -> Step:
        if self.user is None:
            if not response:
                return Failure("LOGIN needs a user name", None)
            self.user = _text(response)
            return Challenge(b"Password:")
        return self._check(self.user, _text(response))


class _CramMd5(Exchange):
    # RFC 2195: challenge <random.timestamp@host>; response "user hex(HMAC-MD5)".
    def start(self, initial: bytes | None) -> Step:
        if initial is not None:
            return Failure("CRAM-MD5 takes no initial response: the server speaks first", None)
        self.challenge = self.nonce().encode()
        return Challenge(self.challenge)

    def step(self, response: bytes) -> Step:
        user, _, digest = _text(response).rpartition(" ")
        if not user or len(digest) != 32:
            return Failure("CRAM-MD5 needs 'user digest'", None)
        if self.credentials.cram_md5(user, self.challenge, digest):
            return Success(user)
        return Failure("Authentication failed", wrong_credentials=True)


class _Bearer(Exchange):
    # XOAUTH2 (Google, Microsoft) and OAUTHBEARER (RFC 7628) carry a bearer token;
    # a refused token gets a JSON error challenge, which the client answers (with an
    # empty line, or a lone ^A for OAUTHBEARER) before the final -ERR; without
    # ``error_challenge`` (as Exchange Online does it) the -ERR comes at once.
    failed: Failure | None = None
    error_challenge = True

    def start(self, initial: bytes | None) -> Step:
        return Challenge(b"") if initial is None else self.step(initial)

    def step(self, response: bytes) -> Step:
        if self.failed is not None:
            return self.failed  # the client's answer to the error challenge
        parsed = self.parse(response)
        if isinstance(parsed, Failure):
            return parsed
        user, token = parsed
        try:
            good = self.credentials.token(user, token)
        except TemporaryFailure as failure:
            return Failure(str(failure) or "Token validation is unavailable", "SYS/TEMP")
        if good:
            return Success(user)
        if not self.error_challenge:
            return Failure("Invalid or expired token", wrong_credentials=True)
        self.failed = Failure("Invalid or expired token")
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        return Challenge(json.dumps(error).encode())

    def parse(self, response: bytes) -> tuple[str, str] | Failure:
        raise NotImplementedError

    @staticmethod
    def fields(parts: list[bytes]) -> dict[str, str]:
        result = {}
        for part in parts:
            key, sep, value = _text(part).partition("=")
            if sep:
                result[key] = value
        return result


class _XOAuth2(_Bearer):
    # user={user}^Aauth=Bearer {token}^A^A
    def parse(self, response: bytes) -> tuple[str, str] | Failure:
        fields = self.fields(response.split(b"\x01"))
        user, auth = fields.get("user"), fields.get("auth", "")
        if not user or not auth.startswith("Bearer "):
            return Failure("XOAUTH2 needs user=...^Aauth=Bearer ...^A^A", None)
        return user, auth.removeprefix("Bearer ")


class _OAuthBearer(_Bearer):
    # RFC 7628: gs2 header "n,a={user}," then ^A-separated key=value pairs, ^A^A.
    def parse(self, response: bytes) -> tuple[str, str] | Failure:
        header, _, rest = response.partition(b"\x01")
        gs2 = _text(header).split(",")
        user = next((part[2:] for part in gs2 if part.startswith("a=")), "")
        auth = self.fields(rest.split(b"\x01")).get("auth", "")
        if not user or not auth.startswith("Bearer "):
            return Failure("OAUTHBEARER needs n,a=user,^Aauth=Bearer ...^A^A", None)
        return user, auth.removeprefix("Bearer ")


@dataclass(frozen=True)
class Mechanism:
    """One SASL mechanism fakepop speaks: everything the rest of fakepop asks of it."""

    name: str
    exchange: type[Exchange]
    #: Whether the client sends the password itself (so, like USER/PASS, it is
    #: refused without TLS when ``cleartext_login`` is off).
    sends_password: bool
    #: What the credential check compares, for the reader.
    checks: str
    #: Whether the client sends an OAuth 2.0 bearer token.
    bearer: bool = False


#: The registry: the mechanisms in the order CAPA lists them by default.
MECHANISMS: dict[str, Mechanism] = {
    mechanism.name: mechanism
    for mechanism in (
        Mechanism("PLAIN", _Plain, sends_password=True, checks="the password (RFC 4616)"),
        Mechanism("LOGIN", _Login, sends_password=True, checks="the password"),
        Mechanism(
            "CRAM-MD5", _CramMd5, sends_password=False, checks="HMAC-MD5 of a challenge"
        ),
        Mechanism(
            "XOAUTH2", _XOAuth2, sends_password=False, checks="a bearer token", bearer=True
        ),
        Mechanism(
            "OAUTHBEARER",
            _OAuthBearer,
            sends_password=False,
            checks="a bearer token (RFC 7628)",
            bearer=True,
        ),
    )
}


def start_exchange(
    name: str,
    *,
    credentials: CredentialCheck,
    nonce: Callable[[], str],
    error_challenge: bool = True,
) -> Exchange:
    exchange = MECHANISMS[name].exchange(credentials, nonce)
    if isinstance(exchange, _Bearer):
        exchange.error_challenge = error_challenge
    return exchange
