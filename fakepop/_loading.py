"""Reading real mail for a mailbox: mbox files, Maildirs and directories of .eml files.

Each reader returns a dict of UID to the message's octets exactly as stored in the
source (8-bit bodies and line endings untouched), in mailbox order. It fits wherever
fakepop takes messages: ``{"alice": {"password": "pw", "messages": read_mbox(path)}}``
or ``store.add_user("alice", "pw", read_maildir(path))``. The store then normalises
line endings to CRLF, as it does for any message. To put two sources in one mailbox,
join their values (``[*a.values(), *b.values()]``) rather than the dicts: two mbox
files both number their messages from ``uid000001``.

Sources are only read: nothing is locked, written, renamed or moved (a Maildir's new/
stays new). mbox files are split by the stdlib's ``mailbox.mbox``, after a check that
the file starts like an mbox (the stdlib would silently skip text before the first
``From`` line). Maildirs are read file by file rather than through
``mailbox.Maildir``, which needs both new/ and cur/ (git keeps no empty directory) and
quietly keeps one of two files with the same unique name.

Anything that cannot be read raises :class:`MailSourceError`, naming the file and why.
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import re
import stat
from typing import TypeAlias

from ._message import check_uid
from .errors import FakepopError

__all__ = ["MailSourceError", "read_eml_dir", "read_maildir", "read_mbox", "read_messages"]

#: A file system path as the readers accept it.
StrPath: TypeAlias = str | os.PathLike[str]

_DIGIT_RUNS = re.compile(r"([0-9]+)")
# A Maildir file name is "<unique name>:2,<flags>"; the stdlib uses "!" on Windows.
_MAILDIR_INFO = re.compile(r":|!(?=[12],)")


class MailSourceError(FakepopError, ValueError):
    """A mail source that cannot be read; ``path`` names the file, ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[MailSourceError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


def read_mbox(path: StrPath) -> dict[str, bytes]:
    """Read every message of an mbox file, in file order.

    Each message runs from the line after its ``From`` separator line up to the next
    line starting with ``From`` (or the end of the file), without the blank line that
    precedes a separator. As with ``mailbox.mbox``, a body line that the writer quoted
    as ``>From`` is returned as it is: mboxo quoting cannot be undone reliably.

    An mbox names no messages, so the UIDs are ``uid000001``, ``uid000002``, … by
    position: the ones the store would choose for the same messages given as a list.
    An empty file is an empty mailbox; a file that does not start with ``From`` is not
    an mbox and raises :class:`MailSourceError`, as do missing or unreadable files.
    """
    path = os.fspath(path)
    data = _read_file(path, "an mbox file", "read_maildir() or read_eml_dir()")
    if data and not data.startswith(b"From "):
        raise MailSourceError(
            path,
            "not an mbox file: it does not start with a 'From ' line "
            "(if it is a single message, hand its bytes to fakepop as they are)",
        )
    if not data:
        return {}
    try:
        # Only read: the mailbox is never locked or flushed, so the file is not changed.
        box = mailbox.mbox(path, create=False)
        try:
            messages = [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()
    except (OSError, mailbox.Error) as exc:
        raise MailSourceError(path, f"cannot be read as an mbox file: {exc}") from exc
    return {f"uid{n:06d}": message for n, message in enumerate(messages, 1)}


def read_maildir(path: StrPath) -> dict[str, bytes]:
    """Read the messages of a Maildir, from its new/ and cur/ together.

    The UID of a message is its unique name (the file name up to the ``:2,`` flags),
    as qmail's and Courier's POP3 servers use it, if it is a valid POP3 unique-id
    (1 to 70 characters 0x21-0x7E); otherwise it is the MD5 hex digest of the unique
    name. So the UIDs do not change from one run to the next or when mail is added.

    Messages come in the order of their unique names, comparing runs of digits as
    numbers: for the usual ``<seconds>.<...>`` names that is delivery order, and it
    does not depend on file times (which a copy or a checkout changes). tmp/ and
    names starting with a dot are ignored. Either new/ or cur/ may be missing (git
    does not keep empty directories), but not both.
    """
    root = os.fspath(path)
    if not stat.S_ISDIR(_stat(root).st_mode):
        raise MailSourceError(
            root, "is a file, not a Maildir directory (for an mbox file use read_mbox())"
        )
    entries: list[tuple[str, str]] = []  # (unique name, file path)
    found_subdir = False
    for subdir in ("new", "cur"):
        directory = os.path.join(root, subdir)
        if not os.path.lexists(directory):
            continue
        if not stat.S_ISDIR(_stat(directory).st_mode):
            raise MailSourceError(directory, "is not a directory (a Maildir keeps mail in it)")
        found_subdir = True
        for name in _list_dir(directory):
            if not name.startswith("."):
                unique = _MAILDIR_INFO.split(name, maxsplit=1)[0]
                entries.append((unique, os.path.join(directory, name)))
    if not found_subdir:
        raise MailSourceError(root, "is not a Maildir: it has neither a new/ nor a cur/ directory")
    entries.sort(key=lambda entry: (_natural_key(entry[0]), entry[1]))
    return _read_named(entries, "a message is either in new/ or in cur/, never in both")


def read_eml_dir(path: StrPath) -> dict[str, bytes]:
    """Read every ``*.eml`` file of a directory (one message per file).

    Files come in the order of their names, comparing runs of digits as numbers
    (``2.eml`` before ``10.eml``). The suffix is matched in any case; other files,
    subdirectories' contents and names starting with a dot are ignored. The UID of a
    message is its file name without ``.eml`` if that is a valid POP3 unique-id
    (1 to 70 characters 0x21-0x7E), otherwise the MD5 hex digest of that name. A
    directory without ``.eml`` files is an empty mailbox.
    """
    root = os.fspath(path)
    if not stat.S_ISDIR(_stat(root).st_mode):
        raise MailSourceError(root, "is a file, not a directory of .eml files")
    entries = [
        (name[:-4], os.path.join(root, name))
        for name in _list_dir(root)
        if name.lower().endswith(".eml") and not name.startswith(".")
    ]
    entries.sort(key=lambda entry: (_natural_key(entry[0]), entry[1]))
    return _read_named(entries, "the names differ only in the case of '.eml'")


def read_messages(path: StrPath) -> dict[str, bytes]:
    """Read a mail source of any kind this module knows, telling them apart by shape.

    A directory with a new/ or cur/ entry is read with :func:`read_maildir`, another
    directory with :func:`read_eml_dir`, and a file with :func:`read_mbox`. A directory
    that is neither a Maildir nor holds a ``.eml`` file raises :class:`MailSourceError`
    rather than pass for an empty mailbox.
    """
    root = os.fspath(path)
    if not stat.S_ISDIR(_stat(root).st_mode):
        return read_mbox(root)
    if any(os.path.lexists(os.path.join(root, sub)) for sub in ("new", "cur")):
        return read_maildir(root)
    messages = read_eml_dir(root)
    if not messages:
        raise MailSourceError(
            root, "holds no mail: it is not a Maildir (no new/ or cur/) and has no .eml file"
        )
    return messages


# -- helpers ----------------------------------------------------------------------------
def _read_named(entries: list[tuple[str, str]], clash: str) -> dict[str, bytes]:
    # entries: (name, file path) in mailbox order. The name is the UID if POP3 can
    # send it, else its MD5 digest; two files may not end up with one UID (``clash``
    # says why that is wrong).
    messages: dict[str, bytes] = {}
    owners: dict[str, str] = {}
    for name, file_path in entries:
        uid = name if _valid_uid(name) else _digest(name)
        if uid in owners:
            raise MailSourceError(file_path, f"has the same UID {uid!r} as {owners[uid]}: {clash}")
        owners[uid] = file_path
        messages[uid] = _read_file(file_path, "a message file")
    return messages


def _valid_uid(name: str) -> bool:
    try:
        check_uid(name)
    except ValueError:
        return False
    return True


def _digest(name: str) -> str:
    return hashlib.md5(os.fsencode(name), usedforsecurity=False).hexdigest()


def _natural_key(name: str) -> tuple[str | int, ...]:
    # "a10b" -> ("a", 10, "b"): text at even places, numbers at odd ones, so any two
    # keys compare like with like.
    return tuple(int(part) if i % 2 else part for i, part in enumerate(_DIGIT_RUNS.split(name)))


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError as exc:
        if os.path.lexists(path):
            raise MailSourceError(path, "is a symbolic link to nothing") from exc
        raise MailSourceError(path, "does not exist") from exc
    except OSError as exc:
        raise MailSourceError(path, f"cannot be read: {_why(exc)}") from exc


def _list_dir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise MailSourceError(path, f"cannot be read: {_why(exc)}") from exc


def _read_file(path: str, kind: str, directory_hint: str = "") -> bytes:
    mode = _stat(path).st_mode
    if stat.S_ISDIR(mode):
        hint = f" (for a directory use {directory_hint})" if directory_hint else ""
        raise MailSourceError(path, f"is a directory, not {kind}{hint}")
    if not stat.S_ISREG(mode):
        # A FIFO or a device would block or never end; mail lives in regular files.
        raise MailSourceError(path, f"is not a regular file, so not {kind}")
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise MailSourceError(path, f"cannot be read: {_why(exc)}") from exc
