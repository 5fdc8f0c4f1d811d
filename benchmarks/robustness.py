"""Load and resource bounds of a fakepop server, on 127.0.0.1 only.

    python benchmarks/robustness.py           # full run, about half a minute
    python benchmarks/robustness.py --quick   # small counts, a few seconds (CI)

The server (a ``Pop3ServerThread``) runs in a child process of its own, so its resident
memory (``VmRSS`` in ``/proc/PID/status``, sampled every few milliseconds) is the
server's alone; the clients run here. Every scenario is bounded in count and time:

a. N connections held open at once, each logged in (its own mailbox) with STAT
   answered, then all QUIT: how many were served, server memory per connection.
b. Sessions churned (greeting, USER, PASS, STAT, QUIT; 20 at a time), once with the
   transcript recorded (it keeps every session, by design) and once without.
c. A client pipelines commands as fast as it can and never reads a reply: TCP
   backpressure must block it, the server's memory stay bounded, and another session
   keep working meanwhile.
d. A line that never ends (no LF), megabytes of it: the server's memory stays flat; the
   line gets one ``-ERR``, and the session goes on after the LF.
e. A slow reader of a large RETR, read at a limited rate: the server's memory does not
   grow with the message (the message is stored once, and sent from there).
f. Stopping the server with N sessions open, each logged in with DELE marked: how long
   stop() takes; no mailbox may change and none stay locked.

It prints a markdown table and exits with status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

if not __package__:
    # Run as `python benchmarks/robustness.py`: make the `benchmarks` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import clients

HOST = "127.0.0.1"
TIMEOUT = 30.0
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Scale:
    concurrent: int  # (a) connections held open at once
    churn: int  # (b) sessions per churn run
    pipeline_cap: int  # (c) octets the pipelining client may send before we call it unbounded
    blocked_after: float  # (c) seconds without send progress that count as "blocked"
    endless: int  # (d) octets of the endless line
    big: int  # (e) size of the message read slowly
    rate: int  # (e) octets per second the slow reader takes
    stopped_sessions: int  # (f) sessions open when the server stops


FULL = Scale(1000, 10_000, 512 << 20, 1.0, 200 << 20, 50 << 20, 10 << 20, 100)
QUICK = Scale(200, 1_000, 64 << 20, 0.5, 20 << 20, 5 << 20, 10 << 20, 20)

CHURN_USERS = 20
STOP_MESSAGES = 3
PIPE_MESSAGES = 200


def concurrent_user(i: int) -> str:
    return f"c{i:05d}"


def stop_user(i: int) -> str:
    return f"s{i:04d}"


def small_message(i: int) -> bytes:
    return f"From: load@example.org\r\nSubject: message {i}\r\n\r\nbody {i}\r\n".encode()


def big_message(size: int) -> bytes:
    """``size`` octets of 78-octet CRLF lines (no line starts with a dot)."""
    line = b"x" * 76 + b"\r\n"
    header = b"Subject: big\r\n\r\n"
    body = line * ((size - len(header)) // len(line))
    tail = size - len(header) - len(body)
    return header + body + (b"y" * (tail - 2) + b"\r\n" if tail >= 2 else b"")


# -- the child: the server and its control channel ----------------------------------------


def _child(scale: Scale) -> None:
    import gc  # noqa: PLC0415 - only the child needs these

    from fakepop import MailStore, Pop3ServerThread  # noqa: PLC0415

    store = MailStore()
    for i in range(scale.concurrent):
        store.add_user(concurrent_user(i), "pw", [small_message(i)])
    for i in range(CHURN_USERS):
        store.add_user(f"churn{i:02d}", "pw", [small_message(i) for i in range(10)])
    for i in range(scale.stopped_sessions):
        store.add_user(stop_user(i), "pw", [small_message(n) for n in range(STOP_MESSAGES)])
    store.add_user("pipe", "pw", [small_message(i) for i in range(PIPE_MESSAGES)])
    store.add_user("other", "pw", [small_message(1), small_message(2)])
    store.add_user("big", "pw")
    server = Pop3ServerThread(store)
    server.start()
    gc.collect()

    def state() -> str:
        locked = messages = deleted = 0
        for user in store.users:
            mailbox = store[user]
            locked += mailbox.locked
            messages += len(mailbox.messages)
            deleted += len(mailbox.deleted)
        active = server.server.active_sessions
        errors = len(server.errors)
        counts = {"active": active, "locked": locked, "messages": messages}
        return json.dumps({**counts, "deleted": deleted, "errors": errors})

    print(f"ready {server.port}", flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "state":
            answer = state()
        elif command == "big":
            store.deliver("big", big_message(int(argument)))
            gc.collect()
            answer = "ok"
        elif command == "transcript":
            server.server.record_transcript = argument == "on"
            server.transcript.clear()
            gc.collect()
            answer = "ok"
        elif command == "stop":
            started = time.perf_counter()
            try:
                server.stop()
            except Exception as exc:  # ServerError: reported, the state still counts
                print(f"stop: {exc!r}", file=sys.stderr)
            answer = f"{time.perf_counter() - started:.6f} {state()}"
        else:
            answer = f"unknown command {command!r}"
        print(answer, flush=True)


class ServerChild:
    """The server process, seen from the client side."""

    def __init__(self, quick: bool) -> None:
        command = [sys.executable, "-m", "benchmarks.robustness", "--child"]
        if quick:
            command.append("--quick")
        self._process = subprocess.Popen(
            command, cwd=_REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        word, port = self._read().split()
        if word != "ready":
            raise RuntimeError(f"server process said {word!r}")
        self.port = int(port)
        self.pid = self._process.pid

    def ask(self, line: str) -> str:
        assert self._process.stdin is not None
        self._process.stdin.write(line + "\n")
        self._process.stdin.flush()
        return self._read()

    def state(self) -> dict[str, int]:
        result: dict[str, int] = json.loads(self.ask("state"))
        return result

    def wait_until(self, predicate: Callable[[dict[str, int]], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not predicate(self.state()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"server never reached: {what} ({self.state()})")
            time.sleep(0.005)

    def rss(self) -> int:
        return rss_kib(self.pid)

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"server process exited (status {self._process.poll()})")
        return line.strip()

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            self._process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> ServerChild:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class RssSampler:
    """Samples a process's resident set every few milliseconds while active."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = rss_kib(pid)
        self.peak = self.before
        self.after = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.003):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.after = rss_kib(self.pid)
        self.peak = max(self.peak, self.after)

    @property
    def growth(self) -> int:
        return self.peak - self.before


