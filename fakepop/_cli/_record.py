"""``fakepop record``: a recording proxy in front of a real POP3 server, writing a
cassette until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

import trio

from .._cassette_rules import BODY_MODES
from .._recording import RecordingProxy, parse_address
from ..errors import ConfigError
from ._console import READY_PREFIX, error, format_address, say

__all__ = ["record_main"]

_EPILOG = f"""\
Point the client at the proxy's address (the first line on stdout is always
"{READY_PREFIX}HOST:PORT") and use it as against the real server; every
line either side sends is relayed unchanged and written to the cassette.

Passwords, APOP digests and SASL responses (OAuth tokens included) are written
as ****. Message bodies are kept, or with --redact-bodies=synthetic rewritten
to x's of the same size and line structure, or with hash to a hash of each
line. Replay the cassette with fakepop.CassetteServer or the pytest marker
pop3_cassette (docs/howto/cassettes.md).

With --upstream-tls the upstream is POP3S and the proxy speaks TLS to the
client too; after STLS both sides switch to TLS. Towards the client the proxy
shows a certificate of a throwaway CA: --ca-file writes it for the client.
"""


def _address(text: str) -> tuple[str, int]:
    try:
        return parse_address(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakepop record",
        description="Record a real POP3 server's conversations into a cassette file.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--upstream", required=True, type=_address, metavar="HOST:PORT", help="the real POP3 server"
    )
    parser.add_argument(
        "--cassette",
        required=True,
        metavar="FILE",
        help="the cassette to write (created or emptied)",
    )
    parser.add_argument(
        "--listen",
        type=_address,
        default=("127.0.0.1", 1110),
        metavar="HOST:PORT",
        help="where the proxy listens (default 127.0.0.1:1110; port 0 picks a free one)",
    )
    parser.add_argument(
        "--upstream-tls",
        action="store_true",
        help="the upstream is POP3S (TLS from the first octet)",
    )
    parser.add_argument(
        "--insecure-upstream", action="store_true", help="do not verify the upstream's certificate"
    )
    parser.add_argument(
        "--ca-file",
        metavar="PATH",
        help="write the CA of the proxy's certificate here, for the client",
    )
    parser.add_argument(
        "--redact-bodies",
        choices=BODY_MODES,
        default="keep",
        help="what the cassette keeps of message bodies (default keep)",
    )
    return parser


async def _record(proxy: RecordingProxy) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(proxy.serve)
            except OSError as exc:
                error(f"cannot listen: {exc.strerror or exc}")
                return 1
            say(READY_PREFIX + format_address(*proxy.address))
            say(f"recording {format_address(*proxy.upstream)} into {proxy.cassette}")
            async for signum in signals:
                say(f"fakepop record stopped ({signal.Signals(signum).name})")
                break
            nursery.cancel_scope.cancel()
    return 1 if proxy.errors else 0


def record_main(argv: Sequence[str]) -> int:
    """Run ``fakepop record`` with the arguments after ``record``."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    host, port = args.listen
    try:
        proxy = RecordingProxy(
            args.cassette,
            args.upstream,
            upstream_tls=args.upstream_tls,
            verify_upstream=not args.insecure_upstream,
            redact_bodies=args.redact_bodies,
            host=host,
            port=port,
        )
        if args.ca_file:
            proxy.tls.write_ca_pem(args.ca_file)
    except (ConfigError, OSError) as exc:
        error(str(exc))
        return 2
    try:
        return trio.run(_record, proxy)
    except KeyboardInterrupt:
        say("fakepop record stopped (SIGINT)")
        return 0
