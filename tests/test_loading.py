"""Reading real mail (mbox, Maildir, .eml files) into a mailbox, and out again by POP3.

Every source is built in ``tmp_path``. The round trips compare what poplib's RETR
returns with the source octets, CRLF-normalised here by hand; the readers' results are
also checked against the stdlib ``mailbox`` module, and the sources must be left
byte-identical with unchanged mtimes.
"""

from __future__ import annotations

import builtins
import hashlib
import mailbox
import os
import pickle
import poplib
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from fakepop import MailStore, Pop3Protocol, open_pop3_server
from fakepop._loading import (
    MailSourceError,
    read_eml_dir,
    read_maildir,
    read_mbox,
    read_messages,
)

# -- messages as they are stored in the sources (LF endings unless said otherwise) -------
M_PLAIN = b"From: carol@example.org\nSubject: plain\n\nHello Alice.\n"
#: body lines that POP3 must dot-stuff
M_DOTS = b"From: dave@example.org\nSubject: dots\n\nfirst\n.x\n.\n..y\nlast\n"
M_UTF8 = (
    b"From: erin@example.org\nSubject: utf-8\nContent-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: 8bit\n\nCaf\xc3\xa9 cr\xc3\xa8me \xe2\x82\xac5\n"
)
M_LATIN1 = (
    b"From: frank@example.org\nSubject: latin-1\nContent-Type: text/plain; charset=latin-1\n"
    b"Content-Transfer-Encoding: 8bit\n\nCaf\xe9 cr\xe8me\n"
)
M_CRLF = b"From: grace@example.org\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n"
M_NO_EOL = b"From: heidi@example.org\nSubject: no final newline\n\nthe end, without a newline"


