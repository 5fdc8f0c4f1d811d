"""Build fakepop's sdist and wheel as a release would, and check what they hold.

    python .ci/check_dist.py [--outdir DIR]

``python -m build`` makes the sdist, then the wheel *from the sdist*, so a wheel at
all proves the sdist holds what a rebuild needs. Then:

- ``twine check``: the metadata (the README as the long description) renders on PyPI;
- the wheel has the package with its ``py.typed`` marker, the plugin's entry point
  and the command, and none of fakepop's own tests, benchmarks or docs;
- the sdist has the sources, tests, examples and docs a packager rebuilds and tests
  from.

The files stay in DIR (default: dist/) for .ci/fresh_project.py to install.
Exit status: 0 when every check passes.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: What the wheel must hold, and what it must not.
WHEEL_MUST = ("fakepop/__init__.py", "fakepop/py.typed", "fakepop/pytest_plugin.py")
WHEEL_MUST_NOT = ("tests/", "benchmarks/", "docs/", "examples/", ".ci/")
#: What the sdist must hold, relative to its top folder.
SDIST_MUST = (
    "pyproject.toml",
    "README.md",
    "CHANGELOG.md",
    "fakepop/py.typed",
    "tests/test_docs.py",
    "examples/test_quickstart.py",
    "docs/conf.py",
    "docs/index.md",
)


def run(*command: str | Path) -> None:
    print("+", " ".join(map(str, command)), flush=True)
    subprocess.run(command, check=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    outdir: Path = parser.parse_args(argv).outdir.resolve()
    shutil.rmtree(outdir, ignore_errors=True)
    run(sys.executable, "-m", "build", "--outdir", outdir, ROOT)
    (sdist,) = outdir.glob("fakepop-*.tar.gz")
    (wheel,) = outdir.glob("fakepop-*.whl")
    run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel)

    problems = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(
            archive.read(name).decode() for name in names if name.endswith("entry_points.txt")
        )
    problems += [f"the wheel lacks {name}" for name in WHEEL_MUST if name not in names]
    problems += [
        f"the wheel holds {name}" for name in names if name.startswith(WHEEL_MUST_NOT)
    ]
    for needed in ("fakepop = fakepop.pytest_plugin", "fakepop = fakepop.__main__:main"):
        if needed not in entry_points:
            problems.append(f"the wheel's entry points lack {needed!r}")

    with tarfile.open(sdist) as archive:
        top = sdist.name.removesuffix(".tar.gz")
        held = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    problems += [f"the sdist lacks {name}" for name in SDIST_MUST if name not in held]
    problems += [f"the sdist holds {name}" for name in held if "/_build/" in f"/{name}"]

    for problem in problems:
        print(f"check_dist: {problem}", file=sys.stderr)
    if not problems:
        print(f"check_dist: {wheel.name} ({len(names)} files) and {sdist.name} are sound")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
