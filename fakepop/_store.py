"""The mailbox store: users, their mail, and the per-session locked snapshots.

Everything here may be called from any thread. One lock guards all state; sessions
hold it only for the instant it takes to copy or commit, never across I/O. A test can
deliver mail, add or remove users and read mailboxes while sessions run.

RFC 1939 semantics the store enforces:
- Login takes an exclusive lock on the mailbox and a snapshot of its messages.
  Mail delivered afterwards is not part of that session (numbers never change).
- Messages are removed only by ``Maildrop.commit`` (the UPDATE state, after QUIT).
  ``Maildrop.release`` (drop, timeout, shutdown, error) removes nothing.
- UIDs are never reused within a mailbox, not even after the message is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ._listing import Listings
from ._mailbox import MailboxSpec, MailboxState, build_mailbox, build_mailboxes
from ._message import MessageSource, StoredMessage, check_uid
from .errors import ConfigError

__all__ = [
    "LoginTooSoon",
    "MailStore",
    "Mailbox",
    "MailboxGone",
    "MailboxInUse",
    "MailboxSpec",
    "Maildrop",
    "MaildropUnavailable",
]

class MaildropUnavailable(Exception):
    """The credentials were right but the session cannot have the mailbox now."""


class MailboxInUse(MaildropUnavailable):
    """Another session holds the mailbox's exclusive lock."""


class LoginTooSoon(MaildropUnavailable):
    """The user logged in less than LOGIN-DELAY seconds ago."""


class MailboxGone(Exception):
    """UPDATE found the mailbox removed from the store while the session had it."""


@dataclass(frozen=True)
class Mailbox:
    """A consistent, read-only picture of one user's mailbox, taken when asked for.

    ``messages`` is what a new session would see; ``deleted`` holds the messages that
    sessions removed at UPDATE, in the order they went; ``retrieved`` the UIDs sent by
    RETR, once per retrieval, in order.
    """

    user: str
    messages: tuple[StoredMessage, ...]
    deleted: tuple[StoredMessage, ...]
    retrieved: tuple[str, ...]
    locked: bool
    logins: int

    @property
    def uids(self) -> list[str]:
        return [message.uid for message in self.messages]

    def __len__(self) -> int:
        return len(self.messages)


class Maildrop:
    """A session's locked snapshot of one mailbox (RFC 1939 section 4).

    Message numbers are 1-based positions in the snapshot and never change. Deletion
    marks live here until :meth:`commit` applies them; :meth:`release` drops them.
    """

    def __init__(self, store: MailStore, state: MailboxState) -> None:
        self._store = store
        self._state = state
        self.user = state.user
        self.messages = state.take_snapshot()  # called with the store's lock held
        self._all_octets = state.snapshot_octets
        self._marked: set[int] = set()
        self._retrieved: set[int] = set()
        self._live_count = len(self.messages)
        self._live_octets = self._all_octets
        self._derived: dict[str, bytes] = {}
        self.released = False

    # -- the session's view -------------------------------------------------------
    @property
    def count(self) -> int:
        """Messages not marked deleted (what STAT reports)."""
        return self._live_count

    @property
    def octets(self) -> int:
        """Total size of the messages not marked deleted."""
        return self._live_octets

    def get(self, number: int) -> StoredMessage | None:
        """Message ``number`` (1-based), or None if there is none or it is marked."""
        if 1 <= number <= len(self.messages) and number not in self._marked:
            return self.messages[number - 1]
        return None

    def is_deleted(self, number: int) -> bool:
        return number in self._marked

    def marked(self) -> list[int]:
        """The numbers marked deleted, in ascending order."""
        return sorted(self._marked)

    def mark_deleted(self, number: int) -> None:
        if number not in self._marked:
            self._marked.add(number)
            self._live_count -= 1
            self._live_octets -= self.messages[number - 1].size

    def unmark_all(self) -> None:
        self._marked.clear()
        self._live_count = len(self.messages)
        self._live_octets = self._all_octets

    def derived(self, key: str, build: Callable[[tuple[StoredMessage, ...]], bytes]) -> bytes:
        """``build(self.messages)``, computed once for every session that sees the same
        messages (until the mailbox changes), so that polling a large mailbox does not
        redo the same work at every login."""
        value = self._derived.get(key)
        if value is not None:
            return value
        state = self._state
        with self._store._lock:
            if state.snapshot is self.messages:
                value = state.derived.get(key)
        if value is None:
            value = build(self.messages)
            with self._store._lock:
                if state.snapshot is self.messages:
                    state.derived[key] = value
        self._derived[key] = value
        return value

    def note_retrieved(self, number: int) -> None:
        self._retrieved.add(number)
        with self._store._lock:
            self._state.retrieved.append(self.messages[number - 1].uid)

    # -- ending the session ---------------------------------------------------------
    def commit(self, *, delete_retrieved: bool = False) -> list[StoredMessage]:
        """UPDATE: remove the marked messages (and, for EXPIRE 0, the retrieved ones),
        release the lock, and return what was removed.

        Raises MailboxGone, after releasing, if there was something to remove but the
        test removed the whole mailbox from the store during the session.
        """
        numbers = self._marked | self._retrieved if delete_retrieved else self._marked
        if not numbers:  # the usual QUIT: nothing to remove, only the lock to give back
            self.release()
            return []
        doomed = {id(self.messages[n - 1]) for n in numbers}
        with self._store._lock:
            if self._store._boxes.get(self.user) is not self._state:
                self._release_locked()
                raise MailboxGone(self.user)
            removed = [m for m in self._state.messages if id(m) in doomed]
            if removed:
                self._state.messages = [
                    m for m in self._state.messages if id(m) not in doomed
                ]
                self._state.deleted.extend(removed)
                self._state.changed()
            self._release_locked()
        return removed

    def release(self) -> None:
        """Give the lock back without UPDATE. Safe to call more than once."""
        if self.released:  # set once, under the lock, and never unset
            return
        with self._store._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if not self.released:
            self.released = True
            if self._state.lock_holder is self:
                self._state.lock_holder = None