def md5(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def crlf(raw: bytes) -> bytes:
    """What RETR must deliver for ``raw``: every line ending CRLF, a final one added."""
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    return wire if wire.endswith(b"\r\n") or not wire else wire + b"\r\n"


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every entry under ``root``: file contents (None for others) and mtime (ns)."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))]:
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        found[str(path.relative_to(root))] = (data, path.lstat().st_mtime_ns)
    return found


def write_maildir(root: Path, files: Mapping[str, bytes], subdirs: tuple[str, ...] = ()) -> Path:
    """A Maildir at ``root``: ``files`` maps "new/name" or "cur/name" to the octets."""
    for subdir in subdirs:
        (root / subdir).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


async def fetch_all(messages: Mapping[str, bytes]) -> list[tuple[str, int, bytes]]:
    """Store ``messages`` for alice, then fetch them with poplib from a real server:
    (UIDL, LIST size, RETR octets) for each message, in order."""
    store = MailStore({"alice": {"password": "secret", "messages": messages}})

    def fetch(host: str, port: int) -> list[tuple[str, int, bytes]]:
        client = poplib.POP3(host, port, timeout=10)
        try:
            client.user("alice")
            client.pass_("secret")
            _, listing, _ = client.list()
            _, uidl, _ = client.uidl()
            fetched = []
            for scan_line, uid_line in zip(listing, uidl, strict=True):
                number, size = scan_line.split()
                uid_number, uid = uid_line.split()
                assert uid_number == number
                _, lines, _ = client.retr(int(number))
                data = b"".join(line + b"\r\n" for line in lines)
                fetched.append((uid.decode(), int(size), data))
            client.quit()
        finally:
            client.close()
        return fetched

    async with open_pop3_server(store) as server:
        return await trio.to_thread.run_sync(fetch, server.host, server.port)


async def assert_round_trip(messages: Mapping[str, bytes], expected: Mapping[str, bytes]) -> None:
    """RETR gives each expected message CRLF-normalised, under its UID, LIST its size."""
    assert messages == expected
    assert list(messages) == list(expected)  # the order too
    fetched = await fetch_all(messages)
    assert [uid for uid, _, _ in fetched] == list(expected)
    for (uid, size, data), raw in zip(fetched, expected.values(), strict=True):
        assert data == crlf(raw), uid
        assert size == len(data), uid


# -- mbox --------------------------------------------------------------------------------
async def test_mbox_round_trip(tmp_path: Path) -> None:
    """From_ lines are not part of the messages, nor is the blank line before the next
    one; a quoted ">From " body line stays quoted; 8-bit bytes are untouched; the last
    message may lack its final newline."""
    quoted = (
        b"From: ivan@example.org\nSubject: quoted\n\n"
        b">From here on, quoted.\nFrom: not a separator\n"
    )
    path = tmp_path / "alice.mbox"
    separator = b"From sender@example.org Sat Jan  3 01:05:34 2026\n"
    parts = [M_PLAIN, quoted, M_DOTS, M_UTF8, M_LATIN1, M_NO_EOL]
    path.write_bytes(b"\n".join(separator + part for part in parts))
    before = snapshot(tmp_path)

    messages = read_mbox(path)

    expected = {f"uid{n:06d}": part for n, part in enumerate(parts, 1)}
    await assert_round_trip(messages, expected)
    stdlib = mailbox.mbox(path, create=False)
    try:
        assert list(messages.values()) == [stdlib.get_bytes(key) for key in stdlib.iterkeys()]
    finally:
        stdlib.close()
    assert snapshot(tmp_path) == before


def test_mbox_written_by_the_stdlib_keeps_its_from_quoting(tmp_path: Path) -> None:
    """mailbox.mbox writes a body line "From ..." as ">From ..." (mboxo); like the
    stdlib reader, fakepop delivers it quoted."""
    path = tmp_path / "stdlib.mbox"
    box = mailbox.mbox(path)
    try:
        box.add(b"Subject: a\n\nFrom the start.\n>From quoted already.\n")
        box.add(M_PLAIN)
        box.flush()
    finally:
        box.close()
    assert b"\n>From the start.\n>From quoted already.\n" in path.read_bytes()

    messages = read_mbox(str(path))

    assert messages == {
        "uid000001": b"Subject: a\n\n>From the start.\n>From quoted already.\n",
        "uid000002": M_PLAIN,
    }


def test_a_crlf_mbox_keeps_its_crlf_separator_lines_as_the_stdlib_does(tmp_path: Path) -> None:
    """mailbox.mbox only takes a bare-LF blank line for the separator's; in a CRLF
    file the CRLF blank line stays at the end of each message (a harmless empty
    last line once the store has normalised line endings)."""
    path = tmp_path / "windows.mbox"
    path.write_bytes(b"From a\r\n" + M_CRLF + b"\r\nFrom b\r\n" + M_CRLF + b"\r\n")
    assert read_mbox(path) == {"uid000001": M_CRLF + b"\r\n", "uid000002": M_CRLF + b"\r\n"}


def test_mbox_edge_cases(tmp_path: Path) -> None:
    """An empty file is an empty mbox; a From_ line alone is an empty message; a
    body-less From_ line at the end of the file too."""
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert read_mbox(empty) == {}
    odd = tmp_path / "odd.mbox"
    odd.write_bytes(b"From a\nFrom b\n\n\nFrom c")
    assert read_mbox(odd) == {"uid000001": b"", "uid000002": b"\n", "uid000003": b""}


def test_mbox_uids_are_the_ones_the_store_would_choose(tmp_path: Path) -> None:
    path = tmp_path / "alice.mbox"
    path.write_bytes(b"From a\n" + M_PLAIN + b"\nFrom b\n" + M_DOTS)
    messages = read_mbox(path)
    as_dict = MailStore({"a": {"password": "p", "messages": messages}})["a"]
    as_list = MailStore({"a": {"password": "p", "messages": list(messages.values())}})["a"]
    assert as_dict.uids == as_list.uids == ["uid000001", "uid000002"]
    assert [m.data for m in as_dict.messages] == [crlf(M_PLAIN), crlf(M_DOTS)]


# ---------------------------------------------------------------------------------------
_PIECES = [b"From ", b">From ", b"\n", b"\r\n", b"\r", b".", b"..", b"a", b" ", b"\xe9", b"\x00"]
_MESSAGE = st.one_of(
    st.binary(min_size=1, max_size=120),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=30).map(b"".join),
).filter(lambda message: not message.startswith(b"From "))


