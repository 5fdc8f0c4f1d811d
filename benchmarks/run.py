"""Run every benchmark against fakepop and the bare Trio floor; print a markdown table.

    python benchmarks/run.py            # the full run (under two minutes)
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
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if not __package__:
    # Run as `python benchmarks/run.py`: make the `benchmarks` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import clients, fresh_listing, store_memory
from benchmarks import recording as recording_cost
from benchmarks.server_process import ServerProcess, Usage
from benchmarks.workloads import FULL, QUICK, WORKLOADS, Scale, plans_for


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


@dataclass(frozen=True)
class Implementation:
    """A server to measure: fakepop (this tree, or another revision's) or the floor."""

    name: str  # as the table shows it
    kind: str  # server_process's implementation: fakepop or floor
    fakepop_path: Path | None = None  # another revision's source tree


FAKEPOP = Implementation("fakepop", "fakepop")
FLOOR = Implementation("floor", "floor")


def _run_workload(impl: Implementation, workload: str, options: Options) -> Measurement:
    profile = None
    if options.profile_dir is not None and impl == FAKEPOP:
        profile = options.profile_dir / workload
    with ServerProcess(
        impl.kind,
        workload,
        quick=options.quick,
        cpu=options.server_cpu,
        fakepop_path=impl.fakepop_path,
    ) as server:
        if workload == "churn":
            measurement = _churn(server, options.scale, profile)
        else:
            measurement = _batches(server, workload, options.scale, profile)
        if errors := server.errors():
            raise RuntimeError(f"{impl.name}: {errors} session(s) failed inside the server")
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

Results = dict[tuple[str, str], list[Measurement]]  # (implementation, workload): runs


@dataclass(frozen=True)
class Row:
    """One figure: each implementation's median, and the target for fakepop's ratio to
    the floor (or, with ``of_value``, for fakepop's own figure, itself a ratio)."""

    label: str
    unit: str
    figures: dict[str, float]  # implementation name -> median
    target: float | None
    of_value: bool = False

    def ratio(self, name: str) -> float:
        floor = self.figures.get(FLOOR.name, 0.0)
        return self.figures[name] / floor if floor else float("inf")


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:,.{digits}f} {unit}".rstrip()


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _median_per_unit(
    results: Results, workload: str, factor: float, *, of: str = "server"
) -> dict[str, float]:
    figures = {}
    for (name, measured), runs in results.items():
        if measured == workload:
            if of == "server":
                values = [m.server_cpu / m.units * factor for m in runs]
            elif of == "rate":
                values = [m.units / m.wall for m in runs]
            else:  # server CPU against client CPU: who set the pace
                values = [m.server_cpu / m.client_cpu for m in runs]
            figures[name] = statistics.median(values)
    return figures


# Targets: fakepop's median against the floor's, in the same run (see docs/project/benchmarks.md).
CHURN_TARGET = 1.3
RETR_TARGET = 1.2
LIST_TARGET = 1.2
LIST_COLD_TARGET = 2.0
LIST_FRESH_TARGET = 1.0
STORE_TARGET = 1.5  # resident memory per raw octet, fakepop's own figure
RECORDING_TARGET = 5.0  # per cent of server CPU per churn session
RECORDING_RUNS = 5  # in a full run: the recording figure is their median


