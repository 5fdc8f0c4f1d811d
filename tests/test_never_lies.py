"""fakepop's promise, stated as a property over random sessions with random faults.

Whatever a client sends (non-ASCII keywords and arguments, over-long lines, SASL
exchanges with junk or cancelled responses, APOP with broken digests, input split into
fragments or pipelined) and whatever faults from ``fakepop.faults`` are armed (scoped
with ``.on()``, ``.nth()``, ``.once()``, ...), the server never lies:

- nothing fails inside it: ``server.errors`` stays empty and ``check()`` raises nothing;
- every status line a client receives (greeting, ``+OK``/``-ERR`` lines, SASL ``+``
  challenges) is at most 512 octets, CRLF included (RFC 1939 section 3, RFC 2449
  section 4); faults that deliberately break replies (``overlong_line``) are not armed;
- no password, SASL response or bearer token appears in ``transcript.render()``,
  ``to_json()``, ``str(transcript)`` or ``commands()`` (RFC 1939 section 13, RFC 5034
  section 4); only ``show_secrets=True`` shows them;
- a login answered ``+OK`` had the right credentials, and no other open session held
  that mailbox (RFC 1939 section 8: the maildrop lock);
- the store matches a model: mail goes only at UPDATE (RFC 1939 section 6), and exactly
  the messages whose DELE was answered ``+OK``. UPDATE runs iff the QUIT reached the
  server in TRANSACTION and no COMMAND-stage fault refused or closed it; a REPLY-stage
  fault (``close_after``, ``cut_payload``) acts after UPDATE, so the mail is gone even
  if the client read less than the whole ``+OK``. A session that ends any other way
  deletes nothing; once every session has ended no mailbox is locked.

The server runs over trio memory streams (``Pop3Server.handle_stream``) under a
``MockClock`` that jumps ahead whenever every task waits, so latency and slicing faults
cost no real time and a run is deterministic. One driver plays every client, one
exchange at a time: the faults that fire during an exchange are that session's.

    python -m pytest tests/test_never_lies.py          # CI: 300 + 150 examples, ~6 s
    FAKEPOP_NEVER_LIES_EXAMPLES=5000 python -m pytest tests/test_never_lies.py  # long run
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio
import trio.testing
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fakepop import Pop3Server, faults
from fakepop.faults import Fault, FaultContext

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

EXAMPLES = int(os.environ.get("FAKEPOP_NEVER_LIES_EXAMPLES", "300"))
STEPS = int(os.environ.get("FAKEPOP_NEVER_LIES_STEPS", "30"))
#: Virtual seconds any wait for the server may take before the test fails (MockClock).
GUARD = 3600.0
#: RFC 1939 section 3, RFC 2449 section 4: a status line, CRLF included.
STATUS_LIMIT = 512

# Every secret carries an ASCII core that nothing else in a transcript can contain, so
# a leak is found even when the rest of it was replaced ("?") or escaped (JSON).
PASSWORDS = {
    "alice": "Sesame-kQ7xZ2mB",
    "bob": "hunter 2 \u00dcn\u00efcode-rP4wV8nD",  # a space and non-ASCII letters
    "zo\u00eb": "\u00e7a-va-mN3bT6yL",
}
CORES = {"alice": "kQ7xZ2mB", "bob": "rP4wV8nD", "zo\u00eb": "mN3bT6yL"}
MESSAGES = {
    "alice": {f"a{i}": f"Subject: a{i}\n\nbody of a{i}\n.dot line\n" for i in range(1, 5)},
    "bob": {f"b{i}": f"Subject: b{i}\n\nbody of b{i}\n" for i in range(1, 3)},
    "zo\u00eb": {"z1": "Subject: z1\n\nbody of z1\n"},
}
USERS = list(PASSWORDS)
KEYWORDS = [
    "USER",
    "PASS",
    "APOP",
    "AUTH",
    "QUIT",
    "STAT",
    "LIST",
    "UIDL",
    "RETR",
    "TOP",
    "DELE",
    "RSET",
    "NOOP",
    "CAPA",
]
LOGIN_METHODS = ["USER", "APOP", "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]
# Keywords of multi-line replies (to the form without an argument for LIST, UIDL, AUTH).
MULTILINE = {"CAPA", "RETR", "TOP"}
MULTILINE_WITHOUT_ARGUMENT = {"LIST", "UIDL", "AUTH", "LANG"}
# Non-ASCII look-alikes: Unicode case folding would make them keywords; RFC 1939
# section 3 keywords are ASCII, so each must be an unknown command.
LOOKALIKES = [
    "\u017ftat",
    "qu\u0131t",
    "\u017fTAT",
    "d\u0115le",
    "R\u0130TR",
    "p\u0430ss",
    "US\u0395R",
    "\u00e9",
]
WORDS = ["1", "2", "3", "9", "0", "01", "-1", "\u00e9", "\u0661", "x y", "", "99999999999999"]


def parse(line: bytes) -> tuple[str, str | None]:
    """Keyword and argument as the server parses them (ASCII keywords only)."""
    text = line.decode("utf-8", "surrogateescape")
    keyword, space, argument = text.partition(" ")
    return (keyword.upper() if keyword.isascii() else keyword), (argument if space else None)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


# == faults ===============================================================================


@dataclass
class HookCalls:
    """What the drawn hooks answered, so that an exchange knows a refusal happened."""

    refused: int = 0


def _scoped(draw: st.DrawFn, fault: Fault) -> Fault:
    if draw(st.booleans()):
        fault = fault.nth(draw(st.integers(1, 4)))
    how = draw(st.sampled_from(["always", "once", "times"]))
    if how == "once":
        fault = fault.once()
    elif how == "times":
        fault = fault.times(draw(st.integers(1, 3)))
    if draw(st.integers(0, 5)) == 0:
        fault = fault.in_session(draw(st.integers(1, 3)))
    if draw(st.integers(0, 5)) == 0:
        fault = fault.for_user(draw(st.sampled_from(USERS)))
    return fault


@st.composite
def fault_strategy(draw: st.DrawFn, calls: HookCalls) -> Fault:
    # Often aimed at the commands whose faults matter most: QUIT (before or after
    # UPDATE), the logins and DELE.
    keywords = draw(
        st.one_of(
            st.sampled_from([["QUIT"], ["QUIT"], ["PASS"], ["AUTH"], ["DELE"], ["RETR", "QUIT"]]),
            st.lists(st.sampled_from(KEYWORDS), max_size=2, unique=True),
        )
    )
    kind = draw(
        st.sampled_from(
            [
                "error",
                "close_before",
                "close_after",
                "cut_payload",
                "latency",
                "slice",
                "lock_failure",
                "auth_failure",
                "garbage_line",
                "hook",
            ]
        )
    )
    fault: Fault
    if kind == "error":
        code = draw(st.sampled_from([None, "SYS/TEMP", "IN-USE"]))
        fault = faults.error(*keywords, code=code)
    elif kind == "close_before":
        fault = faults.close_before(*keywords, reset=draw(st.booleans()))
    elif kind == "close_after":
        fault = faults.close_after(*keywords)
    elif kind == "cut_payload":
        # Keywords always given: the default (RETR, TOP) is one choice among many.
        cut_at = st.sampled_from(["RETR", "TOP", "QUIT", "PASS", "LIST", "DELE"])
        fault = faults.cut_payload(
            *(keywords or [draw(cut_at)]), after_bytes=draw(st.integers(0, 40))
        )
    elif kind == "latency":
        fault = faults.latency(
            draw(st.sampled_from([0.0, 0.001, 0.01])),
            jitter=draw(st.sampled_from([0.0, 0.005])),
            seed=draw(st.integers(0, 3)),
        )
        if keywords:
            fault = fault.on(*keywords)
    elif kind == "slice":
        fault = faults.slice_replies(
            size=draw(st.integers(1, 9)), pause=draw(st.sampled_from([0.0, 0.0001]))
        )
        if keywords:
            fault = fault.on(*keywords)
    elif kind in ("lock_failure", "auth_failure"):
        fault = faults.lock_failure() if kind == "lock_failure" else faults.auth_failure()
        methods = draw(st.lists(st.sampled_from(LOGIN_METHODS), max_size=2, unique=True))
        if methods:
            fault = fault.on(*methods)
    elif kind == "garbage_line":
        # Only where a broken status line changes nothing the client must track.
        fault = faults.garbage_line(
            *draw(st.lists(st.sampled_from(["NOOP", "STAT"]), min_size=1, unique=True))
        )
    else:
        answers = draw(st.lists(st.sampled_from([None, "-ERR x"]), min_size=1, max_size=4))

        def answer(context: FaultContext) -> str | None:
            reply = answers[calls.refused % len(answers)]
            if reply is not None:
                calls.refused += 1
            return reply

        fault = faults.hook(answer, *keywords)
    return _scoped(draw, fault)


# == the client and the model ===============================================================


@dataclass
class Client:
    """One connection, as its client sees it."""

    number: int
    stream: trio.abc.Stream
    buffer: bytearray = field(default_factory=bytearray)
    eof: bool = False
    closed: bool = False  # the connection is over (either side ended it)
    timestamp: str | None = None  # the APOP timestamp from the greeting
    pending: str | None = None  # the last name USER was accepted for
    user: str | None = None  # set in TRANSACTION
    snapshot: list[str] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)
    removed: list[str] = field(default_factory=list)

    async def send(self, data: bytes, cuts: list[int]) -> None:
        """Send ``data`` in pieces cut at ``cuts`` (split input)."""
        edges = sorted({c for c in cuts if 0 < c < len(data)})
        try:
            for start, end in zip([0, *edges], [*edges, len(data)], strict=True):
                await self.stream.send_all(data[start:end])
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the server closed first; reading tells the rest

    async def line(self) -> bytes:
        """The next line with its LF, or what arrived before the server closed."""
        with trio.fail_after(GUARD):
            while (end := self.buffer.find(b"\n")) < 0 and not self.eof:
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if not data:
                    self.eof = True
                self.buffer += data
        if end < 0:
            end = len(self.buffer) - 1
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    async def drain(self) -> bytes:
        """Everything until the server closes."""
        rest = b""
        while not (self.eof and not self.buffer):
            rest += await self.line()
        return rest


@dataclass
class Run:
    server: Pop3Server
    calls: HookCalls
    model: dict[str, list[str]] = field(
        default_factory=lambda: {user: list(box) for user, box in MESSAGES.items()}
    )
    clients: list[Client] = field(default_factory=list)
    secrets: set[str] = field(default_factory=lambda: set(PASSWORDS.values()))
    counter: int = 0

    def core(self) -> str:
        """A fresh ASCII core for a made-up secret."""
        self.counter += 1
        return "Kq" + hashlib.sha1(b"%d" % self.counter).hexdigest()[:10]

    def closes(self) -> int:
        """How often faults that end the connection (close_before, close_after,
        cut_payload) have fired so far."""
        return sum(
            armed.fired
            for armed in self.server.faults
            if armed.fault.description.startswith(("close", "reset"))
        )

    def stops(self) -> int:
        """How often COMMAND-stage faults kept a command from running: close_before,
        error, and a hook's -ERR."""
        return self.calls.refused + sum(
            armed.fired
            for armed in self.server.faults
            if armed.fault.description.startswith(("close before", "reset before", "-ERR"))
        )

    async def status(self, client: Client) -> bytes:
        line = await client.line()
        assert len(line) <= STATUS_LIMIT, (len(line), line[:80])
        return line

    def holders(self, user: str, but: Client) -> list[Client]:
        return [c for c in self.clients if c is not but and not c.closed and c.user == user]

    def logged_in(self, client: Client, user: str, correct: bool, line: bytes) -> None:
        """The server answered +OK to a login."""
        assert correct, f"+OK to a login with wrong credentials: {line!r}"
        assert client.user is None, f"+OK to a second login in TRANSACTION: {line!r}"
        assert not self.holders(user, client), f"{user}'s mailbox was locked, yet +OK"
        event("login +OK")
        client.user = user
        client.pending = None
        client.snapshot = list(self.model[user])
        client.marked = set()

    def check_store(self) -> None:
        for user, uids in self.model.items():
            assert self.server.store[user].uids == uids, user


