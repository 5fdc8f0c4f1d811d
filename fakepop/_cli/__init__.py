"""The fakepop command: serve demo mailboxes, or your own, until Ctrl-C or SIGTERM.

``main`` runs it (``fakepop record``, the recording proxy, is in ``_record``); the
options and the plan they add up to are in ``_arguments``, reading the mail sources in
``_sources``, what is printed in ``_console`` and --transcript in ``_follower``.
"""

from __future__ import annotations

import errno
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import trio

from .._loading import MailSourceError
from .._server import Pop3Server
from ._arguments import Plan, make_parser, make_plan
from ._console import CannotStart, announce, error, format_address, say
from ._follower import TranscriptFollower, TranscriptSink, follow, open_transcript
from ._sources import option_terms

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


async def _serve(host: str, port: int, plan: Plan, sink: TranscriptSink | None) -> int:
    server = Pop3Server(
        plan.store,
        config=plan.config,
        record_transcript=sink is not None,
        ssl_context=None if plan.tls is None else plan.tls.server_context(),
        host=host,
        port=port,
        pop3s_port=plan.pop3s_port,
    )
    follower = None if sink is None else TranscriptFollower(server.transcript, sink.write)
    stopped_by = None
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(server.serve)
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    if exc.errno == errno.EADDRINUSE:
                        reason += "; is another server running? (--port 0 picks a free port)"
                    error(f"cannot listen on {format_address(host, port)}: {reason}")
                    return EXIT_FAILURE
                announce(server, plan, None if sink is None else sink.name)
                if follower is not None:
                    nursery.start_soon(follow, follower)
                async for signum in signals:
                    stopped_by = signal.Signals(signum).name
                    break
                nursery.cancel_scope.cancel()
    finally:
        # Every session has ended now: write how, even when stopping went wrong.
        if follower is not None:
            follower.flush()
    say(f"fakepop stopped ({stopped_by})")
    if server.errors:
        error(f"{len(server.errors)} session(s) failed inside the server (logged above)")
        return EXIT_FAILURE
    if sink is not None and sink.failed:
        return EXIT_FAILURE
    return EXIT_OK


def _is_interrupt(exc: BaseException) -> bool:
    # KeyboardInterrupt, possibly wrapped in (nested) exception groups by trio.
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(_is_interrupt(e) for e in inner)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server the arguments describe (or, after ``record``, the recording
    proxy of ``_record``); returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["record"]:
        from ._record import record_main  # noqa: PLC0415

        return record_main(arguments[1:])
    parser = make_parser()
    with ExitStack() as stack:
        try:
            args = parser.parse_args(argv)
            plan = make_plan(parser, args)
            sink = open_transcript(args, stack)
        except SystemExit as exc:  # --help, --version, or a usage error already reported
            code = exc.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
        except MailSourceError as exc:
            error(f"{exc.path}: {option_terms(exc.reason)}")
            return EXIT_USAGE
        except CannotStart as exc:
            error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:  # Ctrl-C while reading a large mail source
            say("fakepop stopped (SIGINT)")
            return EXIT_OK
        try:
            return trio.run(_serve, args.host, args.port, plan, sink)
        except BaseException as exc:
            # Ctrl-C outside the signal receiver (while starting or stopping) lands here.
            if not _is_interrupt(exc):
                raise
            say("fakepop stopped (SIGINT)")
            return EXIT_OK
