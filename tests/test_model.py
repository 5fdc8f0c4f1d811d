"""Model-based test: random POP3 conversations over real sockets, checked against a
small independent model of RFC 1939 (with RFC 2449 EXPIRE 0 and RFC 6856 UTF8).

A hypothesis ``RuleBasedStateMachine`` keeps up to three connections to one
``Pop3ServerThread`` open at once and, step by step, sends them USER/PASS/APOP logins
(two sessions often compete for the same mailbox: the second must get
``-ERR [IN-USE]``), STAT/LIST/UIDL/RETR/TOP/DELE/RSET/NOOP/CAPA/UTF8, malformed and
wrong-state commands, pipelined batches, QUIT, abrupt closes and TCP resets, while the
test delivers new mail into the store or replaces a mailbox under an open session.
Every reply is checked against the model below, which knows nothing of fakepop's
internals: it normalises the generated messages to CRLF itself, predicts the sizes, the
UIDs (``uid000001``... as docs/reference/options.md documents, or the test's own), what TOP sends,
which numbers are marked deleted, what QUIT removes and who holds each mailbox's lock.
After every step the store must match the model; after a drop the test waits until the
server has noticed it (``wait_for`` its count of open sessions to be the test's) before
checking locks.

    python -m pytest tests/test_model.py               # CI: 300 + 75 examples, ~12 s
    FAKEPOP_MODEL_EXAMPLES=10000 python -m pytest tests/test_model.py -s   # long run

``FAKEPOP_MODEL_EXAMPLES`` sets the examples of the main test (the EXPIRE 0 variant
runs a quarter as many), ``FAKEPOP_MODEL_STEPS`` the steps per example (default 40);
``-s`` shows what the runs exercised.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from fakepop import Pop3ServerThread, ServerConfig

EXAMPLES = int(os.environ.get("FAKEPOP_MODEL_EXAMPLES", "300"))
STEPS = int(os.environ.get("FAKEPOP_MODEL_STEPS", "40"))
TIMEOUT = 10.0  # seconds any socket operation may take before the test fails
SLOTS = 3  # connections open at once
PASSWORDS = {"alice": "secret", "bob": "hunter 2"}  # bob's password has a space in it
UNKNOWN_USER = "mallory"
#: What the runs exercised (examples, steps, logins, [IN-USE], ...); printed at the end
#: of the test, shown with ``pytest -s``.
STATS: Counter[str] = Counter()


def note(what: str) -> None:
    STATS[what] += 1
    event(what)


# == the model ===========================================================================


def normalise(raw: bytes) -> bytes:
    """RFC 1939 wire form, worked out independently of fakepop: CRLF, LF and bare CR
    each end a line and become CRLF; a non-empty message gets a final CRLF."""
    out = bytearray()
    i = 0
    while i < len(raw):
        octet = raw[i]
        if octet == 0x0D:
            out += b"\r\n"
            i += 2 if raw[i + 1 : i + 2] == b"\n" else 1
        elif octet == 0x0A:
            out += b"\r\n"
            i += 1
        else:
            out.append(octet)
            i += 1
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return bytes(out)


def top_of(wire: bytes, body_lines: int) -> bytes:
    """What ``TOP n body_lines`` sends (unstuffed): the headers up to and including the
    first empty line, then that many body lines; the whole message if it has no empty
    line or fewer body lines."""
    lines = wire.split(b"\r\n")[:-1]
    if b"" in lines:
        lines = lines[: lines.index(b"") + 1 + body_lines]
    return b"".join(line + b"\r\n" for line in lines)


def needs_utf8(wire: bytes) -> bool:
    """RFC 6856 section 2.1, read strictly: a header section with non-ASCII octets may
    reach only a client that sent UTF8 (anything else gets an ASCII surrogate or
    -ERR [UTF8]). A server that sends such mail as it is, as real servers do, sends it
    to any client."""
    lines = wire.split(b"\r\n")[:-1]
    header = lines[: lines.index(b"")] if b"" in lines else lines
    return not all(line.isascii() for line in header)


def as_bytes(source: bytes | str) -> bytes:
    return source.encode("utf-8") if isinstance(source, str) else source


@dataclass(eq=False)
class Message:
    uid: str
    wire: bytes


@dataclass
class Mailbox:
    password: str
    messages: list[Message] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # UIDs removed at QUIT, in order
    next_auto: int = 1

    def add(self, source: bytes | str, uid: str | None = None) -> Message:
        if uid is None:
            uid = f"uid{self.next_auto:06d}"  # docs/reference/options.md: uid000001, uid000002, ...
            self.next_auto += 1
        message = Message(uid, normalise(as_bytes(source)))
        self.messages.append(message)
        return message


A, AP, T = "AUTHORIZATION", "AWAITING_PASS", "TRANSACTION"


# == a raw client =======================================================================


class Connection:
    """A TCP connection with a line reader that checks every line's shape."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"server closed mid-line after {bytes(self._buffer)!r}")
            self._buffer += data
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        assert line.endswith(b"\r\n"), f"bare LF in {line!r}"
        assert b"\r" not in line[:-2], f"bare CR in {line!r}"
        return line

    def status(self) -> bytes:
        """A status line, CRLF removed, checked against RFC 1939/2449's form."""
        line = self._line()
        assert len(line) <= 512, f"status line of {len(line)} octets"
        assert re.match(rb"(\+OK|-ERR)( |\r\n)", line), line
        return line[:-2]

    def payload(self) -> bytes:
        """The rest of a multi-line reply, dot-unstuffed, terminator removed."""
        body = bytearray()
        while (line := self._line()) != b".\r\n":
            body += line[1:] if line.startswith(b".") else line
        return bytes(body)

    def expect_eof(self) -> None:
        assert not self._buffer, f"octets after the last reply: {bytes(self._buffer)!r}"
        assert self.sock.recv(1) == b"", "the server did not close the connection"

    def close(self, *, reset: bool = False) -> None:
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@dataclass
class Session:
    conn: Connection
    timestamp: str
    state: str = A
    pending_user: str | None = None
    user: str | None = None
    box: Mailbox | None = None  # the mailbox it locked (the test may replace it)
    snapshot: list[Message] = field(default_factory=list)
    marked: set[int] = field(default_factory=set)
    retrieved: set[int] = field(default_factory=set)
    utf8: bool = False  # UTF8 was accepted (RFC 6856)

    def live(self, number: int) -> Message | None:
        if 1 <= number <= len(self.snapshot) and number not in self.marked:
            return self.snapshot[number - 1]
        return None

    def numbered(self) -> Iterator[tuple[int, Message]]:
        for number, message in enumerate(self.snapshot, 1):
            if number not in self.marked:
                yield number, message


