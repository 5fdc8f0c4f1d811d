"""Hypothesis strategies for mail, mailboxes and faults.

A test with three hand-written messages finds the bugs its author thought of. These
strategies draw the mail and the failures nobody thinks of: a multipart with no text
part, a ``=?koi8-r?`` Subject, a line that is just ``.``, a message of 0 octets, the
connection dying after 4,097 octets of the third RETR::

    from hypothesis import given
    from fakepop import strategies

    @given(mail=strategies.mailboxes(), plan=strategies.fault_plans())
    def test_importer(mail, plan): ...

- :func:`messages`: valid RFC 5322 messages (octets), with a keyword for each kind
  of trouble; :func:`malformed_messages`: what real mailboxes hold anyway, each
  tagged with its defect (:class:`Malformed`).
- :func:`mailboxes`: whole mailbox dicts for ``Pop3Server``, ``Pop3ServerThread``
  and ``@pytest.mark.pop3``, from :func:`user_names`, :func:`passwords` and
  :func:`uids`.
- :func:`fault_plans`: a few faults of :mod:`fakepop.faults`, each striking a
  bounded number of times, armed with ``plan.arm(server.faults)`` (:class:`FaultPlan`).

Everything is drawn from hypothesis alone (no ``random``, no clock), so a failure
replays from its seed, and hypothesis shrinks it toward the simplest mail and the
fewest faults that still fail. Install with ``pip install "fakepop[hypothesis]"``;
the package and its pytest plugin never import this module themselves.
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401 - only to say what is missing
except ImportError as exc:  # pragma: no cover - tested in a process without it
    raise ImportError(
        "fakepop.strategies needs Hypothesis: pip install 'fakepop[hypothesis]'"
    ) from exc

from ._fault_strategies import FAULT_KINDS, SURVIVABLE_FAULT_KINDS, FaultPlan, fault_plans
from ._mailbox_strategies import mailboxes, passwords, uids, user_names
from ._malformed_strategies import DEFECTS, Malformed, malformed_messages
from ._message_strategies import (
    CHARSETS,
    LINE_ENDINGS,
    STRUCTURES,
    TRANSFER_ENCODINGS,
    messages,
)

__all__ = [
    "CHARSETS",
    "DEFECTS",
    "FAULT_KINDS",
    "LINE_ENDINGS",
    "STRUCTURES",
    "SURVIVABLE_FAULT_KINDS",
    "TRANSFER_ENCODINGS",
    "FaultPlan",
    "Malformed",
    "fault_plans",
    "mailboxes",
    "malformed_messages",
    "messages",
    "passwords",
    "uids",
    "user_names",
]
