"""The Trio importer of ``trio_importer.py``, tried again with exponential backoff.

A run that fails for a reason that passes (the server is too slow, the connection
drops, the mailbox is locked, a temporary failure) is tried again after 1, 2, 4, ...
seconds; any other failure (a wrong password, say) is raised at once. Nothing is
imported twice: a run saves only what no earlier run saved.

Expect ``-ERR [IN-USE]`` right after a timeout. A client that gives up waiting closes
its connection, but the server still holds the mailbox's lock for that session until
it notices the client is gone: when it next writes or reads, or when its autologout
timer fires. Real servers do the same, so the retries meet ``[IN-USE]`` until then,
and backing off (rather than failing, or hammering the server) is what gets the mail.

The pause between runs is ``sleep``, ``trio.sleep`` unless the caller passes another:
a test can record the backoff, or wait on a clock of its own.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from examples.trio_importer import Pop3Error, import_mail

__all__ = ["import_with_retries", "worth_retrying"]

# RFC 2449 section 8.1 and RFC 3206 section 4: the response codes that say "not now".
_PASSING = re.compile(r"-ERR \[(IN-USE|LOGIN-DELAY|SYS/TEMP)\]")


def worth_retrying(error: Exception) -> bool:
    """Whether another run may succeed where this one failed with ``error``."""
    if isinstance(error, Pop3Error):
        return _PASSING.match(str(error)) is not None
    # Too slow, or the connection went away.
    return isinstance(error, (trio.TooSlowError, trio.BrokenResourceError, OSError))


async def import_with_retries(
    host: str,
    port: int,
    user: str,
    password: str,
    folder: Path,
    *,
    attempts: int = 6,
    first_pause: float = 1.0,
    sleep: Callable[[float], Awaitable[object]] = trio.sleep,
) -> list[str]:
    """Import new mail into ``folder``, running the importer up to ``attempts`` times
    with pauses of ``first_pause`` seconds, then twice as long each time; return the
    UIDs saved by the run that succeeded. The last run's failure is raised."""
    pause = first_pause
    for _ in range(attempts - 1):
        try:
            return await import_mail(host, port, user, password, folder)
        except (Pop3Error, trio.TooSlowError, trio.BrokenResourceError, OSError) as error:
            if not worth_retrying(error):
                raise
        await sleep(pause)
        pause *= 2
    return await import_mail(host, port, user, password, folder)
