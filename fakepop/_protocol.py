"""The POP3 server protocol, sans I/O: bytes in, replies out.

A :class:`Pop3Protocol` is one session. The network code (or a test) calls
``greeting()`` once, then ``receive_data(bytes)`` with whatever arrived, then
``next_command()`` and ``handle(command)`` until ``next_command()`` returns None, and
sends each reply. ``connection_lost()`` ends the session without UPDATE. Nothing here
touches sockets, threads or trio, so it can be fed byte by byte, in one big pipelined
chunk, or from hypothesis.

Every change of state is an event looked up in the one transition table of
``_state.py`` (whose docstring draws the whole machine); the handlers named by
``_HANDLERS`` report events and never assign a state. A refused login always leaves
the mailbox unlocked.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

from . import _sasl
from ._arguments import extra_arguments
from ._authorization import SASL_LINE_LIMIT, LoginCommands, LoginGate
from ._config import DEFAULT_CONFIG, ServerConfig
from ._credentials import CredentialCheck
from ._lines import LineReader, TooLong, ascii_upper
from ._message import StoredMessage
from ._replies import Command, Reply, multiline, ok, status_line
from ._state import ALLOWED, KNOWN, State, next_state
from ._store import MailboxGone, Maildrop, MailStore
from ._transaction import MaildropCommands, messages_text
from .errors import ConfigError, UsageError

__all__ = ["Command", "LoginGate", "Pop3Protocol", "Reply", "State"]


_A, _AP, _T = State.AUTHORIZATION, State.AWAITING_PASS, State.TRANSACTION

# RFC 6856 section 3.2: the languages LANG offers; fakepop speaks English only.
_LANGUAGES = {"en": "English"}





# This process's id, for msg-ids; read again in a forked child (a system call per
# session otherwise).
_pid = os.getpid()


def _forked() -> None:
    global _pid  # noqa: PLW0603 - the one process-wide fact, kept up to date
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def fresh_msg_id(hostname: str, serial: str) -> str:
    """A msg-id for an APOP timestamp (RFC 1939 section 7) or a CRAM-MD5 challenge
    (RFC 2195), which must differ every time: process, ``serial`` (unique among the
    caller's live uses) and clock parts. No random source and no shared state."""
    return f"<{_pid}.{serial}.{time.time_ns()}@{hostname}>"


def _enabled_commands(config: ServerConfig, *, tls_available: bool) -> frozenset[str]:
    # The capability switches turn commands off; CAPA then leaves them out too.
    disabled = set()
    if not (tls_available and config.stls):
        disabled.add("STLS")
    if not config.sasl:
        disabled.add("AUTH")
    if not config.utf8:
        disabled |= {"UTF8", "LANG"}
    if not config.capa:
        disabled.add("CAPA")
    if not config.top:
        disabled.add("TOP")
    if not config.uidl:
        disabled.add("UIDL")
    if not config.user_pass:
        disabled |= {"USER", "PASS"}
    if not config.apop:
        disabled.add("APOP")
    return KNOWN - disabled


class Pop3Protocol(LoginCommands, MaildropCommands):
    """One POP3 server session: a state machine fed with the client's bytes.

    Everything that varies comes in from outside, so a test can make a session
    deterministic: ``clock`` (seconds, for LOGIN-DELAY), ``nonce`` (a fresh msg-id
    ``<...@host>`` per call: the APOP timestamp and each CRAM-MD5 challenge) and
    ``login_gate`` (asked at every login whose credentials are right).
    """

    def __init__(
        self,
        store: MailStore,
        config: ServerConfig | None = None,
        *,
        apop_timestamp: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        tls_available: bool = False,
        tls_active: bool = False,
        login_gate: LoginGate | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.config = config = DEFAULT_CONFIG if config is None else config
        password_of: Callable[[str], str | None] = store.password_of
        if config.recent_prefix is not None:
            # A recent-mode login name has the password of its mailbox.
            password_of = lambda name: store.password_of(config.login_mailbox(name)[0])  # noqa: E731
        self._credentials = CredentialCheck(
            password_of, prepare=config.utf8, token_validator=config.token_validator
        )
        self._login_gate = login_gate
        self._auth_command: Command | None = None
        self.state = State.AUTHORIZATION
        #: The user who logged in (set on entering TRANSACTION).
        self.user: str | None = None
        #: The locked snapshot of the user's mailbox while in TRANSACTION.
        self.maildrop: Maildrop | None = None
        #: Messages removed at UPDATE, once the session has quit.
        self.removed: list[StoredMessage] = []
        self._clock = clock
        self._enabled = _enabled_commands(config, tls_available=tls_available)
        #: Whether the connection is encrypted (POP3S, or after STLS).
        self.tls_active = tls_active
        self._pending_user: str | None = None
        self._lines = LineReader(config.login_line_limit)
        #: Whether the server hung up on the client (too many bad commands, a line too
        #: long, a locked mailbox, as the config asks), rather than after QUIT.
        self.hung_up = False
        self._bad_commands = 0  # in a row
        self._sasl: _sasl.Exchange | None = None
        #: Whether the client has sent UTF8 (RFC 6856 section 2).
        self.utf8_mode = False
        self._sasl_name = ""
        self._eof = False
        # Where APOP timestamps and CRAM-MD5 challenges come from: a test can make
        # them predictable, the default makes each one fresh (see _nonce).
        self._nonce_source = nonce
        self._nonces_made = 0
        if config.apop:
            self.apop_timestamp: str | None = apop_timestamp or self._nonce()
        elif apop_timestamp is not None:
            raise ConfigError("apop_timestamp given but APOP is disabled in the config")
        else:
            self.apop_timestamp = None

    def _nonce(self) -> str:
        # A method, not a closure kept in an attribute: that would make every protocol
        # a reference cycle, left for the cyclic garbage collector to free.
        if self._nonce_source is not None:
            return self._nonce_source()
        # The default's serial, this session's identity and a count, is unique among
        # live sessions, and the clock part sets it apart from every earlier one.
        self._nonces_made += 1
        return fresh_msg_id(self.config.hostname, f"{id(self):x}.{self._nonces_made}")

    # -- I/O surface ---------------------------------------------------------------
    def greeting(self) -> Reply:
        # RFC 1939 section 7: the timestamp ends the greeting, whole even when the
        # greeting's text has to be shortened to fit the line.
        return Reply(status_line(b"+OK", self.config.greeting, self.apop_timestamp or ""))

    def receive_data(self, data: bytes | bytearray) -> None:
        """Add bytes received from the client; ``b""`` means the client closed."""
        if data:
            if self._eof:
                raise UsageError("receive_data() called after end of input")
            self._lines.feed(data)
        else:
            self._eof = True

    @property
    def client_closed(self) -> bool:
        """Whether the client signalled end of input (``receive_data(b"")``)."""
        return self._eof

    def next_command(self) -> Command | None:
        """The next complete command line, or None until more data arrives.

        Returns None for good once the session is CLOSED: octets pipelined after QUIT
        are never executed.
        """
        if self.state is State.CLOSED:
            return None
        line = self._lines.next_line()
        if line is None:
            return None
        problem = None
        if isinstance(line, TooLong):
            # Refused, but parsed from the octets kept like any line, so that what it
            # was (a PASS, a SASL response) and whether it carries a secret are known.
            key = "line_too_long" if self.state is _T else "line_too_long_before_login"
            problem = self.config.text(key, limit=self._lines.limit)
            line = line.prefix
        if self.state is State.AUTHENTICATING:
            return Command(line, "", None, problem, sasl_response=True)
        text = line.decode("utf-8", "surrogateescape")
        keyword, space, argument = text.partition(" ")
        return Command(line, ascii_upper(keyword), argument if space else None, problem)

    def handle(self, command: Command) -> Reply:
        """Execute one command and return the reply to send."""
        if self.state is State.CLOSED:
            raise UsageError("the session is closed; no command can be handled")
        if self.state is State.AUTHENTICATING:
            return self._sasl_response(command)  # a SASL response, not a command
        logged_in = self.state is _T
        if command.problem is not None:
            if self.config.close_on_long_line:
                return self._hang_up(self._err(command.problem))
            return self._judged(self._err(command.problem), bad=True, logged_in=logged_in)
        refusal = self._unusable(command)
        if refusal is not None:
            text, bad = refusal
            return self._judged(self._err(text), bad=bad, logged_in=logged_in)
        reply = _HANDLERS[command.keyword](self, command)
        if not logged_in and command.keyword == "AUTH":
            return reply  # Dovecot counts AUTH neither as a bad command nor as a good one
        return self._judged(reply, bad=logged_in and not reply.ok, logged_in=logged_in)

    # -- what fault injection needs ------------------------------------------------
    def login_name(self, command: Command) -> str | None:
        """The user a command is about before login: USER's and APOP's argument, or
        the name PASS would log in; after login, the logged-in user."""
        if self.user is not None:
            return self.user
        if command.keyword in ("USER", "APOP") and command.args:
            return command.args[0]
        if command.keyword == "PASS":
            return self._pending_user
        return None

    def refuse(self, command: Command, text: str, code: str | None = None) -> Reply:
        """Answer ``command`` with ``-ERR`` instead of executing it, leaving the
        session as a real refusal would (see :meth:`answer_instead`)."""
        return self.answer_instead(command, self._err(text, code))

    def answer_instead(self, command: Command, reply: Reply) -> Reply:
        """Send ``reply`` (a fault's ``-ERR``, or a hook's ``+OK``) instead of executing
        ``command``, and return it as it must be sent.

        The reply replaces the command's effect: the command does not run, so nothing
        it would have done happens, whatever the reply says (an answered RETR marks
        nothing retrieved, an answered DELE marks nothing, an answered UTF8 or STLS
        changes no mode). The session is left as after a command that did not succeed:
        a PASS or APOP needs a new login, a SASL exchange ends (the next line is a
        command again), and QUIT closes the connection without UPDATE, deleting
        nothing; anything else changes nothing.
        """
        if self.state is State.CLOSED:
            raise UsageError("the session is closed; no command can be answered")
        if self.state is State.AUTHENTICATING:
            # A SASL step answered in its place ends the exchange (RFC 5034 section 4:
            # +OK or -ERR ends it): the next line is a command again, never taken as a
            # SASL response.
            self._leave_sasl()
        elif command.keyword in ("PASS", "APOP") and self.state in (_A, _AP):
            self._pending_user = None
            self._enter("login refused")
        elif command.keyword == "QUIT":
            self.connection_lost()
            return dataclasses.replace(reply, close=True)
        return reply

    def tls_started(self) -> None:
        """The TLS handshake after STLS succeeded. Everything the client sent in
        cleartext and the server has not handled yet is dropped, never executed, and a
        half-done login must start again (RFC 2595 section 4, RFC 5034 section 4)."""
        self._lines = LineReader(self.config.login_line_limit)
        self._pending_user = None
        self._enter("TLS started")
        self.tls_active = True

    def connection_lost(self) -> None:
        """The connection ended without QUIT (drop, timeout, shutdown, error).

        Releases the mailbox lock, deletes nothing. Safe to call at any time, more than
        once, and after a QUIT.
        """
        if self.maildrop is not None:
            self.maildrop.release()
        self._enter("connection lost")

    def _enter(self, event: str) -> None:
        # Every change of state goes through the one table of _state.py, and the
        # longest line accepted follows the state.
        self.state = next_state(self.state, event)
        state = self.state
        if state is State.AUTHENTICATING:
            self._lines.limit = SASL_LINE_LIMIT  # OAuth tokens run to kilobytes
        elif state is _T:
            self._lines.limit = self.config.max_line_length
        else:
            self._lines.limit = self.config.login_line_limit

    def _hang_up(self, reply: Reply) -> Reply:
        # The server closes the connection after ``reply``, without UPDATE.
        self.connection_lost()
        self.hung_up = True
        return dataclasses.replace(reply, close=True)

    def _judged(self, reply: Reply, *, bad: bool, logged_in: bool) -> Reply:
        # Counts bad commands in a row; at the config's limit the server hangs up
        # with a notice after the reply.
        if not bad:
            self._bad_commands = 0
            return reply
        self._bad_commands += 1
        config = self.config
        limit = config.max_bad_commands if logged_in else config.max_bad_commands_before_login
        if limit is None or self._bad_commands < limit:
            return reply
        key = "too_many_bad_commands" if logged_in else "too_many_bad_commands_before_login"
        notice = self._hang_up(self._err(config.text(key)))
        return dataclasses.replace(reply, followed_by=notice)

    # -- helpers -------------------------------------------------------------------
    def _unusable(self, command: Command) -> tuple[str, bool] | None:
        # Why a command cannot be executed here at all, and whether that makes it a
        # bad command (one the server does not know, or does not take in this state;
        # before login, a login command used out of turn is not bad); or None.
        keyword = command.keyword
        config = self.config
        before_login = self.state is not _T
        if not keyword:
            return config.text("empty_command"), True
        if keyword not in self._enabled:
            if keyword == "APOP" and before_login:
                return config.text("apop_disabled", keyword=keyword), False
            key = "unknown_before_login" if before_login else "unknown_command"
            return config.text(key, keyword=keyword), True
        if keyword not in ALLOWED[self.state]:
            if not before_login:
                return config.text("after_login", keyword=keyword), True
            if keyword == "PASS":
                return config.text("pass_without_user"), False
            return config.text("before_login", keyword=keyword), True
        extra = extra_arguments(command, config)
        return None if extra is None else (extra.text, not before_login)

    def _quit(self, command: Command) -> Reply:
        if self.state is not State.TRANSACTION:
            self._enter("QUIT")
            return Reply(status_line(b"+OK", self.config.text("quit")), close=True)
        assert self.maildrop is not None
        self._enter("QUIT")
        try:
            self.removed = self.maildrop.commit(
                delete_retrieved=self.config.expire == 0, pop=self.config.hide_popped
            )
        except MailboxGone:
            # RFC 1939 section 6: if messages cannot be removed, QUIT answers -ERR.
            failed = self._err("Mailbox was removed during the session", "SYS/PERM")
            return dataclasses.replace(failed, close=True)
        finally:
            # Whatever happens in UPDATE, the lock is released and the session ends.
            self.maildrop.release()
            self._enter("UPDATE done")
        key = "quit_update" if self.removed else "quit_nothing_deleted"
        text = self.config.text(key, deleted=messages_text(len(self.removed)))
        return Reply(status_line(b"+OK", text), close=True)

    def _capa(self, command: Command) -> Reply:
        stls = "STLS" in self._enabled and not self.tls_active and self.state in (_A, _AP)
        capabilities = self.config.capabilities(
            stls=stls, tls_active=self.tls_active, logged_in=self.state is _T
        )
        payload = "".join(f"{line}\r\n" for line in capabilities).encode() + b".\r\n"
        return multiline(self.config.text("capa"), payload, len(capabilities))

    def _utf8(self, command: Command) -> Reply:
        self.utf8_mode = True
        return ok("UTF8 mode enabled")

    def _lang(self, command: Command) -> Reply:
        if command.argument is None:
            listing = "".join(f"{tag} {name}\r\n" for tag, name in _LANGUAGES.items())
            return multiline("Language listing follows", listing.encode() + b".\r\n", 1)
        tag = command.argument.lower()
        if tag == "*":
            tag = "en"
        if tag not in _LANGUAGES:
            return self._err(f"Unsupported language {command.argument[:40]}; still en")
        return ok(f"{tag} Language is {_LANGUAGES[tag]}")

_HANDLERS: dict[str, Callable[[Pop3Protocol, Command], Reply]] = {
    "USER": Pop3Protocol._user,
    "PASS": Pop3Protocol._pass,
    "APOP": Pop3Protocol._apop,
    "QUIT": Pop3Protocol._quit,
    "CAPA": Pop3Protocol._capa,
    "STLS": Pop3Protocol._stls,
    "AUTH": Pop3Protocol._auth,
    "UTF8": Pop3Protocol._utf8,
    "LANG": Pop3Protocol._lang,
    "STAT": Pop3Protocol._stat,
    "LIST": Pop3Protocol._list,
    "UIDL": Pop3Protocol._uidl,
    "RETR": Pop3Protocol._retr,
    "TOP": Pop3Protocol._top,
    "DELE": Pop3Protocol._dele,
    "NOOP": Pop3Protocol._noop,
    "RSET": Pop3Protocol._rset,
}
assert set(_HANDLERS) == KNOWN
