"""Copy the example files into the code blocks of the docs pages that name them.

Every fenced ``python`` block of a page in ``PAGES`` is a complete file from
``docs/examples/`` or ``examples/``, whose tests run in CI, named on the line just
above the block with a link relative to ``docs/``::

    File: [`docs/examples/test_howto_trio.py`](examples/test_howto_trio.py)
    File: [`examples/importer.py`](../examples/importer.py)

Edit the example, run its tests, then ``python docs/include_examples.py`` to copy it
into the pages (``--check`` only reports stale blocks, exit status 1).
``tests/test_docs.py`` fails while a block differs from its file, so the docs
cannot drift from code that runs in CI: the literalinclude idea, without Sphinx.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The pages whose python blocks are example files.
PAGES = (
    ROOT / "docs" / "howto.md",
    ROOT / "docs" / "strategies.md",
    ROOT / "docs" / "cassettes.md",
)
#: The line above each python block: the file's path, linked relative to docs/.
FILE_LINE = re.compile(
    r"File: \[`(?P<path>(?:docs/)?examples/[\w.-]+\.py)`\]\((?P<link>[^)]+)\)"
)
FENCE = "```"


def blocks(text: str) -> list[tuple[str | None, int, int]]:
    """(path named above it or None, first line, end line) of every python block,
    as line indexes into ``text.splitlines()``: the block's code is lines[first:end]."""
    lines = text.splitlines()
    found = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == FENCE + "python":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == FENCE), None)
            if end is None:
                raise ValueError(f"line {i + 1}: the python block is never closed")
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = FILE_LINE.fullmatch(above.strip())
            found.append((match["path"] if match else None, i + 1, end))
            i = end
        i += 1
    return found


def include(text: str) -> str:
    """``text`` with every named python block replaced by its file's contents."""
    lines = text.splitlines()
    for path, first, end in reversed(blocks(text)):
        if path is not None:
            lines[first:end] = (ROOT / path).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    status = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        unnamed = [first for path, first, _ in blocks(text) if path is None]
        if unnamed:
            print(f"{page.name}: python blocks without a File: line above, at lines {unnamed}")
            status = 1
            continue
        updated = include(text)
        if updated == text:
            continue
        if "--check" in argv:
            print(f"docs/{page.name} is stale: run python docs/include_examples.py")
            status = 1
            continue
        page.write_text(updated, encoding="utf-8")
        print(f"docs/{page.name} updated")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
