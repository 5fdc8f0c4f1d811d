"""pytest fixtures for fakepop, loaded through the ``pytest11`` entry point.

Fixtures that give a running server:

- ``pop3_server``: a :class:`~fakepop.Pop3ServerThread` of the test's own, for sync
  and asyncio tests; fresh state for every test.
- ``pop3_server_factory``: makes as many started server threads as the test needs,
  for failover between servers: ``make(mailboxes=None, *, config=None, tls=None)``
  defaults to what ``pop3_server`` would get; all are stopped when the test ends, and
  an error inside any of them fails the test at teardown. ``pop3_server`` is the
  first server this factory made, when a test uses both.
- ``pop3_shared_server``: one server thread for the whole test session, reset before
  each test (mailboxes, transcript, errors, open sessions): for large suites.
- ``trio_pop3_server``: a :class:`~fakepop.Pop3Server` in the test's own Trio run (with
  pytest-trio), so ``MockClock``/``autojump_clock`` drive its timers.

What the server starts with comes from ``@pytest.mark.pop3(mailboxes, **options)``
through the ``pop3_mailboxes`` and ``pop3_config`` fixtures, which a conftest.py may
override, as may ``pop3_listen_address``. The marker may be put on a test function,
its class and its module (``pytestmark``); they merge key by key, the closest
winning: each of ``mailboxes`` (the positional argument is that key), ``tls``,
``profile`` and every ServerConfig option comes from the closest marker that sets
it, so a module's mailboxes and a test's ``autologout=5`` make one server. A value
replaces a farther one whole: mailbox dicts and ``texts`` are not merged. Of markers
stacked on one function, the one nearest the ``def`` is the closest.

When a test that used one of these servers fails, its report gets a "fakepop
transcript" section per server, numbered in the order the servers started, except for
a transcript that the failure's ExpectationError or WaitTimeout shows already. The ini
options ``fakepop_transcript`` (on-failure, always, never),
``fakepop_transcript_payloads`` and ``fakepop_transcript_timestamps`` (on, off) and
``fakepop_transcript_max_chars`` (0 for no limit), or the same as ``--fakepop-...``
on the command line, which wins, change when and how (fakepop._pytest_report).

An error inside a server fails the test at teardown with ServerError, whose report
shows each error raised inside the server, with the traceback of where, instead of
the fixtures' code and arguments (the mailboxes, passwords and all).

pytest loads this module in every run of an environment where fakepop is installed,
so it imports neither Trio nor trustme nor the server itself: the fixtures do, when
a test asks for a server. How the ``pop3`` markers merge is fakepop._pytest_markers';
the ``pop3_cassette`` marker, its fixture and the recording options are
fakepop._pytest_cassettes'.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING

import pytest

# Cheap: no Trio, no TLS libraries.
from . import _pytest_cassettes, _pytest_markers
from ._pytest_cassettes import pop3_cassette_server
from ._pytest_markers import marked
from ._pytest_report import (
    add_options,
    complete_report,
    configure,
    report_transcript,
    reported_as_ours,
    restore_report,
)
from .errors import ServerError

if TYPE_CHECKING:
    from ._config import ServerConfig
    from ._server import Pop3Server
    from ._store import MailboxSpec, MailStore
    from ._thread import Pop3ServerThread
    from ._tls import TlsCertificates

__all__ = [
    "Pop3ServerFactory",
    "pop3_cassette_server",
    "pop3_config",
    "pop3_listen_address",
    "pop3_mailboxes",
    "pop3_server",
    "pop3_server_factory",
    "pop3_shared_config",
    "pop3_shared_server",
    "pop3_tls",
    "trio_pop3_server",
]

def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)
    _pytest_cassettes.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    configure(config)  # raises pytest.UsageError for a bad report setting
    config.addinivalue_line("markers", _pytest_markers.MARKER_HELP)
    config.addinivalue_line("markers", _pytest_cassettes.MARKER_HELP)


# -- what the server starts with -------------------------------------------------------


@pytest.fixture(scope="session")
def pop3_tls() -> TlsCertificates:
    """Throwaway TLS certificates for the test session: ``.client_context()`` for the
    code under test, ``.write_ca_pem(path)`` for curl and openssl. A test marked
    ``@pytest.mark.pop3(..., tls=True)`` gets servers that offer STLS and listen for
    POP3S too (``server.pop3s_port``), with these certificates."""
    from ._tls import TlsCertificates  # noqa: PLC0415 - see the module docstring

    return TlsCertificates()


@pytest.fixture
def pop3_mailboxes(request: pytest.FixtureRequest) -> Mapping[str, MailboxSpec]:
    """The mailboxes the test's server starts with: those of ``@pytest.mark.pop3``,
    or none. Override this fixture to give a whole module or suite a default."""
    mailboxes: Mapping[str, MailboxSpec] | None = marked(request).mailboxes
    return {} if mailboxes is None else mailboxes


@pytest.fixture
def pop3_config(request: pytest.FixtureRequest) -> ServerConfig:
    """The server's options: the keyword arguments of ``@pytest.mark.pop3`` other than
    ``mailboxes`` and ``tls``, as a ServerConfig (on top of the defaults of the
    ``profile`` named, if one is). Override this fixture to change the defaults."""
    from ._config import DEFAULT_CONFIG, ServerConfig  # noqa: PLC0415 - see the module docstring
    from .profiles import profile  # noqa: PLC0415

    asked = marked(request)
    if asked.profile is not None:
        return profile(asked.profile, **asked.options)
    return ServerConfig(**asked.options) if asked.options else DEFAULT_CONFIG


@pytest.fixture(scope="session")
def pop3_listen_address() -> tuple[str, int]:
    """(host, port) the servers listen on; port 0 means any free port, which is what
    keeps parallel test processes (pytest-xdist) from colliding."""
    return ("127.0.0.1", 0)


@pytest.fixture(scope="session")
def pop3_shared_config() -> ServerConfig:
    """The options of the session-wide server behind ``pop3_shared_server``. Override
    it (at session scope) in a conftest.py to change them for the whole suite."""
    from ._config import DEFAULT_CONFIG  # noqa: PLC0415 - see the module docstring

    return DEFAULT_CONFIG


# -- the servers -----------------------------------------------------------------------


class Pop3ServerFactory:
    """Starts fakepop server threads and stops them all at :meth:`close`.

    Calling it returns a started :class:`~fakepop.Pop3ServerThread`; what the call
    leaves out comes from the defaults it was made with (for the
    ``pop3_server_factory`` fixture: the test's ``@pytest.mark.pop3`` mailboxes,
    options and TLS). Every server listens on its own free port, so a test can make
    one for each host of a failover list.
    """

    def __init__(
        self,
        *,
        listen_address: tuple[str, int],
        mailboxes: MailStore | Mapping[str, MailboxSpec] | None,
        config: ServerConfig,
        tls: bool,
        certificates: Callable[[], TlsCertificates],
        on_start: Callable[[Pop3ServerThread], None] | None = None,
    ) -> None:
        self._listen_address = listen_address
        self._mailboxes = mailboxes
        self._config = config
        self._tls = tls
        self._certificates = certificates
        self._on_start = on_start
        self._servers: list[Pop3ServerThread] = []
        self._closed = False

    @property
    def servers(self) -> list[Pop3ServerThread]:
        """The servers made so far, in the order they started."""
        return list(self._servers)

    def __call__(
        self,
        mailboxes: MailStore | Mapping[str, MailboxSpec] | None = None,
        *,
        config: ServerConfig | None = None,
        tls: bool | None = None,
    ) -> Pop3ServerThread:
        """A started server with these ``mailboxes`` (a mapping, as for
        ``@pytest.mark.pop3``, or a ``MailStore`` to share one between servers),
        ``config`` and ``tls`` (STLS and a POP3S port, with the ``pop3_tls``
        certificates); None means the factory's default."""
        from ._thread import Pop3ServerThread  # noqa: PLC0415 - see the module docstring

        if self._closed:
            raise RuntimeError("this fakepop server factory has stopped its servers")
        host, port = self._listen_address
        with_tls = self._tls if tls is None else tls
        server = Pop3ServerThread(
            self._mailboxes if mailboxes is None else mailboxes,
            host=host,
            port=port,
            config=self._config if config is None else config,
            ssl_context=self._certificates().server_context() if with_tls else None,
            pop3s_port=0 if with_tls else None,
        )
        server.start()
        self._servers.append(server)
        if self._on_start is not None:
            self._on_start(server)
        return server

    def close(self) -> None:
        """Stop every server, the last made first; then, if any session failed inside
        any of them, raise one :class:`~fakepop.ServerError` with all their errors."""
        __tracebackhide__ = True  # a test's report shows the errors, not this method
        self._closed = True
        errors: list[BaseException] = []
        while self._servers:
            server = self._servers.pop()
            try:
                server.stop()
            except ServerError as error:
                errors[:0] = error.errors  # keep the order the servers started in
            except Exception as error:  # a server thread that would not end
                errors.insert(0, error)
        if errors:
            raise ServerError(errors) from errors[0]


