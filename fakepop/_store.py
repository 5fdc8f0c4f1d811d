"""The mailbox store: users, their mail, and the per-session locked snapshots.

Everything here may be called from any thread. One lock guards all state; sessions
hold it only for the instant it takes to copy or commit, never across I/O. A test can
deliver mail, add or remove users and read mailboxes while sessions run.

Every change is followed by a bump of the store's :class:`Changes`, which the servers
serving the store share, so that a test waiting for the mail to change wakes up.

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

from ._changes import Changes
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
    sessions removed at UPDATE, in the order they went; ``retrieved`` the UIDs RETR
    answered ``+OK`` for, once per retrieval, in order; ``marked_for_deletion`` the
    UIDs the session holding the lock has marked with DELE so far, in message order
    (RFC 1939 section 6: DELE marks, UPDATE after QUIT removes; a session that ends
    otherwise removes nothing), empty while no session holds the lock; ``popped`` the
    UIDs that sessions of a server with ``hide_popped`` retrieved or marked before
    QUIT (still in ``messages``, but offered only to logins in recent mode), in order.
    """

    user: str
    messages: tuple[StoredMessage, ...]
    deleted: tuple[StoredMessage, ...]
    retrieved: tuple[str, ...]
    locked: bool
    logins: int
    marked_for_deletion: tuple[str, ...] = ()
    popped: tuple[str, ...] = ()

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

    def __init__(
        self,
        store: MailStore,
        state: MailboxState,
        *,
        hide_popped: bool = False,
        limit: int | None = None,
    ) -> None:
        self._store = store
        self._state = state
        self.user = state.user
        messages = state.take_snapshot()  # called with the store's lock held
        all_octets = state.snapshot_octets
        if hide_popped and state.popped:
            messages = tuple(m for m in messages if m.uid not in state.popped)
            all_octets = sum(message.size for message in messages)
        if limit is not None and len(messages) > limit:
            messages = messages[:limit]  # the oldest
            all_octets = sum(message.size for message in messages)
        self.messages = messages
        self._all_octets = all_octets
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
            # A test may read the marks from another thread, and wait for them.
            with self._store._change:
                self._marked.add(number)
            self._live_count -= 1
            self._live_octets -= self.messages[number - 1].size

    def unmark_all(self) -> None:
        with self._store._change:
            self._marked.clear()
        self._live_count = len(self.messages)
        self._live_octets = self._all_octets

    def _marked_uids_locked(self) -> tuple[str, ...]:
        # Called with the store's lock held, under which the marks change.
        return tuple(self.messages[number - 1].uid for number in sorted(self._marked))

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
        with self._store._change:
            self._state.retrieved.append(self.messages[number - 1].uid)

    # -- ending the session ---------------------------------------------------------
    def commit(
        self, *, delete_retrieved: bool = False, pop: bool = False
    ) -> list[StoredMessage]:
        """UPDATE: remove the marked messages (and, for EXPIRE 0, the retrieved ones),
        release the lock, and return what was removed. With ``pop`` nothing is removed:
        the marked and the retrieved messages are popped (see Mailbox.popped).

        Raises MailboxGone, after releasing, if there was something to remove but the
        test removed the whole mailbox from the store during the session.
        """
        if pop:
            uids = [self.messages[n - 1].uid for n in sorted(self._marked | self._retrieved)]
            with self._store._change:
                self._state.popped.update(dict.fromkeys(uids))
                self._release_locked()
            return []
        numbers = self._marked | self._retrieved if delete_retrieved else self._marked
        if not numbers:  # the usual QUIT: nothing to remove, only the lock to give back
            self.release()
            return []
        doomed = {id(self.messages[n - 1]) for n in numbers}
        with self._store._change:
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
        with self._store._change:
            self._release_locked()

    def _release_locked(self) -> None:
        if not self.released:
            self.released = True
            if self._state.lock_holder is self:
                self._state.lock_holder = None


