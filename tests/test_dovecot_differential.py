"""fakepop side by side with a real Dovecot 2.3: the same scripted sessions, the same
accounts and the same message octets, compared line by line (docs/explanation/dovecot.md).

``profiles.dovecot()`` must answer every scenario exactly as Dovecot does, timing
included where a scenario waits for a delay (scaled: Dovecot's are seconds, fakepop's
a fraction of one). The default ``ServerConfig()`` differs from Dovecot on purpose in
the scenarios listed in ``DEFAULT_DIFFERS``, each for a reason docs/explanation/dovecot.md gives;
the test fails when that list changes, so a new difference cannot slip in unnoticed.

One Dovecot serves the whole module (started in tmp_path, stopped at the end); every
scenario has an account of its own, so they all run at once. Without Dovecot (or
without root to start it) the module is skipped; tests/test_profiles.py still checks
the profile against the recorded Dovecot sessions.
"""

from __future__ import annotations

import dataclasses
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from fakepop import Pop3ServerThread, ServerConfig, profiles
from tests.dovecot import (
    Dovecot,
    Scenario,
    behaviour,
    connect,
    cram_md5,
    dovecot_unavailable,
    run_all,
    send,
    starttls,
    unified,
)

# Messages as the recorded sessions had them: headers, a body with dot-stuffing
# traps, and an 8-bit body.
M1 = (
    b"Return-Path: <carol@example.com>\r\nFrom: Carol <carol@example.com>\r\n"
    b"To: Alice <alice@example.com>\r\nSubject: Test message one\r\n"
    b"Message-ID: <msg1@example.com>\r\n\r\nHello Alice.\r\nSecond line.\r\n"
)
M2 = (
    b"From: Dave <dave@example.com>\r\nTo: Alice <alice@example.com>\r\n"
    b"Subject: Dot-stuffing test\r\n\r\nLine 1\r\n.leading dot line\r\n"
    b"..two leading dots\r\n.\r\nLine after lone dot\r\n"
)
M3 = (
    b"From: Eve <eve@example.com>\r\nTo: Alice <alice@example.com>\r\n"
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    + "".join(f"Body line {n}: Grüße aus Köln\r\n" for n in range(1, 8)).encode()
)
MAIL = (M1, M2, M3)
LOGIN = ("USER {user}", "PASS {password}")


def scenario(name: str, *steps: object, mail: bool = True, **options: object) -> Scenario:
    return Scenario(name, tuple(steps), MAIL if mail else (), **options)  # type: ignore[arg-type]


