"""LIST and UIDL listings (RFC 1939 section 7): built once per mailbox snapshot, with
the lines of messages marked deleted cut out per session.

The per-message work is done in C (zip, map, join), and the "1 ", "2 ", ... line
starts are kept by the :class:`Listings` of the store whose mailboxes they list,
grown under its lock as sessions in several threads may ask at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from itertools import chain
from operator import attrgetter

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

    def _join(
        self, messages: tuple[StoredMessage, ...], suffix: Callable[[StoredMessage], bytes]
    ) -> bytes:
        # The number list may be longer than the mailbox; zip stops at the last message.
        pairs = zip(self._numbered(len(messages)), map(suffix, messages), strict=False)
        return b"".join(chain.from_iterable(pairs)) + b".\r\n"


def without(listing: bytes, numbers: list[int]) -> bytes:
    """A full listing with the lines of the given message numbers (ascending) cut out.

    Every line starts with its number and a space, and nothing else in a listing
    follows CRLF with digits and a space, so each line is found by one forward search
    from the previous cut: linear in the listing, however many lines are cut.
    """
    parts = []
    position = 0
    for number in numbers:
        line_start = b"\r\n%d " % number
        start = 0 if number == 1 else listing.index(line_start, max(position - 2, 0)) + 2
        parts.append(listing[position:start])
        position = listing.index(b"\r\n", start) + 2
    parts.append(listing[position:])
    return b"".join(parts)