def _certificates(request: pytest.FixtureRequest) -> Callable[[], TlsCertificates]:
    def certificates() -> TlsCertificates:
        tls: TlsCertificates = request.getfixturevalue("pop3_tls")
        return tls

    return certificates


@pytest.fixture
def pop3_server_factory(
    request: pytest.FixtureRequest,
    pop3_mailboxes: Mapping[str, MailboxSpec],
    pop3_config: ServerConfig,
    pop3_listen_address: tuple[str, int],
) -> Iterator[Pop3ServerFactory]:
    """Makes started fakepop server threads, as many as the test needs.

    ``make(mailboxes=None, *, config=None, tls=None)`` returns a started
    :class:`~fakepop.Pop3ServerThread`; left out, each argument is what
    ``pop3_server`` gets (the test's ``@pytest.mark.pop3``). All of them are stopped
    when the test ends, and an error inside any of them fails the test then; each
    one's transcript goes into the failure report.
    """
    __tracebackhide__ = True
    factory = Pop3ServerFactory(
        listen_address=pop3_listen_address,
        mailboxes=pop3_mailboxes,
        config=pop3_config,
        tls=marked(request).tls,
        certificates=_certificates(request),
        on_start=lambda server: report_transcript(request.node, server.transcript),
    )
    yield factory
    with reported_as_ours(request):
        factory.close()  # raises ServerError if a session failed inside a server


