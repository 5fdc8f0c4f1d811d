"""The one rule that decides whether a login's secret is right.

Every way of logging in asks this module and nothing else: USER/PASS, APOP, and each
SASL mechanism (PLAIN and LOGIN send the password, CRAM-MD5 an HMAC of it, XOAUTH2
and OAUTHBEARER a token). The rule, in one place:

- A password sent in the clear is compared after SASLprep of both sides (RFC 4013,
  RFC 4616 section 2, RFC 6856 section 2.2) when the server speaks UTF8 USER; a server
  configured without it compares octet for octet, as RFC 1939 servers do.
- Digests (APOP, CRAM-MD5) are computed over the password as stored: the client
  hashed what it has and never sends the secret to be prepared.
- Every comparison is constant-time, on octets, and an unknown user costs the same
  work as a known one (a stand-in secret is checked and the answer thrown away), so
  neither the reply nor its timing tells which accounts exist (RFC 1939 section 13).
- Malformed input (non-ASCII digits in a digest, invalid UTF-8) is simply wrong, never
  an exception inside the server.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from contextlib import suppress

from ._saslprep import SaslprepError, saslprep

__all__ = ["CredentialCheck", "TokenValidator"]

#: ``validator(user, token) -> bool``: whether an OAuth 2.0 bearer token lets ``user``
#: in. It may raise fakepop.TemporaryFailure.
TokenValidator = Callable[[str, str], bool]

# Checked in place of the password of a user who does not exist, so that a failure
# for an unknown user does the same work as one for a known user.
_STAND_IN = "fakepop stand-in secret for unknown users"


def _octets(text: str) -> bytes:
    # Client text was decoded with surrogateescape; encode it back to what was sent.
    return text.encode("utf-8", "surrogateescape")


class CredentialCheck:
    """Checks the secrets of one server's users; built per session, cheap."""

    __slots__ = ("_password_of", "_prepare", "_validator")

    def __init__(
        self,
        password_of: Callable[[str], str | None],
        *,
        prepare: bool,
        token_validator: TokenValidator | None = None,
    ) -> None:
        self._password_of = password_of
        self._prepare = prepare
        self._validator = token_validator

    def _secret(self, user: str) -> tuple[str, bool]:
        # The stored password (or the stand-in) and whether the user exists.
        stored = self._password_of(user)
        return (_STAND_IN, False) if stored is None else (stored, True)

    def password(self, user: str, given: str) -> bool:
        """Whether ``given`` is ``user``'s password (USER/PASS, PLAIN, LOGIN)."""
        expected, known = self._secret(user)
        if self._prepare:
            # A side SASLprep refuses is compared as it is: it can still match exactly.
            with suppress(SaslprepError, UnicodeError):
                given = saslprep(given)
            with suppress(SaslprepError, UnicodeError):
                expected = saslprep(expected)
        return hmac.compare_digest(_octets(given), _octets(expected)) and known

    def apop(self, user: str, timestamp: str, digest: str) -> bool:
        """Whether ``digest`` is MD5(timestamp + password) in hex (RFC 1939 section 7)."""
        secret, known = self._secret(user)
        expected = hashlib.md5(_octets(timestamp + secret), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(_octets(digest.lower()), expected.encode()) and known

    def cram_md5(self, user: str, challenge: bytes, digest: str) -> bool:
        """Whether ``digest`` is HMAC-MD5(password, challenge) in hex (RFC 2195)."""
        secret, known = self._secret(user)
        expected = hmac.new(_octets(secret), challenge, hashlib.md5).hexdigest()
        return hmac.compare_digest(_octets(digest.lower()), expected.encode()) and known

    def token(self, user: str, token: str) -> bool:
        """Whether an OAuth bearer token lets ``user`` in: the server's validator
        decides, or without one the token is the user's password. The validator may
        raise TemporaryFailure."""
        if self._validator is not None:
            return bool(self._validator(user, token))
        return self.password(user, token)
