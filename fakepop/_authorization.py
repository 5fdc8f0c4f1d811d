"""The AUTHORIZATION commands (RFC 1939 section 4, RFC 5034, RFC 2595): USER, PASS,
APOP, AUTH with its SASL exchange, and STLS, and the login they all end in.
:class:`Pop3Protocol` inherits them; every secret is checked by the one
CredentialCheck, every TLS refusal comes from the config's one rule, and every change
of state is an event of ``_state.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Callable

from . import _sasl as sasl
from ._arguments import Refused, password, user_name
from ._config import BEARER_METHODS, ServerConfig
from ._credentials import CredentialCheck
from ._lines import LineReader, ascii_upper
from ._replies import Command, Reply, multiline, ok, status_line
from ._sasl_lines import decode_sasl_base64, is_sasl_cancel
from ._saslprep import SaslprepError, saslprep
from ._state import State
from ._store import LoginTooSoon, MailboxInUse, Maildrop, MailStore
from ._transaction import messages_text

__all__ = ["SASL_LINE_LIMIT", "LoginCommands", "LoginGate"]

#: Called when a login's credentials were right, before the mailbox is locked, with
#: the user, the login method (``"USER"``, ``"APOP"`` or a SASL mechanism) and the
#: command that started the login; returns None to go on, or ``(text, response code)``
#: to refuse the login with ``-ERR`` as a real server would. Fault injection uses it.
LoginGate = Callable[[str, str, "Command"], "tuple[str, str | None] | None"]

#: A SASL response line may be far longer than a command: an OAuth token is kilobytes.
SASL_LINE_LIMIT = 65536
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32}\Z")


class LoginCommands:
    """USER, PASS, APOP, AUTH and STLS, and the common tail of every login."""

    # Set by Pop3Protocol.
    store: MailStore
    config: ServerConfig
    state: State
    user: str | None
    maildrop: Maildrop | None
    tls_active: bool
    apop_timestamp: str | None
    _credentials: CredentialCheck
    _login_gate: LoginGate | None
    _auth_command: Command | None
    _clock: Callable[[], float]
    _pending_user: str | None
    _lines: LineReader
    _sasl: sasl.Exchange | None
    _sasl_name: str
    _nonce: Callable[[], str]

    # Pop3Protocol._enter, the one way a state changes, Pop3Protocol._hang_up, the one
    # way the server closes on the client, and MaildropCommands._err, the one way
    # -ERR is worded.
    _enter: Callable[[str], None]
    _hang_up: Callable[[Reply], Reply]
    _err: Callable[..., Reply]

    def _login(self, user: str, password_ok: bool, method: str, command: Command) -> Reply:
        # Common tail of PASS, APOP and AUTH: credentials, the user's allowed login
        # methods, the login gate, login delay, lock, TRANSACTION.
        self._pending_user = None
        self._enter("login attempted")
        config = self.config
        if not password_ok or (config.oauth_only and method not in BEARER_METHODS):
            return self._login_refused(method)
        user, recent = config.login_mailbox(user)
        if not self.store.login_allowed(user, method):
            return self._err(f"{user} may not log in with {method}", "AUTH")
        if self._login_gate is not None:
            refusal = self._login_gate(user, method, command)
            if refusal is not None:
                return self._err(*refusal)
        try:
            maildrop = self.store.open_maildrop(
                user,
                now=self._clock(),
                login_delay=config.login_delay,
                hide_popped=config.hide_popped and not recent,
                limit=config.max_messages_offered,
            )
        except LoginTooSoon:
            return self._err(
                f"Logged in less than {self.config.login_delay} seconds ago; try later",
                "LOGIN-DELAY",
            )
        except MailboxInUse:
            in_use = self._err(self.config.text("in_use"), "IN-USE")
            in_use = dataclasses.replace(in_use, delay=self.config.lock_wait)
            return self._hang_up(in_use) if self.config.close_on_in_use else in_use
        except KeyError:  # removed by the test between the password check and now
            return self._login_refused(method)
        self.maildrop = maildrop
        self.user = user
        self._enter("login accepted")
        return ok(
            self.config.text(
                "logged_in",
                user=user,
                messages=messages_text(maildrop.count),
                octets=maildrop.octets,
            )
        )

    def _login_refused(self, method: str) -> Reply:
        # Wrong credentials: the one -ERR [AUTH] (worded for PASS and APOP, or for AUTH),
        # after the config's delay.
        key = "auth_failed" if method in ("USER", "APOP") else "sasl_failed"
        refused = self._err(self.config.text(key), "AUTH")
        return dataclasses.replace(refused, delay=self.config.failed_login_delay)

    # -- AUTHORIZATION -------------------------------------------------------------
    def _login_without_tls(self, method: str) -> Reply | None:
        # The config's TLS policy: a refusal for a login attempted too early.
        refusal = self.config.tls_refusal(method, tls_active=self.tls_active)
        return None if refusal is None else self._err(refusal, "AUTH")

    # -- SASL (RFC 5034) -----------------------------------------------------------
    def _auth(self, command: Command) -> Reply:
        mechanisms = self.config.sasl_mechanisms(tls_active=self.tls_active)
        if command.argument is None:
            # Not in RFC 5034's grammar, but Outlook and mutt probe with a bare AUTH.
            listing = "".join(f"{name}\r\n" for name in mechanisms).encode() + b".\r\n"
            return multiline(self.config.text("sasl_mechanisms"), listing, len(mechanisms))
        args = command.args
        if len(args) > 2 or not args[0]:
            return self._err("AUTH takes a mechanism and an optional initial response")
        name = ascii_upper(args[0])
        if name not in mechanisms:
            refused = self._login_without_tls(name)
            if name in self.config.sasl and refused is not None:
                return refused
            return self._err(self.config.text("unsupported_mechanism", mechanism=args[0][:40]))
        initial = None
        if len(args) == 2:
            initial = b"" if args[1] == "=" else decode_sasl_base64(args[1])
            if initial is None:
                return self._err(self.config.text("bad_initial_response"))
        self._sasl = sasl.start_exchange(
            name,
            credentials=self._credentials,
            nonce=self._nonce,
            error_challenge=self.config.token_error_challenge,
        )
        self._sasl_name = name
        self._auth_command = command
        return self._sasl_step(self._sasl.start(initial))

    def _sasl_response(self, command: Command) -> Reply:
        assert self._sasl is not None
        if command.problem is not None:
            self._leave_sasl()
            return self._err(command.problem)
        text = command.line.decode("ascii", "replace")
        if is_sasl_cancel(text):
            self._leave_sasl()
            return self._err(self.config.text("sasl_cancelled"))
        response = decode_sasl_base64(text.strip())
        if response is None:
            self._leave_sasl()
            return self._err(self.config.text("bad_sasl_response"))
        return self._sasl_step(self._sasl.step(response))

    def _sasl_step(self, step: sasl.Step) -> Reply:
        if isinstance(step, sasl.Challenge):
            # RFC 5034 section 4: "+" SP base64, or exactly "+ " for an empty challenge.
            self._enter("SASL challenge")
            return Reply(b"+ " + base64.b64encode(step.data) + b"\r\n")
        command = self._auth_command
        self._leave_sasl()
        if isinstance(step, sasl.Failure):
            if step.wrong_credentials or (
                not self.config.sasl_failure_reasons and step.code != "SYS/TEMP"
            ):
                return self._login_refused(self._sasl_name)
            return self._err(step.text, step.code)
        assert command is not None
        return self._login(step.user, True, self._sasl_name, command)

    def _leave_sasl(self) -> None:
        # After a failure, as if the AUTH had never been sent (RFC 5034 section 4).
        self._sasl = None
        self._auth_command = None
        self._enter("SASL ended")
        self._pending_user = None

    def _stls(self, command: Command) -> Reply:
        if self.tls_active:
            return self._err(self.config.text("tls_active"))
        status = status_line(b"+OK", self.config.text("stls"))
        if self.config.close_on_stls_pipelining and self._lines.pending:
            return self._hang_up(Reply(status))
        return Reply(status, starttls=True)

    def _user(self, command: Command) -> Reply:
        refused = self._login_without_tls("USER")
        if refused is not None:
            return refused
        name = user_name(command, self.config)
        if isinstance(name, Refused):
            return self._err(name.text)
        problem = self._credential_problem(name, "user name")
        if problem is not None:
            return problem
        # Any name is accepted here so that USER does not reveal which accounts exist
        # (RFC 1939 section 13); PASS then fails with [AUTH] for an unknown one.
        self._pending_user = name
        self._enter("USER accepted")
        return ok(self.config.text("user", user=name))

    def _pass(self, command: Command) -> Reply:
        secret = password(command, self.config)
        if isinstance(secret, Refused):
            return self._err(secret.text)
        user = self._pending_user
        assert user is not None
        problem = self._credential_problem(secret, "password")
        if problem is not None:
            self._pending_user = None
            self._enter("login refused")
            return problem
        return self._login(user, self._credentials.password(user, secret), "USER", command)

    def _apop(self, command: Command) -> Reply:
        refused = self._login_without_tls("APOP")
        if refused is not None:
            return refused
        args = command.args
        if len(args) != 2 or not all(args):
            return self._err("APOP needs two arguments: the user name and the digest")
        user, digest = args
        if not _HEX_DIGEST.match(digest):
            return self._err("APOP digest must be 32 hexadecimal digits")
        timestamp = self.apop_timestamp
        good = timestamp is not None and self._credentials.apop(user, timestamp, digest)
        return self._login(user, good, "APOP", command)

    def _credential_problem(self, text: str, what: str) -> Reply | None:
        # RFC 6856 section 2.2: with UTF8 USER advertised, invalid UTF-8 and characters
        # SASLprep prohibits MUST be rejected.
        if not self.config.utf8:
            return None
        try:
            saslprep(text.encode("utf-8", "surrogateescape").decode("utf-8"))
        except UnicodeError:
            return self._err(f"The {what} is not valid UTF-8")
        except SaslprepError as problem:
            return self._err(f"The {what} {problem}")
        return None
