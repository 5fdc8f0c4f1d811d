"""``python -m fakepop``: the fakepop command, which ``fakepop._cli`` implements."""

import sys

from ._cli import main

__all__ = ["main"]  # the target of the fakepop script in pyproject.toml

if __name__ == "__main__":
    sys.exit(main())
