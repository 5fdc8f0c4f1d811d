"""ServerConfig is a value (immutable, hashable, checked whole when made), and every
exception fakepop raises on purpose shares one base, FakepopError."""

from __future__ import annotations

import dataclasses
import poplib

import pytest
import trio

import fakepop
from fakepop import (
    ConfigError,
    FakepopError,
    MailSourceError,
    Pop3Server,
    Pop3ServerThread,
    ServerConfig,
    ServerError,
    UsageError,
    profiles,
    read_mbox,
)


def test_a_config_is_hashable_and_equal_by_value() -> None:
    a = ServerConfig(texts={"quit": "Bye."}, sasl=("PLAIN",))
    b = ServerConfig(texts={"quit": "Bye."}, sasl=("PLAIN",))
    assert a == b
    assert hash(a) == hash(b)
    assert {a: "cached"}[b] == "cached"
    assert ServerConfig(texts={"quit": "Ciao."}) != a
    assert profiles.dovecot() == profiles.dovecot()
    assert hash(profiles.gmail()) == hash(profiles.gmail())


def test_a_configs_texts_cannot_be_changed_afterwards() -> None:
    texts = {"quit": "Bye."}
    config = ServerConfig(texts=texts)
    texts["quit"] = "changed behind its back"
    assert config.texts["quit"] == "Bye."
    with pytest.raises(TypeError):
        config.texts["quit"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.greeting = "x"  # type: ignore[misc]


def test_servers_made_without_a_config_share_one_that_none_can_change() -> None:
    """The default options are one instance for every server (made once, not per
    server); that is only safe because nothing can change it, so one test's server
    can never alter what the next one says."""
    first, second = Pop3ServerThread(), Pop3Server()
    assert first.config is second.config
    assert first.config == ServerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.config.greeting = "changed by one server"  # type: ignore[misc]
    with pytest.raises(TypeError):
        first.config.texts["quit"] = "changed by one server"  # type: ignore[index]
    own = ServerConfig(greeting="Mine.")
    assert Pop3Server(config=own).config is own
    # RFC 1939 §4: what the client hears is the default greeting, untouched.
    with Pop3ServerThread({"alice": "pw"}) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        assert client.getwelcome().startswith(b"+OK fakepop POP3 server ready. <")
        assert client.user("alice").startswith(b"+OK Send PASS for alice")
        client.quit()


@pytest.mark.parametrize(
    ("texts", "problem"),
    [
        ({"user": "Send PASS for {nme}"}, r"text 'user' uses \{nme\}; its fields are: \{user\}"),
        ({"noop": "fine {user}"}, r"text 'noop' uses \{user\}; its fields are: none"),
        ({"user": "Send PASS for {"}, r"text 'user' is not a valid template"),
        ({"quit": "two\r\nlines"}, r"text 'quit' must be one line"),
        ({"bogus": "x"}, r"unknown texts \['bogus'\]"),
    ],
)
def test_texts_are_checked_when_the_config_is_made(texts: dict[str, str], problem: str) -> None:
    """A misspelt field is a clear error at construction, not a KeyError inside a
    session when the reply is first sent."""
    with pytest.raises(ConfigError, match=problem):
        ServerConfig(texts=texts)


def test_every_duration_takes_int_or_float_seconds() -> None:
    config = ServerConfig(login_delay=1.5, autologout=2)
    assert "LOGIN-DELAY 2" in config.capabilities()  # RFC 2449 §6.8: whole seconds, up
    assert ServerConfig(login_delay=0).capabilities().count("LOGIN-DELAY 0") == 1
    for bad in (True, -1, float("nan"), float("inf"), "5"):
        with pytest.raises(ConfigError, match="login_delay"):
            ServerConfig(login_delay=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="autologout"):
        ServerConfig(autologout=0)


def test_every_exception_of_fakepop_has_one_base_and_keeps_its_builtin_kind(
    tmp_path: object,
) -> None:
    for error, builtin in (
        (ConfigError, ValueError),
        (UsageError, RuntimeError),
        (MailSourceError, ValueError),
        (ServerError, Exception),
    ):
        assert issubclass(error, FakepopError)
        assert issubclass(error, builtin)
    assert fakepop.errors.ServerError is ServerError
    with pytest.raises(ConfigError):
        ServerConfig(hostname="two words")
    with pytest.raises(ConfigError):
        profiles.profile("no such server")
    with pytest.raises(MailSourceError):
        read_mbox("/nonexistent/fakepop/mbox")


def test_api_misuse_raises_a_usage_error() -> None:
    server = Pop3ServerThread()
    with pytest.raises(UsageError, match="not running"):
        server.reset()
    with pytest.raises(UsageError, match="not listening"):
        Pop3Server().address  # noqa: B018


async def test_serving_twice_is_a_usage_error() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(Pop3Server().serve)
        with pytest.raises(UsageError, match="already serving"):
            await server.serve()
        nursery.cancel_scope.cancel()


def test_bad_fault_and_mailbox_options_are_config_errors() -> None:
    """Options a test gets wrong (a fault's count, a mailbox dict, a UID) are
    ConfigErrors: still ValueErrors, and caught by ``except FakepopError``."""
    with pytest.raises(ConfigError, match="after_bytes"):
        fakepop.faults.cut_payload(after_bytes=-1)
    with pytest.raises(ConfigError, match="occurrence"):
        fakepop.faults.error("RETR").nth(0)
    with pytest.raises(ConfigError, match="'alice'"):
        fakepop.MailStore({"alice": {"password": "pw", "colour": "blue"}})
    with pytest.raises(ConfigError, match="invalid UID"):
        fakepop.MailStore({"alice": {"password": "pw", "messages": {"a b": "x"}}})