@pytest.fixture
def pop3_server(pop3_server_factory: Pop3ServerFactory) -> Pop3ServerThread:
    """A running fakepop server of this test's own, in a background thread.

    Use ``pop3_server.host``/``.port`` to connect, ``.store`` to read or change the
    mailboxes, ``.transcript`` to see what was said, ``.wait_idle()`` to wait for the
    client's sessions to end.
    """
    return pop3_server_factory()


@pytest.fixture(scope="session")
def _pop3_session_server(
    request: pytest.FixtureRequest,
    pop3_listen_address: tuple[str, int],
    pop3_shared_config: ServerConfig,
) -> Iterator[Pop3ServerThread]:
    __tracebackhide__ = True
    # Reported per test by pop3_shared_server, after each reset; no on_start here.
    factory = Pop3ServerFactory(
        listen_address=pop3_listen_address,
        mailboxes=None,
        config=pop3_shared_config,
        tls=False,
        certificates=_certificates(request),
    )
    yield factory()
    with reported_as_ours(request):
        factory.close()


@pytest.fixture
def pop3_shared_server(
    request: pytest.FixtureRequest,
    _pop3_session_server: Pop3ServerThread,
    pop3_mailboxes: Mapping[str, MailboxSpec],
    pop3_config: ServerConfig,
) -> Iterator[Pop3ServerThread]:
    """The test session's one fakepop server, reset for this test.

    Starting a server costs about a millisecond; a reset, microseconds. The address
    stays the same all session long, and so do the options (``pop3_shared_config``):
    a test whose ``pop3_config`` differs, through ``@pytest.mark.pop3`` options or an
    override, is refused; use ``pop3_server`` for that. Sessions still open when the
    test ends are closed then, without UPDATE.
    """
    __tracebackhide__ = True
    server = _pop3_session_server
    if marked(request).tls:
        raise pytest.UsageError(
            "pop3_shared_server serves no TLS; use pop3_server for @pytest.mark.pop3(tls=True)"
        )
    if pop3_config != server.server.config:
        raise pytest.UsageError(
            "pop3_shared_server runs with the session's pop3_shared_config, but this "
            "test asks for other options (a @pytest.mark.pop3 option or a pop3_config "
            "override); use the pop3_server fixture, or override pop3_shared_config"
        )
    # The reset raises, after resetting, an error of a session that ended since the
    # last test's report (a stray client between tests): reported here, never wiped.
    with reported_as_ours(request):
        server.reset(pop3_mailboxes)
    report_transcript(request.node, server.transcript)
    yield server
    # End what the test left open first, so that anything failing as it ends is
    # reported here, against this test, and only here: the next test starts clean.
    server.close_sessions()
    errors = server.server.take_errors()
    if errors:
        with reported_as_ours(request):
            raise ServerError(errors) from errors[0]


@pytest.fixture
async def trio_pop3_server(
    request: pytest.FixtureRequest,
    pop3_mailboxes: Mapping[str, MailboxSpec],
    pop3_config: ServerConfig,
    pop3_listen_address: tuple[str, int],
) -> AsyncIterator[Pop3Server]:
    """A running fakepop server in the test's own Trio run (needs pytest-trio).

    No thread: its autologout timer follows the run's clock, so ``autojump_clock``
    makes ten idle minutes pass at once. ``await server.wait_idle()`` waits for the
    client's sessions to end.
    """
    from ._server import open_pop3_server  # noqa: PLC0415 - see the module docstring

    __tracebackhide__ = True
    host, port = pop3_listen_address
    tls = marked(request).tls
    with reported_as_ours(request):  # raised as the block ends
        async with open_pop3_server(
            pop3_mailboxes,
            host=host,
            port=port,
            config=pop3_config,
            ssl_context=request.getfixturevalue("pop3_tls").server_context() if tls else None,
            pop3s_port=0 if tls else None,
        ) as server:
            report_transcript(request.node, server.transcript)
            yield server


# -- the report ------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    complete_report(item, call, report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    restore_report(report)  # before the terminal and other reporters see it
