"""``python -m fakepop``: the server as a real subprocess, driven by real clients.

Each test starts the command with ``--port 0`` and reads its ready line with a
deadline; nothing sleeps. Arguments that are refused before the server starts are
checked in-process through ``cli.main`` (fast), and the most common ones again as a
subprocess, so what a user sees on stderr is covered too.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import errno
import os
import poplib
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

import fakepop._cli as cli
from fakepop import (
    EndReason,
    Pop3Server,
    SessionRecord,
    Transcript,
    _demo,
    corpus,
    open_pop3_server,
)
from fakepop._cli import _arguments, _follower
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


@contextmanager
def running(*args: str) -> Iterator[Running]:
    """Run ``fakepop --port 0 *args`` until the block ends, then stop it with SIGTERM
    (unless the test did) and check it exited cleanly."""
    proc = subprocess.Popen(
        _command("--port", "0", *args),
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
        server = Running(proc, line, match["host"], int(match["port"]))
        try:
            yield server
            if proc.poll() is None:
                status, out, err = server.stop(signal.SIGTERM)
                assert (status, err) == (0, ""), out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=DEADLINE)


@pytest.fixture
def server() -> Iterator[Running]:
    with running() as started:
        yield started


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


#: Arguments refused before the server starts, what stderr says about them, and
#: whether it shows the usage (a mail source that cannot be read is no usage error).
BAD_ARGUMENTS = [
    (["--port", "notanumber"], "invalid port 'notanumber'", True),
    (["--port", "70000"], "invalid port 70000", True),
    (["--port", "-1"], "invalid port '-1'", True),
    (["--host", ""], "invalid host", True),
    (["--no-such-option"], "unrecognized arguments", True),
    (["--user", "nopass"], "invalid account 'nopass': expected NAME:PASSWORD", True),
    (["--mbox", "bob=x"], "argument --mbox bob=x: there is no --user bob", True),
    (["--autologout", "-1"], "argument --autologout: invalid number of seconds '-1'", True),
    (["--autologout", "abc"], "argument --autologout: invalid number of seconds 'abc'", True),
    (["--user", "bob:pw", "--mbox", "bob=missing.mbox"], "missing.mbox: does not exist", False),
    (["--ca-file", "ca.pem"], "argument --ca-file: there is no TLS to trust", True),
    (["--profile", "exim"], "argument --profile: invalid choice: 'exim'", True),
]  # fmt: skip
#: The ones also run as a real process: one of each kind.
IN_A_PROCESS = [BAD_ARGUMENTS[0], BAD_ARGUMENTS[7], BAD_ARGUMENTS[9]]


def _check_refusal(status: int, out: str, err: str, complaint: str, usage: bool) -> None:
    assert status == 2
    assert err.startswith("usage: fakepop") == usage
    assert err.splitlines()[-1].startswith("fakepop: error: ")
    assert complaint in err
    assert "Traceback" not in err
    assert out == ""


@pytest.fixture
def in_an_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where missing.mbox is missing


@pytest.mark.usefixtures("in_an_empty_directory")
@pytest.mark.parametrize(("args", "complaint", "usage"), BAD_ARGUMENTS)
def test_bad_arguments(
    capsys: pytest.CaptureFixture[str], args: list[str], complaint: str, usage: bool
) -> None:
    status = cli.main(args)
    _check_refusal(status, *capsys.readouterr(), complaint, usage)


@pytest.fixture(scope="module")
def refused(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, str]]:
    """Exit status, stdout and stderr of each case of IN_A_PROCESS, run at once in an
    empty directory: most of each run is an interpreter starting, and those need not
    wait for one another."""
    cwd = tmp_path_factory.mktemp("refused")
    procs = {
        " ".join(args): subprocess.Popen(
            _command(*args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _, _ in IN_A_PROCESS
    }
    results = {}
    for key, proc in procs.items():
        with proc:
            out, err = proc.communicate(timeout=DEADLINE)
            results[key] = (proc.returncode, out, err)
    return results


@pytest.mark.parametrize(("args", "complaint", "usage"), IN_A_PROCESS)
def test_bad_arguments_in_a_process(
    refused: dict[str, tuple[int, str, str]], args: list[str], complaint: str, usage: bool
) -> None:
    _check_refusal(*refused[" ".join(args)], complaint, usage)


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


# -- your own accounts and mail -------------------------------------------------------

#: Messages as they sit in the sources: LF or CRLF endings, lines POP3 must dot-stuff,
#: 8-bit UTF-8, and a body line that an mbox writer had to quote as ">From".
MBOX_1 = b"From: carol@example.org\nSubject: one\n\nfirst\n.x\n.\n..y\nlast\n"
MBOX_2 = "From: d@example.org\nSubject: zwei\n\nGrüße\n>From the mbox\n".encode()
MAILDIR_NEW = b"From: e@example.org\nSubject: new\n\nin new/\n"
MAILDIR_CUR = b"From: f@example.org\r\nSubject: cur\r\n\r\nseen, in cur/\r\n"
EML_2 = b"Subject: two\n\n2.eml comes before 10.eml\n"
EML_10 = b"Subject: ten\r\n\r\nno final newline"
MAILDIR_NAMES = ("1700000001.M1P1.host", "1700000002.M2P2.host")
ALICE = ("alice", "pa:ss:word")  # passwords may contain ':'
BOB = ("bob", "b:")


def _make_sources(root: Path) -> dict[str, Path]:
    root.mkdir(exist_ok=True)
    mbox = root / "alice.mbox"
    mbox.write_bytes(
        b"From carol@example.org Mon Jun  3 09:00:00 2024\n" + MBOX_1 + b"\n"
        b"From d@example.org Mon Jun  3 09:01:00 2024\n" + MBOX_2
    )
    maildir = root / "Maildir"
    (maildir / "new").mkdir(parents=True)
    (maildir / "cur").mkdir()
    (maildir / "new" / MAILDIR_NAMES[0]).write_bytes(MAILDIR_NEW)
    (maildir / "cur" / f"{MAILDIR_NAMES[1]}:2,S").write_bytes(MAILDIR_CUR)
    eml = root / "eml"
    eml.mkdir()
    (eml / "10.eml").write_bytes(EML_10)
    (eml / "2.eml").write_bytes(EML_2)
    (eml / "notes.txt").write_bytes(b"not mail")
    return {"mbox": mbox, "maildir": maildir, "eml": eml}


def _snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file's bytes, every symbolic link's target and every entry's mtime under
    ``root`` (links are not followed)."""

    def content(path: Path) -> bytes | None:
        if path.is_symlink():
            return b"-> " + os.fsencode(os.readlink(path))
        return None if path.is_dir() else path.read_bytes()

    return {
        str(path.relative_to(root)): (content(path), path.lstat().st_mtime_ns)
        for path in sorted([root, *root.rglob("*")])
    }