SCENARIOS = [
    # -- before login ---------------------------------------------------------------------
    scenario("capa", send("CAPA"), send("capa"), send("CAPA x"), send("QUIT")),
    scenario(
        "unknown-before-login",
        *[send(line, "CAPA") for line in ("STAT", "LIST", "RETR 1", "TOP 1 0", "DELE 1")],
        *[send(line, "CAPA") for line in ("RSET", "NOOP", "UIDL", "LAST", "UTF8", "LANG")],
        send("", "CAPA"),
        send("STAT 1", "QUIT"),
    ),
    scenario("bad-commands-before-login", send("FOO"), send("STAT"), send("LIST"), send("NOOP")),
    scenario(
        "bad-commands-reset-before-login",
        send("FOO"), send("STAT"), send("PASS x"), send("LIST"), send("NOOP"), send("XYZZY"),
    ),
    scenario(
        "auth-is-neither-good-nor-bad",
        send("FOO"), send("AUTH FOO"), send("BAR"), send("AUTH"), send("BAZ"), send("QUIT"),
    ),
    scenario("pass-without-user", send("PASS secret"), send("QUIT x")),
    scenario(
        "apop-not-offered", send("APOP {user} 0123456789abcdef0123456789abcdef"), send("QUIT")
    ),
    scenario("user-without-argument", send("USER"), send("USER "), send("QUIT")),
    scenario(
        "user-without-argument-then-pass",
        send("USER"), send("PASS {password}"), send("QUIT"),
    ),
    scenario(
        "failed-logins",
        send("USER {user}"),
        send("PASS wrong", wait="failed-login"),
        send("USER nosuchuser"),
        send("PASS {password}", wait="failed-login"),
        send("USER {user}"),
        send("USER {user}"),
        send("PASS {password}"),
        send("STAT"),
        send("QUIT"),
    ),
    scenario(
        "password-with-spaces",
        send("USER {user}"), send("PASS  {password}", wait="failed-login"), send("QUIT"),
        password="my secret",
    ),
    scenario("quit-before-login", send("QUIT")),
    scenario(
        "login-commands-before-login",
        send("Capa"), send("CAPABILITY"), send("USER {user}"), send("USER other"),
        send("QuIt"),
    ),
    scenario("bad-commands-pipelined", send("FOO", "BAR", "BAZ", "QUIT")),
    # -- after login ----------------------------------------------------------------------
    scenario(
        "transaction",
        send(*LOGIN),
        send("CAPA"), send("STAT"), send("LIST"), send("LIST 2"), send("UIDL"), send("UIDL 3"),
        send("TOP 1 0"), send("TOP 3 2"), send("RETR 2"), send("RETR 3"),
        send("DELE 1"), send("DELE 1"), send("RETR 1"), send("LIST 1"), send("UIDL 1"),
        send("TOP 1 0"), send("LIST"), send("UIDL"), send("STAT"), send("RSET"), send("STAT"),
        send("NOOP"), send("stat"), send("DELE 3"), send("QUIT"),
        connect("B"), send(*LOGIN, on="B"), send("STAT", "UIDL", "QUIT", on="B"),
    ),
    scenario(
        "commands-after-login",
        send(*LOGIN),
        *[send(line, "NOOP") for line in ("USER {user}", "PASS x", "APOP a b", "AUTH PLAIN")],
        *[send(line, "NOOP") for line in ("AUTH", "STLS", "LAST", "UTF8", "LANG", "FOO")],
        send("QUIT"),
    ),
    scenario(
        "missing-arguments",
        send(*LOGIN),
        send("RETR"), send("DELE"), send("TOP"), send("TOP 1"), send("TOP 1 "), send("QUIT"),
    ),
    scenario(
        "extra-arguments",
        send(*LOGIN),
        send("STAT 1"), send("NOOP x"), send("RSET x"), send("CAPA x"),
        send("LIST 1 2"), send("RETR 1 2"), send("DELE 1 2"), send("UIDL 1 2"),
        send("TOP 1 0 0"), send("LIST 1 "), send("QUIT x"),
    ),
    scenario(
        "spaces",
        send(*LOGIN),
        send("LIST  2"), send("UIDL   3"), send("TOP  1  0"), send("RETR  2"),
        send("LIST "), send("UIDL "), send(" STAT"), send(""), send("QUIT"),
    ),
    scenario(
        "case",
        send("user {user}", "pass {password}"),
        send("Stat"), send("list 1"), send("uidl"), send("top 1 0"), send("noop"), send("quit"),
    ),
    scenario(
        "numbers",
        send(*LOGIN),
        send("LIST abc"), send("LIST 0"), send("LIST 99"), send("LIST 00001"),
        send("LIST +1"), send("LIST -1"), send("RETR 4294967295"), send("RETR 4294967296"),
        send("RETR 4294967296 x"), send("RETR 99999999999999999999"),
        send("TOP 1 x"), send("TOP 1 -1"), send("TOP 1 99999999999999999999"),
        send("TOP 1 99999"), send("TOP 99 0"), send("DELE 0"), send("UIDL 99"), send("QUIT"),
    ),
    scenario(
        "bad-commands-after-login",
        send(*LOGIN),
        *[send("FOO") for _ in range(10)],
        send("NOOP"),
        *[send("LIST 99") for _ in range(20)],
        send("RETR x"),
        send("NOOP"),
    ),
    scenario(
        "empty-mailbox", send(*LOGIN), send("STAT", "LIST", "UIDL", "RETR 1", "QUIT"), mail=False
    ),
    scenario(
        "reset-and-quit",
        send(*LOGIN), send("DELE 1", "DELE 2", "RSET", "STAT", "QUIT"),
        connect("B"), send(*LOGIN, on="B"), send("STAT", "QUIT", on="B"),
    ),
    # -- the line ---------------------------------------------------------------------------
    scenario(
        "pipelining",
        send(*LOGIN, "STAT", "LIST", "UIDL 1", "TOP 2 0", "RETR 1", "NOOP", "QUIT"),
    ),
    scenario("bare-lf", send("USER {user}\n", "PASS {password}\n"), send("STAT\n", "QUIT\n")),
    scenario(
        "pipelined-failed-login",
        send("USER {user}", "PASS wrong", "USER {user}", "PASS {password}", "STAT", "QUIT",
             wait="failed-login", wait_line=1),
    ),
    scenario(
        "longest-lines-before-login",
        send("USER " + "a" * 1024), send("USER " + "a" * 1025),
    ),
    scenario(
        "longest-lines-after-login",
        send(*LOGIN), send("NOOP " + "a" * 2041), send("NOOP " + "a" * 2042, "NOOP", "QUIT"),
    ),
    scenario(
        "long-lines-before-login",
        send("USER " + "a" * 300), send("USER " + "a" * 1024), send("NOOP " + "a" * 1000),
        send("USER " + "a" * 5000),
    ),
    scenario(
        "long-lines-after-login",
        send(*LOGIN),
        send("NOOP " + "a" * 300), send("NOOP " + "a" * 2041), send("NOOP " + "a" * 2042),
    ),
    scenario("long-unknown-command", send(*LOGIN), send("X" * 300), send("QUIT")),
    # -- locking ----------------------------------------------------------------------------
    scenario(
        "lock",
        send(*LOGIN), send("STAT"),
        connect("B"), send("USER {user}", on="B"), send("PASS {password}", on="B", wait="lock"),
        send("STAT"), send("QUIT"),
    ),
    # -- SASL -------------------------------------------------------------------------------
    scenario("sasl-plain", send("AUTH PLAIN {plain}"), send("STAT", "QUIT")),
    scenario("sasl-plain-continued", send("AUTH PLAIN"), send("{plain}"), send("QUIT")),
    scenario(
        "sasl-login", send("AUTH LOGIN"), send("{user64}"), send("{password64}"), send("QUIT")
    ),
    scenario(
        "sasl-cram-md5", send("AUTH CRAM-MD5"), cram_md5("sasl-cram-md5", "secret"), send("QUIT")
    ),
    scenario(
        "sasl-cram-md5-wrong",
        send("AUTH CRAM-MD5"), cram_md5("sasl-cram-md5-wrong", "wrong"), send("QUIT"),
    ),
    scenario(
        "sasl-errors",
        send("AUTH"), send("AUTH FOO"), send("AUTH PLAIN"), send("*"),
        send("auth plain"), send("*"), send("AUTH PLAIN not-base64!"), send("QUIT"),
    ),
    scenario(
        "sasl-wrong-password", send("AUTH PLAIN {plain_wrong}", wait="failed-login"), send("QUIT")
    ),
    scenario("sasl-empty-initial-response", send("AUTH PLAIN ="), send("QUIT")),
    scenario("sasl-bad-continuation", send("AUTH PLAIN"), send("not base64!"), send("QUIT")),
    scenario("sasl-after-user", send("USER {user}"), send("AUTH PLAIN {plain}"), send("QUIT")),
    scenario(
        "sasl-malformed",
        send("AUTH PLAIN Zm9v"), send("AUTH LOGIN"), send("*"),
        send("AUTH PLAIN AHNhc2wtbWFsZm9ybWVk"), send("QUIT"),
    ),
    scenario("sasl-login-initial-response", send("AUTH LOGIN {user64}"), send("{password64}"),
             send("QUIT")),
    scenario("sasl-pipelined", send("AUTH PLAIN", "{plain}", "STAT", "QUIT")),
    # -- TLS --------------------------------------------------------------------------------
    scenario(
        "stls",
        send("CAPA"), send("STLS"), starttls(), send("CAPA"), send("STLS"),
        send(*LOGIN), send("STAT"), send("QUIT"),
    ),
    scenario("stls-after-login", send(*LOGIN), send("STLS"), send("QUIT")),
    scenario("stls-with-argument", send("STLS now"), starttls(), send("QUIT")),
    scenario(
        "stls-pipelined",
        send("STLS", "USER {user}", "PASS {password}", replies=1), starttls(), send("STAT"),
        send("QUIT"),
    ),
]
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}

