"""A POP3 server (fakepop or the bare Trio floor) in its own process, so that its CPU
time is measured apart from the client's.

The child builds its mailboxes from :mod:`benchmarks.workloads`, listens on
127.0.0.1, prints ``ready PORT`` and then obeys one-line commands on stdin:

``usage``               answers ``usage USER_SECONDS SYSTEM_SECONDS`` (getrusage)
``errors``              answers ``errors N``: sessions that failed inside the server
``profile-start``       turns cProfile on for the server's thread
``profile-stop PATH``   turns it off and writes the stats to PATH; answers ``profiled``

With ``--fakepop-path DIR`` the child imports fakepop from DIR, another revision's
source tree, so two revisions can be measured side by side in one run.

End of stdin stops the server. :class:`ServerProcess` is the parent's side.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from benchmarks import bare_trio_server
from benchmarks.workloads import FULL, QUICK, plans_for

if TYPE_CHECKING:
    from fakepop import Pop3Server

__all__ = ["ServerProcess", "Usage"]

IMPLEMENTATIONS = ("fakepop", "floor")
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Usage:
    """CPU seconds the server process has used so far."""

    user: float
    system: float

    @property
    def total(self) -> float:
        return self.user + self.system

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.user - other.user, self.system - other.system)


class ServerProcess:
    """Starts ``python -m benchmarks.server_process`` and talks to it over its pipes."""

    def __init__(
        self,
        impl: str,
        workload: str,
        *,
        quick: bool,
        cpu: int | None,
        fakepop_path: Path | None = None,
    ) -> None:
        command = [sys.executable, "-m", "benchmarks.server_process", impl, workload]
        if quick:
            command.append("--quick")
        if fakepop_path is not None:
            command += ["--fakepop-path", str(fakepop_path)]
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        self._process = subprocess.Popen(
            command,
            cwd=_REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        word, port = self._read().split()
        if word != "ready":
            raise RuntimeError(f"server process said {word!r} instead of ready")
        self.port = int(port)

    def usage(self) -> Usage:
        _, user, system = self._ask("usage").split()
        return Usage(float(user), float(system))

    def record(self, *, on: bool) -> None:
        """Have fakepop's server record the sessions that start from now on, or not
        (see recording.py)."""
        self._ask(f"record {'on' if on else 'off'}")

    def errors(self) -> int:
        return int(self._ask("errors").split()[1])

    def profile_start(self) -> None:
        self._send("profile-start")

    def profile_stop(self, path: Path) -> None:
        self._ask(f"profile-stop {path.resolve()}")

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, line: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"server process exited (status {self._process.poll()})")
        return line.strip()

    def _ask(self, line: str) -> str:
        self._send(line)
        return self._read()


# -- the child --------------------------------------------------------------------------


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _obey_control_channel(server: Pop3Server | None) -> None:
    # Commands arrive rarely (before and after each measurement), so this task costs
    # nothing while the clients run.
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    profiler: cProfile.Profile | None = None
    pending = b""
    while data := await stdin.receive_some():
        *lines, pending = (pending + data).split(b"\n")
        for line in lines:
            command, _, argument = line.decode().partition(" ")
            if command == "usage":
                usage = resource.getrusage(resource.RUSAGE_SELF)
                _say(f"usage {usage.ru_utime:.6f} {usage.ru_stime:.6f}")
            elif command == "record" and server is not None and argument in ("on", "off"):
                # Recording on or off for the sessions that start from now on.
                server.record_transcript = argument == "on"
                _say(f"record {argument}")
            elif command == "errors":
                _say(f"errors {0 if server is None else len(server.errors)}")
            elif command == "profile-start":
                profiler = cProfile.Profile()
                profiler.enable()
            elif command == "profile-stop" and profiler is not None:
                profiler.disable()
                profiler.dump_stats(argument)
                profiler = None
                _say("profiled")
            else:
                raise RuntimeError(f"unknown control command {line!r}")


async def _serve(impl: str, workload: str, quick: bool) -> None:
    plans = plans_for(workload, QUICK if quick else FULL)
    async with trio.open_nursery() as nursery:
        server: Pop3Server | None = None
        if impl.startswith("fakepop"):
            # Imported here, after main() put --fakepop-path first on sys.path.
            from fakepop import MailStore, Pop3Server  # noqa: PLC0415

            store = MailStore()
            for plan in plans:
                store.add_user(plan.user, plan.password, plan.messages())
            server = Pop3Server(store)
            await nursery.start(server.serve)
            port = server.port
        else:
            boxes = {
                plan.user: bare_trio_server.FloorMailbox.build(plan.password, plan.messages())
                for plan in plans
            }
            port = await nursery.start(bare_trio_server.serve, boxes)
        _say(f"ready {port}")
        await _obey_control_channel(server)
        nursery.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("impl", choices=IMPLEMENTATIONS)
    parser.add_argument("workload")
    parser.add_argument("--quick", action="store_true", help="the smoke-test sizes")
    parser.add_argument("--cpu", type=int, help="pin the server to this CPU")
    parser.add_argument(
        "--fakepop-path",
        type=Path,
        help="import fakepop from this directory (another revision's source tree)",
    )
    args = parser.parse_args()
    if args.fakepop_path is not None:
        sys.path.insert(0, str(args.fakepop_path))
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    trio.run(_serve, args.impl, args.workload, args.quick)


if __name__ == "__main__":
    main()
