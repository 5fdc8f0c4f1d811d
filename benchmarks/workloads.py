"""What each workload puts in the mailboxes, and how big each workload is.

The server process and the client both import this module, so they agree on users,
passwords and message counts without passing mail over the control channel.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "WORKLOADS", "MailboxPlan", "Scale", "make_message", "plans_for"]

WORKLOADS = ("churn", "retr", "list", "list-cold", "list-fresh", "store")

_BODY_LINE = b"x" * 70 + b"\r\n"


@dataclass(frozen=True)
class Scale:
    """Loop counts and sizes; FULL is the real benchmark, QUICK a seconds-long smoke test."""

    churn_clients: int
    churn_sessions: int  # measured sessions, all clients together
    churn_mailbox: int  # messages in each churn user's mailbox (STAT counts them)
    retr_messages: int
    retr_size: int
    retr_rounds: int  # each round: every RETR pipelined in one write, then all replies
    list_messages: int
    list_size: int
    list_pairs: int  # LIST + UIDL pairs, each pair sent in one write
    store_messages: int
    store_size: int
    recording_chunk: int  # churned sessions in each chunk with, or without, recording
    recording_pairs: int  # pairs of such chunks in each run (see recording.py)


FULL = Scale(
    churn_clients=20,
    churn_sessions=20_000,
    churn_mailbox=10,
    retr_messages=200,
    retr_size=100 * 1024,
    retr_rounds=150,
    list_messages=20_000,
    list_size=300,
    list_pairs=2000,
    store_messages=100_000,
    store_size=1024,
    recording_chunk=200,
    recording_pairs=50,
)

QUICK = Scale(
    churn_clients=20,
    churn_sessions=400,
    churn_mailbox=10,
    retr_messages=200,
    retr_size=100 * 1024,
    retr_rounds=2,
    list_messages=2_000,
    list_size=300,
    list_pairs=10,
    store_messages=5_000,
    store_size=1024,
    recording_chunk=100,
    recording_pairs=2,
)


@dataclass(frozen=True)
class MailboxPlan:
    """One user's mailbox: ``count`` generated messages of exactly ``size`` octets."""

    user: str
    password: str
    count: int
    size: int

    def messages(self) -> Iterator[bytes]:
        """The messages, generated one at a time so no second copy stays alive."""
        for index in range(self.count):
            yield make_message(index, self.size)


def plans_for(workload: str, scale: Scale) -> list[MailboxPlan]:
    """The mailboxes a server needs for ``workload`` (the store workload has no server)."""
    if workload == "churn":
        # One user per client: a POP3 mailbox is locked while a session has it open.
        return [
            MailboxPlan(f"churn{i:02d}", f"pw{i:02d}", scale.churn_mailbox, 1024)
            for i in range(scale.churn_clients)
        ]
    if workload == "retr":
        return [MailboxPlan("retr", "retr-pw", scale.retr_messages, scale.retr_size)]
    if workload in ("list", "list-cold"):
        return [MailboxPlan("lister", "list-pw", scale.list_messages, scale.list_size)]
    raise ValueError(f"no server mailboxes for workload {workload!r}")


def make_message(index: int, size: int) -> bytes:
    """A distinct RFC 5322 message of exactly ``size`` octets, CRLF line endings,
    no line starting with a dot (so the stored and the sent size agree)."""
    header = (
        f"From: sender{index % 97}@example.org\r\n"
        "To: bench@example.org\r\n"
        f"Subject: benchmark message {index}\r\n"
        f"Message-ID: <{index}.bench@example.org>\r\n"
        "\r\n"
    ).encode()
    remaining = size - len(header)
    if remaining < 2:
        raise ValueError(f"size {size} is too small for the headers ({len(header)} octets)")
    full_lines = max(0, (remaining - 2) // len(_BODY_LINE) - 1)
    body = _BODY_LINE * full_lines
    remaining -= len(body)
    # The last line takes what is left (2 to 2 * len(_BODY_LINE) + 1 octets, CRLF included).
    body += f"{index:x}".encode().ljust(remaining - 2, b"y")[: remaining - 2] + b"\r\n"
    message = header + body
    assert len(message) == size
    return message