# == what clients send =====================================================================


@st.composite
def secret_text(draw: st.DrawFn, core: str, *, long: bool = False) -> str:
    """A made-up secret around ``core``: spaces, non-ASCII, and over-long ones."""
    before = draw(st.sampled_from(["", "\u00e9", "p w ", "\u017f", "\u0131-"]))
    after = draw(st.sampled_from(["", "\u20ac", " ", "!x"]))
    padding = "z" * draw(st.integers(260, 600)) if long else ""
    return before + core + padding + after


@st.composite
def plain_line(draw: st.DrawFn, run: Run, client: Client) -> bytes:  # noqa: PLR0912
    """One command line that is not a valid QUIT or AUTH (those have their own steps)."""
    choice = draw(st.integers(0, 14))
    if choice <= 4:
        keyword = draw(
            st.sampled_from(
                [
                    "STAT",
                    "LIST",
                    "UIDL",
                    "RETR",
                    "TOP",
                    "DELE",
                    "RSET",
                    "NOOP",
                    "CAPA",
                    "DELE",
                    "RETR",
                ]
            )
        )
        arguments = draw(st.lists(st.sampled_from(WORDS), max_size=2))
        if keyword in ("DELE", "RETR", "LIST", "UIDL") and draw(st.booleans()):
            arguments = [str(draw(st.integers(1, 5)))]
        elif keyword == "TOP" and draw(st.booleans()):
            arguments = [str(draw(st.integers(1, 5))), str(draw(st.integers(0, 3)))]
        if draw(st.integers(0, 4)) == 0:
            keyword = keyword.lower()
        text = " ".join([keyword, *arguments])
    elif choice == 5:
        text = draw(st.sampled_from(LOOKALIKES)) + draw(st.sampled_from(["", " 1", " \u00e9"]))
    elif choice == 6:
        text = "USER " + draw(st.sampled_from([*USERS, "mallory", "\u00e9", "a b", ""]))
    elif choice == 7:
        password = draw(st.sampled_from([*PASSWORDS.values(), None]))
        if password is None:
            password = draw(secret_text(run.core(), long=draw(st.booleans())))
        run.secrets.add(password)
        text = draw(st.sampled_from(["PASS ", "pass ", "Pass "])) + password
    elif choice == 8:
        user = draw(st.sampled_from([*USERS, "mallory"]))
        text = f"APOP {user} {draw(apop_digest(client, user))}"
    elif choice == 9:
        text = draw(
            st.sampled_from(
                [
                    "",
                    " ",
                    "NOOP ",
                    "STAT\x00",
                    "X" * 300,
                    "NOOP" + " " * 260,
                    "\u00e9" * 200,
                    "TOP 1",
                    "LANG",
                    "QUIT now",
                    "UTF8",
                    "STLS",
                    "AUTH",
                ]
            )
        )
    elif choice == 10:
        # An over-long AUTH line: the initial response is a secret (RFC 5034 section 4).
        token = draw(secret_text(run.core(), long=True))
        run.secrets.add(token)
        user = draw(st.sampled_from(USERS))
        response = b64(f"user={user}\x01auth=Bearer {token}\x01\x01")
        run.secrets.add(response)
        text = f"AUTH XOAUTH2 {response}"
    elif choice == 14:
        # Octets that are not UTF-8, bare CRs inside a line, a password that is not
        # UTF-8 (RFC 6856 section 2.2: refused, and still a secret).
        core = run.core()
        run.secrets.add(core)
        raw = draw(
            st.sampled_from(
                [
                    b"\xffSTAT",
                    b"STAT \xfe",
                    b"NOOP\rSTAT",
                    b"\r",
                    b"\xc3",
                    b"PASS \xff" + core.encode(),
                ]
            )
        )
        return raw + draw(st.sampled_from([b"\r\n", b"\n"]))
    else:
        text = draw(
            st.sampled_from(
                ["STAT", "NOOP", "RSET", "LIST", "UIDL", "DELE 1", "DELE 2", "RETR 1", "TOP 2 1"]
            )
        )
    ending = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
    return text.encode("utf-8") + ending


