"""pytest fixtures for fakepop, loaded through the ``pytest11`` entry point.

Fixtures that give a running server:

- ``pop3_server``: a :class:`~fakepop.Pop3ServerThread` of the test's own, for sync
  and asyncio tests; fresh state for every test.
- ``pop3_shared_server``: one server thread for the whole test session, reset before
  each test (mailboxes, transcript, errors, open sessions): for large suites.
- ``trio_pop3_server``: a :class:`~fakepop.Pop3Server` in the test's own Trio run (with
  pytest-trio), so ``MockClock``/``autojump_clock`` drive its timers.

What the server starts with comes from ``@pytest.mark.pop3(mailboxes, **options)``
through the ``pop3_mailboxes`` and ``pop3_config`` fixtures, which a conftest.py may
override, as may ``pop3_listen_address``. When a test that used one of these servers
fails, its report gets a "fakepop transcript" section; an error inside the server
fails the test at teardown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Generator, Iterator, Mapping
from typing import Any

import pytest

from ._config import ServerConfig
from ._server import Pop3Server, open_pop3_server
from ._store import MailboxSpec
from ._thread import Pop3ServerThread
from ._tls import TlsCertificates
from ._transcript import Transcript
from .errors import ServerError
from .profiles import profile

__all__ = [
    "pop3_config",
    "pop3_listen_address",
    "pop3_mailboxes",
    "pop3_server",
    "pop3_shared_config",
    "pop3_shared_server",
    "pop3_tls",
    "trio_pop3_server",
]

_MARKER = "pop3"
_CONFIG_FIELDS = frozenset(field.name for field in dataclasses.fields(ServerConfig))
# The transcripts of the servers each test used, for its failure report.
_TRANSCRIPTS = pytest.StashKey[list[Transcript]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(mailboxes=None, tls=False, profile=None, **options): the mailboxes, "
        "TLS (STLS and a POP3S port), server profile and ServerConfig options of this "
        "test's fakepop server",
    )


# -- what the server starts with -------------------------------------------------------


def _marker_arguments(request: pytest.FixtureRequest) -> tuple[Any, dict[str, Any]]:
    marker = request.node.get_closest_marker(_MARKER)
    if marker is None:
        return None, {}
    if len(marker.args) > 1:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} takes the mailboxes as its only positional argument"
        )
    options = dict(marker.kwargs)
    options.pop("tls", None)  # not a ServerConfig option; see _wants_tls
    options.pop("profile", None)  # see pop3_config
    if marker.args and "mailboxes" in options:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER} got the mailboxes twice: as its positional argument "
            "and as mailboxes="
        )
    mailboxes = marker.args[0] if marker.args else options.pop("mailboxes", None)
    unknown = sorted(set(options) - _CONFIG_FIELDS)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER}: unknown option(s) {', '.join(unknown)}; the options "
            f"are mailboxes and the fields of fakepop.ServerConfig: "
            f"{', '.join(sorted(_CONFIG_FIELDS))}"
        )
    return mailboxes, options


def _wants_tls(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker(_MARKER)
    return bool(marker is not None and marker.kwargs.get("tls", False))


@pytest.fixture(scope="session")
def pop3_tls() -> TlsCertificates:
    """Throwaway TLS certificates for the test session: ``.client_context()`` for the
    code under test, ``.write_ca_pem(path)`` for curl and openssl. A test marked
    ``@pytest.mark.pop3(..., tls=True)`` gets servers that offer STLS and listen for
    POP3S too (``server.pop3s_port``), with these certificates."""
    return TlsCertificates()


@pytest.fixture
def pop3_mailboxes(request: pytest.FixtureRequest) -> Mapping[str, MailboxSpec]:
    """The mailboxes the test's server starts with: those of ``@pytest.mark.pop3``,
    or none. Override this fixture to give a whole module or suite a default."""
    mailboxes, _ = _marker_arguments(request)
    return {} if mailboxes is None else mailboxes


@pytest.fixture
def pop3_config(request: pytest.FixtureRequest) -> ServerConfig:
    """The server's options: the keyword arguments of ``@pytest.mark.pop3`` other than
    ``mailboxes``, as a ServerConfig. Override this fixture to change the defaults."""
    _, options = _marker_arguments(request)
    marker = request.node.get_closest_marker(_MARKER)
    name = marker.kwargs.get("profile") if marker is not None else None
    if name is not None:
        return profile(name, **options)
    return ServerConfig(**options)


@pytest.fixture(scope="session")
def pop3_listen_address() -> tuple[str, int]:
    """(host, port) the servers listen on; port 0 means any free port, which is what
    keeps parallel test processes (pytest-xdist) from colliding."""
    return ("127.0.0.1", 0)


def _report_transcript(request: pytest.FixtureRequest, transcript: Transcript) -> None:
    request.node.stash.setdefault(_TRANSCRIPTS, []).append(transcript)


# -- the servers -----------------------------------------------------------------------


@pytest.fixture
def pop3_server(
    request: pytest.FixtureRequest,
    pop3_mailboxes: Mapping[str, MailboxSpec],
    pop3_config: ServerConfig,
    pop3_listen_address: tuple[str, int],
) -> Iterator[Pop3ServerThread]:
    """A running fakepop server of this test's own, in a background thread.

    Use ``pop3_server.host``/``.port`` to connect, ``.store`` to read or change the
    mailboxes, ``.transcript`` to see what was said, ``.wait_idle()`` to wait for the
    client's sessions to end.
    """
    host, port = pop3_listen_address
    tls = _wants_tls(request)
    server = Pop3ServerThread(
        pop3_mailboxes,
        host=host,
        port=port,
        config=pop3_config,
        ssl_context=request.getfixturevalue("pop3_tls").server_context() if tls else None,
        pop3s_port=0 if tls else None,
    )
    server.start()
    _report_transcript(request, server.transcript)
    yield server
    server.stop()  # raises ServerError if a session failed inside the server


@pytest.fixture(scope="session")
def pop3_shared_config() -> ServerConfig:
    """The options of the session-wide server behind ``pop3_shared_server``. Override
    it (at session scope) in a conftest.py to change them for the whole suite."""
    return ServerConfig()


@pytest.fixture(scope="session")
def _pop3_session_server(
    pop3_listen_address: tuple[str, int], pop3_shared_config: ServerConfig
) -> Iterator[Pop3ServerThread]:
    host, port = pop3_listen_address
    server = Pop3ServerThread(host=host, port=port, config=pop3_shared_config)
    server.start()
    yield server
    server.stop()


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
    server = _pop3_session_server
    if _wants_tls(request):
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
    server.reset(pop3_mailboxes)
    _report_transcript(request, server.transcript)
    yield server
    # End what the test left open first, so that anything failing as it ends is
    # reported here, against this test, and only here: the next test starts clean.
    server.close_sessions()
    errors = server.server.take_errors()
    if errors:
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
    host, port = pop3_listen_address
    tls = _wants_tls(request)
    async with open_pop3_server(
        pop3_mailboxes,
        host=host,
        port=port,
        config=pop3_config,
        ssl_context=request.getfixturevalue("pop3_tls").server_context() if tls else None,
        pop3s_port=0 if tls else None,
    ) as server:
        _report_transcript(request, server.transcript)
        yield server


# -- the transcript in failure reports ---------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        transcripts = item.stash.get(_TRANSCRIPTS, [])
        for number, transcript in enumerate(transcripts, 1):
            name = "fakepop transcript" if len(transcripts) == 1 else f"fakepop transcript {number}"
            report.sections.append((f"{name} ({report.when})", transcript.render()))
    return report
