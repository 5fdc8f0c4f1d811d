"""``python -m fakepop``: serve the built-in demo mailboxes until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import functools
import os
import signal
import sys
from collections.abc import Sequence

import trio

from . import __version__
from ._demo import DEMO_PASSWORD, DEMO_USER, demo_mailboxes
from ._server import Pop3Server

__all__ = ["READY_PREFIX", "format_address", "main"]

#: The first line printed once the server listens is READY_PREFIX + "HOST:PORT".
READY_PREFIX = "fakepop listening on "

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

_EPILOG = f"""\
output:
  Once the server is listening, the first line on stdout is always

    {READY_PREFIX}HOST:PORT

  (an IPv6 HOST is in brackets, as in [::1]:1110), so a script can run
  "fakepop --port 0" and read the port it got from that line. Hints for
  humans follow it; do not parse them.

mailboxes:
  demo/demo holds four messages (plain text, dot-stuffing, UTF-8 with an
  encoded Subject, multipart with an attachment); alice/wonderland holds one.
  Mail lives in memory only: messages deleted with DELE and QUIT are gone
  until the server restarts, and nothing is ever written to disk.

exit status:
  0 when stopped with Ctrl-C (SIGINT) or SIGTERM; 1 if the server cannot
  listen (address in use, unknown host) or a session failed inside the
  server; 2 for bad arguments.
"""


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: not a number")
    port = int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(
            f"invalid port {port}: must be 0-65535 (0 picks any free port)"
        )
    return port


def _host(text: str) -> str:
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"invalid host {text!r}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakepop",
        description=(
            "Run a fakepop POP3 server with built-in demo mailboxes, to try POP3\n"
            "clients by hand. Deletions happen in memory only."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--host",
        type=_host,
        default="127.0.0.1",
        help="address to listen on (default: %(default)s; 0.0.0.0 for all IPv4 interfaces)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=1110,
        help="TCP port to listen on (default: %(default)s; 0 picks any free port)",
    )
    parser.add_argument("-V", "--version", action="version", version=f"fakepop {__version__}")
    return parser


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _say(text: str = "") -> None:
    # Scripts often read the ready line and close the pipe; that must not crash us.
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at devnull so the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _error(text: str) -> None:
    print(f"fakepop: error: {text}", file=sys.stderr, flush=True)


def _announce(server: Pop3Server) -> None:
    host, port = server.address
    _say(READY_PREFIX + format_address(host, port))
    for other_host, other_port in server.addresses[1:]:
        _say(f"  also listening on {format_address(other_host, other_port)}")
    # An unspecified address accepts connections on loopback too; suggest that.
    client_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url_host = format_address(client_host, port)
    glob_off = "-g " if ":" in client_host else ""  # curl would read [ ] as a glob
    store = server.store
    accounts = ", ".join(
        f"{user}/{store.password_of(user)} ({_count(server, user)})" for user in store.users
    )
    url = f"pop3://{DEMO_USER}:{DEMO_PASSWORD}@{url_host}"
    _say(f"  accounts: {accounts}")
    _say(f"  try:      telnet {client_host} {port}")
    _say(f"            curl {glob_off}{url}/      (list messages)")
    _say(f"            curl {glob_off}{url}/1     (fetch message 1)")
    _say("  Deletions happen in memory only. Press Ctrl-C to stop.")


def _count(server: Pop3Server, user: str) -> str:
    count = len(server.store[user])
    return f"{count} message{'' if count == 1 else 's'}"


async def _serve(host: str, port: int) -> int:
    server = Pop3Server(demo_mailboxes())
    stopped_by = None
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(functools.partial(server.serve, host=host, port=port))
            except OSError as exc:
                reason = exc.strerror or str(exc)
                if exc.errno == errno.EADDRINUSE:
                    reason += "; is another server running? (--port 0 picks a free port)"
                _error(f"cannot listen on {format_address(host, port)}: {reason}")
                return EXIT_FAILURE
            _announce(server)
            async for signum in signals:
                stopped_by = signal.Signals(signum).name
                break
            nursery.cancel_scope.cancel()
    _say(f"fakepop stopped ({stopped_by})")
    if server.errors:
        _error(f"{len(server.errors)} session(s) failed inside the server (logged above)")
        return EXIT_FAILURE
    return EXIT_OK


def _is_interrupt(exc: BaseException) -> bool:
    # KeyboardInterrupt, possibly wrapped in (nested) exception groups by trio.
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(_is_interrupt(e) for e in inner)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo server; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    try:
        return trio.run(_serve, args.host, args.port)
    except BaseException as exc:
        # Ctrl-C outside the signal receiver (while starting or stopping) lands here.
        if not _is_interrupt(exc):
            raise
        _say("fakepop stopped (SIGINT)")
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