@st.composite
def apop_digest(draw: st.DrawFn, client: Client, user: str) -> str:
    right = ""
    if client.timestamp is not None and user in PASSWORDS:
        right = hashlib.md5(
            (client.timestamp + PASSWORDS[user]).encode(), usedforsecurity=False
        ).hexdigest()
    return draw(
        st.sampled_from(
            [
                right or "0" * 32,
                (right or "0" * 32).upper(),
                "0" * 32,
                "\u00e9" * 32,
                "g" * 32,
                "abc",
                "\u0661" * 32,
            ]
        )
    )


def apop_right(client: Client, line: bytes) -> bool:
    _, argument = parse(line.rstrip(b"\r\n"))
    user, _, digest = (argument or "").partition(" ")
    if client.timestamp is None or user not in PASSWORDS:
        return False
    secret = (client.timestamp + PASSWORDS[user]).encode()
    good = hashlib.md5(secret, usedforsecurity=False).hexdigest()
    return digest.lower() == good


# == the exchanges =========================================================================


async def replies(  # noqa: PLR0912 - one branch per command a reply changes the model for
    run: Run, client: Client, lines: list[bytes], cuts: list[int]
) -> None:
    """Send ``lines`` (pipelined, cut into pieces) and read a reply to each in order."""
    before = run.closes()
    await client.send(b"".join(lines), cuts)
    for line in lines:
        status = await run.status(client)
        if not status.endswith(b"\n"):
            client.closed = True
            break
        keyword, argument = parse(line.rstrip(b"\r\n"))
        ok = status.startswith(b"+OK")
        if ok and (
            keyword in MULTILINE or (keyword in MULTILINE_WITHOUT_ARGUMENT and argument is None)
        ):
            while (data := await client.line()) != b".\r\n":
                if not data.endswith(b"\n"):
                    client.closed = True
                    break
            if client.closed:
                break
        if keyword == "USER" and ok:
            client.pending = argument
        elif keyword == "PASS" and ok:
            user = client.pending or ""
            run.logged_in(client, user, PASSWORDS.get(user) == argument, line)
        elif keyword == "APOP" and ok:
            run.logged_in(client, (argument or "").split(" ")[0], apop_right(client, line), line)
        elif keyword == "DELE" and ok:
            assert client.user is not None, status
            number = int(argument or "0")
            assert 1 <= number <= len(client.snapshot), status
            assert number not in client.marked, f"DELE {number} twice answered +OK"
            client.marked.add(number)
        elif keyword == "RSET" and ok:
            client.marked.clear()
        else:
            # Only NOOP and STAT may get the garbage_line fault's broken status line.
            assert ok or status.startswith(b"-ERR") or keyword in ("NOOP", "STAT"), status
    if run.closes() > before:
        client.closed = True
    if client.closed:
        await finish(run, client)