def _rows(
    results: Results,
    store: dict[str, float],
    fresh: dict[str, float],
    scale: Scale,
) -> list[Row]:
    rows = []
    if (FAKEPOP.name, "churn") in results:
        label = f"Churn, {scale.churn_clients} clients:"
        rate = _median_per_unit(results, "churn", 1, of="rate")
        rows.append(Row(f"{label} sessions/s", "/s", rate, None))
        per_session = _median_per_unit(results, "churn", 1e6)
        rows.append(Row(f"{label} server CPU/session", "µs", per_session, CHURN_TARGET))
    if (FAKEPOP.name, "retr") in results:
        label = f"RETR {scale.retr_messages} x {scale.retr_size // 1024} KB pipelined:"
        per_gb = _median_per_unit(results, "retr", 1e9)
        rows.append(Row(f"{label} CPU/GB", "s", per_gb, RETR_TARGET))
        pace = _median_per_unit(results, "retr", 1, of="pace")
        rows.append(Row(f"{label} server CPU / client CPU", "x", pace, 1.0, of_value=True))
    for workload, how, target in (
        ("list", "unchanged mailbox", LIST_TARGET),
        ("list-cold", "one marked deleted", LIST_COLD_TARGET),
    ):
        if (FAKEPOP.name, workload) in results:
            label = f"LIST+UIDL of {scale.list_messages:,}, {how}: CPU per pair"
            rows.append(Row(label, "ms", _median_per_unit(results, workload, 1e3), target))
    if fresh:
        label = f"LIST+UIDL of {scale.list_messages:,}, first after new mail: CPU per pair"
        figures = {name: value * 1e3 for name, value in fresh.items()}
        rows.append(Row(f"{label} (in-process)", "ms", figures, LIST_FRESH_TARGET))
    if store:
        label = f"Store of {scale.store_messages:,} x {scale.store_size // 1024} KB: RSS / raw"
        rows.append(Row(label, "x", dict(store), STORE_TARGET, of_value=True))
    return rows


def _context(results: Results) -> list[list[str]]:
    rows = []
    for (name, workload), runs in results.items():
        for m in runs:
            rows.append(
                [
                    f"{workload} / {name}",
                    f"{m.wall:.2f} s",
                    f"{m.server.user:.2f} + {m.server.system:.2f} s",
                    f"{m.server_cpu / m.wall:.0%}",
                    f"{m.client_cpu:.2f} s",
                ]
            )
    return rows


def _recording_cost(costs: list[float], scale: Scale, quick: bool) -> str:
    cost = statistics.median(costs)
    verdict = "(quick)" if quick else ("yes" if cost <= RECORDING_TARGET else "**NO**")
    return (
        f"Transcript recording: {cost:+.1f}% server CPU per churned session, the median "
        f"of {len(costs)} run(s) of one server with recording switched on and off every "
        f"{scale.recording_chunk:,} sessions, each run's figure the median of its "
        f"{scale.recording_pairs} pairs of chunks: "
        f"{', '.join(f'{c:+.1f}%' for c in sorted(costs))} "
        f"(target ≤ +{RECORDING_TARGET:.0f}%: {verdict})."
    )


