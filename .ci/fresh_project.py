"""Run what the README and the how-to show as a user would: in a project of its own.

Builds fakepop's wheel, installs it in a new virtual environment in a temporary
directory outside this tree, with what a user's test suite adds (pytest, pytest-trio,
pytest-asyncio), copies examples/ and docs/examples/ there with the files of
.ci/fresh_project/ (a pytest.ini of a user's kind, and a test that fakepop is the
installed one), and runs pytest there. Nothing of this repository's own setup helps:
not its trio_mode, not its source tree on sys.path.

    python .ci/fresh_project.py

Exit status: pytest's. Needs the package index, as pip does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = Path(__file__).resolve().parent / "fresh_project"
# What a user's test environment holds besides fakepop, for every example to run.
USER_PACKAGES = ["pytest", "pytest-trio", "pytest-asyncio"]
EXTRAS = ["hypothesis"]
COPIED = ["examples", "docs/examples"]


def run(*command: str | Path) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run(command, check=True)


def main() -> int:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fakepop-fresh-project-") as name:
        temporary = Path(name).resolve()
        if temporary.is_relative_to(ROOT):
            raise SystemExit(f"{temporary} is inside the source tree {ROOT}")
        wheels = temporary / "wheels"
        run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT)
        (wheel,) = wheels.glob("fakepop-*.whl")
        venv = temporary / "venv"
        run(sys.executable, "-m", "venv", "--without-pip", venv)
        python = venv / "bin" / "python"
        # As a user would: `pip install fakepop[hypothesis]` (the extra for
        # fakepop.strategies, which the property examples use).
        wanted = f"{wheel}[{','.join(EXTRAS)}]"
        pip = (sys.executable, "-m", "pip", "--python", python)
        run(*pip, "install", "-q", wanted, *USER_PACKAGES)

        project = temporary / "project"
        for folder in COPIED:
            shutil.copytree(
                ROOT / folder,
                project / folder,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        for path in PROJECT_FILES.iterdir():
            shutil.copy(path, project / path.name)

        # The environment a user's shell would give: no PYTHONPATH into this tree.
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        }
        env["FAKEPOP_SOURCE_TREE"] = str(ROOT)
        print(f"+ cd {project} && {python} -m pytest", flush=True)
        result = subprocess.run([python, "-m", "pytest"], cwd=project, env=env, check=False)
    print(f"fresh project: {time.monotonic() - started:.1f} s in all", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