async def finish(run: Run, client: Client) -> None:
    """The server ended the session: wait until it has closed; it holds no lock."""
    client.closed = True
    await client.drain()
    if client.user is not None:
        assert not run.server.store[client.user].locked, f"{client.user}'s lock outlived it"
    run.check_store()


async def quit_session(run: Run, client: Client, text: bytes, cuts: list[int]) -> None:
    """QUIT, alone: did UPDATE run? Decided from what the client read, and for an empty
    read (the connection closed with no octet of the reply) from whether a COMMAND-stage
    fault stopped it: a cut_payload may cut a refusal's -ERR to nothing, too."""
    stops = run.stops()
    await client.send(text, cuts)
    status = await run.status(client)
    if status:
        executed = status.startswith(b"+")
        assert status[:1] in (b"+", b"-"), status
    else:
        executed = run.stops() == stops
    if client.user is not None:
        cut = "" if status.endswith(b"\n") else ", reply cut"
        event(f"QUIT in TRANSACTION: UPDATE {'ran' if executed else 'did not run'}{cut}")
    if client.user is not None and executed:
        doomed = {client.snapshot[n - 1] for n in client.marked}
        client.removed = [uid for uid in client.snapshot if uid in doomed]
        run.model[client.user] = [u for u in run.model[client.user] if u not in doomed]
    rest = await client.drain()
    assert rest == b"", f"octets after the QUIT reply: {rest!r}"
    await finish(run, client)


