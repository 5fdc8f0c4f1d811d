"""A recorded session read as the server's replies, each with what it answered and
when: the ground model replay derives the recorded server from.

Each status line that answers a command (``answers`` in the cassette) is one
:class:`RecordedReply`, with its payload, the client line it answers (found the way
the recording proxy paired them: commands in order, a SASL exchange's continuations
answering nothing), the last SASL response of an AUTH exchange, whether TLS was
active, how long the server took, and the unasked status line that followed it (the
notice of a server that hangs up). A session also says whether the server hung up:
closed the connection right after its last reply, without QUIT.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from ._cassette import CassetteEntry, CassetteSession
from ._cassette_rules import line_content
from ._lines import ascii_upper
from ._state import State

__all__ = [
    "HANG_UP_WITHIN",
    "Judged",
    "RecordedReply",
    "RecordedSession",
    "read_session",
    "status_words",
]

#: Seconds within which a server's close must follow its last reply to count as hanging
#: up after it; a later close is for another reason (an idle client's autologout).
HANG_UP_WITHIN = 1.0
_CODE = re.compile(r"^\[([^\]]*)\]\s*")  # RFC 2449 section 8


def status_words(status: bytes) -> str:
    """A status line's text after ``+OK`` or ``-ERR``, response code included."""
    return status.decode("utf-8", "replace").partition(" ")[2]


@dataclass
class RecordedReply:
    """One reply of a recorded session, and the situation it was given in."""

    command: str  # as stored: "RETR 1", "PASS ****"
    status: bytes  # the status line's content
    payload: list[bytes] = field(default_factory=list)
    #: The state after the reply, and the state after the reply before it.
    state: State = State.AUTHORIZATION
    before: State = State.AUTHORIZATION
    #: The client line the reply answers, and for an AUTH exchange its last response.
    line: CassetteEntry | None = None
    response: CassetteEntry | None = None
    #: Whether TLS was active when the command was sent.
    tls: bool = False
    #: Seconds from the command (or the last SASL response) to the reply, counted from
    #: the server's previous line where that came later (a pipelined command waits).
    took: float = 0.0
    #: The content of the status line the server sent right after, unasked.
    notice: bytes | None = None

    @property
    def keyword(self) -> str:
        return ascii_upper(self.command.partition(" ")[0])

    @property
    def argument(self) -> str:
        return self.command.partition(" ")[2]

    @property
    def positive(self) -> bool:
        return self.status.startswith(b"+OK")

    @property
    def negative(self) -> bool:
        return self.status == b"-ERR" or self.status.startswith(b"-ERR ")

    @property
    def words(self) -> str:
        """The text after the status indicator, response code included."""
        return status_words(self.status)

    @property
    def code(self) -> str | None:
        found = _CODE.match(self.words)
        return None if found is None else found.group(1)

    @property
    def text(self) -> str:
        """The text after the status indicator and the response code."""
        return _CODE.sub("", self.words)

    @property
    def length(self) -> int | None:
        """The octets of the command line, counted as the engine's limit counts them
        (CRLF included, whatever its ending was), or None when the cassette does not
        keep the whole line (a redacted secret)."""
        if self.line is None or self.line.redacted is not None:
            return None
        return len(line_content(self.line.data)[0]) + 2


@dataclass(frozen=True)
class Judged:
    """A recorded reply and the texts entry of its situation (None: not known)."""

    reply: RecordedReply
    key: str | None


@dataclass
class RecordedSession:
    """A session's replies, and whether the server hung up after the last one."""

    replies: list[RecordedReply]
    greeting: bytes | None
    hung_up: bool


def read_session(session: CassetteSession) -> RecordedSession:
    """The session's replies in order, each in its situation."""
    reader = _Reader(session.implicit_tls)
    close: CassetteEntry | None = None
    for entry in session.entries:
        if entry.kind == "tls":
            reader.tls = True
        elif entry.kind == "close":
            close = entry
        elif entry.side == "client":
            reader.client(entry)
        else:
            reader.server(entry)
    replies = reader.replies
    return RecordedSession(replies, reader.greeting, _hung_up(replies, close, reader.last_server))


class _Reader:
    """Pairs a session's status lines with the client lines they answer, as the
    recording proxy did: commands in order; in a SASL exchange, the responses answer
    nothing but the exchange's end, and the challenges answer nothing."""

    def __init__(self, tls: bool) -> None:
        self.tls = tls
        self.replies: list[RecordedReply] = []
        self.greeting: bytes | None = None
        self.last_server = 0.0  # when the server's previous line crossed the proxy
        self._commands: deque[tuple[CassetteEntry, bool]] = deque()  # sent, unanswered
        self._response: CassetteEntry | None = None  # the exchange's last response

    def client(self, entry: CassetteEntry) -> None:
        if entry.state is State.AUTHENTICATING:
            self._response = entry
        else:
            self._commands.append((entry, self.tls))

    def server(self, entry: CassetteEntry) -> None:
        content = line_content(entry.data)[0]
        reply = self.replies[-1] if self.replies else None
        if entry.payload:
            if reply is not None and content != b".":
                reply.payload.append(content[1:] if content.startswith(b"..") else content)
        elif self.greeting is None:
            self.greeting = content
        elif entry.answers is None:
            if reply is not None and reply.notice is None:
                reply.notice = content
        elif not _challenge(entry.answers, content):
            self.replies.append(self._reply(entry, entry.answers, content))
        self.last_server = entry.t

    def _reply(self, entry: CassetteEntry, answers: str, content: bytes) -> RecordedReply:
        line, tls = self._commands.popleft() if self._commands else (None, self.tls)
        response, self._response = self._response, None
        sent = entry.t
        if response is not None:
            sent = response.t
        elif line is not None:
            sent = line.t
        return RecordedReply(
            answers,
            content,
            state=entry.state or State.AUTHORIZATION,
            before=self.replies[-1].state if self.replies else State.AUTHORIZATION,
            line=line,
            response=response,
            tls=tls,
            took=max(entry.t - max(sent, self.last_server), 0.0),
        )


def _challenge(answers: str, content: bytes) -> bool:
    # RFC 5034 section 4: a server challenge is "+" SP base64, or "+ " alone.
    keyword = ascii_upper(answers.partition(" ")[0])
    return keyword == "AUTH" and (content == b"+" or content.startswith(b"+ "))


def _hung_up(replies: list[RecordedReply], close: CassetteEntry | None, last: float) -> bool:
    # The server ended the session right after its last reply, which was not to QUIT:
    # it sent a notice, or closed the connection at once.
    if not replies or close is None or replies[-1].keyword == "QUIT":
        return False
    if replies[-1].notice is not None:
        return True
    return close.by == "server" and close.t - last <= HANG_UP_WITHIN
