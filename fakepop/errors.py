"""fakepop's exceptions: one base, so ``except fakepop.FakepopError`` catches them all.

Each also derives from the built-in exception a caller would expect for its kind
(``ValueError`` for bad options or mail, ``RuntimeError`` for a call at the wrong
time), so code written against the built-ins keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._transcript import Transcript

__all__ = [
    "CassetteError",
    "ConfigError",
    "ExpectationError",
    "FakepopError",
    "ServerError",
    "UsageError",
    "WaitTimeout",
]


class FakepopError(Exception):
    """The base of every exception fakepop raises on purpose."""


class ServerError(FakepopError):
    """The server failed while handling a session; ``errors`` holds what was raised.

    The test that drove the session should fail: the behaviour it saw was not POP3's.
    """

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = list(errors)
        listing = "; ".join(f"{type(e).__name__}: {e}" for e in self.errors)
        super().__init__(f"fakepop server raised {len(self.errors)} error(s): {listing}")


class ConfigError(FakepopError, ValueError):
    """A server option that cannot work (ServerConfig, a profile, a bind option)."""


class CassetteError(FakepopError, ValueError):
    """A cassette file that cannot be read: truncated, of another format or version,
    or edited by hand into something no recording could be. ``path`` and ``line`` (1
    for the header; None for the file as a whole) say where."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        where = path if line is None else f"{path}, line {line}"
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class UsageError(FakepopError, RuntimeError):
    """An API call at a time it cannot work: a server that is not running, started
    twice, reset while resetting, a closed session asked for more."""


class ExpectationError(FakepopError, AssertionError):
    """An assertion helper (``assert_commands``, ``assert_retrieved``, ...) found that
    what the server saw differs from what the test expected.

    The message shows the difference and then the transcript it was checked against,
    which ``transcript`` holds (the pytest plugin then leaves that transcript out of
    the report's own section, so it is shown once).
    """

    def __init__(self, message: str, transcript: Transcript | None = None) -> None:
        super().__init__(message)
        self.transcript = transcript


class WaitTimeout(FakepopError, TimeoutError):
    """A ``wait_for`` call ran out of time before its condition held.

    The message names what was awaited and shows the transcript so far, which
    ``transcript`` holds.
    """

    def __init__(self, message: str, transcript: Transcript | None = None) -> None:
        super().__init__(message)
        self.transcript = transcript
