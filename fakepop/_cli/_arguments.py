"""The command line: the options, their --help, and the plan they add up to."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import __version__
from .._config import ServerConfig
from .._demo import demo_mailboxes
from .._store import MailStore
from .._tls import TlsCertificates
from ..profiles import PROFILES, profile
from ._console import READY_PREFIX
from ._follower import TRANSCRIPT_INTERVAL
from ._sources import Source, clash_with_source, fill_store

__all__ = ["Plan", "make_parser", "make_plan"]

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
  served. Each account is filled from the --mbox, --maildir, --eml-dir and
  --corpus sources named for it, in the order given (none: an empty
  mailbox; without --user, sources name the demo accounts), e.g.

    fakepop --user alice:secret --maildir alice=tests/data/alice \\
            --user bob:p:w --mbox bob=bob.mbox --eml-dir bob=more/
    fakepop --corpus alice

  --corpus NAME adds fakepop's corpus of tricky messages (fakepop.corpus),
  each made for one trap of mail importers: a line that is only ".", a
  message of 0 octets, a koi8-r Subject, a multipart without a text part, a
  NUL byte, a broken boundary, ... Their UIDs are the names of the traps.
  The one with raw UTF-8 headers is sent only after the client's UTF8
  command.

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


def _corpus_user(text: str) -> tuple[str, str]:
    # A source with no path: the corpus is built in, not read from a file.
    return _user_name(text, f"account {text!r}"), ""


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
        shown = f"{option_string} {name}={path}" if path else f"{option_string} {name}"
        sources.append(Source(self.const, name, path, shown))
        setattr(namespace, self.dest, sources)


def make_parser() -> argparse.ArgumentParser:
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
    mail.add_argument(
        "--corpus",
        dest="sources",
        metavar="NAME",
        type=_corpus_user,
        action=_AddSource,
        const="corpus",
        help="add fakepop's corpus of tricky messages to NAME's mailbox, each with "
        "the name of its trap as UID (repeatable; see below)",
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
        help="no UTF8/LANG (RFC 6856) and credentials compared octet for octet, as "
        "servers that predate RFC 6856 do (messages with raw UTF-8 headers are sent "
        "as they are either way, as real servers send them)",
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
class Plan:
    store: MailStore
    config: ServerConfig
    demo: bool  # the demo mailboxes, as no --user was given
    tls: TlsCertificates | None = None
    pop3s_port: int | None = None


def make_plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Plan:
    """Check the arguments against each other and read the mail (MailSourceError)."""
    accounts: dict[str, str] = {}
    for name, password in args.accounts:
        if name in accounts:
            parser.error(f"argument --user: {name!r} is given twice")
        accounts[name] = password
    demo = not accounts
    # Sources fill the accounts given, or without any the demo accounts.
    known = list(demo_mailboxes() if demo else accounts)
    sources: list[Source] = args.sources or []
    for source in sources:
        if source.user not in known:
            also = f", or name a demo account: {', '.join(known)}" if demo else ""
            parser.error(
                f"argument {source.option}: there is no --user {source.user} "
                f"(give --user {source.user}:PASSWORD{also})"
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
    store = MailStore(demo_mailboxes() if demo else None)
    for name, password in accounts.items():
        store.add_user(name, password)
    fill_store(store, sources)
    return Plan(store, config, demo, tls, args.pop3s_port)


def _check_outputs(
    parser: argparse.ArgumentParser, args: argparse.Namespace, sources: list[Source]
) -> None:
    # The files fakepop writes must never land on the mail it serves.
    for option, output in (("--ca-file", args.ca_file), ("--transcript", args.transcript)):
        if output is None or output == "-":
            continue
        for source in sources:
            clash = clash_with_source(output, source)
            if clash:
                parser.error(
                    f"argument {option}: {output} {clash} of {source.option}; "
                    "fakepop never writes to a mail source"
                )
