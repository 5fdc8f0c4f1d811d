"""``python -m fakepop``: serve demo mailboxes, or your own, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import errno
import functools
import math
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TextIO

import trio

from . import __version__
from ._config import ServerConfig
from ._demo import demo_mailboxes
from ._loading import MailSourceError, read_eml_dir, read_maildir, read_mbox
from ._server import Pop3Server
from ._store import MailStore
from ._tls import TlsCertificates
from ._transcript import Entry, EntryKind, SessionRecord, Transcript
from .profiles import PROFILES, profile

__all__ = ["READY_PREFIX", "TranscriptFollower", "format_address", "main"]

#: The first line printed once the server listens is READY_PREFIX + "HOST:PORT".
READY_PREFIX = "fakepop listening on "

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Seconds between two looks at the transcript when writing it with --transcript.
TRANSCRIPT_INTERVAL = 0.2

#: The readers behind --mbox, --maildir and --eml-dir.
_READERS: dict[str, Callable[[str], dict[str, bytes]]] = {
    "mbox": read_mbox,
    "maildir": read_maildir,
    "eml-dir": read_eml_dir,
}

_EPILOG = f"""\
output:
  Once the server is listening, the first line on stdout is always

    {READY_PREFIX}HOST:PORT

  (an IPv6 HOST is in brackets, as in [::1]:1110), so a script can run
  "fakepop --port 0" and read the port it got from that line. Hints for
  humans follow it (each account with its password and message count); do
  not parse them.

mailboxes:
  Without --user, demo/demo holds four messages (plain text, dot-stuffing,
  UTF-8 with an encoded Subject, multipart with an attachment) and
  alice/wonderland holds one. With --user, only the accounts given are
  served, each filled from the --mbox, --maildir and --eml-dir sources
  named for it, in the order given (none: an empty mailbox), e.g.

    fakepop --user alice:secret --maildir alice=tests/data/alice \\
            --user bob:p:w --mbox bob=bob.mbox --eml-dir bob=more/

  A password is everything after the first ':' of NAME:PASSWORD. Maildir
  messages keep their unique names as UIDs and .eml files their names;
  mbox messages, and a message whose UID an earlier source of the same user
  already has, get uid000001, uid000002, ... An unreadable or malformed
  source stops fakepop before it listens, naming the file.

  Symbolic links are followed: PATH, a Maildir's new/ and cur/, and a
  message file may each be a link, and a linked message keeps the name of
  the link. No directory is read recursively, so a link cannot make fakepop
  go round in circles. A link that a source has to read but that leads to
  nothing, round a loop, to a directory or to a device stops fakepop, naming
  the link; in an --eml-dir only names ending in .eml are read, so other
  links there are ignored like any other file.

  Mail lives in memory only: messages deleted with DELE and QUIT are gone
  until the server restarts. Source files and directories are only read,
  never locked, changed or moved: a --transcript or --ca-file that is a
  source, is inside one or is one of its messages (by any path, symbolic
  or hard link) is refused before anything is written.