def _source_args(sources: dict[str, Path], transcript: Path) -> list[str]:
    return [
        "--user", ":".join(ALICE),
        "--mbox", f"alice={sources['mbox']}",
        "--maildir", f"alice={sources['maildir']}",
        "--user", ":".join(BOB),
        "--eml-dir", f"bob={sources['eml']}",
        "--transcript", str(transcript),
    ]  # fmt: skip


def _login(server: Running, user: str, password: str) -> poplib.POP3:
    client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
    client.user(user)
    client.pass_(password)
    return client


def _retr(client: poplib.POP3, number: int) -> bytes:
    _, lines, _ = client.retr(number)
    return b"\r\n".join(lines) + b"\r\n"


def test_accounts_from_mbox_maildir_and_eml_sources(tmp_path: Path) -> None:
    sources = _make_sources(tmp_path / "mail")
    before = _snapshot(tmp_path / "mail")
    transcript = tmp_path / "transcript.txt"
    alice_mail = [MBOX_1, MBOX_2, MAILDIR_NEW, MAILDIR_CUR]  # in the order given
    with running(*_source_args(sources, transcript)) as server:
        client = _login(server, *ALICE)
        try:
            wire = [to_wire_bytes(message) for message in alice_mail]
            assert client.stat() == (len(wire), sum(map(len, wire)))
            _, uidl, _ = client.uidl()
            assert uidl == [
                b"1 uid000001",
                b"2 uid000002",
                f"3 {MAILDIR_NAMES[0]}".encode(),
                f"4 {MAILDIR_NAMES[1]}".encode(),
            ]
            for number, expected in enumerate(wire, 1):
                assert _retr(client, number) == expected
                client.dele(number)
            assert client.quit().startswith(b"+OK")
        finally:
            client.close()

        client = _login(server, *BOB)
        try:
            _, uidl, _ = client.uidl()
            assert uidl == [b"1 2", b"2 10"]
            assert _retr(client, 1) == to_wire_bytes(EML_2)
            assert _retr(client, 2) == to_wire_bytes(EML_10)
            client.quit()
        finally:
            client.close()

        client = _login(server, *ALICE)  # still logged in when the server stops
        try:
            assert client.stat() == (0, 0)  # deleted, in memory
            status, out, err = server.stop(signal.SIGTERM)
        finally:
            client.close()
    assert (status, err) == (0, "")
    hints = out.splitlines()
    assert f"  accounts: {ALICE[0]}/{ALICE[1]} (4 messages)" in hints
    assert f"            {BOB[0]}/{BOB[1]} (2 messages)" in hints
    assert "demo/demo" not in out
    assert "never changed" in out

    # The deletions never reached the sources: same bytes, same mtimes.
    assert _snapshot(tmp_path / "mail") == before

    # Written as it happened, and finished by the final flush on SIGTERM.
    text = transcript.read_text(encoding="utf-8")
    assert "C: USER alice" in text
    assert "C: PASS ****" in text
    assert ALICE[1] not in text
    assert BOB[1] not in text
    assert text.count("C: PASS ****") == 3
    removed = f"uid000001 uid000002 {MAILDIR_NAMES[0]} {MAILDIR_NAMES[1]}"
    ends = [line for line in text.splitlines() if " ended by " in line]
    assert [re.sub(r"after [0-9.]+ s", "after T s", line) for line in ends] == [
        f"--- session 1 (alice) ended by QUIT after T s, removed: {removed}",
        "--- session 2 (bob) ended by QUIT after T s",
        # Still open at SIGTERM: only the final flush can have written this.
        "--- session 3 (alice) ended by server stopped after T s",
    ]
    assert text.endswith(ends[-1] + "\n")


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_logs_in_with_a_colon_in_the_password(tmp_path: Path) -> None:
    sources = _make_sources(tmp_path)
    with running(*_source_args(sources, tmp_path / "t.txt")) as server:
        user, password = BOB
        base = f"pop3://{user}:{urllib.parse.quote(password, safe='')}@{server.host}:{server.port}"

        def curl(path: str) -> bytes:
            # APOP: its digest covers the password, so a ':' that went missing fails it.
            command = ["curl", "-sS", "--max-time", str(DEADLINE), "--login-options", "AUTH=+APOP"]
            result = subprocess.run(
                [*command, base + path],
                capture_output=True,
                timeout=DEADLINE + 5,
                check=False,
            )
            assert result.returncode == 0, result.stderr.decode(errors="replace")
            return result.stdout

        wire = [to_wire_bytes(EML_2), to_wire_bytes(EML_10)]
        assert curl("/").decode().splitlines() == [f"{n} {len(w)}" for n, w in enumerate(wire, 1)]
        assert curl("/2") == wire[1]
        assert curl("/1") == wire[0]
        status, out, err = server.stop()
    assert (status, err) == (0, "")
    # The hint shows the first account, its password quoted for the URL.
    assert f"curl pop3://alice:pa%3Ass%3Aword@{server.host}:{server.port}/1 " in out


