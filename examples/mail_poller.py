"""The importer as a background worker: it polls the mailbox every few seconds, the way
a thread of a web application, a Celery beat task or a cron-like loop would.

A test cannot call such a worker and wait for it to return: it runs on its own, in its
own thread. The test starts it, then waits for what the POP3 server saw (see
``test_mail_poller.py``), and stops it.
"""

from __future__ import annotations

import logging
import poplib
import threading
from pathlib import Path
from types import TracebackType

from examples.importer import import_mail

__all__ = ["MailPoller"]

logger = logging.getLogger(__name__)


class MailPoller:
    """Runs :func:`import_mail` now and then every ``interval`` seconds, in a thread of
    its own, until :meth:`stop`. A poll that fails is logged and tried again at the
    next one: nothing is deleted on the server before it was saved."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        folder: Path,
        *,
        interval: float = 60.0,
    ) -> None:
        self._account = (host, port, user, password, folder)
        self.interval = interval
        #: The UIDs saved so far, in order.
        self.saved: list[str] = []
        #: What made polls fail, in order.
        self.failures: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop polling; return once the poll under way, if any, has finished."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> MailPoller:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.saved.extend(import_mail(*self._account))
            except (OSError, poplib.error_proto) as failure:
                logger.warning("polling the mailbox failed, trying again later: %s", failure)
                self.failures.append(failure)
            self._stop.wait(self.interval)  # the next poll, unless stopped meanwhile
