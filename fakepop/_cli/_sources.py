"""The mail sources of --mbox, --maildir, --eml-dir and --corpus: reading them into
the store, and telling whether writing a file would change one."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import corpus
from .._loading import read_eml_dir, read_maildir, read_mbox
from .._store import MailStore

__all__ = ["READERS", "Source", "clash_with_source", "fill_store", "option_terms"]


def _read_corpus(path: str) -> dict[str, bytes]:
    # --corpus has no path: its messages are fakepop.corpus, named after their traps.
    return corpus.all()


#: The readers behind --mbox, --maildir, --eml-dir and --corpus.
READERS: dict[str, Callable[[str], dict[str, bytes]]] = {
    "mbox": read_mbox,
    "maildir": read_maildir,
    "eml-dir": read_eml_dir,
    "corpus": _read_corpus,
}


@dataclass(frozen=True)
class Source:
    kind: str  # a key of READERS
    user: str
    path: str  # "" for --corpus, which reads no file
    option: str  # as given, for messages


def fill_store(store: MailStore, sources: Sequence[Source]) -> None:
    """Deliver the messages of each source, in order (MailSourceError)."""
    for source in sources:
        taken = set(store[source.user].uids)
        for uid, data in READERS[source.kind](source.path).items():
            # mbox UIDs are only positions; named messages keep their names unless an
            # earlier source of this user has the name already.
            named = source.kind != "mbox" and uid not in taken
            taken.add(store.deliver(source.user, data, uid=uid if named else None).uid)


def option_terms(reason: str) -> str:
    # MailSourceError's hints name the library's readers; here the options do the job.
    for function, option in (
        ("read_mbox()", "--mbox"),
        ("read_maildir()", "--maildir"),
        ("read_eml_dir()", "--eml-dir"),
    ):
        reason = reason.replace(function, option)
    return reason


def clash_with_source(output: str, source: Source) -> str:
    """How writing ``output`` would change ``source`` ("is the mail source", ...), or ""."""
    if not source.path:
        return ""  # a source that reads no file cannot be written over
    # Real paths see through symlinks and "..", even to a file not created yet;
    # samefile sees hard links and the files a directory's symlinks point at.
    target = os.path.realpath(output)
    root = os.path.realpath(source.path)
    if target == root or _same_file(output, source.path):
        return "is the mail source"
    if not os.path.isdir(root):
        return ""
    directories = [root]
    if source.kind == "maildir":
        directories += [os.path.realpath(os.path.join(root, sub)) for sub in ("new", "cur")]
    for directory in directories:
        if os.path.commonpath([target, directory]) == directory:
            return "is inside the mail source"
    if os.path.exists(output):
        for directory in directories[1:] or directories:
            try:
                names = os.listdir(directory)
            except OSError:
                continue  # not there (or unreadable): reading the source will say so
            for name in names:
                if _same_file(output, os.path.join(directory, name)):
                    return "is a message file"
    return ""


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
