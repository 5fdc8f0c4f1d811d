"""Safety defaults: unless a test asks otherwise, every way of starting fakepop listens
on 127.0.0.1 only, never on a wildcard or an outside address."""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable

import pytest
import trio

from fakepop import Pop3Server, Pop3ServerThread, open_pop3_server, serve_pop3
from fakepop._server import ServerOptions

LOOPBACK = "127.0.0.1"


def only_loopback(addresses: list[tuple[str, int]]) -> None:
    assert addresses, "no listening socket"
    assert {host for host, _ in addresses} == {LOOPBACK}, addresses


def test_the_one_host_option_defaults_to_loopback() -> None:
    assert inspect.signature(Pop3Server.__init__).parameters["host"].default == LOOPBACK


@pytest.mark.parametrize(
    "function",
    [Pop3ServerThread.__init__, serve_pop3, open_pop3_server],
    ids=["Pop3ServerThread", "serve_pop3", "open_pop3_server"],
)
def test_every_wrapper_takes_the_servers_options_without_a_copy(
    function: Callable[..., object],
) -> None:
    """The options are declared once, on Pop3Server (and typed by ServerOptions): a
    wrapper passes them on and declares no default of its own to drift."""
    parameters = inspect.signature(function).parameters
    assert "host" not in parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    option_names = set(ServerOptions.__annotations__)
    own = set(inspect.signature(Pop3Server.__init__).parameters) - {"self", "mailboxes"}
    assert option_names == own


def test_the_fixtures_listen_address_defaults_to_loopback(
    pop3_listen_address: tuple[str, int],
) -> None:
    assert pop3_listen_address == (LOOPBACK, 0)


def test_pop3_server_thread_listens_on_loopback_only() -> None:
    with Pop3ServerThread() as server:
        assert server.host == LOOPBACK
        only_loopback(server.server.addresses)
        listener = server.server._listeners[0]
        assert listener.family == socket.AF_INET
        not_reachable_from_outside(server.port)


async def test_open_pop3_server_listens_on_loopback_only() -> None:
    async with open_pop3_server() as server:
        assert server.host == LOOPBACK
        only_loopback(server.addresses)


async def test_serve_pop3_and_pop3_server_serve_listen_on_loopback_only() -> None:
    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_pop3, {})
        only_loopback(server.addresses)
        other = await nursery.start(Pop3Server().serve)
        only_loopback(other.addresses)
        nursery.cancel_scope.cancel()


def test_the_pop3_server_fixture_listens_on_loopback_only(pop3_server: Pop3ServerThread) -> None:
    assert pop3_server.host == LOOPBACK
    only_loopback(pop3_server.server.addresses)


def test_the_shared_fixture_listens_on_loopback_only(
    pop3_shared_server: Pop3ServerThread,
) -> None:
    assert pop3_shared_server.host == LOOPBACK
    only_loopback(pop3_shared_server.server.addresses)


async def test_the_trio_fixture_listens_on_loopback_only(trio_pop3_server: Pop3Server) -> None:
    assert trio_pop3_server.host == LOOPBACK
    only_loopback(trio_pop3_server.addresses)


def _outside_address() -> str | None:
    # This machine's address on its default route, if it has one (no packet is sent).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1
        except OSError:
            return None
        address: str = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def not_reachable_from_outside(port: int) -> None:
    address = _outside_address()
    if address is None:
        return  # no non-loopback interface to try from
    with (
        pytest.raises((ConnectionRefusedError, TimeoutError)),
        socket.create_connection((address, port), timeout=2),
    ):
        pass