def test_server_options_reach_the_server() -> None:
    options = ["--hostname", "mail.test", "--greeting", "Hi there.", "--autologout", "0.2"]
    with running(*options) as server:
        client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
        try:
            welcome = client.getwelcome().decode()
            assert re.fullmatch(r"\+OK Hi there\. <[^>]+@mail\.test>", welcome), welcome
            # Silent for 0.2 s: the autologout timer closes the session.
            client.sock.settimeout(DEADLINE)
            assert client.sock.recv(100) == b""
        finally:
            client.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"apop": True, "autologout": 600.0, "hostname": "localhost"}),
        (["--no-apop"], {"apop": False}),
        (["--autologout", "2.5"], {"autologout": 2.5}),
        (["--hostname", "pop.example.org"], {"hostname": "pop.example.org"}),
        (["--greeting", "Ready when you are"], {"greeting": "Ready when you are"}),
    ],
)
def test_options_map_to_server_config(args: list[str], expected: dict[str, object]) -> None:
    parser = _arguments.make_parser()
    plan = _arguments.make_plan(parser, parser.parse_args(args))
    assert {name: getattr(plan.config, name) for name in expected} == expected
    assert plan.demo
    assert plan.store.users == [_demo.DEMO_USER, _demo.SECOND_USER]


def test_users_replace_the_demo_mailboxes() -> None:
    parser = _arguments.make_parser()
    plan = _arguments.make_plan(parser, parser.parse_args(["--user", "x:1:2", "--user", "y:: "]))
    assert not plan.demo
    assert plan.store.users == ["x", "y"]
    assert [plan.store.password_of(user) for user in ("x", "y")] == ["1:2", ": "]
    assert len(plan.store["x"]) == 0


def test_the_corpus_fills_a_demo_account_or_a_user() -> None:
    """--corpus NAME adds every corpus message under its name as UID: without --user
    to a demo account, beside its own mail; with --user to that account."""
    parser = _arguments.make_parser()
    demo = _arguments.make_plan(parser, parser.parse_args(["--corpus", "alice"]))
    assert demo.demo
    assert demo.store.users == [_demo.DEMO_USER, _demo.SECOND_USER]
    assert demo.store[_demo.SECOND_USER].uids == ["late", *corpus.names()]
    assert len(demo.store[_demo.DEMO_USER]) == 4

    own = _arguments.make_plan(parser, parser.parse_args(["--user", "bob:pw", "--corpus", "bob"]))
    assert not own.demo
    assert own.store["bob"].uids == corpus.names()
    assert [m.data for m in own.store["bob"].messages] == [
        to_wire_bytes(data) for data in corpus.all().values()
    ]


def test_the_corpus_reads_no_file_so_no_output_clashes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a transcript here is not "inside" the corpus
    parser = _arguments.make_parser()
    args = parser.parse_args(["--corpus", "demo", "--transcript", "t.log"])
    assert len(_arguments.make_plan(parser, args).store["demo"]) == 4 + len(corpus.names())


def test_poplib_reads_the_corpus_served_by_the_command() -> None:
    with running("--corpus", "alice") as server:
        client = _login(server, _demo.SECOND_USER, _demo.SECOND_PASSWORD)
        try:
            _, uidl, _ = client.uidl()
            numbers = {uid.decode(): int(n) for n, uid in (line.split(b" ") for line in uidl)}
            for name in ("only_dot_line", "dot_line", "empty", "koi8r_subject", "nul_byte"):
                assert _retr_exact(client, numbers[name]) == corpus.get(name).data
            client.quit()
        finally:
            client.close()


