"""The docs cannot drift from the code.

- Every Python block of docs/howto.md, docs/strategies.md and docs/cassettes.md is a
  complete file from docs/examples/ or examples/, whose tests run in CI, named on the
  line above the block; the block must equal the file.
- Every Python block of README.md that holds a test is a part of such a file, or of
  one in examples/, exactly as shown.
- docs/api.md must be exactly what docs/make_api.py writes from the code today.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import fakepop
from fakepop import corpus, faults, strategies

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOWTO = DOCS / "howto.md"
README = ROOT / "README.md"
PAGES = (HOWTO, DOCS / "strategies.md", DOCS / "cassettes.md")
FILE_LINE = re.compile(
    r"File: \[`(?P<path>(?:docs/)?examples/[\w.-]+\.py)`\]\((?P<link>[^)]+)\)"
)
PYTHON_INFO = {"python", "py", "python3"}


def _load(name: str) -> ModuleType:
    """A script of docs/ as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_fakepop_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _python_blocks(page: Path = HOWTO) -> list[tuple[int, str, str]]:
    """(line number, the line above, code) of every Python block of ``page``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    above = ""
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            info = stripped[3:].split()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            if info and info[0] in PYTHON_INFO:
                found.append((i + 1, above, "\n".join(lines[i + 1 : end]) + "\n"))
            i = end
        elif stripped:
            above = stripped
        i += 1
    return found


BLOCKS = [(page.name, *block) for page in PAGES for block in _python_blocks(page)]


def test_the_pages_have_python_blocks() -> None:
    assert len([block for block in BLOCKS if block[0] == "howto.md"]) >= 7
    assert len([block for block in BLOCKS if block[0] == "strategies.md"]) >= 2


@pytest.mark.parametrize(
    ("page", "line", "above", "code"), BLOCKS, ids=[f"{b[0]}:{b[1]}" for b in BLOCKS]
)
def test_each_python_block_is_the_file_it_names(
    page: str, line: int, above: str, code: str
) -> None:
    match = FILE_LINE.fullmatch(above)
    assert match, (
        f"docs/{page} line {line}: a Python block must follow a line "
        f"'File: [`docs/examples/NAME.py`](examples/NAME.py)', not {above!r}"
    )
    path = match["path"]
    link = os.path.relpath(ROOT / path, DOCS)  # relative to the page, in docs/
    assert match["link"] == link, f"docs/{page} line {line}: the link is not {link}"
    assert (ROOT / path).is_file(), f"docs/{page} line {line}: {path} does not exist"
    assert code == (ROOT / path).read_text(encoding="utf-8"), (
        f"docs/{page} line {line} differs from {path}; "
        "run python docs/include_examples.py to copy the file into the page"
    )


def test_every_example_is_shown_in_the_docs() -> None:
    named = {FILE_LINE.fullmatch(above)["path"] for _, _, above, _ in BLOCKS}  # type: ignore[index]
    files = {f"docs/examples/{path.name}" for path in (DOCS / "examples").glob("*.py")}
    assert files - named == set(), "examples no docs page shows"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_include_examples_leaves_the_pages_as_they_are(page: Path) -> None:
    # The tool that copies the examples in agrees with the check above.
    include_examples = _load("include_examples")
    assert [p.name for p in include_examples.PAGES] == [p.name for p in PAGES]
    text = page.read_text(encoding="utf-8")
    assert include_examples.include(text) == text


README_TESTS = [
    block
    for block in _python_blocks(README)
    if "\ndef test_" in block[2] or "\nasync def test_" in block[2]
]


def test_the_readme_shows_tests() -> None:
    assert len(README_TESTS) >= 2


@pytest.mark.parametrize(
    ("line", "above", "code"), README_TESTS, ids=[str(b[0]) for b in README_TESTS]
)
def test_each_test_of_the_readme_is_part_of_an_example_that_runs(
    line: int, above: str, code: str
) -> None:
    """A README block with a test is a part of a test file of examples/ or
    docs/examples/, as it is shown: run in CI, here and in a project of its own."""
    files = sorted([*ROOT.glob("examples/*.py"), *DOCS.glob("examples/*.py")])
    assert any(code in path.read_text(encoding="utf-8") for path in files), (
        f"README.md line {line}: this test is in no file of examples/ or docs/examples/"
    )


def test_api_md_is_what_make_api_writes() -> None:
    expected = _load("make_api").render()
    actual = (DOCS / "api.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/api.md is stale: run python docs/make_api.py"


def test_api_md_covers_every_public_name() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### `([\w.]+)`$", text, flags=re.MULTILINE))
    missing = [name for name in fakepop.__all__ if name not in headings]
    for module in (faults, corpus, strategies):
        short = module.__name__.removeprefix("fakepop.")
        missing += [
            f"{short}.{name}"
            for name in module.__all__
            if name not in fakepop.__all__ and f"{short}.{name}" not in headings
        ]
    assert missing == []
