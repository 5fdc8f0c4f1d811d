"""What the pytest plugin puts in a test's report: the transcripts of the test's
servers, as the report settings ask, and a readable account of a ServerError that one
of its fixtures raised.

The plugin imports this module in every pytest run, so it imports nothing heavy
either, and its classes are plain ones: a dataclass or a NamedTuple costs a fraction
of a millisecond to create, for each of its fields.
"""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

import pytest

from .errors import ExpectationError, ServerError, WaitTimeout

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ._transcript import Transcript

__all__ = [
    "ReportSettings",
    "ServerErrorReport",
    "add_options",
    "complete_report",
    "configure",
    "read_settings",
    "report_transcript",
    "reported_as_ours",
    "restore_report",
]

# When a report shows the transcripts.
_WHEN = ("on-failure", "always", "never")
_SWITCH = {"on": True, "off": False}

# Each setting: its name (--fakepop-NAME on the command line, fakepop_NAME with
# underscores in an ini file, the command line winning), its default, what it does.
_SETTINGS = (
    (
        "transcript",
        "on-failure",
        "when a test's report shows the transcripts of its fakepop servers: on-failure, "
        "always (a passing test's too, which pytest shows with -rP) or never",
    ),
    (
        "transcript-payloads",
        "on",
        "on or off: show what followed the status line of a multi-line reply "
        "([3 more lines, 20 octets])",
    ),
    (
        "transcript-timestamps",
        "off",
        "on or off: start each line of a transcript with the seconds since its "
        "session started",
    ),
    (
        "transcript-max-chars",
        "0",
        "show only the last N characters of each transcript, in whole lines, saying "
        "how much was cut (0: no limit)",
    ),
)


class ReportSettings:
    """How the reports show transcripts (see ``_SETTINGS``)."""

    __slots__ = ("max_chars", "payloads", "timestamps", "transcript")

    def __init__(
        self,
        transcript: str = "on-failure",
        *,
        payloads: bool = True,
        timestamps: bool = False,
        max_chars: int | None = None,
    ) -> None:
        self.transcript = transcript
        self.payloads = payloads
        self.timestamps = timestamps
        self.max_chars = max_chars


def _ini_name(name: str) -> str:
    return "fakepop_" + name.replace("-", "_")


def add_options(parser: pytest.Parser) -> None:
    """Declare every setting on the command line and in the ini file."""
    group = parser.getgroup("fakepop", "fakepop: the transcripts in test reports")
    for name, default, does in _SETTINGS:
        ini = _ini_name(name)
        group.addoption(
            f"--fakepop-{name}",
            dest=ini,
            default=None,
            metavar="VALUE",
            help=f"{does}. Default: the ini option {ini}, or {default}",
        )
        parser.addini(ini, f"{does} (--fakepop-{name} overrides it)", default=default)


def read_settings(config: pytest.Config) -> ReportSettings:
    """The settings, each from the command line or else the ini file; a bad value
    raises pytest.UsageError naming where it was given."""

    def given(name: str) -> tuple[str, str]:
        # (value, where it was given)
        ini = _ini_name(name)
        value = config.getoption(ini)
        if value is not None:
            return str(value).strip(), f"--fakepop-{name}"
        return str(config.getini(ini)).strip(), f"{ini} (ini)"

    when, where = given("transcript")
    if when not in _WHEN:
        raise pytest.UsageError(f"{where}: {when!r} is not one of {', '.join(_WHEN)}")
    return ReportSettings(
        transcript=when,
        payloads=_switch(*given("transcript-payloads")),
        timestamps=_switch(*given("transcript-timestamps")),
        max_chars=_characters(*given("transcript-max-chars")),
    )


def _switch(value: str, where: str) -> bool:
    if value not in _SWITCH:
        raise pytest.UsageError(f"{where}: {value!r} is neither on nor off")
    return _SWITCH[value]


