"""Fuzzing the sans-IO engine: random bytes and mutated command streams, fed in random
pieces, must never break it.

Each input is fed to a fresh ``Pop3Protocol`` three times: whole, one line per
``receive_data`` call, and cut at random points. Every run must:

- raise nothing from ``receive_data``, ``next_command`` or ``handle``;
- answer every complete input line with exactly one reply, until a reply with
  ``close=True``, after which ``next_command`` returns None for good;
- keep the line buffer bounded: after the complete lines are handled,
  ``protocol._lines.pending <= config.max_line_length`` (or the longer limit a SASL
  exchange in progress allows);
- send only well-formed replies: a status line ``+OK``/``-ERR`` (or a SASL ``+ ``
  continuation) of printable ASCII, CRLF-terminated, at most 512 octets; multi-line
  payloads end with CRLF.CRLF, dot-stuffed, with no bare CR or LF;
- give the same replies whichever way the input was cut;
- leave the store consistent: no lock held after ``connection_lost()``, and mail
  removed only by a QUIT answered ``+OK``, exactly what the session reports removed.

    python -m pytest tests/test_fuzz.py                          # CI: 600 inputs per test
    FAKEPOP_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz.py -s   # a long run
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakepop import MailStore, Pop3Protocol, Reply, ServerConfig, profiles

EXAMPLES = int(os.environ.get("FAKEPOP_FUZZ_EXAMPLES", "600"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Inputs tried and what they led to; printed by the last test (``pytest -s``).
STATS: Counter[str] = Counter()

STAMP = "<1896.697170952@fuzz.example>"
PASSWORDS = {"alice": "secret", "bob": "hunter 2"}


def new_store() -> MailStore:
    return MailStore(
        {
            "alice": {
                "password": "secret",
                "messages": [
                    "Subject: one\n\nfirst\n.x\n.\nlast\n",
                    b"Subject: two\r\n\r\n\xc3\xa9t\xc3\xa9\r\n\x00nul\r\n",
                    "headers only: no body",
                    "\nno headers\n" + "line\n" * 30,
                ],
            },
            "bob": {"password": "hunter 2", "messages": {"u-1": ".\n..\n...x\n", "u-2": ""}},
            "empty": "nothing",
        }
    )


CONFIGS = [
    ServerConfig(),
    ServerConfig(capa=False, apop=False, resp_codes=False),
    ServerConfig(expire=0, top=False, uidl=False),
    ServerConfig(max_line_length=512, user_pass=False),
    profiles.dovecot(),
    profiles.gmail(),
    profiles.outlook(require_tls=False),
]


def _b64(raw: bytes) -> bytes:
    return base64.b64encode(raw)


_DIGEST = hashlib.md5((STAMP + "secret").encode()).hexdigest().encode()
VALID_LINES = [
    b"USER alice", b"PASS secret", b"USER bob", b"PASS hunter 2", b"USER nobody",
    b"PASS wrong", b"APOP alice " + _DIGEST, b"APOP alice " + _DIGEST.upper(),
    b"APOP bob " + b"0" * 32, b"STAT", b"LIST", b"LIST 1", b"LIST 9", b"UIDL", b"UIDL 2",
    b"RETR 1", b"RETR 2", b"RETR 4", b"TOP 1 0", b"TOP 4 5", b"TOP 3 1", b"DELE 1",
    b"DELE 2", b"DELE 9", b"RSET", b"NOOP", b"CAPA", b"QUIT", b"", b"AUTH",
    b"AUTH PLAIN", b"AUTH PLAIN " + _b64(b"\0alice\0secret"), _b64(b"\0alice\0secret"),
    b"AUTH LOGIN", _b64(b"alice"), _b64(b"secret"), b"AUTH CRAM-MD5", b"*", b"=",
    b"AUTH XOAUTH2 " + _b64(b"user=alice\x01auth=Bearer secret\x01\x01"), b"STLS",
]  # fmt: skip
LOGIN = b"USER alice\r\nPASS secret\r\n"

_line_end = st.sampled_from([b"\r\n", b"\r\n", b"\n"])


@st.composite
def command_streams(draw: st.DrawFn) -> bytes:
    """A sequence of valid commands, often after a login and often ending with QUIT,
    CRLF or LF terminated."""
    lines = draw(st.lists(st.sampled_from(VALID_LINES), max_size=16))
    if draw(st.booleans()):
        lines.append(b"QUIT")
    stream = b"".join(line + draw(_line_end) for line in lines)
    return (LOGIN + stream) if draw(st.booleans()) else stream


_inserts = st.one_of(
    st.sampled_from([b"\r", b"\n", b"\r\n", b"\0", b" ", b".", b"\xff", b"\x80", b"\xc3\xa9"]),
    st.binary(min_size=1, max_size=4),
)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    """A command stream after a few splices, duplications, truncations, insertions of
    CR/LF/NUL/8-bit octets, deletions, bit flips and over-long runs."""
    data = bytearray(draw(command_streams()))
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(
            st.sampled_from(["insert", "delete", "duplicate", "splice", "truncate", "flip", "long"])
        )
        at = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[at:at] = draw(_inserts)
        elif kind == "delete":
            del data[at : draw(st.integers(at, min(len(data), at + 8)))]
        elif kind == "duplicate":
            end = draw(st.integers(at, min(len(data), at + 40)))
            data[at:at] = data[at:end] * draw(st.integers(1, 3))
        elif kind == "splice":
            other = draw(command_streams())
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : draw(st.integers(start, len(other)))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "long":
            size = draw(st.sampled_from([253, 254, 255, 256, 257, 300, 511, 512, 513, 5000]))
            data[at:at] = draw(st.sampled_from([b"x", b"\r", b" ", b"\0"])) * size
    return bytes(data)


fuzz_inputs = st.one_of(st.binary(max_size=800), mutated_streams())


# -- the checks --------------------------------------------------------------------------

_STATUS = re.compile(rb"(\+OK|-ERR)( [\x20-\x7e]*)?\r\n\Z")
_CONTINUATION = re.compile(rb"\+ [A-Za-z0-9+/]*={0,2}\r\n\Z")  # RFC 5034 section 4


def check_reply(reply: Reply) -> None:
    status = reply.status
    assert len(status) <= 512, status[:80]
    if _CONTINUATION.match(status):
        assert reply.payload is None, reply
        assert not reply.close, reply
        return
    assert _STATUS.match(status), status
    if reply.payload is None:
        return
    assert status.startswith(b"+OK"), status
    payload = reply.payload
    assert payload == b".\r\n" or payload.endswith(b"\r\n.\r\n"), payload[-20:]
    body = payload[:-3]
    assert body.count(b"\n") == body.count(b"\r\n") == body.count(b"\r"), "bare CR or LF"
    lines = body.split(b"\r\n")[:-1]
    for line in lines:
        assert not line.startswith(b".") or line.startswith(b".."), f"unstuffed {line!r}"
    assert reply.lines == len(lines), (reply.lines, len(lines))


def _comparable(reply: Reply) -> tuple[bytes, bytes | None, bool]:
    # A SASL challenge may be random (CRAM-MD5): compare that it is one, not its value.
    status = b"+ challenge" if _CONTINUATION.match(reply.status) else reply.status
    return status, reply.payload, reply.close


def _limit(protocol: Pop3Protocol) -> int:
    # The line limit in force now: the config's, or a SASL exchange's longer one.
    return int(getattr(protocol._lines, "limit", protocol.config.max_line_length))


def feed(
    data: bytes, pieces: list[bytes], config: ServerConfig, *, one_line_each: bool = False
) -> list[Reply]:
    """Feed the pieces to a fresh session as the server would; check everything.
    ``one_line_each``: each piece is one line, so the closing reply must answer the
    last line received."""
    assert b"".join(pieces) == data
    store = new_store()
    before = {user: store[user].uids for user in store.users}
    protocol = Pop3Protocol(store, config, apop_timestamp=STAMP if config.apop else None,
                            clock=lambda: 0.0)  # fmt: skip
    replies: list[Reply] = []
    received = bytearray()
    closed = False
    for piece in pieces:
        protocol.receive_data(piece)
        received += piece
        while (command := protocol.next_command()) is not None:
            reply = protocol.handle(command)
            check_reply(reply)
            replies.append(reply)
            if reply.followed_by is not None:
                # A server that hangs up sends a notice after the reply (Dovecot's
                # "Too many bad commands."), as the session does.
                reply = reply.followed_by
                check_reply(reply)
                assert reply.close, reply
            if reply.close:
                closed = True
                break
        if closed:
            break
        # One reply per complete line, plus one for an unfinished line that is already
        # too long (its "Line too long" is sent at once).
        complete = received.count(b"\n")
        tail = len(received) - (received.rfind(b"\n") + 1)
        assert len(replies) == complete + (tail >= _limit(protocol)), (len(replies), complete)
        assert protocol._lines.pending <= _limit(protocol)
        if protocol.state.name != "AUTHENTICATING":
            assert protocol._lines.pending <= config.max_line_length
    if closed:
        assert protocol.next_command() is None
        # A server that closes on an over-long line (close_on_long_line) may answer an
        # unfinished line as well.
        tail = len(received) - (received.rfind(b"\n") + 1)
        shortest = min(_limit(protocol), config.max_line_length_before_login or _limit(protocol))
        answered = received.count(b"\n") + (config.close_on_long_line and tail >= shortest)
        assert len(replies) <= answered
        if one_line_each:
            assert len(replies) == answered
        STATS["closed by QUIT"] += 1
    else:
        protocol.receive_data(b"")  # the client closes
        assert protocol.next_command() is None
    protocol.connection_lost()
    _check_store(store, before, protocol, replies)
    return replies


def _check_store(
    store: MailStore, before: dict[str, list[str]], protocol: Pop3Protocol, replies: list[Reply]
) -> None:
    removed = [message.uid for message in protocol.removed]
    gone: list[str] = []
    for user, uids in before.items():
        mailbox = store[user]
        assert not mailbox.locked, f"{user}'s mailbox is still locked"
        assert [m.uid for m in mailbox.deleted] == [u for u in uids if u not in mailbox.uids]
        assert set(mailbox.uids) <= set(uids)
        gone += [u for u in uids if u not in mailbox.uids]
    assert gone == removed
    if removed:
        STATS["mail removed at QUIT"] += 1
        assert replies[-1].close, replies[-1]
        assert replies[-1].status.startswith(b"+OK"), replies[-1]


def by_lines(data: bytes) -> list[bytes]:
    """One piece per line (the last one possibly unfinished)."""
    pieces = [line + b"\n" for line in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]
    return [piece for piece in pieces if piece]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted({p for p in points if 0 < p < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def fuzz_once(data: bytes, points: list[int], config: ServerConfig) -> None:
    STATS["inputs"] += 1
    whole = [_comparable(r) for r in feed(data, [data] if data else [], config)]
    by_line = feed(data, by_lines(data), config, one_line_each=True)
    assert [_comparable(r) for r in by_line] == whole
    assert [_comparable(r) for r in feed(data, cut(data, points), config)] == whole
    STATS["replies"] += len(whole)
    STATS["of them too long"] += sum(r[0].startswith(b"-ERR Line too long") for r in whole)


# -- the tests ---------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(data=fuzz_inputs, config=st.sampled_from(CONFIGS), st_data=st.data())
def test_fuzzed_input_in_any_chunking_never_breaks_the_engine(
    data: bytes, config: ServerConfig, st_data: st.DataObject
) -> None:
    points = st_data.draw(st.lists(st.integers(0, len(data)), max_size=24), label="cuts")
    fuzz_once(data, points, config)


@FUZZ_SETTINGS
@given(data=mutated_streams(), size=st.integers(1, 7))
def test_mutated_streams_byte_by_byte_and_in_small_pieces(data: bytes, size: int) -> None:
    """Small fixed-size pieces put a cut inside every CRLF and every keyword."""
    fuzz_once(data, list(range(size, len(data), size)), CONFIGS[0])


def test_fuzz_statistics() -> None:
    """Not a check: prints what the fuzz tests above tried (run with -s to see it)."""
    print("\nfuzz:", ", ".join(f"{k}: {v}" for k, v in sorted(STATS.items())))


def test_the_harness_catches_a_missing_terminator() -> None:
    bad = Reply(b"+OK\r\n", b"line\r\n", lines=1)
    try:
        check_reply(bad)
    except AssertionError:
        return
    raise AssertionError("check_reply accepted a payload without its terminating dot")


# -- divergences the fuzzing found (fixed; kept as regression tests) ------------------------


def test_a_message_number_with_many_leading_zeros_is_still_that_number() -> None:
    """``0000000000001`` is 1, as ``000000000001`` (12 digits) already is."""
    store = new_store()
    protocol = Pop3Protocol(store, apop_timestamp=STAMP)
    protocol.receive_data(
        LOGIN + b"LIST 000000000001\r\nLIST 0000000000001\r\n"
        b"TOP 1 000000000001\r\nTOP 1 0000000000001\r\n"
    )
    replies = []
    while (command := protocol.next_command()) is not None:
        replies.append(protocol.handle(command))
    size = store["alice"].messages[0].size
    assert replies[2].status == b"+OK 1 %d\r\n" % size  # 12 digits: message 1
    assert replies[3].status == replies[2].status  # 13 digits: -ERR No such message
    assert replies[5].payload == replies[4].payload  # 13 digits: TOP 1 0 instead of TOP 1 1
