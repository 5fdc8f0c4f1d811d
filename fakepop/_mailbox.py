"""One mailbox's state, and how a mailbox dict becomes it.

A test writes mailboxes as plain data (:data:`MailboxSpec`); everything here checks
that data whole and builds :class:`MailboxState` objects without touching any store,
so a store can add or swap them all at once, or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeAlias

from ._message import MessageSource, StoredMessage
from ._sasl import MECHANISMS
from .errors import ConfigError

__all__ = [
    "LOGIN_METHODS",
    "MailboxSpec",
    "MailboxState",
    "build_mailbox",
    "build_mailboxes",
    "check_user",
]

#: A mailbox as a test writes it in the dict handed to :class:`MailStore`:
#: either just the password (an empty mailbox), or a mapping with ``"password"`` and
#: optionally ``"messages"`` (a list of messages, or a dict of UID to message).
MailboxSpec: TypeAlias = str | Mapping[str, object]

_SPEC_KEYS = frozenset({"password", "messages", "methods"})
#: How a user may log in, for the ``"methods"`` key of a mailbox: ``"USER"`` stands
#: for USER/PASS, the others are APOP and the SASL mechanisms.
LOGIN_METHODS = frozenset({"USER", "APOP", *MECHANISMS})


class MailboxState:
    """The mutable state of one mailbox; a store touches it only under its lock."""
    __slots__ = (
        "deleted",
        "derived",
        "last_login",
        "lock_holder",
        "logins",
        "messages",
        "methods",
        "next_uid",
        "password",
        "popped",
        "retrieved",
        "snapshot",
        "snapshot_octets",
        "used_uids",
        "user",
    )

    def __init__(self, user: str, password: str) -> None:
        self.user = user
        self.password = password
        self.methods: frozenset[str] | None = None  # None: every login method
        self.messages: list[StoredMessage] = []
        self.used_uids: set[str] = set()
        self.next_uid = 1
        self.deleted: list[StoredMessage] = []
        self.retrieved: list[str] = []
        # UIDs a session with hide_popped retrieved or marked before QUIT, in order.
        self.popped: dict[str, None] = {}
        self.lock_holder: object | None = None  # the Maildrop that holds the lock
        self.last_login: float | None = None
        self.logins = 0
        # The messages as an immutable tuple, shared by every session that logs in
        # until the mailbox changes, and what sessions derived from exactly that tuple.
        self.snapshot: tuple[StoredMessage, ...] | None = None
        self.snapshot_octets = 0  # the size of the snapshot's messages, summed once
        self.derived: dict[str, bytes] = {}

    def changed(self) -> None:
        self.snapshot = None
        self.derived = {}

    def take_snapshot(self) -> tuple[StoredMessage, ...]:
        if self.snapshot is None:
            self.snapshot = tuple(self.messages)
            self.snapshot_octets = sum(message.size for message in self.snapshot)
        return self.snapshot

    def add(self, source: MessageSource, uid: str | None) -> StoredMessage:
        if uid is None:
            uid = self._fresh_uid()
        elif uid in self.used_uids:
            raise ConfigError(
                f"UID {uid!r} is already used in {self.user!r}'s mailbox "
                "(POP3 UIDs must be unique and are never reused)"
            )
        try:
            message = StoredMessage.from_source(source, uid)
        except TypeError as exc:
            raise TypeError(f"message for {self.user!r}: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"message for {self.user!r}: {exc}") from exc
        self.used_uids.add(uid)
        self.messages.append(message)
        self.changed()
        return message

    def _fresh_uid(self) -> str:
        # Short, readable, deterministic for a given delivery order, never reused.
        while True:
            uid = f"uid{self.next_uid:06d}"
            self.next_uid += 1
            if uid not in self.used_uids:
                return uid


def check_user(user: object) -> str:
    if not isinstance(user, str):
        raise TypeError(f"a user name must be a str, not {type(user).__name__}")
    if not user or any(c in user for c in " \r\n\0"):
        raise ConfigError(
            f"invalid user name {user!r}: POP3 sends it as one argument, so it "
            "cannot be empty or contain spaces or line breaks"
        )
    return user


def build_mailboxes(mailboxes: Mapping[str, MailboxSpec]) -> dict[str, MailboxState]:
    # Everything load and replace need, built without touching the store.
    if not isinstance(mailboxes, Mapping):
        raise TypeError(
            f"mailboxes must be a dict of user to mailbox, not {type(mailboxes).__name__}"
        )
    built: dict[str, MailboxState] = {}
    for name, spec in mailboxes.items():
        user = check_user(name)
        if user in built:
            raise ConfigError(f"user {user!r} appears more than once in the mailboxes")
        built[user] = build_mailbox(user, *_parse_spec(user, spec))
    return built


def build_mailbox(
    user: object, password: object, messages: object, methods: object
) -> MailboxState:
    # The one place a mailbox comes to be, for add_user as for the dict form.
    user = check_user(user)
    if not isinstance(password, str):
        raise TypeError(f"password of {user!r} must be a str, not {type(password).__name__}")
    state = MailboxState(user, password)
    if methods is not None:
        state.methods = _check_methods(user, methods)
    if isinstance(messages, Mapping):
        for uid, source in messages.items():
            state.add(source, uid)
    elif isinstance(messages, (str, bytes)):
        raise TypeError(
            f"messages of {user!r} must be a list of messages, "
            f"not a single {type(messages).__name__}"
        )
    elif isinstance(messages, Iterable):
        for source in messages:
            state.add(source, None)
    else:
        raise TypeError(
            f"messages of {user!r} must be a list or a dict of UID to message, "
            f"not {type(messages).__name__}"
        )
    return state


def _check_methods(user: str, methods: object) -> frozenset[str]:
    if isinstance(methods, str) or not isinstance(methods, Iterable):
        raise TypeError(f"methods of {user!r} must be a list, like ['APOP']")
    chosen: set[str] = set()
    for method in methods:
        if not isinstance(method, str):
            raise TypeError(
                f"methods of {user!r} must be names like 'APOP', not {type(method).__name__}"
            )
        chosen.add(method.upper())
    if chosen - LOGIN_METHODS:
        raise ConfigError(
            f"unknown login methods {sorted(chosen - LOGIN_METHODS)} for {user!r}; "
            f"choose from {sorted(LOGIN_METHODS)}"
        )
    return frozenset(chosen)


def _parse_spec(user: str, spec: object) -> tuple[object, object, object]:
    # The dict form of one mailbox, as (password, messages, methods) for _build_mailbox.
    if isinstance(spec, str):
        return spec, (), None
    if not isinstance(spec, Mapping):
        raise TypeError(
            f"mailbox of {user!r} must be a password string or a dict with "
            f"'password' and 'messages', not {type(spec).__name__}"
        )
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ConfigError(
            f"mailbox of {user!r} has unknown keys {sorted(unknown)}; "
            f"allowed: {sorted(_SPEC_KEYS)}"
        )
    if "password" not in spec:
        raise ConfigError(f"mailbox of {user!r} needs a 'password'")
    return spec["password"], spec.get("messages", ()), spec.get("methods")
