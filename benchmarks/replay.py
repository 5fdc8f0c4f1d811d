"""What strict cassette replay costs per session, against the normal server.

    python benchmarks/replay.py            # 500 sessions each
    python benchmarks/replay.py --quick    # 50 sessions each, a smoke test

A cassette of N identical sessions (greeting, USER, PASS, STAT, LIST, RETR 1, QUIT)
is recorded once through the recording proxy from a fakepop server; then the same
raw-socket client runs the N sessions against a ``CassetteServer`` replaying it, and
against a ``Pop3Server`` with the same mail, both in this process's Trio run. The
figure is the mean wall time per session, and the replay's ratio to the normal
server's; the target is that replay costs no more than the engine it stands for.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import trio

if not __package__:
    # Run as `python benchmarks/replay.py`: make `fakepop` importable from a checkout.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakepop import CassetteServer, Pop3Server, RecordingProxy

TIMEOUT = 10.0
TARGET = 1.5  # replay's time per session against the normal server's, same run
MAILBOXES = {"alice": {"password": "secret", "messages": ["Subject: one\n\n" + "x" * 2000 + "\n"]}}
SCRIPT = (
    b"USER alice\r\n",
    b"PASS secret\r\n",
    b"STAT\r\n",
    b"LIST\r\n",
    b"RETR 1\r\n",
    b"QUIT\r\n",
)


def _session(address: tuple[str, int]) -> None:
    """One session, a command per reply; reads until the server closes."""
    with socket.create_connection(address, timeout=TIMEOUT) as conn:
        stream = conn.makefile("rb")
        stream.readline()
        for line in SCRIPT:
            conn.sendall(line)
            status = stream.readline()
            if line in (b"LIST\r\n", b"RETR 1\r\n") and status.startswith(b"+OK"):
                while stream.readline() != b".\r\n":
                    pass
        stream.read()  # until the server closes


async def _time(
    serve: Callable[..., object], address: Callable[[], tuple[str, int]], sessions: int
) -> float:
    async with trio.open_nursery() as nursery:
        await nursery.start(serve)  # type: ignore[arg-type]
        target = address()
        started = time.perf_counter()
        for _ in range(sessions):
            await trio.to_thread.run_sync(_session, target)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed / sessions


async def _main(sessions: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        cassette = Path(directory) / "bench.jsonl"
        upstream = Pop3Server(MAILBOXES, record_transcript=False)
        async with trio.open_nursery() as nursery:
            await nursery.start(upstream.serve)
            proxy = RecordingProxy(cassette, upstream.address)
            await _time(proxy.serve, lambda: proxy.address, sessions)
            nursery.cancel_scope.cancel()
        replay = CassetteServer(cassette)
        replayed = await _time(replay.serve, lambda: replay.address, sessions)
        if replay.errors or replay.sessions_replayed != sessions:
            raise SystemExit(f"replay failed: {replay.errors}")
    server = Pop3Server(MAILBOXES, record_transcript=True)
    normal = await _time(server.serve, lambda: server.address, sessions)
    return replayed, normal


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 sessions, a smoke test")
    args = parser.parse_args()
    sessions = 50 if args.quick else 500
    replayed, normal = trio.run(_main, sessions)
    ratio = replayed / normal
    print("| server | per session | ratio |")
    print("|---|---|---|")
    print(f"| Pop3Server (anchor) | {normal * 1e3:.3f} ms | 1.00 |")
    print(f"| CassetteServer, strict replay | {replayed * 1e3:.3f} ms | {ratio:.2f} |")
    if args.quick:
        print("\n--quick figures are too few to judge the target by.")
        return 0
    if ratio > TARGET:
        print(f"\nreplay is {ratio:.2f}x the normal server; the target is {TARGET}x")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