async def sasl(run: Run, client: Client, data: st.DataObject) -> None:  # noqa: PLR0912
    """AUTH with a mechanism, then responses as long as the server challenges."""
    draw = data.draw
    mechanism = draw(
        st.sampled_from(
            ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "plain", "PL\u0410IN", "CR\u0100M-MD5"]
        )
    )
    user = draw(st.sampled_from([*USERS, "mallory", "v" * 250]))  # PLAIN: 255 at most
    right = draw(st.booleans())
    password = PASSWORDS.get(user, "") if right and user in PASSWORDS else None
    if password is None:
        password = draw(secret_text(run.core(), long=draw(st.integers(0, 5)) == 0))
        run.secrets.add(password)
    correct = right and user in PASSWORDS
    name = mechanism.upper() if mechanism.isascii() else mechanism
    line = f"AUTH {mechanism}"
    if name in ("PLAIN", "XOAUTH2") and draw(st.booleans()):
        first = (
            b64(f"\0{user}\0{password}")
            if name == "PLAIN"
            else b64(f"user={user}\x01auth=Bearer {password}\x01\x01")
        )
        run.secrets.add(first)
        line += " " + first
        steps = 1
    else:
        steps = 0
    before = run.closes()
    await client.send(line.encode() + b"\r\n", draw(st.lists(st.integers(1, 12), max_size=2)))
    rounds = 0
    sent_right = steps == 1 and correct
    while True:
        status = await run.status(client)
        if not status.endswith(b"\n"):
            break
        if not status.startswith(b"+ "):
            if status.startswith(b"+OK"):
                run.logged_in(client, user, sent_right, line.encode())
            else:
                assert status.startswith(b"-ERR"), status
                if len(line) + len("\r\n") <= run.server.config.login_line_limit:
                    # A refused AUTH forgets USER; a line refused as too long (RFC 5034
                    # §4: AUTH keeps the line limit) was no AUTH, and changes nothing.
                    client.pending = None
            break
        rounds += 1
        challenge = base64.b64decode(status[2:].strip())
        how = draw(st.sampled_from(["right", "right", "cancel", "junk", "base64-junk", "huge"]))
        if rounds > 3:
            how = "cancel"
        if how == "cancel":
            response, sent_right = "*", False
        elif how == "junk":
            response = draw(secret_text(run.core()))  # not base64: "-ERR"
            sent_right = False
        elif how == "huge":
            # Over the 64 KiB a SASL line may take: refused as too long, still masked.
            response = run.core() + "A" * 70000
            sent_right = False
        elif how == "base64-junk":
            response = b64(draw(secret_text(run.core())))
            sent_right = False
        elif name == "PLAIN":
            # RFC 4616: an authzid other than the user is refused, and echoed in a
            # status line that must still fit 512 octets.
            authzid = draw(st.sampled_from(["", user, "\u00e9" * 120 + "x" * 10, "y" * 250]))
            response = b64(f"{authzid}\0{user}\0{password}")
            sent_right = correct and authzid in ("", user)
        elif name == "LOGIN":
            response = b64(user if rounds == 1 else password)
            sent_right = correct and rounds == 2
        elif name == "CRAM-MD5":
            digest = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest()
            response, sent_right = b64(f"{user} {digest}"), correct
        elif challenge:  # XOAUTH2's error challenge: answered with an empty line
            response, sent_right = "", False
        else:
            response = b64(f"user={user}\x01auth=Bearer {password}\x01\x01")
            sent_right = correct
        if response not in ("*", "") and not (name == "LOGIN" and rounds == 1):
            run.secrets.add(response)  # (LOGIN's first response is the user name)
        await client.send(
            response.encode() + b"\r\n", draw(st.lists(st.integers(1, 40), max_size=2))
        )
    if not status.endswith(b"\n") or run.closes() > before:
        await finish(run, client)