def _export_revision(revision: str, into: Path) -> Path:
    """Write ``revision``'s fakepop package into ``into`` (git archive: no checkout,
    no worktree); return the directory to put first on the child's sys.path."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "fakepop"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _measure(
    selected: list[str], implementations: list[Implementation], options: Options, repeat: int
) -> tuple[Results, dict[str, float], dict[str, float], list[float]]:
    scale = options.scale
    results: Results = {}
    store: dict[str, float] = {}
    fresh: dict[str, float] = {}
    recording: list[float] = []  # per cent more server CPU with recording, per run
    for workload in selected:
        if workload == "store":
            for impl in (FAKEPOP, FLOOR):
                store[impl.name] = store_memory.measure(
                    impl.kind, scale.store_messages, scale.store_size
                )
            continue
        if workload == "list-fresh":
            rounds = 5 if options.quick else 25
            for impl in (FAKEPOP, FLOOR):
                fresh[impl.name] = fresh_listing.measure(
                    impl.kind, scale.list_messages, scale.list_size, rounds
                )
            continue
        taken = list(implementations)
        for round_number in range(repeat):
            # In turns, each round starting with another server, so no server
            # always runs on a machine warmed (or disturbed) by the same other one.
            shift = round_number % len(taken)
            for impl in taken[shift:] + taken[:shift]:
                measurement = _run_workload(impl, workload, options)
                results.setdefault((impl.name, workload), []).append(measurement)
        if workload == "churn":
            # What recording costs (see recording.py).
            for _ in range(1 if options.quick else RECORDING_RUNS):
                recording.append(
                    recording_cost.measure(scale, cpu=options.server_cpu, quick=options.quick)
                )
    return results, store, fresh, recording


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny workloads (a smoke test)")
    parser.add_argument(
        "--only", choices=WORKLOADS, action="append", help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help="runs of each server per workload, taken in turns; medians are reported "
        "(default 3, or 1 with --quick)",
    )
    parser.add_argument(
        "--compare",
        metavar="REV",
        help="also measure fakepop as of git revision REV, in the same run, and print "
        "this tree's figures against it (socket workloads only)",
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
    repeat = args.repeat or (1 if args.quick else 3)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu = None
    if len(cpus) >= 2 and not args.no_pin:
        server_cpu = cpus[0]
        os.sched_setaffinity(0, set(cpus[1:]))
    options = Options(scale, args.quick, server_cpu, args.profile)
    selected = args.only or list(WORKLOADS)

    with tempfile.TemporaryDirectory(prefix="fakepop-bench-") as scratch:
        implementations = [FAKEPOP, FLOOR]
        if args.compare:
            path = _export_revision(args.compare, Path(scratch))
            implementations.append(Implementation(f"fakepop@{args.compare}", "fakepop", path))
        names = [impl.name for impl in implementations]

        started = time.perf_counter()
        results, store, fresh, recording = _measure(selected, implementations, options, repeat)
        elapsed = time.perf_counter() - started

    # fakepop, the floor, another revision; then each fakepop's ratio to the floor.
    order = [FAKEPOP.name, FLOOR.name, *names[2:]]
    header = ["Figure (server process, median)", *order]
    header += [f"{name} / floor" for name in order if name != FLOOR.name]
    header += ["Target", "Met"]
    rows = _rows(results, store, fresh, scale)
    print(_table(header, [_cells(row, order, args.quick) for row in rows]))
    if args.compare:
        print()
        print(_comparison(rows, f"fakepop@{args.compare}"))
    if recording:
        print(f"\n{_recording_cost(recording, scale, args.quick)}")
    if results:
        print()
        context_header = ["Run", "Wall", "Server CPU (user + sys)", "Server busy", "Client CPU"]
        print(_table(context_header, _context(results)))
    pinned = "unpinned" if server_cpu is None else f"server on CPU {server_cpu}, client on the rest"
    print(
        f"\n{'Quick' if args.quick else 'Full'} run, {elapsed:.0f} s, {repeat} run(s) of each "
        f"server per workload, {pinned}."
    )
    if args.profile is not None:
        print(f"cProfile of fakepop's server (figures above are slowed by it): {args.profile}/")


def _cells(row: Row, order: list[str], quick: bool) -> list[str]:
    cells = [row.label]
    cells += [_fmt(row.figures[n], row.unit) if n in row.figures else "—" for n in order]
    for name in order:
        if name != FLOOR.name:
            cells.append(f"{row.ratio(name):.2f}x" if name in row.figures else "—")
    if row.target is None:
        return [*cells, "—", ""]
    judged = row.figures[FAKEPOP.name] if row.of_value else row.ratio(FAKEPOP.name)
    met = "(quick)" if quick else ("yes" if judged <= row.target else "**NO**")
    what = _fmt(row.target, row.unit) if row.of_value else f"{row.target:.2f}x floor"
    return [*cells, f"≤ {what}", met]


def _comparison(rows: list[Row], other: str) -> str:
    lines = []
    for row in rows:
        if other in row.figures and FAKEPOP.name in row.figures:
            change = (row.figures[FAKEPOP.name] / row.figures[other] - 1) * 100
            lines.append([row.label, f"{change:+.1f}%"])
    return _table(["Figure", f"this tree against {other}"], lines)


if __name__ == "__main__":
    main()
