"""The ``pop3`` marker: what a test's fakepop server starts with.

``@pytest.mark.pop3(mailboxes, **options)`` may be put on a test function, its class
and its module (``pytestmark``); they merge key by key, the closest winning (see
:func:`marked`). The plugin imports this module in every pytest run, so it imports
neither Trio nor the server: ServerConfig's fields are read when a marker is.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import pytest

__all__ = ["MARKER", "MARKER_HELP", "Marked", "marked"]

MARKER = "pop3"
#: The marker's line in ``pytest --markers``.
MARKER_HELP = (
    f"{MARKER}(mailboxes=None, tls=False, profile=None, **options): the mailboxes, "
    "TLS (STLS and a POP3S port), server profile and ServerConfig options of this "
    "test's fakepop server; markers on the function, its class and its module "
    "merge key by key, the closest winning"
)

# The keys of the marker besides the fields of ServerConfig.
_MARKER_KEYS = ("mailboxes", "tls", "profile")


@functools.cache
def _config_fields() -> frozenset[str]:
    from ._config import ServerConfig  # noqa: PLC0415 - see the module docstring

    return frozenset(field.name for field in dataclasses.fields(ServerConfig))


class Marked:
    """What a test's ``pop3`` markers ask for, merged."""

    __slots__ = ("mailboxes", "options", "profile", "tls")

    def __init__(
        self, mailboxes: Any, tls: bool, profile: str | None, options: Mapping[str, Any]
    ) -> None:
        self.mailboxes = mailboxes
        self.tls = tls
        self.profile = profile
        self.options = options


def _marker_keywords(marker: pytest.Mark) -> dict[str, Any]:
    # One marker's arguments by key, the positional mailboxes under "mailboxes".
    if len(marker.args) > 1:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER} takes the mailboxes as its only positional argument"
        )
    keywords = dict(marker.kwargs)
    if marker.args:
        if "mailboxes" in keywords:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} got the mailboxes twice: as its positional "
                "argument and as mailboxes="
            )
        keywords["mailboxes"] = marker.args[0]
    fields = _config_fields()
    unknown = sorted(set(keywords) - fields - set(_MARKER_KEYS))
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown option(s) {', '.join(unknown)}; the options "
            f"are {', '.join(_MARKER_KEYS)} and the fields of fakepop.ServerConfig: "
            f"{', '.join(sorted(fields))}"
        )
    return keywords


def marked(request: pytest.FixtureRequest) -> Marked:
    """The test's ``pop3`` markers merged key by key, the closest winning: a function's
    marker over its class's, a class's over its module's (and, of markers stacked on
    one function, the one nearest the ``def``). The positional mailboxes are the
    ``mailboxes`` key; a value replaces a farther one whole (mailbox dicts are not
    merged)."""
    merged: dict[str, Any] = {}
    # iter_markers goes from the closest to the farthest: apply them the other way.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        merged.update(_marker_keywords(marker))
    return Marked(
        mailboxes=merged.pop("mailboxes", None),
        tls=bool(merged.pop("tls", False)),
        profile=merged.pop("profile", None),
        options=merged,
    )