transcript:
  --transcript FILE creates (or empties) FILE and writes every session to it
  in telnet style as it happens (within {TRANSCRIPT_INTERVAL} s), passwords masked;
  --transcript - writes it to stdout after the hints. A session is held in
  memory only until it has ended and been written, so a fakepop left running
  does not grow. For example:

    --- session 1 from 127.0.0.1:47734 at 2024-06-03 09:00:00
    S: +OK fakepop POP3 server ready. <15598.1.17957535@localhost>
    C: USER alice
    S: +OK Send PASS for alice
       (state: AWAITING_PASS)
    C: PASS ****
    S: +OK alice's maildrop is locked and ready: 1 message (17 octets)
       (state: TRANSACTION)
    C: RETR 1
    S: +OK 17 octets   [3 more lines, 20 octets]
    C: QUIT
    S: +OK Logging out, 1 message deleted
       (state: CLOSED)
    --- session 1 (alice) ended by QUIT after 0.004 s, removed: uid000001

  "C:" is a line from the client, "S:" the status line of a reply (a
  multi-line reply's payload is only counted), "(...)" a state change or an
  event such as a fault. When sessions overlap, a line
  "--- session N (USER), continued" says whose lines follow. Sessions still
  open when fakepop stops end with "ended by server stopped".

exit status:
  0 when stopped with Ctrl-C (SIGINT) or SIGTERM; 1 if the server cannot
  listen (address in use, unknown host), a session failed inside the
  server, or writing the transcript failed while serving; 2 for bad
  arguments, an unreadable mail source or a transcript FILE that cannot
  be created.
"""


# -- argument types -------------------------------------------------------------------


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


def _user_name(name: str, what: str) -> str:
    # The rules of MailStore: POP3 sends the name as one argument of USER.
    if not name or any(c.isspace() or c == "\0" for c in name):
        raise argparse.ArgumentTypeError(
            f"invalid {what}: the user name must be non-empty, without spaces"
        )
    return name


def _account(text: str) -> tuple[str, str]:
    name, colon, password = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError(f"invalid account {text!r}: expected NAME:PASSWORD")
    _user_name(name, f"account {text!r}")
    if not password:
        raise argparse.ArgumentTypeError(
            f"invalid account {text!r}: the password is empty (POP3's PASS needs one)"
        )
    if any(c in password for c in "\r\n\0"):
        raise argparse.ArgumentTypeError(
            f"invalid account {name!r}: the password contains a line break or NUL"
        )
    return name, password


def _source(text: str) -> tuple[str, str]:
    name, equals, path = text.partition("=")
    if not equals or not path:
        raise argparse.ArgumentTypeError(f"invalid source {text!r}: expected NAME=PATH")
    return _user_name(name, f"source {text!r}"), path


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if math.isnan(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}: must be more than 0")
    return seconds


def _config_text(name: str) -> Callable[[str], str]:
    # Checked by ServerConfig itself, so the CLI accepts exactly what the library does.
    def check(text: str) -> str:
        try:
            options: dict[str, Any] = {name: text}
            ServerConfig(**options)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = name  # argparse names the type in some messages
    return check


class _AddSource(argparse.Action):
    # --mbox, --maildir and --eml-dir share one list, so sources keep their order.
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sources = list(getattr(namespace, self.dest) or [])
        name, path = values
        sources.append(_Source(self.const, name, path, f"{option_string} {name}={path}"))
        setattr(namespace, self.dest, sources)


@dataclass(frozen=True)
class _Source:
    kind: str  # a key of _READERS
    user: str
    path: str
    option: str  # as given, for messages


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fakepop",
        description=(
            "Run a fakepop POP3 server to try POP3 clients by hand: the built-in demo\n"
            "mailboxes, or accounts filled from mbox files, Maildirs and .eml files.\n"
            "Deletions happen in memory only; source files are never modified."
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

    mail = parser.add_argument_group("accounts and mail (instead of the demo mailboxes)")
    mail.add_argument(
        "--user",
        dest="accounts",
        metavar="NAME:PASSWORD",
        type=_account,
        action="append",
        default=[],
        help="serve this account (repeatable); the password may contain ':'",
    )
    for kind, what in (
        ("mbox", "an mbox file"),
        ("maildir", "a Maildir (new/ and cur/)"),
        ("eml-dir", "a directory of .eml files"),
    ):
        mail.add_argument(
            f"--{kind}",
            dest="sources",
            metavar="NAME=PATH",
            type=_source,
            action=_AddSource,
            const=kind,
            help=f"add the messages of {what} to NAME's mailbox (repeatable; read only)",
        )

    tls = parser.add_argument_group("TLS (throwaway certificates made at start-up)")
    tls.add_argument(
        "--tls",
        action="store_true",
        help="offer STLS on --port, with a certificate for localhost, 127.0.0.1 and ::1",
    )
    tls.add_argument(
        "--pop3s-port",
        type=_port,
        metavar="PORT",
        help="also serve POP3S (TLS from the first octet) on PORT; implies --tls "
        "(0 picks any free port)",
    )
    tls.add_argument(
        "--ca-file",
        metavar="PATH",
        help="write the CA certificate there as PEM, for curl --cacert or openssl "
        "-CAfile (needs --tls or --pop3s-port)",
    )

    options = parser.add_argument_group("server options")
    options.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="greet, advertise and word replies like this real server (the other "
        "options still apply on top)",
    )
    options.add_argument(
        "--autologout",
        metavar="SECONDS",
        type=_seconds,
        help="close a session after this long without a command, without deleting "
        "anything (default: 600)",
    )
    options.add_argument(
        "--no-apop",
        dest="apop",
        action="store_false",
        default=None,
        help="no APOP timestamp in the greeting, and APOP refused",
    )
    options.add_argument(
        "--no-utf8",
        dest="utf8",
        action="store_false",
        default=None,
        help="no UTF8/LANG (RFC 6856): send messages with raw UTF-8 headers to every "
        "client, as servers that predate RFC 6856 do (by default such a message needs "
        "the client's UTF8 command first)",
    )
    options.add_argument(
        "--hostname",
        metavar="NAME",
        type=_config_text("hostname"),
        help="name in the APOP timestamp <...@NAME> (default: localhost)",
    )
    options.add_argument(
        "--greeting",
        metavar="TEXT",
        type=_config_text("greeting"),
        help="greeting text after +OK (default: 'fakepop POP3 server ready.')",
    )
    options.add_argument(
        "--transcript",
        metavar="FILE",
        help="write every session to FILE as it happens, passwords masked "
        "('-': stdout; format below)",
    )
    return parser


# -- what the arguments ask for -------------------------------------------------------


@dataclass
class _Plan:
    store: MailStore
    config: ServerConfig
    demo: bool  # the demo mailboxes, as no --user was given
    tls: TlsCertificates | None = None
    pop3s_port: int | None = None


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Plan:
    """Check the arguments against each other and read the mail (MailSourceError)."""
    accounts: dict[str, str] = {}
    for name, password in args.accounts:
        if name in accounts:
            parser.error(f"argument --user: {name!r} is given twice")
        accounts[name] = password
    sources: list[_Source] = args.sources or []
    for source in sources:
        if source.user not in accounts:
            parser.error(
                f"argument {source.option}: there is no --user {source.user} "
                f"(give --user {source.user}:PASSWORD)"
            )
    settings: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("autologout", "hostname", "greeting", "apop", "utf8")
        if getattr(args, name) is not None
    }
    try:
        config = profile(args.profile, **settings) if args.profile else ServerConfig(**settings)
    except ValueError as exc:  # each option was checked alone; this is a safety net
        parser.error(str(exc))
    use_tls = args.tls or args.pop3s_port is not None
    if args.ca_file is not None and not use_tls:
        parser.error("argument --ca-file: there is no TLS to trust (add --tls or --pop3s-port)")
    _check_outputs(parser, args, sources)  # before anything is written
    tls = TlsCertificates() if use_tls else None
    if tls is not None and args.ca_file is not None:
        try:
            tls.write_ca_pem(args.ca_file)
        except OSError as exc:
            parser.error(f"argument --ca-file: cannot write {args.ca_file}: {exc.strerror}")
    if not accounts:
        return _Plan(MailStore(demo_mailboxes()), config, True, tls, args.pop3s_port)

    store = MailStore()
    for name, password in accounts.items():
        store.add_user(name, password)
    for source in sources:
        taken = set(store[source.user].uids)
        for uid, data in _READERS[source.kind](source.path).items():
            # mbox UIDs are only positions; named messages keep their names unless an
            # earlier source of this user has the name already.
            named = source.kind != "mbox" and uid not in taken
            taken.add(store.deliver(source.user, data, uid=uid if named else None).uid)
    return _Plan(store, config, False, tls, args.pop3s_port)


def _check_outputs(
    parser: argparse.ArgumentParser, args: argparse.Namespace, sources: list[_Source]
) -> None:
    # The files fakepop writes must never land on the mail it serves.
    for option, output in (("--ca-file", args.ca_file), ("--transcript", args.transcript)):
        if output is None or output == "-":
            continue
        for source in sources:
            clash = _clash(output, source)
            if clash:
                parser.error(
                    f"argument {option}: {output} {clash} of {source.option}; "
                    "fakepop never writes to a mail source"
                )


def _clash(output: str, source: _Source) -> str:
    """How writing ``output`` would change ``source`` ("is the mail source", ...), or ""."""
    # Real paths see through symlinks and "..", even to a file not created yet;
    # samefile sees hard links and the files a directory's symlinks point at.
    target = os.path.realpath(output)
    root = os.path.realpath(source.path)
    if target == root or _same_file(output, source.path):
        return "is the mail source"
    if not os.path.isdir(root):
        return ""
    directories = [root]
    if source.kind == "maildir":
        directories += [os.path.realpath(os.path.join(root, sub)) for sub in ("new", "cur")]
    for directory in directories:
        if os.path.commonpath([target, directory]) == directory:
            return "is inside the mail source"
    if os.path.exists(output):
        for directory in directories[1:] or directories:
            try:
                names = os.listdir(directory)
            except OSError:
                continue  # not there (or unreadable): reading the source will say so
            for name in names:
                if _same_file(output, os.path.join(directory, name)):
                    return "is a message file"
    return ""


# -- the transcript, as it happens ----------------------------------------------------


def _one_line(text: str) -> str:
    # A transcript line stays one line, whatever a client or an error message held.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _entry_line(entry: Entry) -> str:
    # The same layout as SessionRecord.render().
    if entry.kind is EntryKind.CLIENT:
        return f"C: {_one_line(entry.text)}"
    if entry.kind is EntryKind.SERVER:
        more = ""
        if entry.lines or entry.octets:
            more = f"   [{entry.lines} more lines, {entry.octets} octets]"
        return f"S: {_one_line(entry.text)}{more}"
    if entry.kind is EntryKind.STATE:
        return f"   (state: {entry.text})"
    return f"   ({_one_line(entry.text)})"


class TranscriptFollower:
    """Turns a growing :class:`~fakepop.Transcript` into appended telnet-style lines.

    Each :meth:`flush` writes what was recorded since the last one: a header when a
    session first appears, its new lines (passwords masked), and a closing line when
    it has ended. A session written in full is taken out of the transcript, which so
    holds only open sessions and does not grow however long the server runs. Call it
    from the server's Trio thread, or while the server is stopped.
    """

    def __init__(self, transcript: Transcript, write: Callable[[str], None]) -> None:
        self._transcript = transcript
        self._write = write
        self._written: dict[int, int] = {}  # session id -> entries written so far
        self._closed: set[int] = set()  # written completely, still in the transcript
        self._last: int | None = None  # the session whose line was written last

    def flush(self) -> None:
        # A session that ends after pop_finished() is written in full from
        # ``sessions`` now, and taken out by the next flush.
        finished = self._transcript.pop_finished()
        out: list[str] = []
        for record in sorted([*finished, *self._transcript.sessions], key=_session_id):
            if record.id not in self._closed:
                self._follow(record, out)
        for record in finished:
            self._closed.discard(record.id)
        if out:
            self._write("\n".join(out) + "\n")

    def _follow(self, record: SessionRecord, out: list[str]) -> None:
        ended = record.ended_by is not None
        entries = record.entries
        if ended:
            entries = entries[:-1]  # the "ended: ..." entry; the closing line says it
        done = self._written.get(record.id)
        if done is None:
            peer = f" from {record.peer[0]}:{record.peer[1]}" if record.peer else ""
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started))
            out.append(f"--- session {record.id}{peer} at {at}")
            done = 0
        elif len(entries) > done and self._last != record.id:
            out.append(f"--- session {record.id}{_who(record)}, continued")
        out.extend(_entry_line(entry) for entry in entries[done:])
        self._written[record.id] = len(entries)
        self._last = record.id
        if ended:
            assert record.ended_by is not None
            lasted = f" after {record.duration:.3f} s" if record.duration is not None else ""
            removed = f", removed: {' '.join(record.removed)}" if record.removed else ""
            out.append(
                f"--- session {record.id}{_who(record)} ended by "
                f"{record.ended_by.value}{lasted}{removed}"
            )
            del self._written[record.id]
            self._closed.add(record.id)


def _session_id(record: SessionRecord) -> int:
    return record.id


def _who(record: SessionRecord) -> str:
    return f" ({record.user})" if record.user else ""


class _Sink:
    # Where the transcript goes; remembers the first write error instead of raising it
    # in the middle of the server's Trio run.
    def __init__(self, file: TextIO | None, name: str) -> None:
        self.file = file  # None: stdout
        self.name = name
        self.failed = False

    def write(self, text: str) -> None:
        if self.failed:
            return
        if self.file is None:
            _say(text.rstrip("\n"))
            return
        try:
            self.file.write(text)
            self.file.flush()
        except OSError as exc:
            self.failed = True
            _error(f"{self.name}: cannot write the transcript: {exc.strerror or exc}")


async def _follow(follower: TranscriptFollower) -> None:
    while True:
        follower.flush()
        await trio.sleep(TRANSCRIPT_INTERVAL)


# -- output ---------------------------------------------------------------------------


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


def _announce(server: Pop3Server, plan: _Plan, transcript: str | None) -> None:
    host, port = server.address
    _say(READY_PREFIX + format_address(host, port))
    for other_host, other_port in server.addresses[1:]:
        _say(f"  also listening on {format_address(other_host, other_port)}")
    store = server.store
    users = store.users
    for n, user in enumerate(users):
        label = "accounts:" if n == 0 else ""
        _say(f"  {label:<10}{user}/{store.password_of(user)} ({_count(server, user)})")
    if plan.tls is not None:
        _say(f"  tls:      STLS on {format_address(host, port)}")
        if plan.pop3s_port is not None:
            _say(f"            POP3S on {format_address(*server.pop3s_address)}")
    if transcript is not None:
        _say(f"  transcript: {'stdout' if transcript == '-' else transcript}")
    # An unspecified address accepts connections on loopback too; suggest that.
    client_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url_host = format_address(client_host, port)
    glob_off = "-g " if ":" in client_host else ""  # curl would read [ ] as a glob
    user = users[0]
    password = store.password_of(user) or ""
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    url = f"pop3://{quoted}@{url_host}"
    _say(f"  try:      telnet {client_host} {port}")
    _say(f"            curl {glob_off}{url}/      (list messages)")
    _say(f"            curl {glob_off}{url}/1     (fetch message 1)")
    unchanged = "" if plan.demo else " (source files are never changed)"
    _say(f"  Deletions happen in memory only{unchanged}. Press Ctrl-C to stop.")


def _count(server: Pop3Server, user: str) -> str:
    count = len(server.store[user])
    return f"{count} message{'' if count == 1 else 's'}"


# -- running --------------------------------------------------------------------------


async def _serve(host: str, port: int, plan: _Plan, sink: _Sink | None) -> int:
    server = Pop3Server(
        plan.store,
        config=plan.config,
        record_transcript=sink is not None,
        ssl_context=None if plan.tls is None else plan.tls.server_context(),
    )
    follower = None if sink is None else TranscriptFollower(server.transcript, sink.write)
    stopped_by = None
    try:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                try:
                    await nursery.start(
                        functools.partial(
                            server.serve, host=host, port=port, pop3s_port=plan.pop3s_port
                        )
                    )
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    if exc.errno == errno.EADDRINUSE:
                        reason += "; is another server running? (--port 0 picks a free port)"
                    _error(f"cannot listen on {format_address(host, port)}: {reason}")
                    return EXIT_FAILURE
                _announce(server, plan, None if sink is None else sink.name)
                if follower is not None:
                    nursery.start_soon(_follow, follower)
                async for signum in signals:
                    stopped_by = signal.Signals(signum).name
                    break
                nursery.cancel_scope.cancel()
    finally:
        # Every session has ended now: write how, even when stopping went wrong.
        if follower is not None:
            follower.flush()
    _say(f"fakepop stopped ({stopped_by})")
    if server.errors:
        _error(f"{len(server.errors)} session(s) failed inside the server (logged above)")
        return EXIT_FAILURE
    if sink is not None and sink.failed:
        return EXIT_FAILURE
    return EXIT_OK


def _cli_terms(reason: str) -> str:
    # MailSourceError's hints name the library's readers; here the options do the job.
    for function, option in (
        ("read_mbox()", "--mbox"),
        ("read_maildir()", "--maildir"),
        ("read_eml_dir()", "--eml-dir"),
    ):
        reason = reason.replace(function, option)
    return reason


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_interrupt(exc: BaseException) -> bool:
    # KeyboardInterrupt, possibly wrapped in (nested) exception groups by trio.
    if isinstance(exc, KeyboardInterrupt):
        return True
    inner = getattr(exc, "exceptions", None)
    return isinstance(inner, tuple) and bool(inner) and all(_is_interrupt(e) for e in inner)


class _CannotStart(Exception):
    """Reported as ``fakepop: error: <message>``, exit status 2."""


def _open_transcript(args: argparse.Namespace, stack: ExitStack) -> _Sink | None:
    if args.transcript is None:
        return None
    if args.transcript == "-":
        return _Sink(None, "-")
    try:
        file = stack.enter_context(open(args.transcript, "w", encoding="utf-8"))  # noqa: SIM115
    except OSError as exc:
        raise _CannotStart(
            f"{args.transcript}: cannot write the transcript: {exc.strerror or exc}"
        ) from None
    return _Sink(file, args.transcript)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server the arguments describe; returns the exit status."""
    parser = _parser()
    with ExitStack() as stack:
        try:
            args = parser.parse_args(argv)
            plan = _plan(parser, args)
            sink = _open_transcript(args, stack)
        except SystemExit as exc:  # --help, --version, or a usage error already reported
            code = exc.code
            return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
        except MailSourceError as exc:
            _error(f"{exc.path}: {_cli_terms(exc.reason)}")
            return EXIT_USAGE
        except _CannotStart as exc:
            _error(str(exc))
            return EXIT_USAGE
        except KeyboardInterrupt:  # Ctrl-C while reading a large mail source
            _say("fakepop stopped (SIGINT)")
            return EXIT_OK
        try:
            return trio.run(_serve, args.host, args.port, plan, sink)
        except BaseException as exc:
            # Ctrl-C outside the signal receiver (while starting or stopping) lands here.
            if not _is_interrupt(exc):
                raise
            _say("fakepop stopped (SIGINT)")
            return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