def _characters(value: str, where: str) -> int | None:
    if not (value.isascii() and value.isdigit()):  # no sign, space or underscore
        raise pytest.UsageError(
            f"{where}: {value!r} is not a number of characters (0 for no limit)"
        )
    return int(value) or None


# -- what the fixtures tell ------------------------------------------------------------

_SETTINGS_KEY: pytest.StashKey[ReportSettings] = pytest.StashKey()
# The transcripts of the servers each test used, in the order the servers started.
_TRANSCRIPTS: pytest.StashKey[list[Transcript]] = pytest.StashKey()
# Whether a report of the test has shown them.
_SHOWN: pytest.StashKey[bool] = pytest.StashKey()
# The ServerErrors that fakepop's fixtures raised (a session-scoped one's included).
_RAISED: pytest.StashKey[weakref.WeakSet[ServerError]] = pytest.StashKey()


def configure(config: pytest.Config) -> None:
    """Read the settings once, at the start of the run."""
    config.stash[_SETTINGS_KEY] = read_settings(config)
    config.stash[_RAISED] = weakref.WeakSet()


def report_transcript(item: pytest.Item, transcript: Transcript) -> None:
    """Show ``transcript`` in the reports of ``item``, after those given before."""
    item.stash.setdefault(_TRANSCRIPTS, []).append(transcript)


def _raised_by_fixture(config: pytest.Config, error: ServerError) -> None:
    """``error`` leaves one of fakepop's fixtures: report it as such."""
    config.stash[_RAISED].add(error)


@contextlib.contextmanager
def reported_as_ours(request: pytest.FixtureRequest) -> Iterator[None]:
    """A ServerError that leaves the block is one of the fixtures', which the report
    explains with the errors raised inside the server instead of the fixture's code."""
    __tracebackhide__ = True
    try:
        yield
    except ServerError as error:
        _raised_by_fixture(request.config, error)
        raise


# -- the report ----------------------------------------------------------------------------


