"""A fakepop server in a background thread, for tests in plain sync code or asyncio.

The server itself is the Trio :class:`~fakepop.Pop3Server`; this module only gives it a
thread of its own with its own ``trio.run``, and a blocking start/stop around it.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Mapping
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from typing_extensions import Unpack

from ._config import ServerConfig
from ._expectations import MailAssertions
from ._server import Pop3Server, ServerOptions
from ._startup import Startup
from ._store import MailboxSpec, MailStore
from ._thread_waits import ThreadWaits
from ._transcript import Transcript
from .errors import ServerError, UsageError
from .faults import FaultSet

__all__ = ["Pop3ServerThread"]

logger = logging.getLogger("fakepop")

# How long start() waits for the thread to report, and stop() for it to end. Binding a
# socket takes milliseconds; these only turn "hung forever" into an error message.
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
_THREAD_NAME = "fakepop-server"


class _ReadyStatus:
    # Handed to Pop3Server.serve as its task_status, so the server task itself runs as
    # the thread's main task: no nursery of ours, hence no ExceptionGroup around a bind
    # error, which reaches start() as the very OSError that open_tcp_listeners raised.
    def __init__(self, owner: Pop3ServerThread, scope: trio.CancelScope) -> None:
        self._owner = owner
        self._scope = scope

    def started(self, value: object = None) -> None:
        # Runs in the server thread, once every listener is open.
        if not self._owner._startup.succeed(self._owner.server.address):
            self._scope.cancel()


class Pop3ServerThread(MailAssertions, ThreadWaits):
    """A fakepop POP3 server running in a background thread, for synchronous tests.

    ::

        with Pop3ServerThread({"alice": {"password": "pw", "messages": [msg]}}) as server:
            client = poplib.POP3(server.host, server.port, timeout=10)
            ...                                      # the code under test, then QUIT
            server.wait_idle()                       # every session has ended
            assert server.store["alice"].messages == ()

    The server runs its own ``trio.run`` in a daemon thread named ``fakepop-server``,
    so it works the same from plain sync code, from inside an asyncio event loop, or
    from a Trio task (though Trio code is better served by
    :func:`~fakepop.open_pop3_server`). ``store`` may be read and changed from the
    test's thread while the server runs.

    Leaving the ``with`` block (or :meth:`stop`) ends open sessions at once without
    UPDATE, and raises :class:`~fakepop.ServerError` if any session failed inside the
    server, so a test cannot pass while the server broke. A server thread is started
    once; to serve the same mail again, make a new one with the same ``store``.
    """

    def __init__(
        self,
        mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
        **options: Unpack[ServerOptions],
    ) -> None:
        """``options`` are :class:`~fakepop.Pop3Server`'s (host, port, config,
        ssl_context, pop3s_port, record_transcript)."""
        #: The Trio server object that the thread runs.
        self.server = Pop3Server(mailboxes, **options)
        # Serializes start() and stop(), so that one called from another thread while
        # the other is half-way sees a consistent state.
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._startup = Startup()
        self._address: tuple[str, int] | None = None  # set while running
        self._token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._stopped = False
        self._reported = False  # stop() raised ServerError once already
        self._run_over = False  # trio.run has returned or raised: nothing changes now

    # -- what the test uses ------------------------------------------------------------
    @property
    def store(self) -> MailStore:
        """The mailboxes; safe to read and change from any thread while serving."""
        return self.server.store

    @property
    def faults(self) -> FaultSet:
        """Faults to inject (see fakepop.faults); add and remove them at any time."""
        return self.server.faults

    @property
    def transcript(self) -> Transcript:
        """What every session said; safe to read from any thread while serving."""
        return self.server.transcript

    @property
    def errors(self) -> list[BaseException]:
        """What went wrong inside the server, oldest first: exceptions from sessions,
        and whatever ended the server thread unexpectedly."""
        return self.server.errors

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on; with ``port=0``, the port it got."""
        # Cached at startup rather than read from the server's listeners in another
        # thread, and refused once stopped: a stale port would point a client at
        # nothing, or worse, at someone else's server.
        address = self._address
        if address is None or not self.is_running():
            raise UsageError("the fakepop server is not running (call start() first)")
        return address

    @property
    def config(self) -> ServerConfig:
        """The server's options (immutable)."""
        return self.server.config

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The server side of TLS, if the server has one."""
        return self.server.ssl_context

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket; only while running."""
        self.address  # noqa: B018 - raises unless running
        return self.server.addresses

    @property
    def pop3s_address(self) -> tuple[str, int]:
        """(host, port) of the POP3S listener, when made with ``pop3s_port``."""
        self.address  # noqa: B018 - raises unless running
        return self.server.pop3s_address

    @property
    def pop3s_port(self) -> int:
        """The implicit-TLS (POP3S) port, when the server was made with ``pop3s_port``."""
        return self.pop3s_address[1]

    @property
    def active_sessions(self) -> int:
        """Connections currently open (a snapshot: sessions come and go meanwhile)."""
        return self.server.active_sessions

    @property
    def ended_sessions(self) -> int:
        """Sessions that have ended since the server started or was last reset: closed,
        no longer counted in ``active_sessions``, their QUIT committed and their lock
        released (see :attr:`Pop3Server.ended_sessions`)."""
        return self.server.ended_sessions

    @property
    def record_transcript(self) -> bool:
        """Whether the server keeps a transcript (the option of the same name)."""
        return self.server.record_transcript

    @property
    def host(self) -> str:
        """The address the server listens on, such as ``"127.0.0.1"``."""
        return self.address[0]

    @property
    def port(self) -> int:
        """The port the server listens on (the real one when created with ``port=0``)."""
        return self.address[1]

    def is_running(self) -> bool:
        """True from a successful :meth:`start` until :meth:`stop` (or a crash)."""
        thread = self._thread
        return self._address is not None and thread is not None and thread.is_alive()

    def __repr__(self) -> str:
        if self.is_running():
            host, port = self.address
            return f"<Pop3ServerThread running on {host}:{port}>"
        state = "stopped" if self._stopped else "not started"
        return f"<Pop3ServerThread {state}>"

    # -- starting ----------------------------------------------------------------------
    def start(self) -> None:
        """Start serving; return once the server is listening.

        A failure to listen (the port is taken, the host is not an address of this
        machine) is raised here as the original exception, typically ``OSError``, and
        leaves no thread behind. Raises ``RuntimeError`` if already running or already
        stopped: a ``Pop3ServerThread`` runs once.
        """
        with self._lock:
            if self._stopped:
                raise UsageError(
                    "a Pop3ServerThread runs only once and this one has already run; "
                    "create a new one (it may share the same MailStore)"
                )
            if self._thread is not None:
                raise UsageError("this Pop3ServerThread is already running")
            # daemon: a server the test forgot to stop must not hang interpreter exit.
            self._thread = threading.Thread(target=self._run, name=_THREAD_NAME, daemon=True)
            self._thread.start()
            try:
                self._address = self._startup.wait(_START_TIMEOUT)
            except BaseException:
                self._stopped = True
                if not self._startup.abandoned:
                    # The thread reported and is ending; don't leave it behind.
                    self._thread.join(_STOP_TIMEOUT)
                raise

    def __enter__(self) -> Pop3ServerThread:
        self.start()
        return self

    # -- the server thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:
            # Nothing that ends trio.run may be lost (a thread's exception would only
            # be printed, and pytest-httpserver's lesson is that errors kept for an
            # explicit check() are errors nobody sees). Before listening, it is the
            # startup error start() raises; after, it joins the session errors that
            # stop(), check() and leaving the `with` block raise as ServerError.
            if not self._startup.fail(exc):
                logger.exception("fakepop: the server thread crashed")
                self.server.errors.append(exc)
        finally:
            self._startup.fail(None)  # no-op if start() already heard from us
            self._run_over = True
            self.store._changes.bump()  # a waiter learns that nothing will change now

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            await self.server.serve(task_status=_ReadyStatus(self, scope))

    # -- stopping ----------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the server and wait for its thread to end.

        Open sessions end at once, without UPDATE: nothing is deleted and every lock is
        released; their clients see the connection close. Then, the first time,
        :class:`~fakepop.ServerError` is raised if anything failed inside the server.
        Calling it again, or before :meth:`start`, does nothing.
        """
        with self._lock:
            thread = self._thread
            if thread is None or self._reported:
                return
            if thread is threading.current_thread():
                raise UsageError("stop() cannot be called from the server's own thread")
            self._stopped = True
            self._address = None
            self._cancel()
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                raise UsageError(
                    f"the fakepop server thread did not end within {_STOP_TIMEOUT:g} s"
                )
            self._reported = True
            self.check()

    def _cancel(self) -> None:
        # token.run_sync_soon rather than trio.from_thread.run_sync: it does not wait,
        # and unlike from_thread it may be called from a Trio task (a `with` block in
        # an async test), which from_thread refuses. The join that follows waits.
        token, scope = self._token, self._scope
        if token is None or scope is None:
            return  # start() saw the thread end already; there is nothing to cancel
        # RunFinishedError: trio.run already ended (it crashed); the join returns at once.
        with suppress(trio.RunFinishedError):
            token.run_sync_soon(scope.cancel)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.stop()
            return
        # The block failed on its own: that failure is what the test must report. A
        # server error must not replace it, nor be lost, so it rides along as a note.
        try:
            self.stop()
        except ServerError:
            self.server.report(exc)

    def reset(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> None:
        """Start afresh with these mailboxes, keeping the same thread and address.

        Safe from any thread but the server's. The sessions open now end without
        UPDATE, connections arriving meanwhile wait, and the store, transcript, faults,
        session numbers and errors start afresh; returns in milliseconds however busy
        the server is. A bad mailbox spec raises before anything changes. Errors of
        sessions that ended since they were last reported are raised afterwards as
        :class:`~fakepop.ServerError`.
        """
        token = self._blocking_call("reset")
        # Without an open session, done here and now: no round trip to the server's
        # thread, which would first have to wake up.
        if not self.server.reset_if_idle(mailboxes):
            trio.from_thread.run(self.server.reset, mailboxes, trio_token=token)

    def close_sessions(self) -> None:
        """End every session open now, without UPDATE, and wait until they have ended."""
        token = self._blocking_call("close_sessions")
        trio.from_thread.run(self.server.close_sessions, trio_token=token)

    def _blocking_call(self, name: str) -> trio.lowlevel.TrioToken:
        # The guard of every call that blocks on the server's thread: it must be
        # running, and the caller must not be a Trio task (which would block its run).
        token = self._token
        if token is None or not self.is_running():
            raise UsageError("the fakepop server is not running (call start() first)")
        _refuse_in_trio(name)
        return token

    # -- checking and waiting ----------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`~fakepop.ServerError` now if anything failed inside the server."""
        self.server.check()

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Block until no session is open: every lock released, every QUIT committed.

        Call it after the client has disconnected and before looking at ``store``.
        Raises ``TimeoutError`` if sessions are still open after ``timeout`` seconds.
        It blocks, so from Trio code call it with ``trio.to_thread.run_sync``; in an
        asyncio test make sure the client's connection is closed first.
        """
        token = self._blocking_call("wait_idle")
        try:
            idle = trio.from_thread.run(self._wait_idle, timeout, trio_token=token)
        except (trio.RunFinishedError, trio.Cancelled):
            # The server ended meanwhile: stopped (which ended every session), or
            # crashed, which is no success to report.
            thread = self._thread
            if thread is not None:
                thread.join(_STOP_TIMEOUT)
            if not self._stopped:
                self.check()
                raise UsageError("the fakepop server ended while waiting") from None
            return
        if self.server.fatal is not None:
            # Idle because the run is ending: report that, not success.
            if self._thread is not None:
                self._thread.join(_STOP_TIMEOUT)
            self.check()
        if not idle:
            raise TimeoutError(
                f"{self.server.active_sessions} POP3 session(s) still open "
                f"after {timeout:g} s"
            )

    async def _wait_idle(self, timeout: float) -> bool:
        with trio.move_on_after(timeout):
            await self.server.wait_idle()
            return True
        return False


def _refuse_in_trio(name: str) -> None:
    # from_thread would refuse too, with a message that does not say what to do.
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return
    raise UsageError(
        f"Pop3ServerThread.{name}() blocks and cannot be called from a Trio task; use "
        f"await trio.to_thread.run_sync(server.{name}), or fakepop.open_pop3_server"
    )