def _retr_exact(client: poplib.POP3, number: int) -> bytes:
    # Every line with its CRLF: an empty message stays empty.
    _, lines, _ = client.retr(number)
    return b"".join(line + b"\r\n" for line in lines)


def test_sources_of_one_user_are_concatenated_in_order(tmp_path: Path) -> None:
    sources = _make_sources(tmp_path)
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "2.eml").write_bytes(b"Subject: again\n\nsame name\n")
    (tmp_path / "more" / "3.eml").write_bytes(b"Subject: 3\n\nnamed like a fresh UID\n")
    (tmp_path / "more" / "uid000003.eml").write_bytes(b"Subject: 4\n\nnamed like a fresh UID\n")
    parser = _arguments.make_parser()
    args = parser.parse_args([
        "--user", "u:p",
        "--eml-dir", f"u={sources['eml']}",
        "--mbox", f"u={sources['mbox']}",
        "--eml-dir", f"u={tmp_path / 'more'}",
        "--mbox", f"u={sources['mbox']}",
    ])  # fmt: skip
    mailbox = _arguments.make_plan(parser, args).store["u"]
    # .eml names are kept; mbox positions, and a name already taken, get fresh UIDs.
    again = b"Subject: again\n\nsame name\n"
    expected = [
        ("2", EML_2),
        ("10", EML_10),
        ("uid000001", MBOX_1),
        ("uid000002", MBOX_2),
        ("uid000003", again),  # "2" is taken
        ("3", b"Subject: 3\n\nnamed like a fresh UID\n"),
        ("uid000004", b"Subject: 4\n\nnamed like a fresh UID\n"),  # "uid000003" is taken
        ("uid000005", MBOX_1),
        ("uid000006", MBOX_2),
    ]
    assert [(m.uid, m.data) for m in mailbox.messages] == [
        (uid, to_wire_bytes(data)) for uid, data in expected
    ]


