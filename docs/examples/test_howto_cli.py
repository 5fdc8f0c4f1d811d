"""The fakepop command: a server in a process of its own, for any client."""

import poplib
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="stops it with SIGTERM")


def test_the_command_line_server(tmp_path: Path) -> None:
    mbox = tmp_path / "alice.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jun  3 09:00:00 2024\nSubject: a\n\nA\n")
    transcript = tmp_path / "transcript.txt"
    command = [
        sys.executable, "-m", "fakepop", "--port", "0",
        "--user", "alice:pass:word", "--mbox", f"alice={mbox}",
        "--transcript", str(transcript),
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            ready = server.stdout.readline()  # always the first line
            assert ready.startswith("fakepop listening on ")
            host, port = ready.split()[-1].rsplit(":", 1)

            client = poplib.POP3(host, int(port), timeout=10)
            try:
                client.user("alice")
                client.pass_("pass:word")
                assert client.stat() == (1, 17)
                client.dele(1)
                client.quit()
            finally:
                client.close()
        finally:
            server.terminate()  # SIGTERM: a clean stop, exit status 0
            server.communicate(timeout=10)
    assert server.returncode == 0
    assert mbox.read_bytes().endswith(b"A\n")  # deletions never touch the sources
    assert "C: PASS ****" in transcript.read_text()