# == strategies ==========================================================================

_line_text = st.one_of(
    st.sampled_from(
        [b"", b".", b"..", b".x", b"Subject: hi", b"From: a@example.org", b"body", b" folded"]
    ),
    st.binary(max_size=24).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
_line_end = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def raw_messages(draw: st.DrawFn) -> bytes | str:
    parts = draw(st.lists(st.tuples(_line_text, _line_end), max_size=8))
    raw = b"".join(text + end for text, end in parts)
    if draw(st.booleans()):
        raw += draw(_line_text)  # a last line without a line ending
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=40))  # a str: stored as UTF-8
    return raw


# A numeric argument: plain, or with leading zeros (up to 20 digits in all: fakepop
# once read only the first 12, see test_fuzz.test_a_message_number_with_many_...).
def _number_text(number: int, width: int) -> str:
    return str(number).zfill(width)


_WITH_NUMBER = ["RETR", "TOP", "DELE", "LIST", "UIDL"]
_NO_NUMBER = ["STAT", "LIST", "UIDL", "RSET", "NOOP"]
_TRANSACTION = ["STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP"]

# == the state machine ===================================================================


class Pop3Model(RuleBasedStateMachine):
    #: The server every run of the machine talks to (set by the test's subclass).
    shared_server: ClassVar[Pop3ServerThread]
    #: Whether that server runs with EXPIRE 0 (retrieved mail is removed at QUIT).
    expire_zero: ClassVar[bool] = False
    strict_utf8: ClassVar[bool] = False  # ServerConfig.utf8_refuse_unless_enabled

    def __init__(self) -> None:
        super().__init__()
        self.server = self.shared_server
        self.boxes: dict[str, Mailbox] = {}
        self.slots: list[Session | None] = [None] * SLOTS
        self.explicit_uids = 0

    # -- helpers ----------------------------------------------------------------------
    def _slots(self, *states: str) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s is not None and s.state in states]

    def _free(self) -> list[int]:
        return [i for i, s in enumerate(self.slots) if s is None]

    def _holder(self, user: str) -> Session | None:
        # Who holds the lock of the user's current mailbox (not of one the test
        # removed while a session had it open).
        for session in self.slots:
            if session is not None and session.state == T and session.box is self.boxes[user]:
                return session
        return None

    def _pick(self, data: st.DataObject, slots: list[int]) -> Session:
        session = self.slots[data.draw(st.sampled_from(slots), label="slot")]
        assert session is not None
        return session

    def _settle(self) -> None:
        # The server has noticed every closed connection (and so released its lock)
        # once its count of open sessions equals ours.
        open_here = sum(s is not None for s in self.slots)
        self.server.wait_for(lambda server: server.active_sessions == open_here, timeout=TIMEOUT)

    def _open(self, slot: int) -> Session:
        conn = Connection(self.server.host, self.server.port)
        greeting = conn.status()
        assert greeting.startswith(b"+OK"), greeting
        stamp = re.search(rb"<[^<>]+@[^<>]+>", greeting)
        assert stamp is not None, greeting
        assert greeting.count(b"<") == 1, greeting
        session = self.slots[slot] = Session(conn, stamp.group().decode())
        return session

    def _keyword(self, data: st.DataObject, keyword: str) -> str:
        return keyword.lower() if data.draw(st.booleans(), label="lower case") else keyword

    def _number(self, data: st.DataObject, session: Session) -> tuple[str, int | None]:
        if data.draw(st.integers(0, 15), label="huge") == 0:
            return "9" * data.draw(st.integers(13, 30)), None
        count = len(session.snapshot)
        number = data.draw(
            st.one_of(st.integers(1, max(1, count)), st.integers(0, count + 2)), label="n"
        )
        width = data.draw(st.sampled_from([1, 1, 1, 3, 12, 13, 20]), label="width")
        return _number_text(number, width), number

    # -- what each command must answer ----------------------------------------------------
    def _expect_login(self, session: Session, user: str, credentials_ok: bool) -> None:
        reply = session.conn.status()
        session.pending_user = None
        session.state = A
        if not credentials_ok or user not in self.boxes:
            assert reply.startswith(b"-ERR [AUTH]"), reply
            note("login refused: [AUTH]")
        elif self._holder(user) is not None:
            assert reply.startswith(b"-ERR [IN-USE]"), reply
            note("login refused: [IN-USE]")
        else:
            assert reply.startswith(b"+OK"), reply
            session.state, session.user, session.box = T, user, self.boxes[user]
            session.snapshot = list(self.boxes[user].messages)
            session.marked, session.retrieved = set(), set()
            note("logged in")

    def _check(self, session: Session, op: tuple[str, str | None, int | None, int]) -> None:
        """Read the reply to one TRANSACTION command and apply it to the model."""
        keyword, text, number, body_lines = op
        reply = session.conn.status()
        if keyword in ("STAT", "RSET", "NOOP", "LIST", "UIDL") and text is None:
            assert reply.startswith(b"+OK"), (op, reply)
            self._check_whole_mailbox(session, keyword, reply)
            return
        message = None if number is None else session.live(number)
        if message is None:
            assert reply.startswith(b"-ERR"), (op, reply)
            STATS[f"{keyword} n: -ERR"] += 1
            return
        STATS[f"{keyword} n: +OK"] += 1
        assert number is not None
        if (
            self.strict_utf8
            and keyword in ("RETR", "TOP")
            and needs_utf8(message.wire)
            and not session.utf8
        ):
            if reply.startswith(b"-ERR"):
                assert reply.startswith(b"-ERR [UTF8]"), reply
                note("RETR/TOP refused: [UTF8]")
                return
            assert reply.startswith(b"+OK"), reply
            assert session.conn.payload().isascii(), "raw 8-bit header outside UTF-8 mode"
        elif keyword == "LIST":
            assert reply == f"+OK {number} {len(message.wire)}".encode(), reply
        elif keyword == "UIDL":
            assert reply == f"+OK {number} {message.uid}".encode(), reply
        else:
            assert reply.startswith(b"+OK"), (op, reply)
            if keyword in ("RETR", "TOP") and needs_utf8(message.wire) and not session.utf8:
                note("RETR/TOP sent raw UTF-8 headers as they are")
            if keyword == "RETR":
                assert session.conn.payload() == message.wire
            elif keyword == "TOP":
                assert session.conn.payload() == top_of(message.wire, body_lines)
            else:
                assert keyword == "DELE", op
                session.marked.add(number)
        if keyword == "RETR":
            session.retrieved.add(number)

    def _check_whole_mailbox(self, session: Session, keyword: str, reply: bytes) -> None:
        # STAT, RSET, NOOP, and LIST or UIDL without an argument; all +OK.
        if keyword == "STAT":
            live = [m for _, m in session.numbered()]
            octets = sum(len(m.wire) for m in live)
            assert reply == f"+OK {len(live)} {octets}".encode(), reply
        elif keyword == "RSET":
            session.marked.clear()
        elif keyword == "LIST":
            expected = "".join(f"{n} {len(m.wire)}\r\n" for n, m in session.numbered())
            assert session.conn.payload() == expected.encode()
        elif keyword == "UIDL":
            expected = "".join(f"{n} {m.uid}\r\n" for n, m in session.numbered())
            assert session.conn.payload() == expected.encode()

    def _transaction_op(
        self, data: st.DataObject, session: Session, keywords: list[str] | None = None
    ) -> tuple[bytes, tuple[str, str | None, int | None, int]]:
        keyword = data.draw(st.sampled_from(keywords or _TRANSACTION), label="keyword")
        text: str | None = None
        number: int | None = None
        body_lines = 0
        if keyword in ("LIST", "UIDL"):
            numbered = keywords is _WITH_NUMBER or (
                keywords is None and data.draw(st.booleans(), label="with number")
            )
        else:
            numbered = keyword in ("RETR", "TOP", "DELE")
        if numbered:
            text, number = self._number(data, session)
        line = self._keyword(data, keyword)
        if text is not None:
            line += f" {text}"
        if keyword == "TOP":
            body_lines = data.draw(st.integers(0, 6), label="body lines")
            width = data.draw(st.sampled_from([1, 1, 1, 2, 13]), label="width")
            line += f" {_number_text(body_lines, width)}"
        return f"{line}\r\n".encode(), (keyword, text, number, body_lines)

    # -- rules --------------------------------------------------------------------------
    @initialize(
        alice=st.lists(raw_messages(), min_size=1, max_size=4),
        bob=st.lists(raw_messages(), max_size=3),
    )
    def start(self, alice: list[bytes | str], bob: list[bytes | str]) -> None:
        note("examples")
        self.server.reset(
            {
                "alice": {"password": PASSWORDS["alice"], "messages": alice},
                "bob": {"password": PASSWORDS["bob"], "messages": bob},
            }
        )
        for user, messages in (("alice", alice), ("bob", bob)):
            box = self.boxes[user] = Mailbox(PASSWORDS[user])
            for source in messages:
                box.add(source)

    @precondition(lambda self: bool(self._free()))
    @rule(data=st.data())
    def connect(self, data: st.DataObject) -> None:
        self._open(data.draw(st.sampled_from(self._free()), label="slot"))

    @precondition(lambda self: bool(self._slots(A, AP)))
    @rule(data=st.data(), user=st.sampled_from([*PASSWORDS, UNKNOWN_USER]))
    def user(self, data: st.DataObject, user: str) -> None:
        session = self._pick(data, self._slots(A, AP))
        session.conn.send(f"{self._keyword(data, 'USER')} {user}\r\n".encode())
        assert session.conn.status().startswith(b"+OK")  # USER never reveals accounts
        session.state, session.pending_user = AP, user

    @precondition(lambda self: bool(self._slots(AP)))
    @rule(data=st.data(), right=st.booleans())
    def password(self, data: st.DataObject, right: bool) -> None:
        session = self._pick(data, self._slots(AP))
        user = session.pending_user
        assert user is not None
        secret = PASSWORDS.get(user, "x") + ("" if right else "x")
        session.conn.send(f"{self._keyword(data, 'PASS')} {secret}\r\n".encode())
        self._expect_login(session, user, right)

    @precondition(lambda self: bool(self._slots(A, AP)))
    @rule(data=st.data(), user=st.sampled_from([*PASSWORDS, UNKNOWN_USER]), right=st.booleans())
    def apop(self, data: st.DataObject, user: str, right: bool) -> None:
        session = self._pick(data, self._slots(A, AP))
        secret = PASSWORDS.get(user, "x") + ("" if right else "x")
        digest = hashlib.md5((session.timestamp + secret).encode()).hexdigest()
        if data.draw(st.booleans(), label="upper-case digest"):
            digest = digest.upper()
        session.conn.send(f"{self._keyword(data, 'APOP')} {user} {digest}\r\n".encode())
        self._expect_login(session, user, right)

    @precondition(lambda self: bool(self._free() or self._slots(A, AP)))
    @rule(data=st.data(), user=st.sampled_from(list(PASSWORDS)), use_apop=st.booleans())
    def login(self, data: st.DataObject, user: str, use_apop: bool) -> None:
        """Connect if need be and log in with the right credentials, in one step: the
        way to reach TRANSACTION (or [IN-USE]) often."""
        candidates = self._slots(A, AP) + self._free()
        slot = data.draw(st.sampled_from(candidates), label="slot")
        session = self.slots[slot] or self._open(slot)
        if use_apop:
            digest = hashlib.md5((session.timestamp + PASSWORDS[user]).encode()).hexdigest()
            session.conn.send(f"APOP {user} {digest}\r\n".encode())
        else:
            # USER and PASS in one write: pipelined, as RFC 2449 allows.
            session.conn.send(f"USER {user}\r\nPASS {PASSWORDS[user]}\r\n".encode())
            assert session.conn.status().startswith(b"+OK")
        self._expect_login(session, user, credentials_ok=True)

    @precondition(lambda self: bool(self._slots(T)))
    @rule(data=st.data())
    def message_command(self, data: st.DataObject) -> None:
        """RETR, TOP, DELE, LIST n or UIDL n, for a message that may be there or not."""
        session = self._pick(data, self._slots(T))
        line, op = self._transaction_op(data, session, _WITH_NUMBER)
        session.conn.send(line)
        self._check(session, op)

    @precondition(lambda self: bool(self._slots(T)))
    @rule(data=st.data())
    def mailbox_command(self, data: st.DataObject) -> None:
        """STAT, LIST, UIDL, RSET or NOOP."""
        session = self._pick(data, self._slots(T))
        line, op = self._transaction_op(data, session, _NO_NUMBER)
        session.conn.send(line)
        self._check(session, op)

    @precondition(lambda self: bool(self._slots(T)))
    @rule(data=st.data(), count=st.integers(2, 8))
    def pipeline(self, data: st.DataObject, count: int) -> None:
        """Several commands in one write; the replies must come in order."""
        session = self._pick(data, self._slots(T))
        ops = [self._transaction_op(data, session) for _ in range(count)]
        session.conn.send(b"".join(line for line, _ in ops))
        for _, op in ops:
            self._check(session, op)

    @precondition(lambda self: bool(self._slots(A, AP, T)))
    @rule(data=st.data())
    def capa(self, data: st.DataObject) -> None:
        session = self._pick(data, self._slots(A, AP, T))
        session.conn.send(f"{self._keyword(data, 'CAPA')}\r\n".encode())
        assert session.conn.status().startswith(b"+OK")
        capabilities = session.conn.payload().split(b"\r\n")
        for name in (b"TOP", b"UIDL", b"USER", b"PIPELINING", b"RESP-CODES"):
            assert name in capabilities, capabilities

    @precondition(lambda self: bool(self._slots(A, AP)))
    @rule(data=st.data())
    def utf8(self, data: st.DataObject) -> None:
        """UTF8 (RFC 6856) before login: +OK enters UTF-8 mode; the server MAY say
        -ERR. (fakepop accepts it before USER only, which that MAY allows.)"""
        session = self._pick(data, self._slots(A, AP))
        session.conn.send(f"{self._keyword(data, 'UTF8')}\r\n".encode())
        reply = session.conn.status()
        if session.state == A or reply.startswith(b"+OK"):
            assert reply.startswith(b"+OK"), reply
            session.utf8 = True
            note("UTF8 accepted")

    @precondition(lambda self: bool(self._slots(A, AP, T)))
    @rule(data=st.data())
    def refused_command(self, data: st.DataObject) -> None:
        """A malformed or wrong-state command: -ERR, and nothing changes."""
        session = self._pick(data, self._slots(A, AP, T))
        anywhere = [
            "", "XYZZY", "STAT x", "NOOP 1", "RSET now", "QUIT now", "CAPA x",
            "LIST  1", "LIST 1 2", "UIDL 1 2", "RETR", "RETR -1", "RETR 1.0", "RETR +1",
            "DELE", "DELE x", "TOP 1", "TOP 1 x", "TOP 1 -1", "APOP alice",
            "APOP alice nothex", "USER", "USER a b", "UTF8 x",
        ]  # fmt: skip
        if session.state == T:
            choices = [*anywhere, "USER alice", "PASS secret", "APOP alice " + "0" * 32, "UTF8"]
        else:
            choices = [*anywhere, "STAT", "LIST", "UIDL", "RETR 1", "DELE 1", "RSET", "NOOP"]
            if session.state == A:
                choices += ["PASS secret", "PASS"]
        line = data.draw(st.sampled_from(choices), label="line")
        session.conn.send(line.encode() + b"\r\n")
        reply = session.conn.status()
        assert reply.startswith(b"-ERR"), (session.state, line, reply)

    @precondition(lambda self: bool(self._slots(A, AP, T)))
    @rule(data=st.data())
    def quit(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self._slots(A, AP, T)), label="slot")
        session = self.slots[slot]
        assert session is not None
        session.conn.send(f"{self._keyword(data, 'QUIT')}\r\n".encode())
        reply = session.conn.status()
        numbers = session.marked | (session.retrieved if self.expire_zero else set())
        doomed = {id(session.snapshot[n - 1]) for n in numbers}
        box = session.box
        if session.state != T or not doomed:
            assert reply.startswith(b"+OK"), reply
        elif session.user is None or box is not self.boxes[session.user]:
            # RFC 1939 section 6: marked mail that cannot be removed gives -ERR.
            assert reply.startswith(b"-ERR [SYS/PERM]"), reply
            note("QUIT after the mailbox was replaced: [SYS/PERM]")
        else:
            assert reply.startswith(b"+OK"), reply
            assert box is not None
            box.removed += [m.uid for m in box.messages if id(m) in doomed]
            box.messages = [m for m in box.messages if id(m) not in doomed]
            note("QUIT removed mail")
        session.conn.expect_eof()
        session.conn.close()
        self.slots[slot] = None
        self._settle()

    @precondition(lambda self: bool(self._slots(A, AP, T)))
    @rule(
        data=st.data(),
        reset=st.booleans(),
        unsent=st.sampled_from([b"", b"DELE 1\r\n", b"DELE 1\r\nRETR 2\r\nLIS", b"QUI"]),
    )
    def drop(self, data: st.DataObject, reset: bool, unsent: bytes) -> None:
        """Close (or reset) without QUIT, maybe right after more commands: nothing
        may be deleted, and the lock must be released."""
        slot = data.draw(st.sampled_from(self._slots(A, AP, T)), label="slot")
        session = self.slots[slot]
        assert session is not None
        if unsent:
            session.conn.send(unsent)
        if session.marked:
            note("dropped with messages marked deleted")
        session.conn.close(reset=reset)
        self.slots[slot] = None
        self._settle()

    @precondition(lambda self: sum(len(box.messages) for box in self.boxes.values()) < 12)
    @rule(
        user=st.sampled_from(list(PASSWORDS)),
        source=raw_messages(),
        own_uid=st.booleans(),
    )
    def deliver(self, user: str, source: bytes | str, own_uid: bool) -> None:
        """New mail from the test's side: sessions already logged in must not see it."""
        uid = None
        if own_uid:
            self.explicit_uids += 1
            uid = f"m{self.explicit_uids}.{user}"
        stored = self.server.store.deliver(user, source, uid=uid)
        expected = self.boxes[user].add(source, uid)
        assert stored.uid == expected.uid
        assert stored.size == len(expected.wire)

    @rule(user=st.sampled_from(list(PASSWORDS)), messages=st.lists(raw_messages(), max_size=3))
    def replace_mailbox(self, user: str, messages: list[bytes | str]) -> None:
        """The test removes a mailbox and adds a new one for the same user: a session
        that has the old one open keeps its snapshot but can no longer remove mail
        from it, and the new one is not locked."""
        self.server.store.remove_user(user)
        self.server.store.add_user(user, PASSWORDS[user], messages)
        box = self.boxes[user] = Mailbox(PASSWORDS[user])
        for source in messages:
            box.add(source)

    @precondition(lambda self: not self._free())
    @rule()
    def everyone_leaves(self) -> None:
        """Every client disconnects at once; once idle, no mailbox is locked."""
        for slot, session in enumerate(self.slots):
            if session is not None:
                session.conn.close(reset=slot % 2 == 1)
                self.slots[slot] = None
        self.server.wait_idle(timeout=TIMEOUT)
        for user in self.boxes:
            assert not self.server.store[user].locked

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def store_matches_model(self) -> None:
        for user, box in self.boxes.items():
            mailbox = self.server.store[user]
            assert [m.uid for m in mailbox.messages] == [m.uid for m in box.messages]
            assert [m.size for m in mailbox.messages] == [len(m.wire) for m in box.messages]
            assert [m.data for m in mailbox.messages] == [m.wire for m in box.messages]
            assert [m.uid for m in mailbox.deleted] == box.removed
            assert mailbox.locked == (self._holder(user) is not None), user

    @invariant()
    def no_error_inside_the_server(self) -> None:
        assert self.server.errors == []
        STATS["steps"] += 1  # invariants run once after initialisation and each step

    def teardown(self) -> None:
        for session in self.slots:
            if session is not None:
                session.conn.close()
        self.slots = [None] * SLOTS
        self.server.wait_idle(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def server() -> Iterator[Pop3ServerThread]:
    with Pop3ServerThread() as server:
        yield server


@pytest.fixture(scope="module")
def expiring_server() -> Iterator[Pop3ServerThread]:
    # Strict about RFC 6856 as well, so the machine meets both ways of sending
    # messages with raw UTF-8 headers.
    config = ServerConfig(expire=0, utf8_refuse_unless_enabled=True)
    with Pop3ServerThread(config=config) as server:
        yield server


def run_model(server: Pop3ServerThread, examples: int, *, expire_zero: bool) -> None:
    STATS.clear()
    started = time.perf_counter()

    class Pop3ModelOnThisServer(Pop3Model):
        shared_server = server

    Pop3ModelOnThisServer.expire_zero = expire_zero
    Pop3ModelOnThisServer.strict_utf8 = server.config.utf8_refuse_unless_enabled
    run_state_machine_as_test(
        Pop3ModelOnThisServer,
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    elapsed = time.perf_counter() - started
    print(f"\nmodel: {elapsed:.1f} s;", ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items())))


