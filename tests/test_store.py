"""The mailbox store: the dict a test hands in, locking, snapshots and commits."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping

import pytest

from fakepop import MailStore
from fakepop._store import LoginTooSoon, MailboxInUse


def test_the_common_case_is_one_line() -> None:
    store = MailStore({"alice": {"password": "secret", "messages": ["Subject: a\n\nA\n"]}})
    mailbox = store["alice"]
    assert len(mailbox) == 1
    assert mailbox.messages[0].data == b"Subject: a\r\n\r\nA\r\n"
    assert mailbox.uids == ["uid000001"]
    assert store.password_of("alice") == "secret"


def test_a_password_alone_is_an_empty_mailbox() -> None:
    store = MailStore({"bob": "hunter2"})
    assert len(store["bob"]) == 0
    assert store.users == ["bob"]


def test_users_may_choose_uids() -> None:
    store = MailStore({"a": {"password": "p", "messages": {"first": b"1\n", "second": b"2\n"}}})
    assert store["a"].uids == ["first", "second"]
    assert store.deliver("a", b"3\n").uid == "uid000001"
    assert store.deliver("a", b"4\n", uid="own").uid == "own"


def test_uids_are_unique_and_never_reused() -> None:
    store = MailStore({"a": {"password": "p", "messages": {"uid000002": b"x"}}})
    assert [store.deliver("a", b"y").uid for _ in range(2)] == ["uid000001", "uid000003"]
    with pytest.raises(ValueError, match="already used"):
        store.deliver("a", b"z", uid="uid000002")
    drop = store.open_maildrop("a", now=0)
    drop.mark_deleted(1)
    drop.commit()
    with pytest.raises(ValueError, match="never reused"):
        store.deliver("a", b"z", uid="uid000002")


@pytest.mark.parametrize(
    ("mailboxes", "error", "match"),
    [
        ({"a": {"pasword": "p"}}, ValueError, "unknown keys \\['pasword'\\]"),
        ({"a": {"messages": []}}, ValueError, "needs a 'password'"),
        ({"a": 5}, TypeError, "password string or a dict"),
        ({"a": {"password": 5}}, TypeError, "password of 'a' must be a str"),
        ({"a b": "p"}, ValueError, "invalid user name"),
        ({"": "p"}, ValueError, "invalid user name"),
        ({"a": {"password": "p", "messages": "Subject: x"}}, TypeError, "list of messages"),
        ({"a": {"password": "p", "messages": {"bad uid": "x"}}}, ValueError, "invalid UID"),
        ({"a": {"password": "p", "messages": [42]}}, TypeError, "not int"),
    ],
)
def test_bad_dicts_are_refused_clearly(
    mailboxes: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        MailStore(mailboxes)  # type: ignore[arg-type]


def test_not_a_dict() -> None:
    with pytest.raises(TypeError, match="dict of user to mailbox"):
        MailStore(["alice"])  # type: ignore[arg-type]


def test_duplicate_and_missing_users() -> None:
    store = MailStore({"a": "p"})
    with pytest.raises(ValueError, match="already exists"):
        store.add_user("a", "q")
    with pytest.raises(KeyError, match="no mailbox for user 'zed'"):
        store["zed"]
    with pytest.raises(KeyError):
        store.deliver("zed", b"x")
    store.remove_user("a")
    assert "a" not in store


def test_lock_is_exclusive_and_always_released() -> None:
    store = MailStore({"a": {"password": "p", "messages": [b"1", b"2"]}})
    drop = store.open_maildrop("a", now=0)
    assert store["a"].locked
    with pytest.raises(MailboxInUse):
        store.open_maildrop("a", now=0)
    drop.mark_deleted(1)
    drop.release()
    drop.release()
    assert not store["a"].locked
    assert len(store["a"]) == 2


def test_commit_removes_only_marked_messages_and_keeps_new_mail() -> None:
    store = MailStore({"a": {"password": "p", "messages": [b"1", b"2", b"3"]}})
    drop = store.open_maildrop("a", now=0)
    store.deliver("a", b"4")
    drop.mark_deleted(2)
    assert (drop.count, drop.octets) == (2, 6)
    removed = drop.commit()
    assert [m.data for m in removed] == [b"2\r\n"]
    assert [m.data for m in store["a"].messages] == [b"1\r\n", b"3\r\n", b"4\r\n"]
    assert not store["a"].locked


def test_login_delay_and_login_count() -> None:
    store = MailStore({"a": "p"})
    store.open_maildrop("a", now=100, login_delay=10).release()
    with pytest.raises(LoginTooSoon):
        store.open_maildrop("a", now=109, login_delay=10)
    store.open_maildrop("a", now=110, login_delay=10).release()
    assert store["a"].logins == 2


def test_mailbox_pictures_do_not_change_afterwards() -> None:
    store = MailStore({"a": {"password": "p", "messages": [b"1"]}})
    picture = store["a"]
    store.deliver("a", b"2")
    assert len(picture) == 1
    assert len(store["a"]) == 2


def test_concurrent_delivery_from_threads() -> None:
    store = MailStore({"a": "p"})

    def deliver(start: int) -> None:
        for i in range(200):
            store.deliver("a", f"Subject: {start + i}\n\n".encode())

    threads = [threading.Thread(target=deliver, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    uids = store["a"].uids
    assert len(uids) == 800
    assert len(set(uids)) == 800


def test_set_password_and_clear() -> None:
    store = MailStore({"a": "p"})
    store.set_password("a", "q")
    assert store.password_of("a") == "q"
    store.clear()
    assert store.users == []
    assert store.password_of("a") is None


class _Pairs(Mapping[str, object]):
    """A mapping read in the order of the pairs given, keys repeated as given: what
    a hand-written Mapping may do, and the only way to name a user or UID twice."""

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> object:
        for name, value in self._pairs:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)


def _contents(store: MailStore) -> dict[str, tuple[str | None, list[str], list[bytes]]]:
    return {
        user: (store.password_of(user), store[user].uids, [m.data for m in store[user].messages])
        for user in store.users
    }


@pytest.mark.parametrize(
    ("third", "error", "match"),
    [
        ({"password": 5}, TypeError, "password of 'c' must be a str"),
        (
            {"password": "p", "messages": _Pairs([("u1", b"x"), ("u1", b"y")])},
            ValueError,
            "UID 'u1' is already used in 'c'",
        ),
        ({"password": "p", "colour": "red"}, ValueError, "mailbox of 'c' has unknown keys"),
        ({"password": "p", "messages": [b"fine", 42]}, TypeError, "'c'.*not int"),
        ({"password": "p", "messages": {"bad uid": b"x"}}, ValueError, "'c'.*invalid UID"),
        ({"password": "p", "methods": ["APOP", 7]}, TypeError, "methods of 'c'"),
    ],
)
def test_a_bad_mailbox_part_way_through_load_adds_no_user(
    third: object, error: type[Exception], match: str
) -> None:
    store = MailStore({"old": {"password": "o", "messages": [b"kept"]}})
    before = _contents(store)
    mailboxes = {"a": {"password": "p", "messages": [b"1"]}, "b": "p", "c": third, "d": "p"}
    with pytest.raises(error, match=match):
        store.load(mailboxes)  # type: ignore[arg-type]
    assert _contents(store) == before


def test_a_user_named_twice_in_one_load_adds_no_user() -> None:
    store = MailStore({"old": "o"})
    with pytest.raises(ValueError, match="'b' appears more than once"):
        store.load(_Pairs([("a", "p"), ("b", "p"), ("b", "q")]))  # type: ignore[arg-type]
    assert store.users == ["old"]


def test_loading_a_user_who_already_exists_changes_nothing() -> None:
    store = MailStore({"c": {"password": "old", "messages": [b"mine"]}})
    before = _contents(store)
    with pytest.raises(ValueError, match="user 'c' already exists"):
        store.load({"a": "p", "b": "p", "c": "new", "d": "p"})
    assert _contents(store) == before


def test_add_user_names_the_user_in_its_errors() -> None:
    store = MailStore()
    with pytest.raises(TypeError, match=r"'zed'.*not int"):
        store.add_user("zed", "pw", [b"ok", 42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="messages of 'zed'"):
        store.add_user("zed", "pw", 42)  # type: ignore[arg-type]
    assert store.users == []


def test_replace_swaps_every_mailbox_for_the_new_ones() -> None:
    store = MailStore({"a": {"password": "p", "messages": [b"1", b"2"]}, "b": "p"})
    drop = store.open_maildrop("a", now=0)
    drop.mark_deleted(1)
    drop.commit()
    store.replace({"a": {"password": "new", "messages": [b"3"]}, "c": "q"})
    assert store.users == ["a", "c"]
    assert store.password_of("a") == "new"
    fresh = store["a"]
    assert [m.data for m in fresh.messages] == [b"3\r\n"]
    assert (fresh.deleted, fresh.logins) == ((), 0)
    store.replace({})
    assert store.users == []


def test_replace_with_a_bad_mailbox_keeps_the_old_mailboxes_and_their_mail() -> None:
    store = MailStore({"a": {"password": "p", "messages": {"x1": b"1", "x2": b"2"}}, "b": "q"})
    store.deliver("b", b"3")
    before = _contents(store)
    with pytest.raises(TypeError, match="password of 'n2' must be a str"):
        store.replace({"n1": "p", "n2": {"password": None}, "n3": "p"})
    with pytest.raises(ValueError, match="'n1' appears more than once"):
        store.replace(_Pairs([("n1", "p"), ("n1", "p")]))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict of user to mailbox"):
        store.replace(["n1"])  # type: ignore[arg-type]
    assert _contents(store) == before


def test_readers_never_see_a_mix_of_old_and_new_users_during_replace() -> None:
    old = {f"old{i:02d}": {"password": "p", "messages": [b"x"]} for i in range(30)}
    new = {f"new{i:02d}": "q" for i in range(30)}
    allowed = {frozenset(old), frozenset(new)}
    store = MailStore(old)
    seen: list[frozenset[str]] = []
    started = threading.Event()
    done = threading.Event()

    def read() -> None:
        started.set()
        while not done.is_set():
            seen.append(frozenset(store.users))

    # Switch threads often, so that the reader lands inside many of the replaces.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    reader = threading.Thread(target=read)
    try:
        reader.start()
        started.wait()
        replaces = 0
        while replaces < 200 or (len(seen) < 5000 and replaces < 5000):
            store.replace(new if replaces % 2 == 0 else old)
            replaces += 1
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert len(seen) >= 5000 or replaces == 5000
    assert set(seen) <= allowed