#: Dovecot's delays as fakepop's profile is given them in these tests (seconds).
FAKEPOP_DELAYS = {"failed-login": 0.6, "lock": 0.7}
#: The dovecot profile as these tests run it.
DOVECOT = profiles.dovecot(
    failed_login_delay=FAKEPOP_DELAYS["failed-login"], lock_wait=FAKEPOP_DELAYS["lock"]
)

#: Why the default ServerConfig() does what a client can see differently from Dovecot
#: (docs/explanation/dovecot.md explains each): every reason names the options of the dovecot
#: profile that take it away.
REASONS: dict[str, tuple[str, ...]] = {
    "capabilities": ("capa_listing", "capa_listing_after_login", "implementation"),
    "mechanisms": ("sasl",),
    "utf8": ("utf8",),
    "apop": ("apop",),
    "strict-arguments": ("lenient_arguments",),
    "no-hang-ups": (
        "max_bad_commands",
        "max_bad_commands_before_login",
        "close_on_long_line",
        "close_on_in_use",
        "close_on_stls_pipelining",
    ),
    "line-length": ("max_line_length", "max_line_length_before_login"),
    "no-delays": ("failed_login_delay", "lock_wait"),
    "response-codes": ("texts",),
    "sasl-reasons": ("sasl_failure_reasons",),
}

