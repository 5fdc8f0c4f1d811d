"""Cassettes in pytest: the ``pop3_cassette`` marker, the ``pop3_cassette_server``
fixture, and the command-line options that say whether to record.

A test marked ``@pytest.mark.pop3_cassette(path)`` gets a server that replays the
cassette at ``path`` or, when asked to record, a proxy that records one from a real
server (see the fixture). The plugin imports this module in every pytest run, so it
imports neither Trio nor the server: the fixture does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from ._pytest_report import report_transcript, reported_as_ours

if TYPE_CHECKING:
    from ._tls import TlsCertificates

__all__ = ["MARKER", "MARKER_HELP", "add_options", "pop3_cassette_server"]

MARKER = "pop3_cassette"
#: The marker's line in ``pytest --markers``.
MARKER_HELP = (
    f"{MARKER}(path, mode='strict', password='secret'): serve this test's "
    "pop3_cassette_server from a cassette (path relative to the test file): strict "
    "replays it as recorded, model serves the mail and server it shows"
)
_RECORD_MODES = ("none", "once", "all")


def add_options(parser: pytest.Parser) -> None:
    """``--fakepop-record`` and ``--fakepop-upstream``."""
    group = parser.getgroup("fakepop-cassettes", "fakepop: recording and replaying cassettes")
    group.addoption(
        "--fakepop-record",
        choices=_RECORD_MODES,
        default="none",
        help="none: replay cassettes only (default); once: record a cassette that is "
        "missing; all: record every cassette again",
    )
    group.addoption(
        "--fakepop-upstream",
        default=None,
        metavar="HOST:PORT",
        help="the real server to record from (pop3s://HOST:PORT for POP3S); default "
        "$FAKEPOP_UPSTREAM",
    )


def _upstream(config: pytest.Config) -> tuple[str, bool]:
    # (HOST:PORT, POP3S?) from --fakepop-upstream or $FAKEPOP_UPSTREAM.
    import os  # noqa: PLC0415

    value = config.getoption("--fakepop-upstream") or os.environ.get("FAKEPOP_UPSTREAM")
    if not value:
        raise pytest.UsageError(
            "recording a cassette needs the real server: --fakepop-upstream HOST:PORT "
            "or FAKEPOP_UPSTREAM"
        )
    for scheme, tls in (("pop3s://", True), ("pop3://", False)):
        if value.startswith(scheme):
            return value[len(scheme) :], tls
    return value, False


@pytest.fixture
def pop3_cassette_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A server for ``@pytest.mark.pop3_cassette(path, mode="strict")``.

    Replaying (``--fakepop-record=none``, the default, or a cassette that exists with
    ``once``), it is a :class:`~fakepop.CassetteServer` (``mode="strict"``: answers
    exactly as recorded, and a client line that differs fails the test) or a
    :class:`~fakepop.Pop3ServerThread` serving what the cassette shows
    (``mode="model"``, with the marker's ``password``). Recording (``all``, or
    ``once`` without the file), it is a :class:`~fakepop.RecordingProxy` in front of
    ``--fakepop-upstream``. All have ``host`` and ``port``; over TLS, clients trust
    ``pop3_tls``'s CA.
    """
    __tracebackhide__ = True
    from pathlib import Path  # noqa: PLC0415

    from ._background import serve_in_thread  # noqa: PLC0415

    marker = request.node.get_closest_marker(MARKER)
    if marker is None or len(marker.args) != 1:
        raise pytest.UsageError(
            f"pop3_cassette_server needs @pytest.mark.{MARKER}(path, mode=...)"
        )
    mode = marker.kwargs.get("mode", "strict")
    if mode not in ("strict", "model"):
        raise pytest.UsageError(f"{MARKER}: mode must be 'strict' or 'model'")
    path = Path(request.node.path).parent / marker.args[0]
    record = request.config.getoption("--fakepop-record")
    with reported_as_ours(request):
        if record == "all" or (record == "once" and not path.exists()):
            from ._recording import RecordingProxy  # noqa: PLC0415

            upstream, upstream_tls = _upstream(request.config)
            path.parent.mkdir(parents=True, exist_ok=True)
            tls: TlsCertificates = request.getfixturevalue("pop3_tls")
            proxy = RecordingProxy(path, upstream, upstream_tls=upstream_tls, tls=tls)
            with serve_in_thread(proxy):
                yield proxy
            return
        from ._cassette import read_cassette  # noqa: PLC0415

        cassette = read_cassette(path)
        context = None
        if cassette.uses_tls:  # else no certificate is made
            context = request.getfixturevalue("pop3_tls").server_context()
        pop3s_port = None if context is None else 0
        if mode == "strict":
            from ._replay import CassetteServer  # noqa: PLC0415

            server = CassetteServer(cassette, ssl_context=context, pop3s_port=pop3s_port)
            with serve_in_thread(server):
                yield server
        else:
            from ._cassette_model import (  # noqa: PLC0415
                config_from_cassette,
                mailboxes_from_cassette,
            )
            from ._thread import Pop3ServerThread  # noqa: PLC0415

            password = marker.kwargs.get("password", "secret")
            with Pop3ServerThread(
                mailboxes_from_cassette(cassette, password=password),
                config=config_from_cassette(cassette),
                ssl_context=context,
                pop3s_port=pop3s_port,
            ) as thread:
                report_transcript(request.node, thread.transcript)
                yield thread