def test_symlinks_in_mail_sources_are_followed(tmp_path: Path) -> None:
    """A symbolic link in or to a source is read as what it points at: a message
    keeps the name of the link. In an eml dir, only names ending in .eml are looked
    at, so other links (to a directory, or to nothing) are ignored like other files."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "new").mkdir(parents=True)
    (elsewhere / "new" / MAILDIR_NAMES[0]).write_bytes(MAILDIR_NEW)
    (elsewhere / "seen").write_bytes(MAILDIR_CUR)
    (elsewhere / "msg").write_bytes(EML_2)
    (elsewhere / "a.mbox").write_bytes(b"From x Mon Jun  3 09:00:00 2024\n" + MBOX_1)
    maildir = tmp_path / "Maildir"
    (maildir / "cur").mkdir(parents=True)
    (maildir / "new").symlink_to(elsewhere / "new")
    (maildir / "cur" / f"{MAILDIR_NAMES[1]}:2,S").symlink_to(elsewhere / "seen")
    eml = tmp_path / "eml"
    eml.mkdir()
    (eml / "linked.eml").symlink_to(elsewhere / "msg")
    (eml / "notes").symlink_to(elsewhere / "gone")
    (eml / "subdir").symlink_to(elsewhere)
    (eml / ".hidden.eml").symlink_to(elsewhere / "gone")
    (tmp_path / "link-to-eml").symlink_to(eml)
    (tmp_path / "link.mbox").symlink_to(elsewhere / "a.mbox")
    before = _snapshot(tmp_path)
    parser = _arguments.make_parser()
    args = parser.parse_args([
        "--user", "u:p",
        "--maildir", f"u={maildir}",
        "--eml-dir", f"u={tmp_path / 'link-to-eml'}",
        "--mbox", f"u={tmp_path / 'link.mbox'}",
    ])  # fmt: skip
    mailbox = _arguments.make_plan(parser, args).store["u"]
    expected = [
        (MAILDIR_NAMES[0], MAILDIR_NEW),
        (MAILDIR_NAMES[1], MAILDIR_CUR),
        ("linked", EML_2),
        ("uid000001", MBOX_1),
    ]
    assert [(m.uid, m.data) for m in mailbox.messages] == [
        (uid, to_wire_bytes(data)) for uid, data in expected
    ]
    assert _snapshot(tmp_path) == before


#: Symbolic links that lead to no mail: the kind of source, the links in it (name:
#: target), the file named in the error, and the reason. Nothing is followed twice
#: (no source is read recursively), so a loop ends at once.
BAD_LINKS = [
    ("eml-dir", {"gone.eml": "../nothing"}, "gone.eml", "is a symbolic link to nothing"),
    ("maildir", {"cur/1.x:2,S": "../../nothing"}, "cur/1.x:2,S", "is a symbolic link to nothing"),
    ("maildir", {"new": "../nothing"}, "new", "is a symbolic link to nothing"),
    ("eml-dir", {"a.eml": "b.eml", "b.eml": "a.eml"}, "a.eml",
     f"cannot be read: {os.strerror(errno.ELOOP)}"),
    ("maildir", {"new/1.y": ".."}, "new/1.y", "is a directory, not a message file"),
    ("eml-dir", {"up.eml": "."}, "up.eml", "is a directory, not a message file"),
    ("eml-dir", {"null.eml": os.devnull}, "null.eml",
     "is not a regular file, so not a message file"),
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_LINKS, ids=[f"{c[0]} {c[2]}" for c in BAD_LINKS])
def test_symlinks_that_lead_to_no_mail_stop_fakepop(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str, dict[str, str], str, str],
) -> None:
    """A link the reader must follow that leads to nothing, round a loop, to a
    directory or to a device stops fakepop before it listens, naming the link."""
    kind, links, named, reason = case
    source = tmp_path / "source"
    if kind == "eml-dir":
        source.mkdir()
        (source / "1.eml").write_bytes(EML_2)
    else:
        (source / "cur").mkdir(parents=True)
        (source / "cur" / f"{MAILDIR_NAMES[1]}:2,S").write_bytes(MAILDIR_CUR)
        if "new" not in links:
            (source / "new").mkdir()
    for name, target in links.items():
        (source / name).symlink_to(target)

    def serve(*args: object) -> int:
        raise AssertionError("the server was started")

    monkeypatch.setattr(cli.trio, "run", serve)
    assert cli.main(["--port", "0", "--user", "u:p", f"--{kind}", f"u={source}"]) == 2
    assert capsys.readouterr() == ("", f"fakepop: error: {source / named}: {reason}\n")


def _bad_sources(tmp: Path) -> dict[str, list[str]]:
    (tmp / "not-mbox").write_bytes(b"Subject: a single message\n\nhi\n")
    (tmp / "empty-dir").mkdir()
    return {
        "missing": ["--mbox", f"bob={tmp / 'missing.mbox'}"],
        "not an mbox": ["--mbox", f"bob={tmp / 'not-mbox'}"],
        "dir as mbox": ["--mbox", f"bob={tmp / 'empty-dir'}"],
        "file as maildir": ["--maildir", f"bob={tmp / 'not-mbox'}"],
        "not a maildir": ["--maildir", f"bob={tmp / 'empty-dir'}"],
        "file as eml dir": ["--eml-dir", f"bob={tmp / 'not-mbox'}"],
    }


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing.mbox: does not exist"),
        ("not an mbox", "not-mbox: not an mbox file: it does not start with a 'From ' line"),
        ("dir as mbox", "empty-dir: is a directory, not an mbox file (for a directory use "
                        "--maildir or --eml-dir)"),
        ("file as maildir", "not-mbox: is a file, not a Maildir directory (for an mbox file "
                            "use --mbox)"),
        ("not a maildir", "empty-dir: is not a Maildir: it has neither a new/ nor a cur/"),
        ("file as eml dir", "not-mbox: is a file, not a directory of .eml files"),
    ],
)  # fmt: skip
def test_bad_sources_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, reason: str
) -> None:
    args = ["--port", "0", "--user", "bob:pw", *_bad_sources(tmp_path)[case]]
    assert cli.main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"fakepop: error: {tmp_path}/{reason}")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--user", "bob:"], "argument --user: invalid account 'bob:': the password is empty"),
        (["--user", ":pw"], "argument --user: invalid account ':pw': the user name must be"),
        (["--user", "a b:pw"], "argument --user: invalid account 'a b:pw': the user name must"),
        (["--user", "a:1", "--user", "a:2"], "argument --user: 'a' is given twice"),
        (["--user", "a:1", "--mbox", "a"], "argument --mbox: invalid source 'a': expected"),
        (["--user", "a:1", "--maildir", "a="], "argument --maildir: invalid source 'a='"),
        (["--user", "a:1", "--eml-dir", "b=x"], "argument --eml-dir b=x: there is no --user b"),
        (["--user", "a:1", "--corpus", "b"], "argument --corpus b: there is no --user b (give"),
        (
            ["--corpus", "bob"],
            "argument --corpus bob: there is no --user bob (give --user "
            "bob:PASSWORD, or name a demo account: demo, alice)",
        ),
        (["--corpus", "a b"], "argument --corpus: invalid account 'a b': the user name must"),
        (["--autologout", "0"], "argument --autologout: invalid number of seconds '0'"),
        (["--autologout", "nan"], "argument --autologout: invalid number of seconds 'nan'"),
        (["--hostname", "a b"], "argument --hostname: hostname must be a non-empty name"),
        (["--hostname", "a>b"], "argument --hostname: hostname must be a str without CR"),
        (["--greeting", "<x>"], "argument --greeting: greeting must be a str without CR"),
        (["--greeting", "x" * 401], "argument --greeting: greeting must be at most 400 octets"),
    ],
)
def test_more_bad_arguments(
    capsys: pytest.CaptureFixture[str], args: list[str], complaint: str
) -> None:
    assert cli.main(["--port", "0", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: fakepop")
    assert f"fakepop: error: {complaint}" in err


def test_transcript_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mbox = tmp_path / "a.mbox"
    mbox.write_bytes(b"From x Mon Jun  3 09:00:00 2024\n" + MBOX_1)
    before = _snapshot(tmp_path)
    args = ["--port", "0", "--user", "a:1", "--mbox", f"a={mbox}"]
    assert cli.main([*args, "--transcript", str(mbox)]) == 2
    assert capsys.readouterr().err.endswith(
        f"fakepop: error: argument --transcript: {mbox} is the mail source of "
        f"--mbox a={mbox}; fakepop never writes to a mail source\n"
    )
    assert _snapshot(tmp_path) == before
    nowhere = tmp_path / "no-such-dir" / "t.txt"
    assert cli.main([*args, "--transcript", str(nowhere)]) == 2
    assert capsys.readouterr().err == (
        f"fakepop: error: {nowhere}: cannot write the transcript: No such file or directory\n"
    )


def _outputs_at_sources(tmp: Path) -> dict[str, tuple[list[str], str, str]]:
    """Arguments that point --transcript or --ca-file at mail, the option refused and
    what stderr says about it. Only ``tmp / "mail"`` holds mail."""
    sources = _make_sources(tmp / "mail")
    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    linked = elsewhere / "linked-message"
    linked.write_bytes(MAILDIR_NEW)
    (sources["maildir"] / "new" / "1700000003.M3P3.host").symlink_to(linked)
    (tmp / "link.mbox").symlink_to(sources["mbox"])
    (tmp / "link-to-Maildir").symlink_to(sources["maildir"])
    os.link(sources["mbox"], tmp / "hard.mbox")
    mbox, maildir, eml = (f"{sources[k]}" for k in ("mbox", "maildir", "eml"))
    users = ["--user", "a:1", "--mbox", f"a={mbox}", "--maildir", f"a={maildir}",
             "--user", "b:2", "--eml-dir", f"b={eml}"]  # fmt: skip
    tls = ["--tls", "--ca-file"]
    return {
        "transcript is the mbox": (
            [*users, "--transcript", mbox], "--transcript", f"--mbox a={mbox}"),
        "ca-file is the mbox": ([*users, *tls, mbox], "--ca-file", f"--mbox a={mbox}"),
        "through a symlink": (
            [*users, *tls, f"{tmp}/link.mbox"], "--ca-file", f"--mbox a={mbox}"),
        "a hard link": (
            [*users, *tls, f"{tmp}/hard.mbox"], "--ca-file", f"--mbox a={mbox}"),
        "a Maildir message": (
            [*users, "--transcript", f"{maildir}/cur/{MAILDIR_NAMES[1]}:2,S"],
            "--transcript", f"--maildir a={maildir}"),
        "the Maildir itself": ([*users, *tls, maildir], "--ca-file", f"--maildir a={maildir}"),
        "a new file in the Maildir": (
            [*users, *tls, f"{maildir}/tmp-ca.pem"], "--ca-file", f"--maildir a={maildir}"),
        "into the Maildir by a symlink": (
            [*users, "--transcript", f"{tmp}/link-to-Maildir/new/log"],
            "--transcript", f"--maildir a={maildir}"),
        "by '..'": (
            [*users, "--transcript", f"{tmp}/elsewhere/../mail/eml/2.eml"],
            "--transcript", f"--eml-dir b={eml}"),
        "a new file in the eml dir": (
            [*users, "--transcript", f"{eml}/3.eml"], "--transcript", f"--eml-dir b={eml}"),
        "a message a Maildir links to": (
            [*users, "--transcript", str(linked)], "--transcript", f"--maildir a={maildir}"),
        "before the ca-file is written": (
            [*users, *tls, f"{tmp}/ca.pem", "--transcript", f"{eml}/10.eml"],
            "--transcript", f"--eml-dir b={eml}"),
    }  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        "transcript is the mbox",
        "ca-file is the mbox",
        "through a symlink",
        "a hard link",
        "a Maildir message",
        "the Maildir itself",
        "a new file in the Maildir",
        "into the Maildir by a symlink",
        "by '..'",
        "a new file in the eml dir",
        "a message a Maildir links to",
        "before the ca-file is written",
    ],
)
def test_transcript_or_ca_file_overwrites_a_mail_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    """--help promises that sources are never modified: an output file that is (or
    is inside) a mail source is refused before anything is written."""
    args, option, source = _outputs_at_sources(tmp_path)[case]
    before = _snapshot(tmp_path)

    def serve(*args: object) -> int:
        raise AssertionError("the server was started")

    monkeypatch.setattr(cli.trio, "run", serve)
    assert cli.main(["--port", "0", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: fakepop")
    complaint = err.splitlines()[-1]
    assert complaint.startswith(f"fakepop: error: argument {option}: ")
    assert f" of {source}; fakepop never writes to a mail source" in complaint
    assert _snapshot(tmp_path) == before  # every byte, every mtime, no new file


def test_help_documents_sources_and_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--user NAME:PASSWORD", "--mbox NAME=PATH", "--maildir NAME=PATH",
                   "--eml-dir NAME=PATH", "--corpus NAME", "--autologout SECONDS", "--no-apop",
                   "--hostname NAME", "--greeting TEXT", "--transcript FILE"):  # fmt: skip
        assert option in out
    assert "never modified" in out
    assert "Symbolic links are followed" in out
    assert "is refused before anything is written" in out
    assert "C: PASS ****" in out
    assert "ended by server stopped" in out


# -- the transcript as it happens ---------------------------------------------------


def test_transcript_to_stdout_as_it_happens() -> None:
    with running("--transcript", "-") as server:
        client = _login(server, _demo.SECOND_USER, _demo.SECOND_PASSWORD)
        try:
            client.stat()
            # Lines show up while the server runs, without waiting for it to stop.
            seen = []
            while "C: STAT" not in seen:
                seen.append(_read_line(server.proc).rstrip("\n"))
            assert "C: USER alice" in seen
            assert "C: PASS ****" in seen
            status, out, err = server.stop()
        finally:
            client.close()
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[-2].startswith("--- session 1 (alice) ended by server stopped after ")
    assert lines[-1] == "fakepop stopped (SIGTERM)"
    transcript = seen[seen.index("  transcript: stdout") + 1 :] + lines
    assert not [line for line in transcript if _demo.SECOND_PASSWORD in line]


async def test_transcript_follower_interleaves_sessions_readably() -> None:
    mailboxes = {"alice": {"password": "s3cret", "messages": ["Subject: a\n\nA\n"]}, "bob": "pw"}
    written: list[str] = []
    async with open_pop3_server(mailboxes) as server:
        follower = cli.TranscriptFollower(server.transcript, written.append)

        def connect(user: str, password: str) -> poplib.POP3:
            client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
            client.user(user)
            client.pass_(password)
            return client

        alice = await trio.to_thread.run_sync(connect, "alice", "s3cret")
        follower.flush()
        bob = await trio.to_thread.run_sync(connect, "bob", "pw")
        follower.flush()
        await trio.to_thread.run_sync(alice.retr, 1)
        await trio.to_thread.run_sync(alice.dele, 1)
        follower.flush()
        follower.flush()  # nothing new: writes nothing
        await trio.to_thread.run_sync(bob.quit)
        follower.flush()
        # A bare CR stays inside the line; the transcript shows it escaped.
        await trio.to_thread.run_sync(alice.sock.sendall, b"NOOP x\ry\r\n")
        with pytest.raises(poplib.error_proto, match="-ERR"):
            await trio.to_thread.run_sync(alice._getresp)
        await trio.to_thread.run_sync(alice.quit)
        await server.wait_idle()
        follower.flush()
        follower.flush()
    text = "".join(written)
    assert len(written) == 5
    assert "s3cret" not in text
    lines = text.splitlines()
    assert re.fullmatch(r"--- session 1 from 127\.0\.0\.1:\d+ at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                        lines[0])  # fmt: skip
    session_1 = lines[1:7]
    assert session_1[1:] == [
        "C: USER alice",
        "S: +OK Send PASS for alice",
        "   (state: AWAITING_PASS)",
        "C: PASS ****",
        "S: +OK alice's maildrop is locked and ready: 1 message (17 octets)",
    ]
    assert lines[7] == "   (state: TRANSACTION)"
    assert lines[8].startswith("--- session 2 from 127.0.0.1:")
    assert "--- session 1 (alice), continued" in lines
    continued = lines.index("--- session 1 (alice), continued")
    assert lines[continued + 1 : continued + 3] == [
        "C: RETR 1",
        "S: +OK 17 octets   [3 more lines, 20 octets]",
    ]
    assert lines.count("--- session 1 (alice), continued") == 2  # after bob's QUIT
    assert "C: NOOP x\\ry" in lines
    assert lines[-1].startswith("--- session 1 (alice) ended by QUIT after ")
    assert lines[-1].endswith(", removed: uid000001")
    assert any(line.startswith("--- session 2 (bob) ended by QUIT after ") for line in lines)
    # Nothing is written twice.
    assert sum(line == "C: USER alice" for line in lines) == 1


def test_transcript_file_keeps_every_finished_session_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server writing --transcript FILE may run for days: a session written out in
    full is dropped from memory, so only open sessions are held, yet the file keeps
    every one. Runs ``main`` in this process, where the transcript can be counted;
    the clients run in a thread."""
    sessions = 50
    log = tmp_path / "pop3.log"
    transcripts: list[Transcript] = []
    written: list[str] = []
    more_written = threading.Condition()
    started: list[tuple[tuple[str, int], trio.lowlevel.TrioToken]] = []
    ready = threading.Event()
    follower_class, announce = cli.TranscriptFollower, cli.announce

    def follow(transcript: Transcript, write: Callable[[str], None]) -> cli.TranscriptFollower:
        def write_and_tell(text: str) -> None:
            write(text)
            with more_written:
                written.append(text)
                more_written.notify_all()

        transcripts.append(transcript)
        return follower_class(transcript, write_and_tell)

    def announce_and_tell(server: Pop3Server, *args: Any) -> None:
        announce(server, *args)
        started.append((server.address, trio.lowlevel.current_trio_token()))
        ready.set()

    monkeypatch.setattr(cli, "TranscriptFollower", follow)
    monkeypatch.setattr(cli, "announce", announce_and_tell)
    monkeypatch.setattr(_follower, "TRANSCRIPT_INTERVAL", 0.005)  # 50 sessions, not 50 * 0.2 s
    held: list[int] = []  # sessions in memory once each one's end is in the file
    failures: list[BaseException] = []

    def wait_written(line: str) -> None:
        with more_written:
            if not more_written.wait_for(lambda: line in "".join(written), DEADLINE):
                raise AssertionError(f"{line!r} was not written within {DEADLINE} s")

    def clients() -> None:
        if not ready.wait(DEADLINE):
            failures.append(AssertionError("the server did not start"))
            return
        (host, port), token = started[0]
        try:
            for n in range(1, sessions + 1):
                client = poplib.POP3(host, port, timeout=DEADLINE)
                client.user("demo")
                client.pass_("demo")
                client.stat()
                client.quit()
                wait_written(f"--- session {n} (demo) ended by QUIT")
                held.append(len(transcripts[0]))
        except BaseException as exc:
            failures.append(exc)
        finally:
            # Ctrl-C, sent from the server's own thread while it runs.
            trio.from_thread.run_sync(os.kill, os.getpid(), signal.SIGINT, trio_token=token)

    thread = threading.Thread(target=clients)
    thread.start()
    try:
        status = cli.main(["--port", "0", "--transcript", str(log)])
    finally:
        thread.join(DEADLINE)
    assert not failures, failures
    assert status == 0
    assert capsys.readouterr().out.endswith("fakepop stopped (SIGINT)\n")
    assert len(held) == sessions
    assert max(held) <= 1, held  # at most a session that has not ended yet
    assert len(transcripts[0]) == 0
    text = log.read_text()
    assert "".join(written) == text
    for n in range(1, sessions + 1):
        assert len(re.findall(rf"^--- session {n} from 127\.0\.0\.1:\d+ at ", text, re.M)) == 1
        assert len(re.findall(rf"^--- session {n} \(demo\) ended by QUIT after ", text, re.M)) == 1
    assert text.count("C: USER demo\n") == text.count("C: STAT\n") == sessions


