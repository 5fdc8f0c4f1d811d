"""The cassette file: a recorded POP3 conversation as JSON Lines, written and read.

The first line is the header::

    {"format": "fakepop-cassette", "version": 1, "fakepop": "0.1.0",
     "upstream": "pop.example.com:995", "upstream_tls": true,
     "created": "2024-06-03T09:00:00+00:00",
     "redaction": {"secrets": "****", "bodies": "keep"}}

Every other line is one entry of one session (sessions are numbered from 1 in the
order their connections were accepted; their entries may interleave):

- ``{"kind": "connect", "session": 1, "t": 0.0, "tls": false}`` opens a session;
  ``tls`` is true for implicit TLS (POP3S) from the first octet.
- ``{"kind": "line", "session": 1, "t": 0.0021, "from": "server", "state":
  "AUTHORIZATION", "text": "+OK ready\\r\\n"}``: one line as it crossed the proxy, its
  line ending included. ``text`` holds it when it is UTF-8, ``base64`` otherwise.
  ``state`` is the POP3 state a client line was sent in, or the state after a server
  line. A server status line has ``answers``, the client command it answers (as
  stored); a line of a multi-line reply has ``"payload": true``. ``redacted`` is
  ``"secret"`` (a password, APOP digest or SASL response is ``****``) or ``"body"``
  (a message line rewritten by the ``bodies`` setting). ``flags`` lists what was
  relayed as received even though malformed: ``bare-lf`` (a line ending in LF without
  CR), ``unterminated`` (the connection closed in the middle of the line),
  ``not-a-status`` (a server line where a status line belongs), ``not-base64`` (a
  redacted SASL response or AUTH initial response that was not base64).
- ``{"kind": "tls", "session": 1, "t": 0.01}``: TLS started here, after STLS.
- ``{"kind": "close", "session": 1, "t": 0.05, "by": "client"}``: the session ended;
  ``by`` says which side closed first (``client`` or ``server``).

``t`` is seconds since the session's connection was accepted.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from ._state import State
from .errors import CassetteError

__all__ = [
    "CASSETTE_FORMAT",
    "CASSETTE_VERSION",
    "Cassette",
    "CassetteEntry",
    "CassetteSession",
    "CassetteWriter",
    "read_cassette",
]

#: The ``format`` of every cassette's header.
CASSETTE_FORMAT = "fakepop-cassette"
#: The version of the format this fakepop writes and reads.
CASSETTE_VERSION = 1

Side = Literal["client", "server"]
_KINDS = ("connect", "line", "tls", "close")
_FLAGS = frozenset({"bare-lf", "unterminated", "not-a-status", "not-base64"})


@dataclass(frozen=True)
class CassetteEntry:
    """One entry of a session (see the module's docstring for the fields)."""

    kind: Literal["connect", "line", "tls", "close"]
    session: int
    t: float
    side: Side | None = None  # ``from`` in the file
    data: bytes = b""
    state: State | None = None
    answers: str | None = None
    payload: bool = False
    redacted: Literal["secret", "body"] | None = None
    flags: tuple[str, ...] = ()
    tls: bool = False
    by: Side | None = None
    #: Where the entry is in its file (1 is the header), for error messages.
    line_number: int = 0

    def to_json(self) -> str:
        record: dict[str, Any] = {"kind": self.kind, "session": self.session, "t": self.t}
        if self.kind == "connect":
            record["tls"] = self.tls
        elif self.kind == "close":
            record["by"] = self.by
        elif self.kind == "line":
            record["from"] = self.side
            record["state"] = None if self.state is None else self.state.value
            try:
                record["text"] = self.data.decode("utf-8")
            except UnicodeDecodeError:
                record["base64"] = base64.b64encode(self.data).decode("ascii")
            if self.answers is not None:
                record["answers"] = self.answers
            if self.payload:
                record["payload"] = True
            if self.redacted is not None:
                record["redacted"] = self.redacted
            if self.flags:
                record["flags"] = list(self.flags)
        return json.dumps(record, ensure_ascii=False)


@dataclass
class CassetteSession:
    """The entries of one session, in order, after its ``connect``."""

    number: int
    implicit_tls: bool
    entries: list[CassetteEntry] = field(default_factory=list)

    def lines(self, side: Side | None = None) -> Iterator[CassetteEntry]:
        return (e for e in self.entries if e.kind == "line" and side in (None, e.side))


@dataclass
class Cassette:
    """A cassette file, read and checked: its header and its sessions in order."""

    path: str
    header: Mapping[str, Any]
    sessions: list[CassetteSession]

    @property
    def uses_tls(self) -> bool:
        """Whether any session used TLS (POP3S or STLS), so a replay needs a
        certificate."""
        return any(s.implicit_tls or any(e.kind == "tls" for e in s.entries) for s in self.sessions)


class CassetteWriter:
    """Appends entries to a new cassette file, one flushed line each, so a proxy
    stopped at any moment leaves every entry it recorded."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        upstream: str,
        upstream_tls: bool,
        bodies: str,
    ) -> None:
        from . import __version__  # noqa: PLC0415 - the package imports lazily

        self.path = Path(path)
        self._file: IO[str] = self.path.open("w", encoding="utf-8", newline="\n")
        header = {
            "format": CASSETTE_FORMAT,
            "version": CASSETTE_VERSION,
            "fakepop": __version__,
            "upstream": upstream,
            "upstream_tls": upstream_tls,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "redaction": {"secrets": "****", "bodies": bodies},
        }
        self._write(json.dumps(header))

    def write(self, entry: CassetteEntry) -> None:
        self._write(entry.to_json())

    def _write(self, text: str) -> None:
        if not self._file.closed:
            self._file.write(text + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()


# -- reading ----------------------------------------------------------------------------


def read_cassette(path: str | os.PathLike[str]) -> Cassette:
    """Read and check a cassette file; :class:`~fakepop.errors.CassetteError` names
    the file and line of the first thing wrong with it."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(name, None, f"cannot read the cassette: {exc}") from exc
    rows = text.split("\n")
    if rows and rows[-1] == "":
        rows.pop()
    elif rows:
        raise CassetteError(name, len(rows), "the last line has no line end (truncated?)")
    if not rows:
        raise CassetteError(name, None, "the file is empty, not a cassette")
    header = _header(name, _json(name, 1, rows[0]))
    sessions: dict[int, CassetteSession] = {}
    closed: set[int] = set()
    for number, row in enumerate(rows[1:], start=2):
        _add(name, _entry(name, number, _json(name, number, row)), sessions, closed)
    for session in sessions.values():
        if session.number not in closed:
            raise CassetteError(
                name, None, f"session {session.number} never ends (a truncated cassette?)"
            )
    return Cassette(name, header, list(sessions.values()))


def _add(
    name: str, entry: CassetteEntry, sessions: dict[int, CassetteSession], closed: set[int]
) -> None:
    number, session = entry.line_number, sessions.get(entry.session)
    if entry.kind == "connect":
        if session is not None:
            raise CassetteError(name, number, f"session {entry.session} connects twice")
        if entry.session != len(sessions) + 1:
            raise CassetteError(
                name,
                number,
                f"session {entry.session} connects after session "
                f"{len(sessions)}: sessions are numbered 1, 2, ... in order",
            )
        sessions[entry.session] = CassetteSession(entry.session, entry.tls)
        return
    if session is None:
        raise CassetteError(name, number, f"session {entry.session} was never connected")
    if entry.session in closed:
        raise CassetteError(name, number, f"session {entry.session} has ended already")
    if entry.kind == "close":
        closed.add(entry.session)
    session.entries.append(entry)


def _json(name: str, number: int, row: str) -> dict[str, Any]:
    try:
        value = json.loads(row)
    except json.JSONDecodeError as exc:
        raise CassetteError(name, number, f"not JSON ({exc.msg}); truncated?") from exc
    if not isinstance(value, dict):
        raise CassetteError(name, number, "not a JSON object")
    return value


def _header(name: str, record: dict[str, Any]) -> dict[str, Any]:
    if record.get("format") != CASSETTE_FORMAT:
        raise CassetteError(
            name, 1, f"not a fakepop cassette: the header's format is {record.get('format')!r}"
        )
    if record.get("version") != CASSETTE_VERSION:
        raise CassetteError(
            name,
            1,
            f"cassette format version {record.get('version')!r}; this fakepop "
            f"reads version {CASSETTE_VERSION} only",
        )
    return record


def _field(name: str, number: int, record: dict[str, Any], key: str, kind: type) -> Any:
    value = record.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CassetteError(name, number, f"{key!r} must be {kind.__name__}, not {value!r}")
    return value


def _entry(name: str, number: int, record: dict[str, Any]) -> CassetteEntry:
    kind = record.get("kind")
    if kind not in _KINDS:
        raise CassetteError(name, number, f"unknown entry kind {kind!r}")
    session = _field(name, number, record, "session", int)
    t = record.get("t")
    if not isinstance(t, (int, float)) or isinstance(t, bool) or t < 0:
        raise CassetteError(name, number, f"'t' must be seconds >= 0, not {t!r}")
    common: dict[str, Any] = {"kind": kind, "session": session, "t": float(t)}
    if kind == "connect":
        return CassetteEntry(
            **common, tls=_field(name, number, record, "tls", bool), line_number=number
        )
    if kind == "close":
        by = record.get("by")
        if by not in ("client", "server"):
            raise CassetteError(name, number, f"'by' must be 'client' or 'server', not {by!r}")
        return CassetteEntry(**common, by=by, line_number=number)
    if kind == "tls":
        return CassetteEntry(**common, line_number=number)
    return _line_entry(name, number, record, common)


def _line_data(name: str, number: int, record: dict[str, Any]) -> bytes:
    if ("text" in record) == ("base64" in record):
        raise CassetteError(name, number, "a line has exactly one of 'text' and 'base64'")
    if "text" in record:
        data: bytes = _field(name, number, record, "text", str).encode("utf-8")
    else:
        try:
            data = base64.b64decode(_field(name, number, record, "base64", str), validate=True)
        except binascii.Error as exc:
            raise CassetteError(name, number, f"'base64' is not base64: {exc}") from exc
    if not data:
        raise CassetteError(name, number, "an empty line (a line has at least its ending)")
    return data


def _line_entry(
    name: str, number: int, record: dict[str, Any], common: dict[str, Any]
) -> CassetteEntry:
    side = record.get("from")
    if side not in ("client", "server"):
        raise CassetteError(name, number, f"'from' must be 'client' or 'server', not {side!r}")
    data = _line_data(name, number, record)
    try:
        state = State(record.get("state"))
    except ValueError:
        raise CassetteError(name, number, f"unknown POP3 state {record.get('state')!r}") from None
    flags = record.get("flags", [])
    if not isinstance(flags, list) or not set(flags) <= _FLAGS:
        raise CassetteError(name, number, f"unknown flags {flags!r}")
    redacted = record.get("redacted")
    if redacted not in (None, "secret", "body"):
        raise CassetteError(
            name, number, f"'redacted' must be 'secret' or 'body', not {redacted!r}"
        )
    answers = record.get("answers")
    if answers is not None and not isinstance(answers, str):
        raise CassetteError(name, number, f"'answers' must be a string, not {answers!r}")
    return CassetteEntry(
        **common,
        side=side,
        data=data,
        state=state,
        answers=answers,
        payload=bool(record.get("payload", False)),
        redacted=redacted,
        flags=tuple(flags),
        line_number=number,
    )
