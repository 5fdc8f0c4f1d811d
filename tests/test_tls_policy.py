"""The TLS policy never advertises what it refuses, and refuses nothing it advertises.

Over every combination of the options that shape it (``cleartext_login``,
``require_tls``, ``stls``, ``user_pass``, SASL mechanisms), of whether the server has
TLS at all, and of whether the connection is encrypted: CAPA's USER, STLS and SASL
lines (RFC 2449 §6, RFC 2595 §4, RFC 5034 §4) and a bare AUTH's listing must say
exactly which of USER, STLS and each mechanism is then accepted.
"""

from __future__ import annotations

import base64
import itertools

import pytest

from fakepop import MailStore, Pop3Protocol, Reply, ServerConfig
from fakepop._config import SASL_MECHANISMS

COMBINATIONS = list(
    itertools.product(
        [True, False],  # cleartext_login
        [True, False],  # require_tls
        [True, False],  # stls
        [True, False],  # user_pass
        [SASL_MECHANISMS, ("CRAM-MD5",), ("PLAIN", "XOAUTH2"), ()],  # sasl
        [True, False],  # tls_available
        [True, False],  # tls_active
    )
)


def session(config: ServerConfig, *, tls_available: bool, tls_active: bool) -> Pop3Protocol:
    return Pop3Protocol(
        MailStore({"alice": "secret"}),
        config,
        tls_available=tls_available or tls_active,
        tls_active=tls_active,
    )


def ask(protocol: Pop3Protocol, line: str) -> Reply:
    protocol.receive_data(line.encode() + b"\r\n")
    command = protocol.next_command()
    assert command is not None
    return protocol.handle(command)


def capa(protocol: Pop3Protocol) -> list[str]:
    reply = ask(protocol, "CAPA")
    assert reply.ok
    assert reply.payload is not None
    return reply.payload.decode().split("\r\n")[:-2]


@pytest.mark.parametrize(
    ("cleartext", "require", "stls", "user_pass", "sasl", "tls_available", "tls_active"),
    COMBINATIONS,
)
def test_capa_advertises_exactly_what_is_accepted(  # noqa: PLR0917 - one per option
    cleartext: bool,
    require: bool,
    stls: bool,
    user_pass: bool,
    sasl: tuple[str, ...],
    tls_available: bool,
    tls_active: bool,
) -> None:
    config = ServerConfig(
        cleartext_login=cleartext, require_tls=require, stls=stls, user_pass=user_pass, sasl=sasl
    )

    def fresh() -> Pop3Protocol:
        return session(config, tls_available=tls_available, tls_active=tls_active)

    advertised = capa(fresh())
    # USER: advertised iff "USER alice" is accepted.
    assert ("USER" in advertised) is ask(fresh(), "USER alice").ok
    # STLS: advertised iff STLS is answered +OK.
    assert ("STLS" in advertised) is ask(fresh(), "STLS").ok
    # SASL: the advertised mechanisms are the ones AUTH starts, and a bare AUTH lists.
    line = next((item for item in advertised if item.startswith("SASL ")), "SASL")
    offered = line.split()[1:]
    for mechanism in SASL_MECHANISMS:
        reply = ask(fresh(), f"AUTH {mechanism}")
        assert (mechanism in offered) is reply.status.startswith(b"+ "), (mechanism, reply)
    listing = ask(fresh(), "AUTH")
    assert listing.ok is bool(sasl)  # AUTH exists iff some mechanism is configured
    if listing.ok:
        assert listing.payload is not None
        assert listing.payload.decode().split("\r\n")[:-1] == [*offered, "."]


def test_a_refused_mechanism_says_why_when_tls_would_allow_it() -> None:
    """RFC 5034 §4: a plaintext mechanism refused for want of TLS gets [AUTH] with the
    reason, not "unsupported", and after TLS it works."""
    config = ServerConfig(cleartext_login=False)
    plain = base64.b64encode(b"\0alice\0secret").decode()
    before = ask(session(config, tls_available=True, tls_active=False), f"AUTH PLAIN {plain}")
    assert before.status.startswith(b"-ERR [AUTH] Plaintext authentication is not allowed")
    after = ask(session(config, tls_available=True, tls_active=True), f"AUTH PLAIN {plain}")
    assert after.status.startswith(b"+OK alice's maildrop")


@pytest.mark.parametrize(
    ("options", "key"),
    [({"cleartext_login": False}, "cleartext_refused"), ({"require_tls": True}, "tls_required")],
)
def test_a_login_refused_for_want_of_tls_is_worded_by_the_texts(
    options: dict[str, bool], key: str
) -> None:
    """RFC 2595 §2.1, RFC 5034 §4: the refusal of USER, APOP and AUTH before TLS is
    one of the texts a profile can word (Dovecot says "Plaintext authentication
    disallowed on non-secure (SSL/TLS) connections."), with [AUTH] added."""
    config = ServerConfig(**options, texts={key: "Say it {{this}} way."})
    lines = ["USER alice", "AUTH PLAIN"]
    if key == "tls_required":  # APOP sends no password: only require_tls refuses it
        lines.append("APOP alice 0123456789abcdef0123456789abcdef")
    for line in lines:
        refused = ask(session(config, tls_available=True, tls_active=False), line)
        assert refused.status == b"-ERR [AUTH] Say it {this} way.\r\n", line