class MailStore:
    """All mailboxes of a fakepop server, safe to read and change from any thread.

    ``MailStore({"alice": {"password": "secret", "messages": [msg1, msg2]}})``: each
    message may be ``str``, ``bytes`` or an ``email.message.Message``. To choose UIDs,
    give ``"messages"`` as a dict of UID to message. ``{"bob": "hunter2"}`` is a user
    with an empty mailbox.
    """

    def __init__(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> None:
        self._lock = threading.Lock()
        self._boxes: dict[str, MailboxState] = {}
        #: Formats the LIST and UIDL listings of these mailboxes.
        self.listings = Listings()
        if mailboxes is not None:
            self.load(mailboxes)

    # -- setting up ---------------------------------------------------------------
    def load(self, mailboxes: Mapping[str, MailboxSpec]) -> None:
        """Add every mailbox of a dict shaped as the constructor takes it.

        All or nothing: every mailbox is checked and built first, then all are added
        in one step. A bad mailbox, or a user who already exists, raises and leaves
        the store as it was.
        """
        built = build_mailboxes(mailboxes)
        with self._lock:
            self._insert_locked(built)

    def replace(self, mailboxes: Mapping[str, MailboxSpec]) -> None:
        """Swap every mailbox for those of ``mailboxes`` (shaped as the constructor
        takes them) in one step: no reader sees a mix of old and new users.

        The new mailboxes are checked and built first; a bad one raises and leaves the
        store as it was. A session holding an old mailbox can no longer commit to it.
        """
        built = build_mailboxes(mailboxes)
        with self._lock:
            self._boxes = built

    def add_user(
        self,
        user: str,
        password: str,
        messages: Iterable[MessageSource] | Mapping[str, MessageSource] = (),
        *,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Create a mailbox. ``messages`` is a list, or a dict of UID to message;
        ``methods`` limits how the user may log in (see LOGIN_METHODS)."""
        state = build_mailbox(user, password, messages, methods)
        with self._lock:
            self._insert_locked({user: state})

    def _insert_locked(self, built: Mapping[str, MailboxState]) -> None:
        taken = [user for user in built if user in self._boxes]
        if len(taken) == 1:
            raise ConfigError(f"user {taken[0]!r} already exists")
        if taken:
            raise ConfigError(f"users {', '.join(map(repr, taken))} already exist")
        self._boxes.update(built)

    def remove_user(self, user: str) -> None:
        """Remove a mailbox; a session that has it open can no longer commit to it."""
        with self._lock:
            self._state(user)
            del self._boxes[user]

    def set_password(self, user: str, password: str) -> None:
        with self._lock:
            self._state(user).password = password

    def deliver(
        self, user: str, message: MessageSource, *, uid: str | None = None
    ) -> StoredMessage:
        """Append a message to ``user``'s mailbox; sessions already logged in won't see it."""
        if uid is not None:
            check_uid(uid)
        with self._lock:
            return self._state(user).add(message, uid)

    def clear(self) -> None:
        """Remove every mailbox."""
        with self._lock:
            self._boxes.clear()

    # -- reading ------------------------------------------------------------------
    def __getitem__(self, user: str) -> Mailbox:
        with self._lock:
            state = self._state(user)
            return Mailbox(
                user=user,
                messages=tuple(state.messages),
                deleted=tuple(state.deleted),
                retrieved=tuple(state.retrieved),
                locked=state.lock_holder is not None,
                logins=state.logins,
            )

    def __contains__(self, user: object) -> bool:
        with self._lock:
            return user in self._boxes

    @property
    def users(self) -> list[str]:
        with self._lock:
            return list(self._boxes)

    # -- what sessions use --------------------------------------------------------
    def login_allowed(self, user: str, method: str) -> bool:
        """Whether ``user`` may log in with ``method`` (USER, APOP or a SASL name)."""
        with self._lock:
            state = self._boxes.get(user)
            return state is None or state.methods is None or method in state.methods

    def password_of(self, user: str) -> str | None:
        """The user's password (also the APOP shared secret), or None if no such user."""
        with self._lock:
            state = self._boxes.get(user)
            return None if state is None else state.password

    def open_maildrop(
        self, user: str, *, now: float, login_delay: float | None = None
    ) -> Maildrop:
        """Lock ``user``'s mailbox and snapshot it for a session that authenticated.

        Raises KeyError for an unknown user, LoginTooSoon if the last login was less
        than ``login_delay`` seconds before ``now``, MailboxInUse if locked.
        """
        with self._lock:
            state = self._state(user)
            if (
                login_delay is not None
                and state.last_login is not None
                and now - state.last_login < login_delay
            ):
                raise LoginTooSoon(user)
            if state.lock_holder is not None:
                raise MailboxInUse(user)
            maildrop = Maildrop(self, state)
            state.lock_holder = maildrop
            state.last_login = now
            state.logins += 1
            return maildrop

    def _state(self, user: str) -> MailboxState:
        try:
            return self._boxes[user]
        except KeyError:
            raise KeyError(f"no mailbox for user {user!r}") from None
