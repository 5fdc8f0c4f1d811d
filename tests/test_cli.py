"""``python -m fakepop``: the demo server as a real subprocess, driven by real clients."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import os
import poplib
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import fakepop.__main__ as cli
from fakepop import _demo
from fakepop._message import to_wire_bytes

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - trio depends on the backport before 3.11
    from exceptiongroup import BaseExceptionGroup

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="uses POSIX signals and select() on pipes"
)

#: Seconds any single step may take before the test fails (never slept).
DEADLINE = 10.0
READY_RE = re.compile(r"fakepop listening on (?P<host>\S+):(?P<port>\d+)\n\Z")

DEMO_MESSAGES = [_demo.WELCOME, _demo.DOTS, _demo.UTF8, _demo.ATTACHMENT]


def _command(*args: str) -> list[str]:
    # -X dev shows ResourceWarnings and other noise on stderr, which the tests forbid.
    return [sys.executable, "-X", "dev", "-m", "fakepop", *args]


def _read_line(proc: subprocess.Popen[bytes], timeout: float = DEADLINE) -> str:
    """The first line of the child's stdout, waiting at most ``timeout`` seconds.

    Reads one byte at a time so nothing after the line is consumed; the rest of the
    output is left for ``communicate``.
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise AssertionError(f"no complete line within {timeout}s; got {line!r}")
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(f"stdout closed after {line!r}")
            line += chunk
    return line.decode()


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    ready_line: str
    host: str
    port: int

    def stop(self, signum: int = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``signum``; return exit status, rest of stdout, and stderr."""
        self.proc.send_signal(signum)
        out, err = self.proc.communicate(timeout=DEADLINE)
        return self.proc.returncode, out.decode(), err.decode()


@pytest.fixture
def server() -> Iterator[Running]:
    proc = subprocess.Popen(
        _command("--port", "0"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    with proc:
        try:
            line = _read_line(proc)
        except AssertionError:
            proc.kill()
            _, err = proc.communicate(timeout=DEADLINE)
            pytest.fail(f"the server did not start; stderr:\n{err.decode()}")
        match = READY_RE.match(line)
        assert match, f"unexpected ready line {line!r}"
        running = Running(proc, line, match["host"], int(match["port"]))
        try:
            yield running
            if proc.poll() is None:
                status, out, err = running.stop(signal.SIGTERM)
                assert (status, err) == (0, ""), out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=DEADLINE)


def _parse(data: bytes) -> email.message.EmailMessage:
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


# -- starting and stopping ------------------------------------------------------------


def test_ready_line_then_hints(server: Running) -> None:
    assert server.host == "127.0.0.1"
    assert 0 < server.port < 65536
    status, out, err = server.stop(signal.SIGTERM)
    assert status == 0
    assert err == ""
    address = f"{server.host}:{server.port}"
    assert f"telnet {server.host} {server.port}" in out
    assert f"curl pop3://demo:demo@{address}/1" in out
    assert "demo/demo" in out
    assert "memory only" in out
    assert out.splitlines()[-1] == "fakepop stopped (SIGTERM)"


def test_sigint_stops_cleanly(server: Running) -> None:
    status, out, err = server.stop(signal.SIGINT)
    assert status == 0
    assert err == ""
    assert out.splitlines()[-1] == "fakepop stopped (SIGINT)"


def test_stops_with_a_session_open(server: Running) -> None:
    client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
    try:
        client.user("demo")
        client.pass_("demo")
        status, _, err = server.stop(signal.SIGTERM)
        assert (status, err) == (0, "")
    finally:
        client.close()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--port", "notanumber"], "invalid port 'notanumber'"),
        (["--port", "70000"], "invalid port 70000"),
        (["--port", "-1"], "invalid port '-1'"),
        (["--host", ""], "invalid host"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_arguments(args: list[str], complaint: str) -> None:
    result = subprocess.run(
        _command(*args), capture_output=True, text=True, timeout=DEADLINE, check=False
    )
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "usage: fakepop" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _command("--port", str(port)),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"fakepop: error: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stdout


def test_help_documents_ready_line_and_memory_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "fakepop listening on HOST:PORT" in out
    assert "memory only" in out


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), BaseExceptionGroup("", [BaseExceptionGroup("", [KeyboardInterrupt()])])],
)
def test_keyboard_interrupt_outside_the_signal_receiver(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    interrupt: BaseException,
) -> None:
    # Ctrl-C while trio starts or stops surfaces from trio.run, maybe in a group.
    def interrupted(*args: object) -> int:
        raise interrupt

    monkeypatch.setattr(cli.trio, "run", interrupted)
    assert cli.main(["--port", "0"]) == 0
    assert capsys.readouterr().out == "fakepop stopped (SIGINT)\n"


def test_other_errors_are_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> int:
        raise BaseExceptionGroup("", [KeyboardInterrupt(), RuntimeError("boom")])

    monkeypatch.setattr(cli.trio, "run", broken)
    with pytest.raises(BaseExceptionGroup):
        cli.main(["--port", "0"])


# -- the demo mail through real clients -----------------------------------------------


def test_poplib_reads_every_demo_message(server: Running) -> None:
    client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
    try:
        client.user(_demo.DEMO_USER)
        client.pass_(_demo.DEMO_PASSWORD)
        wire = [to_wire_bytes(message) for message in DEMO_MESSAGES]
        assert client.stat() == (len(wire), sum(len(w) for w in wire))
        _, uidl, _ = client.uidl()
        assert uidl == [b"1 welcome", b"2 dots", b"3 utf8", b"4 attachment"]

        fetched = []
        for number, expected in enumerate(wire, 1):
            _, lines, _ = client.retr(number)
            data = b"\r\n".join(lines) + b"\r\n"
            assert data == expected
            fetched.append(data)
        client.quit()
    finally:
        client.close()

    # poplib undoes the dot-stuffing: the "." lines come back as they were written.
    dots = fetched[1].split(b"\r\n")
    assert b"." in dots
    assert b".hidden-file-name" in dots
    assert b"..two dots at the start" in dots
    assert dots[-2] == b"The message ends after this line."

    utf8 = _parse(fetched[2])
    assert utf8["Subject"] == "Grüße aus Zürich \u2013 Café ☕"
    assert utf8["From"].addresses[0].display_name == "Jürgen Müller"
    assert utf8.get_content_charset() == "utf-8"
    body = utf8.get_content()
    assert "Der Kaffee im Café am See kostet 4,50 €" in body
    assert "日本語のテキストもあります。" in body

    multipart = _parse(fetched[3])
    assert multipart.is_multipart()
    attachments = list(multipart.iter_attachments())
    assert [part.get_filename() for part in attachments] == ["inventory.csv"]
    assert attachments[0].get_content().startswith("sku,name,qty")


def test_deletions_last_while_the_server_runs(server: Running) -> None:
    for expected_count in (1, 0):
        client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
        try:
            client.user(_demo.SECOND_USER)
            client.pass_(_demo.SECOND_PASSWORD)
            assert client.stat()[0] == expected_count
            if expected_count:
                client.dele(1)
            client.quit()
        finally:
            client.close()


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_lists_and_fetches(server: Running) -> None:
    base = f"pop3://demo:demo@{server.host}:{server.port}"

    def curl(path: str) -> bytes:
        result = subprocess.run(
            ["curl", "-sS", "--max-time", str(DEADLINE), base + path],
            capture_output=True,
            timeout=DEADLINE + 5,
            check=False,
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout

    wire = [to_wire_bytes(message) for message in DEMO_MESSAGES]
    listing = curl("/").decode().splitlines()
    assert listing == [f"{n} {len(w)}" for n, w in enumerate(wire, 1)]
    assert curl("/1") == wire[0]
    assert curl("/2") == wire[1]  # curl undoes the dot-stuffing too
    assert _parse(curl("/3"))["Subject"] == "Grüße aus Zürich \u2013 Café ☕"
