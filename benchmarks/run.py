"""Run every benchmark against fakepop and the bare Trio floor; print a markdown table.

    python benchmarks/run.py            # the full run (about half a minute)
    python benchmarks/run.py --quick    # every workload, tiny, in a few seconds (CI)

Each server runs in its own process (see server_process.py) and reports its own CPU
time, so the figures are the server's cost alone; the client runs in this process.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if not __package__:
    # Run as `python benchmarks/run.py`: make the `benchmarks` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import clients, fresh_listing, store_memory
from benchmarks.server_process import ServerProcess, Usage
from benchmarks.workloads import FULL, QUICK, WORKLOADS, Scale, plans_for

IMPLEMENTATIONS = ("fakepop", "floor")


@dataclass(frozen=True)
class Measurement:
    """One measured run: ``units`` of work (sessions, octets, pairs) and what it cost."""

    units: float
    wall: float
    server: Usage  # the server process's CPU time during the run
    client_cpu: float

    @property
    def server_cpu(self) -> float:
        return self.server.total


@dataclass(frozen=True)
class Options:
    scale: Scale
    quick: bool
    server_cpu: int | None  # pin the server here, and the client elsewhere
    profile_dir: Path | None


def _measured(
    server: ServerProcess, work: Callable[[], float], profile: Path | None
) -> Measurement:
    if profile is not None:
        server.profile_start()
    before = server.usage()
    client_before, wall_before = time.process_time(), time.perf_counter()
    units = work()
    wall = time.perf_counter() - wall_before
    client_cpu = time.process_time() - client_before
    measurement = Measurement(units, wall, server.usage() - before, client_cpu)
    if profile is not None:
        _save_profile(server, profile)
    return measurement


def _churn(server: ServerProcess, scale: Scale, profile: Path | None) -> Measurement:
    plans = plans_for("churn", scale)
    credentials = [(plan.user, plan.password) for plan in plans]
    clients.churn(server.port, credentials, max(100, scale.churn_sessions // 20))  # warm-up

    def work() -> float:
        clients.churn(server.port, credentials, scale.churn_sessions)
        return scale.churn_sessions

    return _measured(server, work, profile)


def _batches(
    server: ServerProcess, workload: str, scale: Scale, profile: Path | None
) -> Measurement:
    (plan,) = plans_for(workload, scale)
    session = clients.Session(server.port, plan.user, plan.password)
    if workload == "retr":
        commands = b"".join(b"RETR %d\r\n" % n for n in range(1, plan.count + 1))
        replies, rounds = plan.count, scale.retr_rounds
    else:
        commands, replies, rounds = b"LIST\r\nUIDL\r\n", 2, scale.list_pairs
    session.batch(commands, replies, check=True)  # warm-up, every reply parsed
    if workload == "list-cold":
        # RSET and DELE before each pair change what the session sees, so the listing
        # cannot be sent as built before. Only LIST and UIDL end in a terminator, and
        # the batch ends with one, so no single-line reply is left unread.
        commands = b"RSET\r\nDELE %d\r\nLIST\r\nUIDL\r\n" % plan.count

    def work() -> float:
        received = sum(session.batch(commands, replies) for _ in range(rounds))
        return received if workload == "retr" else rounds  # octets, or LIST+UIDL pairs

    measurement = _measured(server, work, profile)
    session.quit()
    return measurement


def _run_workload(impl: str, workload: str, options: Options) -> Measurement:
    profile = None
    if options.profile_dir is not None and impl == "fakepop":
        profile = options.profile_dir / workload
    with ServerProcess(impl, workload, quick=options.quick, cpu=options.server_cpu) as server:
        if workload == "churn":
            measurement = _churn(server, options.scale, profile)
        else:
            measurement = _batches(server, workload, options.scale, profile)
        if errors := server.errors():
            raise RuntimeError(f"{impl}: {errors} session(s) failed inside the server")
    return measurement


def _save_profile(server: ServerProcess, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = stem.with_suffix(".prof")
    server.profile_stop(path)
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    stem.with_suffix(".txt").write_text(text.getvalue())


# -- the table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    label: str
    unit: str
    fakepop: float
    floor: float
    target: float
    higher_is_better: bool
    dovecot: str

    def cells(self, quick: bool) -> list[str]:
        sign = "≥" if self.higher_is_better else "≤"
        met = self.fakepop >= self.target if self.higher_is_better else self.fakepop <= self.target
        verdict = "(quick)" if quick else ("yes" if met else "**NO**")
        ratio = self.fakepop / self.floor if self.floor else float("inf")
        return [
            self.label,
            _fmt(self.fakepop, self.unit),
            _fmt(self.floor, self.unit),
            f"{ratio:.2f}x",
            f"{sign} {_fmt(self.target, self.unit)}",
            verdict,
            self.dovecot,
        ]


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f} {unit}".rstrip()


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _rows(
    results: dict[tuple[str, str], Measurement],
    store: dict[str, float],
    fresh: dict[str, float],
    scale: Scale,
) -> list[Row]:
    def cpu_per(workload: str, factor: float) -> tuple[float, float]:
        fakepop, floor = (results[impl, workload] for impl in IMPLEMENTATIONS)
        return fakepop.server_cpu / fakepop.units * factor, floor.server_cpu / floor.units * factor

    rows = []
    if ("fakepop", "churn") in results:
        fakepop, floor = (results[impl, "churn"] for impl in IMPLEMENTATIONS)
        label = f"Churn, {scale.churn_clients} clients:"
        rate = (fakepop.units / fakepop.wall, floor.units / floor.wall)
        rows.append(Row(f"{label} sessions/s", "/s", *rate, 2500, True, "195 /s"))
        per_session = cpu_per("churn", 1e6)
        rows.append(Row(f"{label} server CPU/session", "µs", *per_session, 400, False, "8,200 µs"))
    if ("fakepop", "retr") in results:
        label = f"RETR {scale.retr_messages} x {scale.retr_size // 1024} KB pipelined: CPU/GB"
        rows.append(Row(label, "s", *cpu_per("retr", 1e9), 1.0, False, "1.86 s"))
    for workload, how in (("list", "unchanged mailbox"), ("list-cold", "one marked deleted")):
        if ("fakepop", workload) in results:
            label = f"LIST+UIDL of {scale.list_messages:,}, {how}: CPU per"
            pair = cpu_per(workload, 1e3)
            rows.append(Row(f"{label} pair", "ms", *pair, 5.0, False, "22 ms (2 x 11)"))
    if fresh:
        label = f"LIST+UIDL of {scale.list_messages:,}, first after new mail: CPU per pair"
        figures = (fresh["fakepop"] * 1e3, fresh["floor"] * 1e3)
        rows.append(Row(f"{label} (in-process)", "ms", *figures, 5.0, False, "22 ms (2 x 11)"))
    if store:
        label = f"Store of {scale.store_messages:,} x {scale.store_size // 1024} KB: RSS / raw"
        rows.append(Row(label, "x", store["fakepop"], store["floor"], 1.5, False, "—"))
    return rows


def _context(results: dict[tuple[str, str], Measurement]) -> list[list[str]]:
    rows = []
    for (impl, workload), m in results.items():
        rows.append(
            [
                f"{workload} / {impl}",
                f"{m.wall:.2f} s",
                f"{m.server.user:.2f} + {m.server.system:.2f} s",
                f"{m.server_cpu / m.wall:.0%}",
                f"{m.client_cpu:.2f} s",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny workloads (a smoke test)")
    parser.add_argument(
        "--only", choices=WORKLOADS, action="append", help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile fakepop's server during each measurement; stats go to DIR",
    )
    parser.add_argument("--no-pin", action="store_true", help="leave CPU placement to the OS")
    args = parser.parse_args()

    scale = QUICK if args.quick else FULL
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = None
    if len(cpus) >= 2 and not args.no_pin:
        server_cpu = cpus[0]
        os.sched_setaffinity(0, set(cpus[1:]))
    options = Options(scale, args.quick, server_cpu, args.profile)
    selected = args.only or list(WORKLOADS)

    started = time.perf_counter()
    results: dict[tuple[str, str], Measurement] = {}
    store: dict[str, float] = {}
    fresh: dict[str, float] = {}
    recording: dict[bool, list[Measurement]] = {True: [], False: []}
    for workload in selected:
        for impl in IMPLEMENTATIONS:
            if workload == "store":
                store[impl] = store_memory.measure(impl, scale.store_messages, scale.store_size)
            elif workload == "list-fresh":
                rounds = 5 if args.quick else 25
                fresh[impl] = fresh_listing.measure(
                    impl, scale.list_messages, scale.list_size, rounds
                )
            else:
                results[impl, workload] = _run_workload(impl, workload, options)
        if workload == "churn":
            # What recording costs is a few per cent, less than one run's noise: run
            # with and without it in turns, and compare the medians.
            recording[True].append(results["fakepop", workload])
            for _ in range(2 if args.quick else 3):
                for recorded, impl in ((False, "fakepop-unrecorded"), (True, "fakepop")):
                    recording[recorded].append(_run_workload(impl, workload, options))
    elapsed = time.perf_counter() - started

    header = ["Figure (server process)", "fakepop", "bare Trio floor", "fakepop / floor"]
    header += ["Target", "Met", "Dovecot 2.3"]
    rows = [row.cells(args.quick) for row in _rows(results, store, fresh, scale)]
    print(_table(header, rows))
    if results:
        print()
        context_header = ["Run", "Wall", "Server CPU (user + sys)", "Server busy", "Client CPU"]
        print(_table(context_header, _context(results)))
    if recording[False]:
        with_it, without = (
            statistics.median(m.server_cpu / m.units * 1e6 for m in recording[recorded])
            for recorded in (True, False)
        )
        print(
            f"\nTranscript recording, median of {len(recording[True])} churn runs with it and "
            f"{len(recording[False])} without: {with_it:.0f} µs against {without:.0f} µs "
            f"per session, {(with_it / without - 1) * 100:+.1f}% server CPU (target ≤ +10%)."
        )
    pinned = "unpinned" if server_cpu is None else f"server on CPU {server_cpu}, client on the rest"
    print(f"\n{'Quick' if args.quick else 'Full'} run, {elapsed:.0f} s, {pinned}.")
    if args.profile is not None:
        print(f"cProfile of fakepop's server (figures above are slowed by it): {args.profile}/")


if __name__ == "__main__":
    main()
