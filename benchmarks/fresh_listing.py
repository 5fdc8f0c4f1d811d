"""The first LIST + UIDL after a mailbox changed, measured in-process.

Sessions that see the same mail share their listings, so the socket workloads mostly
measure reuse. This one delivers a message before every round, so every round's
listing is formatted from scratch: the cost a poller pays when new mail arrived. It
drives the sans-IO protocol directly and times only the LIST and UIDL commands with
``time.process_time``. The floor formats the same listings line by line, the way the
bare Trio server does once at start-up.
"""

from __future__ import annotations

import statistics
import time

from benchmarks.bare_trio_server import listings
from benchmarks.workloads import make_message
from fakepop import MailStore, Pop3Protocol

__all__ = ["measure"]


def _run(protocol: Pop3Protocol, commands: bytes) -> None:
    protocol.receive_data(commands)
    while (command := protocol.next_command()) is not None:
        reply = protocol.handle(command)
        if not reply.ok:
            raise RuntimeError(f"unexpected reply {reply.status!r}")


def _fakepop(count: int, size: int, rounds: int) -> list[float]:
    store = MailStore()
    store.add_user("lister", "pw", (make_message(i, size) for i in range(count - 1)))
    timings = []
    for index in range(rounds):
        store.deliver("lister", make_message(count + index, size))
        protocol = Pop3Protocol(store)
        _run(protocol, b"USER lister\r\nPASS pw\r\n")
        started = time.process_time()
        _run(protocol, b"LIST\r\nUIDL\r\n")
        timings.append(time.process_time() - started)
        protocol.connection_lost()
    return timings


def _floor(count: int, size: int, rounds: int) -> list[float]:
    timings = []
    for index in range(rounds):
        sizes = [size] * (count + index)
        started = time.process_time()
        listings(sizes)
        timings.append(time.process_time() - started)
    return timings


def measure(impl: str, count: int, size: int, rounds: int) -> float:
    """Median CPU seconds for one LIST + UIDL pair formatted from scratch."""
    run = _fakepop if impl == "fakepop" else _floor
    return statistics.median(run(count, size, rounds))