def complete_report(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> None:
    """Explain a ServerError raised by fakepop's fixtures, and add the transcripts."""
    excinfo = call.excinfo
    if report.failed and excinfo is not None:
        leaves = list(_leaves(excinfo.value))
        raised = item.config.stash[_RAISED]
        errors = [leaf for leaf in leaves if isinstance(leaf, ServerError) and leaf in raised]
        if errors and len(errors) == len(leaves):  # nothing else went wrong
            longrepr = ServerErrorReport.of(errors)
            report.longrepr = longrepr  # type: ignore[assignment]
            crash = longrepr.reprcrash
            setattr(report, _CRASH_ATTRIBUTE, [crash.path, crash.lineno, crash.message])
    _add_transcripts(item, report, None if excinfo is None else excinfo.value)


def _add_transcripts(
    item: pytest.Item, report: pytest.TestReport, failure: BaseException | None
) -> None:
    # A section for each server, at every phase that failed; with "always", at the
    # test's teardown too (its sessions ended by then), unless a failure showed them.
    settings = item.config.stash[_SETTINGS_KEY]
    transcripts = item.stash.get(_TRANSCRIPTS, [])
    if not transcripts or settings.transcript == "never":
        return
    if not report.failed and not (
        settings.transcript == "always"
        and report.when == "teardown"
        and not item.stash.get(_SHOWN, False)
    ):
        return
    item.stash[_SHOWN] = True
    # A transcript that the failure's message shows already is shown once.
    in_message = [] if failure is None else list(_transcripts_shown_by(failure))
    for number, transcript in enumerate(transcripts, 1):
        if any(transcript is shown for shown in in_message):
            continue
        name = "fakepop transcript" if len(transcripts) == 1 else f"fakepop transcript {number}"
        text = transcript.render(
            payloads=settings.payloads,
            timestamps=settings.timestamps,
            max_chars=settings.max_chars,
        )
        report.sections.append((f"{name} ({report.when})", text))


def _transcripts_shown_by(failure: BaseException) -> Iterator[Transcript]:
    # The transcripts that the messages of the failure's exceptions show: those of
    # ExpectationError and WaitTimeout, wherever pytest prints them (in a group, as
    # a cause or the context of another).
    seen: set[int] = set()
    pending = [failure]
    while pending:
        exception = pending.pop()
        if id(exception) in seen:
            continue
        seen.add(id(exception))
        shown = getattr(exception, "transcript", None)
        if isinstance(exception, (ExpectationError, WaitTimeout)) and shown is not None:
            yield shown
        if isinstance(exception, BaseExceptionGroup):
            pending.extend(exception.exceptions)
        if exception.__cause__ is not None:
            pending.append(exception.__cause__)
        if exception.__context__ is not None and not exception.__suppress_context__:
            pending.append(exception.__context__)


def _leaves(failure: BaseException) -> Iterator[BaseException]:
    # The exceptions of a failure, groups opened (pytest groups teardown errors, and
    # pytest-trio the errors of a test's fixtures).
    if isinstance(failure, BaseExceptionGroup):
        for exception in failure.exceptions:
            yield from _leaves(exception)
    else:
        yield failure


# A line that only points at a part of the line above it (Python 3.11's ^^^ and ~~~).
_MARKS_ONLY = re.compile(r"\s*[\^~]+\s*")


class _Writer(Protocol):
    # What ServerErrorReport uses of pytest's TerminalWriter.
    def line(self, s: str = "", **markup: bool) -> None: ...


class _Crash:
    # Where the first error was raised and what it said: pytest's summary line takes
    # ``message`` from it, --tb=line its str().

    __slots__ = ("lineno", "message", "path")

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path = path
        self.lineno = lineno
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"


class ServerErrorReport:
    """A report's account of ServerErrors that fakepop's fixtures raised, in place of
    pytest's traceback, which would show the fixtures' code and, as their arguments,
    the mailboxes with their passwords: each error that was raised inside the server,
    with the traceback of where.

    It is what pytest asks of a report's ``longrepr``: it prints it with
    ``toterminal`` and takes the summary line from ``reprcrash.message``.
    pytest-xdist sends ``str()`` of it between processes, and :func:`restore_report`
    makes it one again where the reports arrive.
    """

    def __init__(self, text: str, reprcrash: _Crash) -> None:
        self.text = text
        self.reprcrash = reprcrash

    @classmethod
    def of(cls, errors: Sequence[ServerError]) -> ServerErrorReport:
        lines: list[str] = []
        for error in errors:
            lines.append(f"fakepop.ServerError: {error}")
            for number, raised in enumerate(error.errors, 1):
                lines += ["", f"error {number} of {len(error.errors)}, raised inside the server:"]
                formatted = "".join(traceback.format_exception(raised)).splitlines()
                lines += [line for line in formatted if not _MARKS_ONLY.fullmatch(line)]
        raised_first = next((error.errors[0] for error in errors if error.errors), None)
        where = traceback.extract_tb(raised_first.__traceback__) if raised_first else []
        path, lineno = (where[-1].filename, where[-1].lineno or 0) if where else ("", 0)
        return cls("\n".join(lines), _Crash(path, lineno, lines[0]))

    def toterminal(self, tw: _Writer) -> None:
        for line in self.text.splitlines():
            headline = line.startswith("fakepop.ServerError: ")
            tw.line(line, red=headline, bold=headline)

    def __str__(self) -> str:
        return self.text


# The attribute of a report that carries its ServerErrorReport's reprcrash from one
# process to another (pytest-xdist sends a report's attributes, as JSON).
_CRASH_ATTRIBUTE = "fakepop_server_error_at"


def restore_report(report: pytest.TestReport) -> None:
    """Make a ServerErrorReport of a report's longrepr again, if it was one before
    pytest-xdist sent it as text: so that the summary line shows its first line."""
    crash = getattr(report, _CRASH_ATTRIBUTE, None)
    if crash is not None and isinstance(report.longrepr, str):
        report.longrepr = ServerErrorReport(  # type: ignore[assignment]
            report.longrepr, _Crash(*crash)
        )