# -- the client side ------------------------------------------------------------------------


class Client:
    """A blocking client socket with a line reader."""

    def __init__(self, port: int, *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"server closed the connection after {self.buffer!r}")
            self.buffer += data
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def ok(self) -> bytes:
        line = self.line()
        if not line.startswith(b"+OK"):
            raise AssertionError(f"expected +OK, got {line!r}")
        return line

    def login(self, user: str, password: str = "pw") -> None:
        self.ok()  # greeting
        self.sock.sendall(f"USER {user}\r\nPASS {password}\r\n".encode())
        self.ok()
        self.ok()

    def closed_by_server(self) -> bool:
        """Whether the server has closed (EOF or reset) within the timeout."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True

    def close(self, *, reset: bool = False) -> None:
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        self.sock.close()


@dataclass
class Result:
    scenario: str
    scale: str
    ok: bool
    figure: str
    rss: RssSampler
    seconds: float
    notes: str = ""


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


@contextmanager
def _timed() -> Iterator[list[float]]:
    box = [0.0]
    started = time.perf_counter()
    yield box
    box[0] = time.perf_counter() - started


def raise_fd_limit(needed: int) -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return f"fd limit {soft}"
    new = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return f"fd limit raised {soft} -> {new}"


# -- the scenarios ----------------------------------------------------------------------------


def concurrent_connections(server: ServerChild, scale: Scale) -> Result:
    count = scale.concurrent
    served = 0
    with RssSampler(server.pid) as rss, _timed() as took:
        conns = [Client(server.port) for _ in range(count)]
        for i, conn in enumerate(conns):
            conn.ok()
            conn.sock.sendall(f"USER {concurrent_user(i)}\r\nPASS pw\r\nSTAT\r\n".encode())
        for i, conn in enumerate(conns):
            conn.ok()
            conn.ok()
            stat = conn.ok()
            if stat != b"+OK 1 %d\r\n" % len(small_message(i)):
                raise AssertionError(f"wrong STAT: {stat!r}")
        state = server.state()
        all_open = state["active"] == count and state["locked"] == count
        rss_all_open = server.rss()
        for conn in conns:
            conn.sock.sendall(b"QUIT\r\n")
        for conn in conns:
            conn.ok()
            served += conn.closed_by_server()
            conn.close()
        server.wait_until(lambda s: s["active"] == 0, "every session ended")
    per_connection = (rss_all_open - rss.before) / count
    return Result(
        "a. concurrent connections",
        f"{count:,} open at once",
        all_open and served == count and server.state()["locked"] == 0,
        f"{served:,} / {count:,} served; {per_connection:.1f} KiB RSS per open connection",
        rss,
        took[0],
    )


def churn(server: ServerChild, scale: Scale, *, recorded: bool) -> Result:
    server.ask(f"transcript {'on' if recorded else 'off'}")
    credentials = [(f"churn{i:02d}", "pw") for i in range(CHURN_USERS)]
    clients.churn(server.port, credentials, 200)  # warm-up
    with RssSampler(server.pid) as rss, _timed() as took:
        clients.churn(server.port, credentials, scale.churn)
    server.wait_until(lambda s: s["active"] == 0, "every session ended")
    state = server.state()
    label = "with transcript" if recorded else "without transcript"
    per_session = (rss.after - rss.before) * 1024 / scale.churn
    return Result(
        f"b. session churn, {label}",
        f"{scale.churn:,} sessions, {CHURN_USERS} at a time",
        state["locked"] == 0 and state["errors"] == 0,
        f"{scale.churn / took[0]:,.0f} sessions/s; RSS {per_session:+.0f} B per session",
        rss,
        took[0],
    )


def pipelining_without_reading(server: ServerChild, scale: Scale) -> Result:
    before = server.state()
    pipe = Client(server.port)
    pipe.login("pipe")
    pipe.sock.setblocking(False)
    batch = b"LIST\r\nUIDL\r\nCAPA\r\nNOOP\r\nSTAT\r\nDELE 1\r\n" * 256
    sent = 0
    blocked = False
    other_ok = False
    other_latency = 0.0
    with RssSampler(server.pid) as rss, _timed() as took:
        pipe_started = time.perf_counter()
        while sent < scale.pipeline_cap:
            try:
                sent += pipe.sock.send(batch)
                continue
            except BlockingIOError:
                pass
            _, writable, _ = select.select([], [pipe.sock], [], scale.blocked_after)
            if not writable:
                blocked = True
                break
        time_to_block = time.perf_counter() - pipe_started - scale.blocked_after
        started = time.perf_counter()
        other = Client(server.port)
        other.login("other")
        other.sock.sendall(b"STAT\r\nRETR 1\r\n")
        other_ok = other.ok() == b"+OK 2 %d\r\n" % (2 * len(small_message(1)))
        other.ok()
        received = b""
        while not received.endswith(b"\r\n.\r\n"):
            received += other.line()
        other_ok = other_ok and received == small_message(1) + b".\r\n"
        other.sock.sendall(b"QUIT\r\n")
        other.ok()
        other.close()
        other_latency = time.perf_counter() - started
    pipe.close(reset=True)
    server.wait_until(lambda s: s["active"] == 0, "every session ended")
    after = server.state()
    unchanged = after["messages"] == before["messages"] and after["locked"] == 0
    return Result(
        "c. pipelining, never reading",
        f"client blocked after {scale.blocked_after:g} s without progress",
        blocked and other_ok and unchanged,
        f"blocked after {sent / 2**20:.1f} MiB sent in {time_to_block:.2f} s; another "
        f"session's login+STAT+RETR+QUIT "
        f"took {other_latency * 1000:.1f} ms meanwhile",
        rss,
        took[0],
        "" if blocked else f"NOT blocked after {sent:,} octets",
    )


def endless_line(server: ServerChild, scale: Scale) -> Result:
    conn = Client(server.port)
    conn.ok()
    chunk = b"x" * (1 << 20)
    with RssSampler(server.pid) as rss, _timed() as took:
        for _ in range(scale.endless // len(chunk)):
            conn.sock.sendall(chunk)
        conn.sock.sendall(b"\r\nQUIT\r\n")
        too_long = conn.line()
        quit_reply = conn.line()
    ok = too_long.startswith(b"-ERR") and quit_reply.startswith(b"+OK") and conn.closed_by_server()
    conn.close()
    return Result(
        "d. endless line",
        f"{scale.endless >> 20} MiB without LF",
        ok,
        f"{scale.endless / took[0] / 2**20:,.0f} MiB/s discarded; one -ERR, then QUIT +OK",
        rss,
        took[0],
    )


def slow_reader(server: ServerChild, scale: Scale) -> Result:
    server.ask(f"big {scale.big}")
    expected = hashlib.sha256(big_message(scale.big)).hexdigest()
    conn = Client(server.port, rcvbuf=65536)
    conn.login("big")
    digest = hashlib.sha256()
    with RssSampler(server.pid) as rss, _timed() as took:
        conn.sock.sendall(b"RETR 1\r\n")
        conn.ok()
        started = time.perf_counter()
        received = len(conn.buffer)
        pending = bytes(conn.buffer)
        conn.buffer.clear()
        while not pending.endswith(b"\r\n.\r\n"):
            # Keep under the rate: sleep until the octets read so far are "due".
            ahead = received / scale.rate - (time.perf_counter() - started)
            if ahead > 0:
                time.sleep(ahead)
            data = conn.sock.recv(16384)
            if not data:
                raise ConnectionError("server closed during RETR")
            received += len(data)
            digest.update(pending[:-5])
            pending = pending[-5:] + data
        digest.update(pending[:-3])
    conn.sock.sendall(b"QUIT\r\n")
    conn.ok()
    conn.close()
    return Result(
        "e. slow reader of a large RETR",
        f"{scale.big >> 20} MiB message at {scale.rate >> 20} MiB/s",
        digest.hexdigest() == expected,
        f"{received / took[0] / 2**20:.1f} MiB/s read; content intact",
        rss,
        took[0],
    )


def stop_with_open_sessions(server: ServerChild, scale: Scale) -> Result:
    count = scale.stopped_sessions
    conns = []
    for i in range(count):
        conn = Client(server.port)
        conn.login(stop_user(i))
        conn.sock.sendall(b"DELE 1\r\nDELE 2\r\n")
        conn.ok()
        conn.ok()
        conns.append(conn)
    before = server.state()
    with RssSampler(server.pid) as rss:
        seconds_text, _, state_text = server.ask("stop").partition(" ")
    after = json.loads(state_text)
    closed = sum(conn.closed_by_server() for conn in conns)
    for conn in conns:
        conn.close()
    ok = (
        before["active"] == count
        and after["messages"] == before["messages"]
        and after["deleted"] == before["deleted"] == 0
        and after["locked"] == 0
        and closed == count
    )
    return Result(
        "f. stop with sessions open",
        f"{count} sessions logged in, 2 DELE each",
        ok,
        f"stop() took {float(seconds_text) * 1000:.1f} ms; {closed}/{count} clients saw the "
        f"close; {after['messages']:,} messages before and after, 0 deleted, 0 locked",
        rss,
        float(seconds_text),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke test)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    scale = QUICK if args.quick else FULL
    fd_note = raise_fd_limit(2 * scale.concurrent + 256)  # the child inherits it
    if args.child:
        _child(scale)
        return

    started = time.perf_counter()
    results: list[Result] = []
    with ServerChild(args.quick) as server:
        start_rss = server.rss()
        results.append(concurrent_connections(server, scale))
        results.append(churn(server, scale, recorded=True))
        results.append(churn(server, scale, recorded=False))
        results.append(pipelining_without_reading(server, scale))
        results.append(endless_line(server, scale))
        results.append(slow_reader(server, scale))
        errors = server.state()["errors"]
        results.append(stop_with_open_sessions(server, scale))
    header = ["Scenario", "Scale", "OK", "Figures", "Server RSS before", "Peak", "Growth", "Time"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in results:
        figure = r.figure + (f" ({r.notes})" if r.notes else "")
        cells = [r.scenario, r.scale, "yes" if r.ok else "**NO**", figure, _mib(r.rss.before)]
        cells += [_mib(r.rss.peak), f"{r.rss.growth / 1024:+.1f} MiB", f"{r.seconds:.2f} s"]
        print("| " + " | ".join(cells) + " |")
    kind = "Quick" if args.quick else "Full"
    elapsed = time.perf_counter() - started
    print(
        f"\n{kind} run, {elapsed:.0f} s; server RSS at start {_mib(start_rss)}; {fd_note}; "
        f"{os.cpu_count()} CPUs; errors inside the server: {errors}."
    )
    if errors or not all(r.ok for r in results):
        sys.exit(1)


if __name__ == "__main__":
    with suppress(KeyboardInterrupt):
        main()