def test_transcript_follower_writes_a_session_ending_during_flush_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session may end between the follower taking the ended ones out and reading
    the open ones: it is written in full then, and taken out by the next flush."""
    transcript = Transcript()
    first = transcript.start_session(1, ("127.0.0.1", 1), lambda: 0.0)
    second = transcript.start_session(2, ("127.0.0.1", 2), lambda: 0.0)
    pop_finished = transcript.pop_finished

    def pop_then_end_the_second() -> list[SessionRecord]:
        finished = pop_finished()
        second.end(EndReason.CLIENT_CLOSED)
        return finished

    written: list[str] = []
    follower = cli.TranscriptFollower(transcript, written.append)
    first.end(EndReason.QUIT)
    monkeypatch.setattr(transcript, "pop_finished", pop_then_end_the_second)
    follower.flush()
    monkeypatch.undo()
    assert [s.id for s in transcript.sessions] == [2]  # ended, written, still held
    follower.flush()
    follower.flush()
    assert transcript.sessions == []
    lines = "".join(written).splitlines()
    assert [line for line in lines if " ended by " in line] == [
        "--- session 1 ended by QUIT after 0.000 s",
        "--- session 2 ended by client closed the connection after 0.000 s",
    ]


def test_raw_utf8_headers_reach_any_client_and_no_utf8_drops_the_extension(
    tmp_path: Path,
) -> None:
    """A message with raw UTF-8 headers reaches poplib, which never sends UTF8, as real
    servers send it (RFC 6856 section 2.1 allows it); --no-utf8 also stops offering
    UTF8 and LANG, as a pre-RFC 6856 server would."""
    mbox = tmp_path / "raw.mbox"
    mbox.write_bytes("From x\nSubject: Grüße\n\nHallo\n".encode())
    sources = ("--user", "eve:pw", "--mbox", f"eve={mbox}")
    for extra, offered in (((), True), (("--no-utf8",), False)):
        with running(*sources, *extra) as server:
            client = poplib.POP3(server.host, server.port, timeout=DEADLINE)
            assert ("UTF8" in client.capa()) is offered
            client.user("eve")
            client.pass_("pw")
            assert client.retr(1)[1][0] == "Subject: Grüße".encode()
            client.quit()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_tls_pop3s_and_the_ca_file_for_curl(tmp_path: Path) -> None:
    """--pop3s-port serves POP3S and (with --tls implied) STLS; --ca-file lets curl
    verify both; --profile words the replies like the chosen server."""
    ca = tmp_path / "ca.pem"
    args = ("--pop3s-port", "0", "--ca-file", str(ca), "--profile", "dovecot")
    with running(*args) as server:
        hints = []
        while not (line := _read_line(server.proc)).startswith("  Deletions"):
            hints.append(line)
        pop3s = next(h for h in hints if "POP3S on" in h).rsplit(":", 1)[1].strip()
        assert ca.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        for url, extra in (
            (f"pop3://demo:demo@localhost:{server.port}/1", ["--ssl-reqd"]),
            (f"pop3s://demo:demo@localhost:{pop3s}/1", []),
        ):
            curl = ["curl", "-sS", "-v", "--max-time", str(DEADLINE), "--cacert", str(ca)]
            result = subprocess.run(
                [*curl, *extra, url],
                capture_output=True,
                timeout=DEADLINE + 5,
                check=False,
            )
            assert result.returncode == 0, result.stderr.decode(errors="replace")
            assert result.stdout.startswith(b"From: ")
            assert b"< +OK Dovecot (Debian) ready." in result.stderr