#: The scenarios in which the default ServerConfig() behaves differently from Dovecot
#: (the wording aside), and why.
DEFAULT_DIFFERS: dict[str, tuple[str, ...]] = {
    "capa": ("capabilities", "mechanisms", "strict-arguments"),
    "unknown-before-login": ("capabilities", "mechanisms", "utf8"),
    "login-commands-before-login": ("capabilities", "mechanisms"),
    "transaction": ("capabilities",),
    "stls": ("capabilities", "mechanisms"),
    "commands-after-login": ("utf8",),
    "apop-not-offered": ("apop",),
    "sasl-errors": ("mechanisms", "response-codes"),
    "auth-is-neither-good-nor-bad": ("mechanisms", "response-codes", "no-hang-ups"),
    "sasl-bad-continuation": ("response-codes",),
    "pass-without-user": ("strict-arguments",),
    "user-without-argument": ("strict-arguments",),
    "user-without-argument-then-pass": ("strict-arguments",),
    "extra-arguments": ("strict-arguments", "capabilities"),
    "spaces": ("strict-arguments",),
    "numbers": ("strict-arguments",),
    "stls-with-argument": ("strict-arguments",),
    "bad-commands-before-login": ("no-hang-ups",),
    "bad-commands-reset-before-login": ("no-hang-ups",),
    "bad-commands-pipelined": ("no-hang-ups",),
    "bad-commands-after-login": ("no-hang-ups",),
    "stls-pipelined": ("no-hang-ups",),
    "lock": ("no-hang-ups", "no-delays"),
    "long-lines-before-login": ("line-length", "no-hang-ups"),
    "longest-lines-before-login": ("line-length", "no-hang-ups"),
    "long-lines-after-login": ("line-length", "no-hang-ups", "strict-arguments"),
    "longest-lines-after-login": ("line-length", "no-hang-ups", "strict-arguments"),
    "failed-logins": ("no-delays",),
    "pipelined-failed-login": ("no-delays",),
    "password-with-spaces": ("no-delays",),
    "sasl-wrong-password": ("no-delays",),
    "sasl-empty-initial-response": ("sasl-reasons",),
    "sasl-malformed": ("sasl-reasons",),
}


def explained(reasons: tuple[str, ...]) -> ServerConfig:
    """The default config with the dovecot profile's options for ``reasons``."""
    names = {name for reason in reasons for name in REASONS[reason]}
    return dataclasses.replace(ServerConfig(), **{n: getattr(DOVECOT, n) for n in names})


@pytest.fixture(scope="module")
def certificate() -> trustme.LeafCert:
    return trustme.CA().issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="module")
