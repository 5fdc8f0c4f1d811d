"""Run what the README and the docs show as a user would: in a project of its own.

Installs fakepop's wheel in a new virtual environment in a temporary directory outside
this tree, with what a user's test suite adds (pytest, pytest-trio, pytest-asyncio;
Django and Celery for the recipes), copies examples/ and docs/examples/ there with the
files of .ci/fresh_project/ (a pytest.ini of a user's kind, and a test that fakepop is
the installed one), and runs pytest there, once for every supported Python found on
this machine. Nothing of this repository's own setup helps: not its trio_mode, not its
source tree on sys.path.

    python .ci/fresh_project.py [--wheel dist/fakepop-X-py3-none-any.whl] [--python PATH]...

Without --wheel it builds one; without --python it looks for python3.10 to python3.13
(as commands, or as pyenv versions) and uses those that run, the running one at
least. Exit status: 0 when pytest passed on every Python. Needs the package index, as
pip does.
"""

from __future__ import annotations

import argparse
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
EXTRAS = ["hypothesis", "recipes"]
COPIED = ["examples", "docs/examples"]
#: The Pythons fakepop supports (pyproject.toml's requires-python and classifiers).
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def find_pythons() -> list[str]:
    """An interpreter for each supported version that runs here."""
    found = []
    for version in SUPPORTED:
        candidates = [shutil.which(f"python{version}")]
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        candidates += sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")))
        for candidate in filter(None, candidates):
            works = subprocess.run(
                [candidate, "-c", "import venv"], capture_output=True, check=False
            )
            if works.returncode == 0:
                found.append(candidate)
                break
    return found or [sys.executable]


def run(*command: str | Path) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run(command, check=True)


def run_project(python: str, wheel: Path, temporary: Path) -> int:
    """Install ``wheel`` for ``python`` in a new venv and run the examples there."""
    venv = temporary / "venv"
    run(python, "-m", "venv", "--without-pip", venv)
    venv_python = venv / "bin" / "python"
    # As a user would: `pip install fakepop[hypothesis]` (the extra for
    # fakepop.strategies, which the property examples use), and the recipes' Django
    # and Celery (about 5 s more a Python), so the recipes run on every Python too.
    wanted = f"{wheel}[{','.join(EXTRAS)}]"
    pip = (sys.executable, "-m", "pip", "--python", venv_python)
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
    print(f"+ cd {project} && {venv_python} -m pytest", flush=True)
    command = [venv_python, "-m", "pytest", "-q"]
    return subprocess.run(command, cwd=project, env=env, check=False).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="the wheel to install (default: build one)")
    parser.add_argument("--python", action="append", help="an interpreter (repeatable)")
    arguments = parser.parse_args(argv)
    started = time.monotonic()
    failed = []
    with tempfile.TemporaryDirectory(prefix="fakepop-fresh-project-") as name:
        temporary = Path(name).resolve()
        if temporary.is_relative_to(ROOT):
            raise SystemExit(f"{temporary} is inside the source tree {ROOT}")
        wheel = arguments.wheel.resolve() if arguments.wheel else None
        if wheel is None:
            wheels = temporary / "wheels"
            run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT)
            (wheel,) = wheels.glob("fakepop-*.whl")
        for index, python in enumerate(arguments.python or find_pythons()):
            began = time.monotonic()
            status = run_project(python, wheel, temporary / f"python-{index}")
            print(f"fresh project with {python}: status {status}, "
                  f"{time.monotonic() - began:.1f} s", flush=True)
            if status != 0:
                failed.append(python)
    print(f"fresh project: {time.monotonic() - started:.1f} s in all", flush=True)
    if failed:
        print(f"fresh project failed with {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