# == the property ==========================================================================


def transcript_views(server: Pop3Server) -> list[str]:
    transcript = server.transcript
    return [
        transcript.render(),
        transcript.to_json(),
        str(transcript),
        "\n".join(transcript.commands()),
        "\n".join(line for s in transcript.sessions for line in s.commands()),
    ]


async def connect(run: Run, nursery: trio.Nursery) -> Client:
    """A new connection, greeted (or closed by a fault at once)."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(run.server.handle_stream, server_stream)
    client = Client(len(run.clients) + 1, client_stream)
    before = run.closes()
    run.clients.append(client)
    greeting = await run.status(client)
    if greeting.endswith(b"\n") and (found := re.search(rb"<[^<>]*>\r\n$", greeting)):
        client.timestamp = found.group()[:-2].decode()
    if not greeting.endswith(b"\n") or run.closes() > before:
        await finish(run, client)  # a close_after() with no keyword fired
    return client


async def conversation(data: st.DataObject) -> None:  # noqa: PLR0912
    calls = HookCalls()
    server = Pop3Server(
        {user: {"password": PASSWORDS[user], "messages": dict(MESSAGES[user])} for user in USERS}
    )
    for _ in range(data.draw(st.integers(0, 4), label="faults")):
        server.faults.add(data.draw(fault_strategy(calls)))
    run = Run(server, calls)
    draw = data.draw
    async with trio.open_nursery() as nursery:
        for _ in range(draw(st.integers(1, STEPS), label="steps")):
            open_clients = [c for c in run.clients if not c.closed]
            if len(open_clients) < 3 and (not open_clients or draw(st.integers(0, 5)) == 0):
                await connect(run, nursery)
                continue
            client = draw(st.sampled_from(open_clients))
            if client.user is None:
                actions = ["line", "batch", "login", "login", "apop", "sasl", "sasl", "quit"]
            else:
                actions = ["line", "batch", "dele", "dele", "dele", "dele", "login", "quit"]
            action = draw(st.sampled_from([*actions, "close"]))
            cuts = draw(st.lists(st.integers(1, 300), max_size=3))
            if action == "dele":
                numbers = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3))
                lines = [b"DELE %d\r\n" % n for n in numbers]
                if draw(st.integers(0, 3)) == 0:
                    lines.append(b"RSET\r\n")
                await replies(run, client, lines, cuts)
            elif action == "line":
                line = draw(plain_line(run, client))
                await replies(run, client, [line], cuts)
            elif action == "batch":
                lines = draw(st.lists(plain_line(run, client), min_size=2, max_size=5))
                await replies(run, client, lines, cuts)
            elif action == "login":
                user = draw(st.sampled_from([*USERS, "mallory"]))
                password = PASSWORDS.get(user, "") if draw(st.booleans()) else ""
                if not password:
                    password = draw(secret_text(run.core(), long=draw(st.integers(0, 4)) == 0))
                run.secrets.add(password)
                lines = [f"USER {user}\r\n".encode(), f"PASS {password}\r\n".encode()]
                if draw(st.booleans()):
                    await replies(run, client, lines, cuts)
                else:
                    await replies(run, client, lines[:1], [])
                    if not client.closed:
                        await replies(run, client, lines[1:], cuts)
            elif action == "apop":
                user = draw(st.sampled_from([*USERS, "mallory"]))
                digest = draw(apop_digest(client, user))
                await replies(run, client, [f"APOP {user} {digest}\r\n".encode()], cuts)
            elif action == "sasl":
                await sasl(run, client, data)
            elif action == "quit":
                quit_line = draw(st.sampled_from([b"QUIT\r\n", b"quit\r\n", b"Quit\n"]))
                await quit_session(run, client, quit_line, cuts)
            else:
                partial = draw(
                    st.sampled_from([b"", b"QUI", b"DELE 1", b"PASS " + run.core().encode()])
                )
                if partial.startswith(b"PASS"):
                    run.secrets.add(partial[5:].decode())
                await client.send(partial, [])
                client.closed = True
                await client.stream.aclose()
        for client in run.clients:
            if not client.closed:
                if draw(st.integers(0, 3)):
                    await quit_session(run, client, b"QUIT\r\n", [])
                else:
                    client.closed = True
                    await client.stream.aclose()
        await server.wait_idle()
        nursery.cancel_scope.cancel()
    after_every_session(run)


def after_every_session(run: Run) -> None:
    """What must hold once every session has ended."""
    server = run.server
    assert server.errors == []
    server.check()
    run.check_store()
    for user in USERS:
        assert not server.store[user].locked, f"{user}'s mailbox is still locked"
    records = {record.id: record for record in server.transcript.sessions}
    for client in run.clients:
        record = records[client.number]
        assert record.ended_by is not None
        assert sorted(record.removed) == sorted(client.removed), (record, client)
    for armed in server.faults:
        if armed.fired:
            event(f"fired: {armed.fault.description.split(' ')[0]}")
    if any(r.removed for r in records.values()):
        event("mail removed")
    if any(c.marked and not records[c.number].removed for c in run.clients):
        event("marked mail kept: no UPDATE")
    views = transcript_views(server)
    for secret in run.secrets:
        cores = [secret, *re.findall(r"Kq[0-9a-f]{10}", secret)]
        cores += [core for core in CORES.values() if core in secret]
        for view in views:
            for core in cores:
                assert core not in view, f"secret {core!r} shown:\n{view}"


def run_trio(conversation: Callable[[st.DataObject], Awaitable[None]], data: st.DataObject) -> None:
    """Run one conversation on a MockClock that jumps whenever every task waits; a
    failure comes out as itself, not inside the nursery's exception group."""
    try:
        trio.run(conversation, data, clock=trio.testing.MockClock(autojump_threshold=0))
    except BaseExceptionGroup as group:
        failures = group.exceptions
        while len(failures) == 1 and isinstance(failures[0], BaseExceptionGroup):
            failures = failures[0].exceptions
        if len(failures) == 1:
            raise failures[0] from None
        raise


