"""fakepop's exceptions: one base, so ``except fakepop.FakepopError`` catches them all.

Each also derives from the built-in exception a caller would expect for its kind
(``ValueError`` for bad options or mail, ``RuntimeError`` for a call at the wrong
time), so code written against the built-ins keeps working.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FakepopError", "ServerError", "UsageError"]


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


class UsageError(FakepopError, RuntimeError):
    """An API call at a time it cannot work: a server that is not running, started
    twice, reset while resetting, a closed session asked for more."""
