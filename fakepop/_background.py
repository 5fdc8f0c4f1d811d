"""Running a recording proxy or a cassette server in a thread, for synchronous tests.

Both have ``serve(task_status=...)`` and ``errors``; :func:`serve_in_thread` runs one
in its own ``trio.run`` in a daemon thread and stops it on leaving the block.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Protocol, TypeVar

import trio

from .errors import ServerError

__all__ = ["serve_in_thread"]

logger = logging.getLogger("fakepop")

_TIMEOUT = 10.0


class Serving(Protocol):
    errors: list[BaseException]

    async def serve(self, *, task_status: trio.TaskStatus[None] = ...) -> None: ...


S = TypeVar("S", bound=Serving)


@contextmanager
def serve_in_thread(server: S) -> Iterator[S]:
    """Serve ``server`` (a :class:`~fakepop.RecordingProxy` or
    :class:`~fakepop.CassetteServer`) from a background thread while the block runs::

        with fakepop.serve_in_thread(fakepop.CassetteServer("provider.jsonl")) as server:
            client = poplib.POP3(server.host, server.port)

    Returns once it listens (a failure to listen is raised here). Leaving the block
    stops it and then raises :class:`~fakepop.ServerError` if ``server.errors`` holds
    anything: a deviation from the cassette, or a session that failed. If the block
    itself raised, that stays the error, with the server's as a note (as
    :class:`~fakepop.Pop3ServerThread` does).
    """
    started = threading.Event()
    state: dict[str, object] = {}

    async def run() -> None:
        with trio.CancelScope() as scope:
            state["scope"] = scope
            state["token"] = trio.lowlevel.current_trio_token()
            await server.serve(task_status=_Started(started))

    def main() -> None:
        try:
            trio.run(run)
        except BaseException as exc:
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=main, name="fakepop-cassette", daemon=True)
    thread.start()
    started.wait(_TIMEOUT)
    if "error" in state:
        thread.join(_TIMEOUT)
        error = state["error"]
        assert isinstance(error, BaseException)
        raise error
    failure: BaseException | None = None
    try:
        yield server
    except BaseException as exc:
        failure = exc
        raise
    finally:
        token = state.get("token")
        scope = state.get("scope")
        if isinstance(token, trio.lowlevel.TrioToken) and isinstance(scope, trio.CancelScope):
            with suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(scope.cancel, trio_token=token)
        thread.join(_TIMEOUT)
        error = state.get("error")
        if isinstance(error, BaseException):
            server.errors.append(error)
        _report(server.errors, failure)


def _report(errors: list[BaseException], failure: BaseException | None) -> None:
    # As Pop3Server.report: raise the errors if the block ended well; else the block's
    # own failure is what the test reports, and the errors ride along as a note.
    if not errors:
        return
    error = ServerError(errors)
    if failure is None:
        raise error
    if sys.version_info >= (3, 11):
        failure.add_note(f"Also, when the fakepop server stopped: {error}")
    else:
        logger.error("fakepop: when the server stopped: %s", error)


class _Started:
    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def started(self, value: object = None) -> None:
        self._event.set()