def dovecot_said(
    tmp_path_factory: pytest.TempPathFactory, certificate: trustme.LeafCert
) -> Iterator[dict[str, list[str]]]:
    reason = dovecot_unavailable()
    if reason is not None:
        pytest.skip(reason)
    accounts = {s.user: s.account for s in SCENARIOS}
    pem = (
        b"".join(blob.bytes() for blob in certificate.cert_chain_pems),
        certificate.private_key_pem.bytes(),
    )
    server = Dovecot(tmp_path_factory.mktemp("dovecot"), accounts, pem)
    server.start()
    try:
        delays = {"failed-login": server.failed_login_delay, "lock": server.lock_wait}
        yield run_all(SCENARIOS, (server.host, server.port), delays)
    finally:
        server.stop()


def fakepop_said(
    config: ServerConfig, certificate: trustme.LeafCert, scenarios: list[Scenario] = SCENARIOS
) -> dict[str, list[str]]:
    """What fakepop with ``config`` says in ``scenarios``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    mailboxes = {s.user: s.account.fakepop_mailbox() for s in scenarios}
    with Pop3ServerThread(mailboxes, config=config, ssl_context=context) as server:
        return run_all(scenarios, server.address, FAKEPOP_DELAYS)


def test_the_dovecot_profile_answers_every_scenario_as_dovecot_does(
    dovecot_said: dict[str, list[str]], certificate: trustme.LeafCert
) -> None:
    fakepop = fakepop_said(DOVECOT, certificate)
    found = {
        name: "\n".join(unified(said, fakepop[name]))
        for name, said in dovecot_said.items()
        if said != fakepop[name]
    }
    assert not found, "\n\n".join(f"== {name}\n{diff}" for name, diff in found.items())


def test_the_default_differs_from_dovecot_only_where_documented(
    dovecot_said: dict[str, list[str]], certificate: trustme.LeafCert
) -> None:
    """Wording aside, ServerConfig() behaves as Dovecot does except in DEFAULT_DIFFERS."""
    fakepop = fakepop_said(ServerConfig(), certificate)
    differ = {n for n, said in dovecot_said.items() if behaviour(said) != behaviour(fakepop[n])}
    assert sorted(differ - set(DEFAULT_DIFFERS)) == [], "new differences: document them"
    assert sorted(set(DEFAULT_DIFFERS) - differ) == [], "gone: take them out of the list"


def test_each_documented_difference_has_exactly_its_reasons(
    dovecot_said: dict[str, list[str]], certificate: trustme.LeafCert
) -> None:
    """The dovecot profile's options for a scenario's reasons make the default behave
    as Dovecot does there, and leaving out any one reason does not."""
    runs: dict[tuple[str, ...], list[Scenario]] = {}
    for name, reasons in DEFAULT_DIFFERS.items():
        for left_out in (None, *reasons):
            kept = tuple(sorted(r for r in reasons if r != left_out))
            runs.setdefault(kept, []).append(SCENARIOS_BY_NAME[name])
    results: dict[tuple[str, ...], dict[str, list[str]]] = {}

    def run(reasons: tuple[str, ...]) -> None:
        results[reasons] = fakepop_said(explained(reasons), certificate, runs[reasons])

    threads = [threading.Thread(target=run, args=(reasons,)) for reasons in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wrong = []
    for name, reasons in DEFAULT_DIFFERS.items():
        expected = behaviour(dovecot_said[name])
        if behaviour(results[tuple(sorted(reasons))][name]) != expected:
            wrong.append(f"{name}: {reasons} do not explain all of it")
        for left_out in reasons:
            kept = tuple(sorted(r for r in reasons if r != left_out))
            if behaviour(results[kept][name]) == expected:
                wrong.append(f"{name}: {left_out!r} is not needed")
    assert wrong == [], "\n".join(wrong)


def test_docs_dovecot_md_explains_every_reason() -> None:
    page = Path(__file__).parents[1] / "docs" / "explanation" / "dovecot.md"
    page = page.read_text(encoding="utf-8")
    assert [reason for reason in REASONS if f"`{reason}`" not in page] == []
