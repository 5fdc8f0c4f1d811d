"""A Celery task that fetches a mailbox, and retries when the server or the network
fails on the way.

It saves mail with the UIDL fetcher of examples/uidl_fetcher.py, which remembers what
it saved: a retry after a dropped connection saves nothing twice and loses nothing
(RFC 1939 §6: the server deletes only after QUIT). A refused login is not retried.
"""

from __future__ import annotations

import poplib
from pathlib import Path

from celery import Celery, Task

from examples.uidl_fetcher import fetch_new

app = Celery("mail")  # your project's app; its broker is configured elsewhere



def _transient(error: Exception) -> bool:
    if isinstance(error, poplib.error_proto):
        # The server's -ERR line (bytes), or poplib's "-ERR EOF" (str) for a dropped
        # connection. RFC 3206 §4: [AUTH] means bad credentials, which no retry fixes.
        reply = error.args[0]
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return "[AUTH]" not in text
    return isinstance(error, (OSError, EOFError))


@app.task(bind=True, max_retries=5, default_retry_delay=30)
def fetch_mailbox(
    self: Task, host: str, port: int, user: str, password: str, *, maildir: str
) -> list[str]:
    """Save ``user``'s new mail into ``maildir``, delete it from the server, and return
    the UIDs saved; retry on a dropped connection or a temporary -ERR."""
    folder = Path(maildir)
    try:
        return fetch_new(
            host, port, user, password, folder, state_file=folder / ".uidl.json", delete=True
        )
    except Exception as error:
        if _transient(error):
            raise self.retry(exc=error) from error
        raise
