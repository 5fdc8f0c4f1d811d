"""The handshake between :meth:`Pop3ServerThread.start <fakepop.Pop3ServerThread.start>`
and the server's thread: the address it listens on, or why it could not listen."""

from __future__ import annotations

import threading

from .errors import UsageError

__all__ = ["Startup"]


class Startup:
    # The result slot between the server thread and start(): either the bound address
    # or the exception that prevented listening, published under the same condition
    # that signals it, so the caller can never see "ready" without knowing which.
    # Waiting is on the condition; nothing here polls or sleeps (aiosmtpd's Controller
    # slept, then connected to the *configured* port to see whether it was up, which
    # cannot work with port 0).
    def __init__(self) -> None:
        # One Condition (around its default RLock) guards the slot and signals it: a
        # Lock and an Event cost twice as much to make, and a server makes one.
        self._published = threading.Condition()
        self._done = False
        self.address: tuple[str, int] | None = None
        self.error: BaseException | None = None
        self.abandoned = False

    def succeed(self, address: tuple[str, int]) -> bool:
        """Publish the address; False if start() already gave up waiting."""
        with self._published:
            if self.abandoned or self._done:
                return False
            self.address = address
            self._done = True
            self._published.notify_all()
            return True

    def fail(self, error: BaseException | None) -> bool:
        """Publish a startup failure (None: the thread ended without a word).

        False if it came too late for start() to raise: after success, or after
        start() gave up waiting.
        """
        with self._published:
            if self.abandoned or self._done:
                return False
            self.error = error
            self._done = True
            self._published.notify_all()
            return True

    def wait(self, timeout: float) -> tuple[str, int]:
        with self._published:
            if not self._published.wait_for(lambda: self._done, timeout):
                # If the server comes up after all, succeed() tells the thread to
                # shut itself down instead of serving a port nobody knows.
                self.abandoned = True
                raise UsageError(
                    f"the fakepop server thread did not start listening within "
                    f"{timeout:g} s"
                )
        error, self.error = self.error, None  # do not keep the traceback alive
        if error is not None:
            raise error
        if self.address is None:
            raise UsageError("the fakepop server thread ended before it was listening")
        return self.address