class _Change:
    # A context manager that holds the store's lock for a change and bumps the store's
    # Changes once the lock is released, whether the change succeeded or not.
    __slots__ = ("_bump", "_lock")

    def __init__(self, lock: threading.Lock, changes: Changes) -> None:
        self._lock = lock
        self._bump = changes.bump

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
        self._bump()


class MailStore:
    """All mailboxes of a fakepop server, safe to read and change from any thread.

    ``MailStore({"alice": {"password": "secret", "messages": [msg1, msg2]}})``: each
    message may be ``str``, ``bytes`` or an ``email.message.Message``. To choose UIDs,
    give ``"messages"`` as a dict of UID to message. ``{"bob": "hunter2"}`` is a user
    with an empty mailbox.
    """

    def __init__(self, mailboxes: Mapping[str, MailboxSpec] | None = None) -> None:
        self._lock = threading.Lock()
        # Bumped after every change; the servers of this store bump it too.
        self._changes = Changes()
        # `with self._change:` is how everything that changes the store holds its lock.
        self._change = _Change(self._lock, self._changes)
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
        with self._change:
            self._insert_locked(built)

    def replace(self, mailboxes: Mapping[str, MailboxSpec]) -> None:
        """Swap every mailbox for those of ``mailboxes`` (shaped as the constructor
        takes them) in one step: no reader sees a mix of old and new users.

        The new mailboxes are checked and built first; a bad one raises and leaves the
        store as it was. A session holding an old mailbox can no longer commit to it.
        """
        built = build_mailboxes(mailboxes)
        with self._change:
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
        with self._change:
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
        with self._change:
            self._state(user)
            del self._boxes[user]

    def set_password(self, user: str, password: str) -> None:
        with self._change:
            self._state(user).password = password

    def deliver(
        self, user: str, message: MessageSource, *, uid: str | None = None
    ) -> StoredMessage:
        """Append a message to ``user``'s mailbox; sessions already logged in won't see it."""
        if uid is not None:
            check_uid(uid)
        with self._change:
            return self._state(user).add(message, uid)

    def clear(self) -> None:
        """Remove every mailbox."""
        with self._change:
            self._boxes.clear()

    # -- reading ------------------------------------------------------------------
    def __getitem__(self, user: str) -> Mailbox:
        with self._lock:
            state = self._state(user)
            holder = state.lock_holder
            return Mailbox(
                user=user,
                messages=tuple(state.messages),
                deleted=tuple(state.deleted),
                retrieved=tuple(state.retrieved),
                locked=holder is not None,
                logins=state.logins,
                marked_for_deletion=(
                    holder._marked_uids_locked() if isinstance(holder, Maildrop) else ()
                ),
                popped=tuple(state.popped),
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
        self,
        user: str,
        *,
        now: float,
        login_delay: float | None = None,
        hide_popped: bool = False,
        limit: int | None = None,
    ) -> Maildrop:
        """Lock ``user``'s mailbox and snapshot it for a session that authenticated:
        without its popped messages if ``hide_popped``, and only its ``limit`` oldest.

        Raises KeyError for an unknown user, LoginTooSoon if the last login was less
        than ``login_delay`` seconds before ``now``, MailboxInUse if locked.
        """
        with self._change:
            state = self._state(user)
            if (
                login_delay is not None
                and state.last_login is not None
                and now - state.last_login < login_delay
            ):
                raise LoginTooSoon(user)
            if state.lock_holder is not None:
                raise MailboxInUse(user)
            maildrop = Maildrop(self, state, hide_popped=hide_popped, limit=limit)
            state.lock_holder = maildrop
            state.last_login = now
            state.logins += 1
            return maildrop

    def _state(self, user: str) -> MailboxState:
        try:
            return self._boxes[user]
        except KeyError:
            raise KeyError(f"no mailbox for user {user!r}") from None
