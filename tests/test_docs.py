"""The docs cannot drift from the code.

- The pages of the Sphinx site (docs/**/*.md) show Python only by including a file of
  docs/examples/ or examples/, whose tests run in CI: a ``{literalinclude}`` block,
  never a pasted one, so a page cannot show code that differs from what runs.
- Every file of docs/examples/ is shown by some page.
- README.md stays short (it is the PyPI page: under 8 KB), every relative link in it
  points to a file of the repository, and a Python block of it that holds a test is a
  part of a file of examples/ or docs/examples/, exactly as shown.

The API reference is checked by the strict Sphinx build itself (docs/conf.py fails it
for a public name left out), which CI runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.parts)
PYTHON_INFO = {"python", "py", "python3", "pycon", "ipython"}
EXAMPLE_FOLDERS = (DOCS / "examples", ROOT / "examples")
README_LIMIT = 8 * 1024


def _fences(page: Path) -> list[tuple[int, str, list[str]]]:
    """(line number, info string, body lines) of every fenced block of ``page``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = re.match(r"^(`{3,}|:{3,})(.*)$", lines[i].strip())
        if match:
            fence, info = match[1], match[2].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == fence)
            found.append((i + 1, info, lines[i + 1 : end]))
            i = end
        i += 1
    return found


def _includes(page: Path) -> list[tuple[int, Path, dict[str, str]]]:
    """(line, file, options) of every ``{literalinclude}`` of ``page``."""
    found = []
    for line, info, body in _fences(page):
        if not info.startswith("{literalinclude}"):
            continue
        argument = info.removeprefix("{literalinclude}").strip()
        # Sphinx reads "/x" as relative to docs/, anything else to the page's folder.
        path = DOCS / argument[1:] if argument.startswith("/") else page.parent / argument
        options = dict(
            re.fullmatch(r":([\w-]+):\s*(.*)", option.strip()).groups()  # type: ignore[union-attr]
            for option in body
            if option.strip()
        )
        found.append((line, path.resolve(), options))
    return found


INCLUDES = [(page, *include) for page in PAGES for include in _includes(page)]


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def test_the_site_has_its_pages() -> None:
    names = {_name(page) for page in PAGES}
    assert {"docs/index.md", "docs/tutorial/first-test.md", "docs/reference/api.md"} <= names
    assert len(INCLUDES) >= 20


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_a_page_shows_python_only_by_including_a_file(page: Path) -> None:
    for line, info, _ in _fences(page):
        words = info.split()
        pasted = bool(words) and (
            words[0] in PYTHON_INFO
            or (words[0] in ("{code-block}", "{code}", "{sourcecode}") and words[1:2] == ["python"])
        )
        assert not pasted, (
            f"{_name(page)} line {line}: a pasted Python block; put the code in a tested "
            "file of docs/examples/ and show it with ```{literalinclude} /examples/NAME.py"
        )


@pytest.mark.parametrize(
    ("page", "line", "path", "options"),
    INCLUDES,
    ids=[f"{_name(page)}:{line}" for page, line, _, _ in INCLUDES],
)
def test_each_included_file_is_a_tested_example(
    page: Path, line: int, path: Path, options: dict[str, str]
) -> None:
    where = f"{_name(page)} line {line}"
    assert any(path.is_relative_to(folder) for folder in EXAMPLE_FOLDERS), (
        f"{where}: {path} is not in docs/examples/ or examples/"
    )
    assert path.is_file(), f"{where}: {path} does not exist"
    assert options.get("language") == "python", f"{where}: say :language: python"
    # The caption tells the reader where the file is, in the repository.
    assert options.get("caption") == path.relative_to(ROOT).as_posix(), (
        f"{where}: the caption must be {path.relative_to(ROOT).as_posix()}"
    )
    if "pyobject" in options:
        text = path.read_text(encoding="utf-8")
        assert re.search(rf"^(async )?(def|class) {options['pyobject']}\b", text, re.M), (
            f"{where}: {path.name} has no {options['pyobject']}"
        )


def test_every_example_is_shown_in_the_docs() -> None:
    shown = {path for _, _, path, _ in INCLUDES}
    files = set((DOCS / "examples").glob("*.py"))
    assert sorted(p.name for p in files - shown) == [], "examples no docs page shows"


def test_the_readme_is_short() -> None:
    # The README is the front page (and PyPI's); the docs site holds the rest.
    assert len(README.read_bytes()) < README_LIMIT


README_LINKS = re.findall(r"\]\(([^)\s]+)\)", README.read_text(encoding="utf-8"))
RELATIVE_LINKS = [link for link in README_LINKS if not re.match(r"[a-z]+:|#", link)]


def test_the_readme_links_to_the_docs() -> None:
    assert len(RELATIVE_LINKS) >= 10


@pytest.mark.parametrize("link", RELATIVE_LINKS)
def test_each_relative_link_of_the_readme_exists(link: str) -> None:
    assert (ROOT / link.partition("#")[0]).exists(), f"README.md links to {link}, which is missing"


README_TESTS = [
    (line, "\n".join(body) + "\n")
    for line, info, body in _fences(README)
    if info in PYTHON_INFO and re.search(r"^(async )?def test_", "\n".join(body), re.M)
]


def test_the_readme_shows_a_test() -> None:
    assert len(README_TESTS) >= 1


@pytest.mark.parametrize(("line", "code"), README_TESTS, ids=[str(b[0]) for b in README_TESTS])
def test_each_test_of_the_readme_is_part_of_an_example_that_runs(line: int, code: str) -> None:
    """A README block with a test is a part of a test file of examples/ or
    docs/examples/, as it is shown: run in CI, here and in a project of its own."""
    files = sorted(path for folder in EXAMPLE_FOLDERS for path in folder.glob("*.py"))
    assert any(code in path.read_text(encoding="utf-8") for path in files), (
        f"README.md line {line}: this test is in no file of examples/ or docs/examples/"
    )
