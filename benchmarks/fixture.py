"""What the pytest fixtures cost a test: starting a server, and resetting a shared one.

    python benchmarks/fixture.py            # 300 cycles each, a few seconds
    python benchmarks/fixture.py --quick    # 30 cycles each, a smoke test

Everything runs in this process, measured in wall time as a test would see it:

- ``pop3_server`` cycle: ``Pop3ServerThread(mailboxes)``, ``start()``, one raw-socket
  client (greeting, USER, PASS, STAT, QUIT, one command per reply), ``stop()``.
- ``pop3_shared_server`` reset: ``reset(mailboxes)`` of a started server.

with anchors measured the same way: a bare ``trio.serve_tcp`` server in a thread
(start, the same client exchange answered with canned ``+OK`` lines, stop), and
``trio.run`` of nothing in a thread. The fixture's target is a ratio to the first
anchor, measured in the same run; the reset's is absolute.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import gc
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

if not __package__:
    # Run as `python benchmarks/fixture.py`: make `fakepop` importable from a checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakepop import MailboxSpec, Pop3ServerThread

TIMEOUT = 10.0
FIXTURE_TARGET = 1.2  # the fixture's cycle against the bare Trio thread's, same run
# What a typical test puts in its marker: two users, three small messages.
MAILBOXES: dict[str, MailboxSpec] = {
    "alice": {
        "password": "secret",
        "messages": [
            "From: a@example.com\nSubject: one\n\nFirst.\n",
            "From: b@example.com\nSubject: two\n\nSecond.\n",
        ],
    },
    "bob": {"password": "hunter2", "messages": {"b-1": "Subject: hi\n\nHello, Bob.\n"}},
}
LOGIN = (b"USER alice\r\n", b"PASS secret\r\n", b"STAT\r\n", b"QUIT\r\n")


# -- the client ---------------------------------------------------------------------------


def _read_line(sock: socket.socket) -> bytes:
    # Replies here are single lines that arrive in one segment; read until CRLF anyway.
    data = sock.recv(4096)
    while not data.endswith(b"\r\n"):
        more = sock.recv(4096)
        if not more:
            raise ConnectionError(f"connection closed after {data!r}")
        data += more
    return data


def _login_stat_quit(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=TIMEOUT) as sock:
        _read_line(sock)  # greeting
        for command in LOGIN:
            sock.sendall(command)
            if not _read_line(sock).startswith(b"+OK"):
                raise RuntimeError(f"{command!r} failed")


# -- what is measured ---------------------------------------------------------------------


# (construct + start, client, stop) of every fakepop_cycle, for the breakdown.
PHASES: list[tuple[float, float, float]] = []


def fakepop_cycle() -> None:
    """The pop3_server fixture and one short session."""
    began = time.perf_counter()
    server = Pop3ServerThread(MAILBOXES)
    server.start()
    listening = time.perf_counter()
    _login_stat_quit(server.address)
    served = time.perf_counter()
    server.stop()
    PHASES.append((listening - began, served - listening, time.perf_counter() - served))


def fakepop_start_stop() -> None:
    """The pop3_server fixture alone: no client."""
    server = Pop3ServerThread(MAILBOXES)
    server.start()
    server.stop()


class BareTrioServer:
    """The anchor: trio.serve_tcp in a thread; each connection gets a greeting."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._port = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        async def greet(stream: trio.SocketStream) -> None:
            # The same exchange as fakepop's cycle: a greeting, then +OK to each
            # command line (the client sends one at a time), until QUIT.
            async with stream:
                await stream.send_all(b"+OK bare\r\n")
                while data := await stream.receive_some():
                    await stream.send_all(b"+OK\r\n")
                    if data.startswith(b"QUIT"):
                        break

        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._scope:
            async with trio.open_nursery() as nursery:
                serve = functools.partial(trio.serve_tcp, greet, 0, host="127.0.0.1")
                listeners = await nursery.start(serve)
                self._port = listeners[0].socket.getsockname()[1]
                self._ready.set()

    def start(self) -> tuple[str, int]:
        self._thread.start()
        if not self._ready.wait(TIMEOUT):
            raise RuntimeError("the bare server did not start")
        return ("127.0.0.1", self._port)

    def stop(self) -> None:
        token, scope = self._token, self._scope
        if token is None or scope is None:
            raise RuntimeError("the bare server is not running")
        token.run_sync_soon(scope.cancel)
        self._thread.join(TIMEOUT)


def bare_trio_cycle() -> None:
    """Anchor: start, the same client login/STAT/QUIT, stop."""
    server = BareTrioServer()
    address = server.start()
    _login_stat_quit(address)
    server.stop()


