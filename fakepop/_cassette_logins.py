"""Model replay's reading of logins: which login methods the recorded server offered
with and without TLS, its TLS policy, and the situation each refused login was in.

The TLS policy (RFC 2595 §2.1, RFC 5034 §4): ``cleartext_login=False`` where the
recording shows a login that sends the password (USER/PASS, SASL PLAIN and LOGIN)
refused without TLS and possible over it: CAPA before login listed it over TLS only;
or a plaintext USER was refused where a USER over TLS was accepted or listed; or a
plaintext PASS was refused with another text than a wrong password got over TLS; or
a plaintext AUTH with a mechanism listed over TLS only was refused at once. Where a
login that sends no password (APOP, CRAM-MD5, XOAUTH2, OAUTHBEARER) was listed over
TLS only, or refused without TLS with one of those texts, it is ``require_tls=True``.
The texts of those refusals word ``cleartext_refused`` (or ``tls_required``); the
model refuses at USER as fakepop does, where a server may have waited for PASS.

A refused AUTH is read as: the end of an exchange cancelled with ``*``
(``sasl_cancelled``), or whose last response was not base64 (``bad_sasl_response``),
or else a refused login (``sasl_failed``); refused at once, a mechanism the recording
never saw listed (``unsupported_mechanism``), an initial response that was not base64
(``bad_initial_response``), or a refused login. A refused STLS is ``tls_active`` over
TLS, and where CAPA did not list STLS the unknown command fakepop makes of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._cassette_replies import RecordedReply
from ._cassette_rules import line_content
from ._config import PLAINTEXT_METHODS
from ._lines import ascii_upper
from ._sasl_lines import is_sasl_cancel
from ._state import State

__all__ = ["Logins", "read_logins"]

Worded = tuple[str, dict[str, str | None]]
_REFUSED_LOGIN = frozenset({None, "AUTH"})  # the codes a refused login may carry


@dataclass(frozen=True)
class Logins:
    """What the whole recording shows of logins."""

    #: Every SASL mechanism listed (CAPA's SASL line, AUTH's listing), upper case.
    mechanisms: frozenset[str]
    #: The login methods (USER and mechanisms) CAPA listed before login over TLS only.
    tls_only: frozenset[str]
    #: Whether a CAPA without TLS listed STLS; None: no such CAPA was recorded.
    stls_listed: bool | None
    #: ``"cleartext_refused"``, ``"tls_required"`` or None: the texts entry, and so
    #: the option, of the server's TLS policy.
    policy: str | None
    #: The texts of the logins refused for want of TLS.
    refusals: frozenset[str]

    @property
    def options(self) -> dict[str, Any]:
        if self.policy == "tls_required":
            return {"require_tls": True}
        if self.policy == "cleartext_refused":
            return {"cleartext_login": False}
        return {}

    def refusal(self, reply: RecordedReply) -> Worded | None:
        """The texts entry of a -ERR before login to a login command the server takes
        there (USER, PASS, APOP, AUTH, STLS), or None if the recording cannot tell."""
        keyword = reply.keyword
        if (
            self.policy is not None
            and keyword in {"USER", "PASS", "APOP", "AUTH"}
            and not reply.tls
            and reply.response is None
            and reply.text in self.refusals
        ):
            return self.policy, {}
        if keyword == "STLS":
            if reply.tls:
                return "tls_active", {}
            return None if self.stls_listed else ("unknown_before_login", {"keyword": keyword})
        if keyword == "AUTH":
            return self._sasl_refusal(reply)
        if keyword in {"PASS", "APOP"} and reply.code == "IN-USE":
            return "in_use", {}
        if keyword in {"PASS", "APOP"} and reply.code in _REFUSED_LOGIN:
            return "auth_failed", {}
        return None

    def _sasl_refusal(self, reply: RecordedReply) -> Worded | None:
        arguments = reply.argument.split(" ")
        response = reply.response
        if response is not None:  # the end of an exchange
            if is_sasl_cancel(line_content(response.data)[0].decode("latin-1")):
                return "sasl_cancelled", {}
            if "not-base64" in response.flags:
                return "bad_sasl_response", {}
            return ("sasl_failed", {}) if reply.code in _REFUSED_LOGIN else None
        if not arguments[0]:
            return None
        if self.mechanisms and ascii_upper(arguments[0]) not in self.mechanisms:
            return "unsupported_mechanism", {"mechanism": arguments[0][:40]}
        if reply.line is not None and "not-base64" in reply.line.flags:
            return "bad_initial_response", {}
        if len(arguments) == 2 and reply.code in _REFUSED_LOGIN:
            return "sasl_failed", {}
        return None


def _methods(reply: RecordedReply) -> tuple[set[str], set[str]]:
    # The capabilities a CAPA lists, and the SASL mechanisms CAPA or AUTH lists.
    lines = [words for line in reply.payload if (words := line.decode("utf-8", "replace").split())]
    if reply.keyword == "AUTH":
        return set(), {ascii_upper(words[0]) for words in lines}
    names = {ascii_upper(words[0]) for words in lines}
    mechanisms = {
        ascii_upper(m) for words in lines if ascii_upper(words[0]) == "SASL" for m in words[1:]
    }
    return names, mechanisms


def read_logins(replies: Iterable[RecordedReply]) -> Logins:
    """What ``replies`` (every session's, in order) show of logins."""
    replies = list(replies)
    mechanisms: set[str] = set()
    offered: dict[bool, set[str] | None] = {False: None, True: None}  # by TLS
    for reply in replies:
        listing = reply.keyword == "CAPA" or (reply.keyword == "AUTH" and not reply.argument)
        if not (listing and reply.positive):
            continue
        names, listed = _methods(reply)
        mechanisms |= listed
        if reply.keyword == "CAPA" and reply.before is not State.TRANSACTION:
            methods = offered[reply.tls] or set()
            offered[reply.tls] = methods | listed | (names & {"USER", "STLS"})
    plain, tls = offered[False], offered[True]
    tls_only = frozenset(tls - plain - {"STLS"}) if plain is not None and tls else frozenset()
    refusals = _refusals(replies, tls_only)
    require = bool(tls_only - PLAINTEXT_METHODS) or any(
        not r.tls and r.negative and r.keyword == "APOP" and r.text in refusals for r in replies
    )
    policy = None
    if require:
        policy = "tls_required"
    elif refusals or tls_only:
        policy = "cleartext_refused"
    return Logins(
        frozenset(mechanisms),
        tls_only,
        None if plain is None else "STLS" in plain,
        policy,
        frozenset(refusals),
    )


def _refusals(replies: list[RecordedReply], tls_only: frozenset[str]) -> set[str]:
    # The texts of the logins refused without TLS that TLS would have let go on.
    attempts = [
        r
        for r in replies
        if r.tls and r.keyword in {"USER", "PASS"} and r.before is not State.TRANSACTION
    ]
    user_over_tls = "USER" in tls_only or any(r.keyword == "USER" and r.positive for r in attempts)
    wrong_password = {r.text for r in attempts if r.keyword == "PASS" and r.negative}
    texts = set()
    for reply in replies:
        if reply.tls or not reply.negative or reply.before is State.TRANSACTION:
            continue
        keyword, mechanism = reply.keyword, ascii_upper(reply.argument.split(" ")[0])
        if (
            (keyword == "USER" and user_over_tls)
            or (
                keyword == "PASS"
                and reply.before is State.AWAITING_PASS
                and wrong_password
                and reply.text not in wrong_password
            )
            or (keyword == "AUTH" and reply.response is None and mechanism in tls_only)
        ):
            texts.add(reply.text)
    return texts