def test_random_sessions_agree_with_the_rfc_1939_model(server: Pop3ServerThread) -> None:
    run_model(server, EXAMPLES, expire_zero=False)


def test_with_expire_0_retrieved_mail_goes_at_quit(expiring_server: Pop3ServerThread) -> None:
    """The same machine against a server with EXPIRE 0 (RFC 2449 section 6.7), which
    also refuses raw UTF-8 headers before UTF8 (RFC 6856 section 2.1)."""
    run_model(expiring_server, max(1, EXAMPLES // 4), expire_zero=True)


# -- the model itself, on fixed examples ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        (b"", b""),
        (b"a", b"a\r\n"),
        (b"a\nb", b"a\r\nb\r\n"),
        (b"a\rb\r\n", b"a\r\nb\r\n"),
        (b"a\n\rb", b"a\r\n\r\nb\r\n"),
        (b"\r\r\n\n", b"\r\n\r\n\r\n"),
    ],
)
def test_the_models_normalisation(raw: bytes, wire: bytes) -> None:
    assert normalise(raw) == wire


def test_the_models_top() -> None:
    wire = b"H: 1\r\nH: 2\r\n\r\nb1\r\nb2\r\n"
    assert top_of(wire, 0) == b"H: 1\r\nH: 2\r\n\r\n"
    assert top_of(wire, 1) == b"H: 1\r\nH: 2\r\n\r\nb1\r\n"
    assert top_of(wire, 9) == wire
    assert top_of(b"H: 1\r\n", 3) == b"H: 1\r\n"
    assert top_of(b"\r\nbody\r\n", 0) == b"\r\n"