def trio_thread_cycle() -> None:
    """Anchor: a thread that runs trio.run of nothing, started and joined."""

    async def nothing() -> None:
        pass

    thread = threading.Thread(target=trio.run, args=(nothing,), daemon=True)
    thread.start()
    thread.join(TIMEOUT)


# -- measuring ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    label: str
    median: float  # seconds
    p90: float
    target: float | None = None  # seconds, or a ratio to ``anchor``
    anchor: Figure | None = None
    is_anchor: bool = False

    def cells(self, quick: bool) -> list[str]:
        if self.target is None:
            role = "anchor" if self.is_anchor else "—"
            return [self.label, _ms(self.median), _ms(self.p90), "", role, ""]
        if self.anchor is None:
            judged, target, ratio = self.median, f"≤ {_ms(self.target)}", ""
        else:
            judged = self.median / self.anchor.median
            target, ratio = f"≤ {self.target:.2f}x anchor", f"{judged:.2f}x"
        met = "(quick)" if quick else ("yes" if judged <= self.target else "**NO**")
        return [self.label, _ms(self.median), _ms(self.p90), ratio, target, met]


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f} ms" if ms < 1 else f"{ms:.2f} ms"


def measure(
    label: str, work: Callable[[], None], repetitions: int, target: float | None = None
) -> Figure:
    for _ in range(max(3, repetitions // 10)):  # warm-up: imports, caches, first sockets
        work()
    gc.collect()
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    deciles = statistics.quantiles(times, n=10)
    return Figure(label, statistics.median(times), deciles[8], target)


def measure_in_turns(
    works: dict[str, Callable[[], None]], repetitions: int
) -> list[Figure]:
    """Like :func:`measure` for each work, run in turns (each round in the other order)
    so that a machine that slows down or speeds up during the run moves every figure
    alike, and a ratio between them stays true."""
    labels = list(works)
    for _ in range(max(3, repetitions // 10)):
        for label in labels:
            works[label]()
    gc.collect()
    times: dict[str, list[float]] = {label: [] for label in labels}
    for round_number in range(repetitions):
        for label in labels if round_number % 2 == 0 else reversed(labels):
            started = time.perf_counter()
            works[label]()
            times[label].append(time.perf_counter() - started)
    figures = []
    for label in labels:
        deciles = statistics.quantiles(times[label], n=10)
        figures.append(Figure(label, statistics.median(times[label]), deciles[8]))
    return figures


def measure_reset(repetitions: int) -> Figure:
    server = Pop3ServerThread()
    server.start()
    try:
        return measure(
            "`reset(mailboxes)` of a started server (pop3_shared_server)",
            lambda: server.reset(MAILBOXES),
            repetitions,
            target=0.1e-3,
        )
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="30 cycles each (a smoke test)")
    args = parser.parse_args()
    cycles = 30 if args.quick else 300
    load = os.getloadavg()[0]  # other work on the machine inflates every figure

    # The fixture's cycle and its anchor in turns: their ratio is the target.
    anchor, cycle = measure_in_turns(
        {
            "bare trio.serve_tcp thread: start, login/STAT/QUIT, stop": bare_trio_cycle,
            "pop3_server: start, login/STAT/QUIT, stop": fakepop_cycle,
        },
        cycles,
    )
    anchor = dataclasses.replace(anchor, is_anchor=True)
    figures = [
        dataclasses.replace(cycle, target=FIXTURE_TARGET, anchor=anchor),
        measure("pop3_server: start, stop (no client)", fakepop_start_stop, cycles),
        anchor,
        dataclasses.replace(
            measure("thread running trio.run(nothing): start, join", trio_thread_cycle, cycles),
            is_anchor=True,
        ),
        measure_reset(cycles * 10),
    ]
    header = ["Figure (wall time per cycle)", "median", "p90", "/ anchor", "target", "met"]
    rows = [figure.cells(args.quick) for figure in figures]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    phases = zip(*PHASES[-cycles:], strict=True)
    start, client, stop = (statistics.median(phase) for phase in phases)
    print(
        f"\npop3_server cycle, median of each phase: construct + start() {_ms(start)}, "
        f"client {_ms(client)}, stop() {_ms(stop)}."
    )
    kind = "Quick" if args.quick else "Full"
    print(
        f"{kind} run: {cycles} cycles per figure ({cycles * 10} resets), Python "
        f"{sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs, "
        f"load average {load:.2f} before the run."
    )


if __name__ == "__main__":
    main()
