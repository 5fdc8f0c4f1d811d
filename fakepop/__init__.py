"""fakepop: a real POP3 server for your test suite.

Start it in-process from a dict of mailboxes, drive it with any POP3 client, then read
what is left in the mailboxes.

Importing the package is cheap: every name below is imported from its module the first
time it is used (PEP 562), so an environment with fakepop installed, whose pytest loads
the plugin in every run, pays for Trio and the TLS libraries only in the tests that
start a server.

``fakepop.strategies`` (hypothesis strategies, with the ``hypothesis`` extra) is not
among these names: ``from fakepop import *`` must work without Hypothesis installed.
Import it as ``from fakepop import strategies``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import corpus, errors, faults, profiles
    from ._background import serve_in_thread
    from ._cassette import Cassette, read_cassette
    from ._config import CAPABILITY_NAMES, ServerConfig
    from ._loading import (
        MailSourceError,
        read_eml_dir,
        read_maildir,
        read_mbox,
        read_messages,
    )
    from ._message import MessageSource, StoredMessage
    from ._protocol import Pop3Protocol
    from ._recording import RecordingProxy, record_to
    from ._replay import CassetteServer
    from ._replies import Command, Reply
    from ._sasl import TemporaryFailure
    from ._server import Pop3Server, ServerOptions, open_pop3_server, serve_pop3
    from ._session_record import EndReason, Entry, EntryKind, SessionRecord
    from ._state import State
    from ._store import Mailbox, MailboxSpec, Maildrop, MailStore
    from ._texts import DEFAULT_TEXTS
    from ._thread import Pop3ServerThread
    from ._tls import TlsCertificates
    from ._transcript import Transcript
    from ._waiting import ExpectedErrors
    from .errors import (
        CassetteError,
        ConfigError,
        ExpectationError,
        FakepopError,
        ServerError,
        UsageError,
        WaitTimeout,
    )
    from .faults import Fault, FaultContext, FaultSet

__version__ = "0.1.0"

__all__ = [
    "CAPABILITY_NAMES",
    "DEFAULT_TEXTS",
    "Cassette",
    "CassetteError",
    "CassetteServer",
    "Command",
    "ConfigError",
    "EndReason",
    "Entry",
    "EntryKind",
    "ExpectationError",
    "ExpectedErrors",
    "FakepopError",
    "Fault",
    "FaultContext",
    "FaultSet",
    "MailSourceError",
    "MailStore",
    "Mailbox",
    "MailboxSpec",
    "Maildrop",
    "MessageSource",
    "Pop3Protocol",
    "Pop3Server",
    "Pop3ServerThread",
    "RecordingProxy",
    "Reply",
    "ServerConfig",
    "ServerError",
    "ServerOptions",
    "SessionRecord",
    "State",
    "StoredMessage",
    "TemporaryFailure",
    "TlsCertificates",
    "Transcript",
    "UsageError",
    "WaitTimeout",
    "__version__",
    "corpus",
    "errors",
    "faults",
    "open_pop3_server",
    "profiles",
    "read_cassette",
    "read_eml_dir",
    "read_maildir",
    "read_mbox",
    "read_messages",
    "record_to",
    "serve_in_thread",
    "serve_pop3",
]

# Where each public name lives; "" means the name is the submodule itself.
_SOURCES = {
    "corpus": "",
    "errors": "",
    "faults": "",
    "profiles": "",
    "CAPABILITY_NAMES": "_config",
    "DEFAULT_TEXTS": "_texts",
    "ServerConfig": "_config",
    "serve_in_thread": "_background",
    "Cassette": "_cassette",
    "read_cassette": "_cassette",
    "RecordingProxy": "_recording",
    "record_to": "_recording",
    "CassetteServer": "_replay",
    "CassetteError": "errors",
    "MailSourceError": "_loading",
    "read_eml_dir": "_loading",
    "read_maildir": "_loading",
    "read_mbox": "_loading",
    "read_messages": "_loading",
    "MessageSource": "_message",
    "StoredMessage": "_message",
    "Command": "_replies",
    "Pop3Protocol": "_protocol",
    "Reply": "_replies",
    "State": "_state",
    "TemporaryFailure": "_sasl",
    "Pop3Server": "_server",
    "ServerOptions": "_server",
    "open_pop3_server": "_server",
    "serve_pop3": "_server",
    "Mailbox": "_store",
    "MailboxSpec": "_store",
    "Maildrop": "_store",
    "MailStore": "_store",
    "Pop3ServerThread": "_thread",
    "TlsCertificates": "_tls",
    "EndReason": "_session_record",
    "Entry": "_session_record",
    "EntryKind": "_session_record",
    "SessionRecord": "_session_record",
    "Transcript": "_transcript",
    "ExpectedErrors": "_waiting",
    "ConfigError": "errors",
    "FakepopError": "errors",
    "ServerError": "errors",
    "UsageError": "errors",
    "ExpectationError": "errors",
    "WaitTimeout": "errors",
    "Fault": "faults",
    "FaultContext": "faults",
    "FaultSet": "faults",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if source:
        value = getattr(importlib.import_module(f".{source}", __name__), name)
    else:
        value = importlib.import_module(f".{name}", __name__)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
