"""--transcript: writing every session, telnet style, while the server runs."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import TextIO

import trio

from .._session_record import Entry, EntryKind, SessionRecord
from .._transcript import Transcript
from ._console import CannotStart, error, say

__all__ = [
    "TRANSCRIPT_INTERVAL",
    "TranscriptFollower",
    "TranscriptSink",
    "follow",
    "open_transcript",
]

#: Seconds between two looks at the transcript when writing it with --transcript.
TRANSCRIPT_INTERVAL = 0.2


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


class TranscriptSink:
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
            say(text.rstrip("\n"))
            return
        try:
            self.file.write(text)
            self.file.flush()
        except OSError as exc:
            self.failed = True
            error(f"{self.name}: cannot write the transcript: {exc.strerror or exc}")


async def follow(follower: TranscriptFollower) -> None:
    while True:
        follower.flush()
        await trio.sleep(TRANSCRIPT_INTERVAL)


def open_transcript(args: argparse.Namespace, stack: ExitStack) -> TranscriptSink | None:
    if args.transcript is None:
        return None
    if args.transcript == "-":
        return TranscriptSink(None, "-")
    try:
        file = stack.enter_context(open(args.transcript, "w", encoding="utf-8"))  # noqa: SIM115
    except OSError as exc:
        raise CannotStart(
            f"{args.transcript}: cannot write the transcript: {exc.strerror or exc}"
        ) from None
    return TranscriptSink(file, args.transcript)
