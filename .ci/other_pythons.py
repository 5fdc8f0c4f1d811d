"""Run fakepop's own test suite on every supported Python besides the running one.

For each interpreter that ``fresh_project.find_pythons`` finds (python3.10 to
python3.13, as commands or pyenv versions) other than the one running this script,
make a virtual environment in a temporary directory, install this tree with its
``test`` extra, and run the suite from the tree, as the README's command does, on two
workers. The running Python's suite is the last step of ``.ci/run`` itself.

    python .ci/other_pythons.py

Exit status: 0 when the suite passed on every Python. Needs the package index, as pip
does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fresh_project import ROOT, find_pythons, run


def version_of(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def main() -> int:
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    others = [python for python in find_pythons() if version_of(python) != running]
    failed = []
    for python in others:
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="fakepop-suite-") as name:
            venv = Path(name) / "venv"
            run(python, "-m", "venv", venv)
            interpreter = venv / "bin" / "python"
            run(interpreter, "-m", "pip", "install", "-q", "--upgrade", "pip")
            run(interpreter, "-m", "pip", "install", "-q", "-e", f"{ROOT}[test]")
            suite = subprocess.run(
                [interpreter, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"],
                cwd=ROOT,
                check=False,
            )
        print(f"Python {version_of(python)}: {time.monotonic() - started:.0f} s", flush=True)
        if suite.returncode != 0:
            failed.append(version_of(python))
    if failed:
        print(f"the suite failed on Python {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
