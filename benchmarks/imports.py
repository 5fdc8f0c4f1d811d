"""What importing fakepop costs, in fresh interpreters.

    python benchmarks/imports.py            # 21 fresh interpreters per figure, a few seconds
    python benchmarks/imports.py --quick    # 3 per figure, a smoke test

pytest imports ``fakepop.pytest_plugin`` (through its ``pytest11`` entry point) in
every run of an environment where fakepop is installed, whether or not a test uses a
fakepop server, so that import must stay cheap: no Trio, no trustme, no cryptography.

Each figure is the median over fresh interpreters, each timing its own import with
``time.perf_counter`` around the import statement alone (interpreter start-up and what
is imported before it are not counted), and each reporting which of trio, trustme and
cryptography were in ``sys.modules`` afterwards. Exits 1 if the plugin or the package
imported any of them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("trio", "trustme", "cryptography")
TARGET_MS = 20.0  # the plugin's import, in a process that has imported pytest


@dataclass(frozen=True)
class Figure:
    name: str
    before: str  # imported first, not timed
    timed: str  # the statement timed
    target_ms: float | None = None
    must_stay_light: bool = False  # fail the run if it imports any of HEAVY


FIGURES = (
    Figure(
        "plugin, as pytest loads it",
        "import pytest",
        "import fakepop.pytest_plugin",
        TARGET_MS,
        must_stay_light=True,
    ),
    Figure("plugin, with pytest's own import", "", "import fakepop.pytest_plugin"),
    Figure("package: import fakepop", "", "import fakepop", must_stay_light=True),
    Figure("pytest alone (anchor)", "", "import pytest"),
    Figure("a server: Pop3ServerThread (anchor)", "import fakepop", "fakepop.Pop3ServerThread"),
    Figure("TLS: TlsCertificates() (anchor)", "import fakepop", "fakepop.TlsCertificates()"),
)

CHILD = """
import json, sys, time
{before}
start = time.perf_counter()
{timed}
elapsed = time.perf_counter() - start
imported = [name for name in {heavy!r} if name in sys.modules]
import importlib.util
origin = importlib.util.find_spec("fakepop").origin  # this checkout's, not another
assert origin.startswith({root!r}), origin
print(json.dumps({{"seconds": elapsed, "imported": imported}}))
"""


def _environment() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path)


def _child(figure: Figure) -> tuple[float, list[str]]:
    code = CHILD.format(before=figure.before, timed=figure.timed, root=str(ROOT), heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_environment(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout.splitlines()[-1])
    return float(result["seconds"]), list(result["imported"])


def _startup_ms(runs: int) -> float:
    """Median wall time of ``python -c pass``, from this process: the anchor."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=_environment())
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 interpreters per figure")
    parser.add_argument("--runs", type=int, help="interpreters per figure (default 21)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 21)

    startup = _startup_ms(runs)
    print(f"fresh interpreters per figure: {runs}; `python -c pass` takes {startup:.1f} ms")
    print()
    print(
        "| Import | median | max | / `python -c pass` | target | met "
        "| trio, trustme, cryptography |"
    )
    print("|---|---|---|---|---|---|---|")
    failed = []
    for figure in FIGURES:
        samples = [_child(figure) for _ in range(runs)]
        times = [seconds * 1000 for seconds, _ in samples]
        imported = sorted({name for _, names in samples for name in names})
        median = statistics.median(times)
        target = f"≤ {figure.target_ms:g} ms" if figure.target_ms is not None else ""
        met = "" if figure.target_ms is None else ("yes" if median <= figure.target_ms else "no")
        print(
            f"| {figure.name} | {median:.1f} ms | {max(times):.1f} ms | "
            f"{median / startup:.2f} | {target} | {met} | {', '.join(imported) or 'none'} |"
        )
        if figure.must_stay_light and imported:
            failed.append(f"{figure.timed} imported {', '.join(imported)}")
    if args.quick:
        print("\n--quick figures are too few to judge the target by.")
    for failure in failed:
        print(f"FAILED: {failure}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
