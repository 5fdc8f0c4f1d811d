"""fakepop: a real POP3 server for your test suite.

Start it in-process from a dict of mailboxes, drive it with any POP3 client, then read
what is left in the mailboxes.
"""

from . import errors, faults, profiles
from ._config import DEFAULT_TEXTS, ServerConfig
from ._loading import MailSourceError, read_eml_dir, read_maildir, read_mbox, read_messages
from ._message import MessageSource, StoredMessage
from ._protocol import Command, Pop3Protocol, Reply, State
from ._sasl import TemporaryFailure
from ._server import Pop3Server, open_pop3_server, serve_pop3
from ._store import Mailbox, MailboxSpec, Maildrop, MailStore
from ._thread import Pop3ServerThread
from ._tls import TlsCertificates
from ._transcript import EndReason, Entry, EntryKind, SessionRecord, Transcript
from .errors import ConfigError, FakepopError, ServerError, UsageError
from .faults import Fault, FaultContext, FaultSet

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TEXTS",
    "Command",
    "ConfigError",
    "EndReason",
    "Entry",
    "EntryKind",
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
    "Reply",
    "ServerConfig",
    "ServerError",
    "SessionRecord",
    "State",
    "StoredMessage",
    "TemporaryFailure",
    "TlsCertificates",
    "Transcript",
    "UsageError",
    "__version__",
    "errors",
    "faults",
    "open_pop3_server",
    "profiles",
    "read_eml_dir",
    "read_maildir",
    "read_mbox",
    "read_messages",
    "serve_pop3",
]
