"""LIST and UIDL listings (RFC 1939 section 7): built once per mailbox snapshot, with
the lines of messages marked deleted cut out per session.

The per-message work is done in C (zip, map, join, accumulate), and the "1 ", "2 ",
... line starts are kept by the :class:`Listings` of the store whose mailboxes they
list, grown under its lock as sessions in several threads may ask at once. Where each
line starts is worked out only once a session has marked a message, and then once per
snapshot, so that cutting lines out is a lookup per line and one copy of the rest.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate, chain
from operator import add, attrgetter

from ._message import StoredMessage

__all__ = ["Listings", "without"]

_LIST_SUFFIX: Callable[[StoredMessage], bytes] = attrgetter("list_suffix")
_UIDL_SUFFIX: Callable[[StoredMessage], bytes] = attrgetter("uidl_suffix")


class Listings:
    """Formats the full listings of one store's mailboxes."""

    def __init__(self) -> None:
        self._prefixes: list[bytes] = []
        self._lock = threading.Lock()

    def _numbered(self, count: int) -> list[bytes]:
        prefixes = self._prefixes
        if len(prefixes) < count:
            with self._lock:
                start = len(prefixes)
                prefixes.extend([b"%d " % n for n in range(start + 1, count + 1)])
        return prefixes

    def full_list(self, messages: tuple[StoredMessage, ...]) -> bytes:
        """``n size`` for every message, then the terminating dot."""
        return self._join(messages, _LIST_SUFFIX)

    def full_uidl(self, messages: tuple[StoredMessage, ...]) -> bytes:
        """``n uid`` for every message, then the terminating dot."""
        return self._join(messages, _UIDL_SUFFIX)

    def list_starts(self, messages: tuple[StoredMessage, ...]) -> bytes:
        """Where each line of :meth:`full_list` starts, then where its dot does."""
        return self._starts(messages, _LIST_SUFFIX)

    def uidl_starts(self, messages: tuple[StoredMessage, ...]) -> bytes:
        """Where each line of :meth:`full_uidl` starts, then where its dot does."""
        return self._starts(messages, _UIDL_SUFFIX)

    def _starts(
        self, messages: tuple[StoredMessage, ...], suffix: Callable[[StoredMessage], bytes]
    ) -> bytes:
        # The offsets as native unsigned 64-bit integers (memoryview.cast("Q") reads
        # them in place): 0, then the running total of the lines' lengths.
        lengths = map(add, map(len, self._numbered(len(messages))), map(len, map(suffix, messages)))
        return array("Q", chain((0,), accumulate(lengths))).tobytes()

    def _join(
        self, messages: tuple[StoredMessage, ...], suffix: Callable[[StoredMessage], bytes]
    ) -> bytes:
        # The number list may be longer than the mailbox; zip stops at the last message.
        pairs = zip(self._numbered(len(messages)), map(suffix, messages), strict=False)
        return b"".join(chain.from_iterable(pairs)) + b".\r\n"


def without(listing: bytes, numbers: list[int], starts: Sequence[int]) -> bytes:
    """A full listing with the lines of the given message numbers (ascending) cut out;
    ``starts``: where each of its lines starts, then where its dot does."""
    whole = memoryview(listing)
    parts = []
    position = 0
    for number in numbers:
        parts.append(whole[position : starts[number - 1]])
        position = starts[number]
    parts.append(whole[position:])
    return b"".join(parts)  # the only copy