@settings(max_examples=60, deadline=None)
@given(st.lists(_MESSAGE, min_size=1, max_size=4))
def test_any_message_survives_an_mbox_written_by_the_stdlib(messages: list[bytes]) -> None:
    """Whatever bytes mailbox.mbox wrote, fakepop reads what the stdlib reads back,
    and RETR sends that CRLF-normalised and dot-stuffed."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "mbox")
        box = mailbox.mbox(path)
        try:
            for message in messages:
                box.add(message)
            box.flush()
            stdlib = [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()
        loaded = read_mbox(path)

    # What the stdlib writes: "\nFrom " quoted, a final newline added.
    quoted = [m.replace(b"\nFrom ", b"\n>From ") for m in messages]
    expected = [m if m.endswith(b"\n") else m + b"\n" for m in quoted]
    assert list(loaded.values()) == stdlib == expected

    store = MailStore({"alice": {"password": "secret", "messages": loaded}})
    for number, raw in enumerate(expected, 1):
        protocol = Pop3Protocol(store)
        replies = []
        # No UTF8 first: raw 8-bit headers are sent as they are, as real servers do.
        for line in (b"USER alice", b"PASS secret", b"RETR %d" % number, b"QUIT"):
            protocol.receive_data(line + b"\r\n")
            command = protocol.next_command()
            assert command is not None
            replies.append(protocol.handle(command))
        retr = replies[2]
        assert retr.status == b"+OK %d octets\r\n" % len(crlf(raw)), retr.status
        assert retr.payload is not None
        unstuffed = [
            line[1:] if line.startswith(b".") else line for line in retr.payload[:-3].split(b"\r\n")
        ]
        assert b"\r\n".join(unstuffed) == crlf(raw)


# -- Maildir -----------------------------------------------------------------------------
LONG_NAME = "1700000005." + "x" * 70  # valid characters, too long for a POP3 UID


async def test_maildir_round_trip_leaves_the_maildir_alone(tmp_path: Path) -> None:
    """new/ and cur/ merged in unique-name order (digit runs compared as numbers); the
    unique name is the UID, or its MD5 when POP3 cannot send it; tmp/ and dot files
    are ignored; nothing moves from new/ to cur/."""
    root = write_maildir(
        tmp_path / "Maildir",
        {
            "cur/1700000001.M10P1.host:2,S": M_DOTS,
            "new/1700000001.M9P1.host": M_PLAIN,
            "cur/1700000002.M1P1.host:2,RS": M_UTF8,
            "new/1700000003.M1P1.host": M_NO_EOL,
            "cur/1700000004 with space:2,": M_LATIN1,
            f"new/{LONG_NAME}": M_CRLF,
            "tmp/1700000000.M1P1.host": b"Subject: still being delivered\n\n",
            "cur/.hidden": b"not mail",
        },
    )
    before = snapshot(tmp_path)

    messages = read_maildir(root)

    await assert_round_trip(
        messages,
        {
            "1700000001.M9P1.host": M_PLAIN,
            "1700000001.M10P1.host": M_DOTS,
            "1700000002.M1P1.host": M_UTF8,
            "1700000003.M1P1.host": M_NO_EOL,
            md5("1700000004 with space"): M_LATIN1,
            md5(LONG_NAME): M_CRLF,
        },
    )
    assert snapshot(tmp_path) == before


def test_maildir_fallback_uids_are_md5_of_the_unique_name(tmp_path: Path) -> None:
    root = write_maildir(tmp_path, {"cur/a b:2,S": b"1\n", f"new/{LONG_NAME}": b"2\n"})
    assert read_maildir(root) == {
        md5("a b"): b"1\n",
        md5(LONG_NAME): b"2\n",
    }


def test_maildir_agrees_with_the_stdlib(tmp_path: Path) -> None:
    stdlib = mailbox.Maildir(tmp_path / "md", create=True)
    try:
        keys = [stdlib.add(message) for message in (M_PLAIN, M_UTF8, M_NO_EOL)]
        moved = stdlib.get_message(keys[1])
        moved.set_subdir("cur")
        moved.add_flag("S")
        stdlib[keys[1]] = moved  # now in cur/ with ":2,S", under the same key
        expected = {key: stdlib.get_bytes(key) for key in keys}
    finally:
        stdlib.close()
    loaded = read_maildir(tmp_path / "md")
    assert loaded == expected
    assert sorted(loaded) == sorted(keys)


def test_a_maildir_needs_only_new_or_cur(tmp_path: Path) -> None:
    """git keeps no empty directories, so a checked-in Maildir may lack some."""
    only_cur = write_maildir(tmp_path / "a", {"cur/1.x:2,S": M_PLAIN})
    only_new = write_maildir(tmp_path / "b", {"new/1.x": M_PLAIN})
    empty = write_maildir(tmp_path / "c", {}, subdirs=("new", "cur", "tmp"))
    assert read_maildir(only_cur) == read_maildir(only_new) == {"1.x": M_PLAIN}
    assert read_maildir(empty) == {}


# -- .eml files --------------------------------------------------------------------------
async def test_eml_dir_round_trip(tmp_path: Path) -> None:
    """Every *.eml file (any case), by name with numbers compared as numbers; other
    files, dot files and subdirectories are ignored."""
    files = {
        "10.eml": M_CRLF,
        "2.eml": M_PLAIN,
        "1.eml": M_NO_EOL,
        "invoice-3.EML": M_LATIN1,
        "dots.eml": M_DOTS,
        "utf8.eml": M_UTF8,
        "notes.txt": b"not mail",
        ".1.eml": b"an AppleDouble file",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "0.eml").write_bytes(b"not read")
    before = snapshot(tmp_path)

    messages = read_eml_dir(tmp_path)

    await assert_round_trip(
        messages,
        {
            "1": M_NO_EOL,
            "2": M_PLAIN,
            "10": M_CRLF,
            "dots": M_DOTS,
            "invoice-3": M_LATIN1,
            "utf8": M_UTF8,
        },
    )
    assert snapshot(tmp_path) == before


def test_eml_names_that_cannot_be_uids_get_their_md5(tmp_path: Path) -> None:
    (tmp_path / "my invoice.eml").write_bytes(M_PLAIN)
    (tmp_path / "caf\u00e9.eml").write_bytes(M_UTF8)
    assert read_eml_dir(tmp_path) == {
        md5("caf\u00e9"): M_UTF8,
        md5("my invoice"): M_PLAIN,
    }


def test_an_empty_eml_dir_is_an_empty_mailbox(tmp_path: Path) -> None:
    assert read_eml_dir(tmp_path) == {}


# -- read_messages -----------------------------------------------------------------------
def test_read_messages_tells_the_kinds_apart(tmp_path: Path) -> None:
    mbox = tmp_path / "mbox"
    mbox.write_bytes(b"From a\n" + M_PLAIN)
    maildir = write_maildir(tmp_path / "md", {"new/1.x": M_DOTS})
    emls = tmp_path / "emls"
    emls.mkdir()
    (emls / "a.eml").write_bytes(M_UTF8)
    assert read_messages(mbox) == {"uid000001": M_PLAIN}
    assert read_messages(maildir) == {"1.x": M_DOTS}
    assert read_messages(emls) == {"a": M_UTF8}
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    with pytest.raises(MailSourceError, match="holds no mail") as excinfo:
        read_messages(nothing)
    assert excinfo.value.path == str(nothing)


# -- errors ------------------------------------------------------------------------------
def _setup_errors(tmp: Path) -> None:
    (tmp / "dir").mkdir()
    (tmp / "file.eml").write_bytes(M_PLAIN)
    (tmp / "letter.mbox").write_bytes(b"\n" + b"From a\n" + M_PLAIN)
    write_maildir(tmp / "curfile", {"cur": b"a file"})
    write_maildir(tmp / "nested", {"cur/1.x:2,S": M_PLAIN}, subdirs=("new/sub",))
    write_maildir(tmp / "twice", {"new/1.x": M_PLAIN, "cur/1.x:2,S": M_PLAIN})
    write_maildir(tmp / "tmponly", {}, subdirs=("tmp",))
    (tmp / "emls").mkdir()
    (tmp / "emls" / "a.eml").write_bytes(M_PLAIN)
    (tmp / "emls" / "a.EML").write_bytes(M_PLAIN)
    (tmp / "emldir").mkdir()
    (tmp / "emldir" / "b.eml").mkdir()
    (tmp / "dangling").symlink_to(tmp / "gone")


ERRORS: list[tuple[Callable[[Any], object], str, str, str]] = [
    # reader, path (relative), the path the error names, the reason (a regex)
    (read_mbox, "missing", "missing", "does not exist"),
    (read_maildir, "missing", "missing", "does not exist"),
    (read_eml_dir, "missing", "missing", "does not exist"),
    (read_messages, "missing", "missing", "does not exist"),
    (read_mbox, "dangling", "dangling", "is a symbolic link to nothing"),
    (read_mbox, "dir", "dir", r"is a directory, not an mbox file \(for a directory use"),
    (read_mbox, "file.eml", "file.eml", "not an mbox file: it does not start with a 'From '"),
    (read_mbox, "letter.mbox", "letter.mbox", "does not start with a 'From ' line"),
    (read_messages, "file.eml", "file.eml", "not an mbox file"),
    (read_maildir, "file.eml", "file.eml", "is a file, not a Maildir directory"),
    (read_eml_dir, "file.eml", "file.eml", "is a file, not a directory of .eml files"),
    (read_maildir, "dir", "dir", "is not a Maildir: it has neither a new/ nor a cur/"),
    (read_maildir, "tmponly", "tmponly", "is not a Maildir"),
    (read_maildir, "curfile", "curfile/cur", "is not a directory"),
    (read_messages, "curfile", "curfile/cur", "is not a directory"),
    (read_maildir, "nested", "nested/new/sub", "is a directory, not a message file"),
    (read_maildir, "twice", "twice/new/1.x", "same UID '1.x' as .*/twice/cur/1.x:2,S: a message"),
    (read_eml_dir, "emls", "emls/a.eml", "same UID 'a' as .*/a.EML: the names differ only in"),
    (read_eml_dir, "emldir", "emldir/b.eml", "is a directory, not a message file"),
]


@pytest.mark.parametrize(
    ("reader", "given", "named", "reason"),
    ERRORS,
    ids=[f"{reader.__name__}-{given}" for reader, given, _, _ in ERRORS],
)
def test_errors_name_the_file_and_say_why(
    tmp_path: Path, reader: Callable[[Any], object], given: str, named: str, reason: str
) -> None:
    _setup_errors(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(MailSourceError) as excinfo:
        reader(tmp_path / given)
    error = excinfo.value
    assert isinstance(error, ValueError)
    assert error.path == str(tmp_path / named)
    assert re.search(reason, error.reason), error.reason
    assert str(error) == f"{error.path}: {error.reason}"
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "1.eml")
    with pytest.raises(MailSourceError, match=r"1\.eml: is not a regular file"):
        read_eml_dir(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_for_real(tmp_path: Path) -> None:
    path = tmp_path / "locked.mbox"
    path.write_bytes(b"From a\n" + M_PLAIN)
    path.chmod(0)
    try:
        with pytest.raises(
            MailSourceError, match=r"locked\.mbox: cannot be read: Permission denied"
        ):
            read_mbox(path)
    finally:
        path.chmod(0o600)


def test_an_unreadable_message_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same as above where the tests run as root: open() itself refuses."""
    root = write_maildir(tmp_path, {"new/1.x": M_PLAIN, "cur/2.x:2,S": M_PLAIN})
    locked = str(root / "cur" / "2.x:2,S")
    real_open = builtins.open

    def guarded_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(file) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    with pytest.raises(MailSourceError) as excinfo:
        read_maildir(root)
    assert str(excinfo.value) == f"{locked}: cannot be read: Permission denied"
    assert isinstance(excinfo.value.__cause__, PermissionError)


def test_the_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(MailSourceError("/x/y", "does not exist")))
    assert (error.path, error.reason, str(error)) == (
        "/x/y",
        "does not exist",
        "/x/y: does not exist",
    )