@st.composite
def quit_fault_strategy(draw: st.DrawFn, calls: HookCalls) -> Fault:
    """A fault at QUIT: before UPDATE (COMMAND stage) or after it (REPLY stage)."""
    kind = draw(st.sampled_from(["error", "close_before", "close_after", "cut", "hook", "slice"]))
    fault: Fault
    if kind == "error":
        fault = faults.error("QUIT", code=draw(st.sampled_from([None, "SYS/TEMP"])))
    elif kind == "close_before":
        fault = faults.close_before("QUIT", reset=draw(st.booleans()))
    elif kind == "close_after":
        fault = faults.close_after("QUIT")
    elif kind == "cut":
        fault = faults.cut_payload("QUIT", after_bytes=draw(st.integers(0, 50)))
    elif kind == "slice":
        fault = faults.slice_replies(size=draw(st.integers(1, 5)), pause=0.001).on("QUIT")
    else:
        answers = draw(st.lists(st.sampled_from([None, "-ERR x"]), min_size=1, max_size=3))

        def answer(context: FaultContext) -> str | None:
            reply = answers[calls.refused % len(answers)]
            if reply is not None:
                calls.refused += 1
            return reply

        fault = faults.hook(answer, "QUIT")
    return _scoped(draw, fault)


async def quit_conversation(data: st.DataObject) -> None:
    """Sessions that log in, mark mail and QUIT, with faults at QUIT."""
    calls = HookCalls()
    server = Pop3Server(
        {user: {"password": PASSWORDS[user], "messages": dict(MESSAGES[user])} for user in USERS}
    )
    for _ in range(data.draw(st.integers(1, 3), label="faults")):
        server.faults.add(data.draw(quit_fault_strategy(calls)))
    run = Run(server, calls)
    draw = data.draw
    async with trio.open_nursery() as nursery:
        for _ in range(draw(st.integers(1, 4), label="sessions")):
            client = await connect(run, nursery)
            user = draw(st.sampled_from(USERS))
            login = [f"USER {user}\r\n".encode(), f"PASS {PASSWORDS[user]}\r\n".encode()]
            numbers = draw(st.lists(st.integers(1, 5), max_size=4))
            lines = [b"DELE %d\r\n" % n for n in numbers]
            if draw(st.integers(0, 4)) == 0:
                lines.insert(draw(st.integers(0, len(lines))), b"RSET\r\n")
            if not client.closed:
                await replies(run, client, login + lines, [])
            if not client.closed:
                quit_line = draw(st.sampled_from([b"QUIT\r\n", b"quit\n"]))
                cuts = draw(st.lists(st.integers(1, 5), max_size=2))
                await quit_session(run, client, quit_line, cuts)
        await server.wait_idle()
        nursery.cancel_scope.cancel()
    after_every_session(run)


@settings(
    max_examples=max(EXAMPLES // 2, 1),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_faults_at_quit_remove_mail_only_after_update(data: st.DataObject) -> None:
    """RFC 1939 section 6: mail goes at UPDATE, which a COMMAND-stage fault at QUIT
    (error, close_before, a hook's -ERR) prevents and a REPLY-stage one (close_after,
    cut_payload) does not; the store and each session's ``removed`` must agree."""
    run_trio(quit_conversation, data)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_fakepop_never_lies(data: st.DataObject) -> None:
    run_trio(conversation, data)
