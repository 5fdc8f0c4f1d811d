"""A property of the importer, checked against drawn mail and drawn failures.

Whatever mail the mailbox holds (``strategies.messages()``: every MIME structure,
charset and encoding, dot lines, long lines, ...) and whatever goes wrong
(``strategies.fault_plans()``: drops in the middle of a message, refused logins, lost
replies, ...), running the importer again after each failure must in the end save
every message exactly once, octet for octet, and leave the mailbox empty.

The naive importer breaks it, and hypothesis finds out and shrinks what it found to
a small example; the real importer keeps it.
"""

from __future__ import annotations

import ast
import contextlib
import email
import gc
import itertools
import poplib
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from examples.importer import import_mail
from examples.naive_importer import import_mail_naively
from fakepop import Pop3ServerThread, corpus, faults
from fakepop.strategies import FaultPlan, fault_plans, messages, uids

Importer = Callable[[str, int, str, str, Path], list[str]]

MAIL = st.dictionaries(uids(), messages(max_size=5_000), min_size=1, max_size=4)
PLANS = fault_plans(users=("alice",))
# The same examples every run, and few: each one runs an importer against a server.
# (The explain phase is left out: it traces every line run, which is slow.)
SETTINGS = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


def pop3_form(message: bytes) -> bytes:
    """What RETR delivers: CRLF line endings, a final CRLF (RFC 1939 section 3)."""
    wire = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


def file_name(uid: str) -> str:
    """Where the importers save a message: a UID may hold '/', which a file name cannot."""
    return urllib.parse.quote(uid, safe="") + ".eml"


def import_until_done(
    importer: Importer, server: Pop3ServerThread, folder: Path, attempts: int = 12
) -> None:
    """Run the importer as a scheduler would: again after any failure, until the
    mailbox is empty or ``attempts`` runs have been made."""
    for _ in range(attempts):
        with contextlib.suppress(Exception):  # a failed run is logged and retried
            importer(server.host, server.port, "alice", "secret", folder)
        server.wait_idle()  # the server has finished with the session, however it ended
        if not server.store["alice"].messages:
            return


def check(importer: Importer, server: Pop3ServerThread, tmp_path: Path) -> None:
    """Check the property for drawn mail and drawn faults; fail with the shrunk example."""
    folders = (tmp_path / str(n) for n in itertools.count())

    @SETTINGS
    @given(mail=MAIL, plan=PLANS)
    # A case that matters is tried first in every run, written as hypothesis prints
    # one: the connection dies after 4,097 octets of the third RETR.
    @example(
        mail={name: corpus.get(name).data for name in ("plain", "dot_line", "large_message")},
        plan=FaultPlan((faults.cut_payload("RETR", after_bytes=4097).nth(3).once(),)),
    )
    def never_loses_nor_duplicates(mail: dict[str, bytes], plan: FaultPlan) -> None:
        server.reset({"alice": {"password": "secret", "messages": mail}})
        plan.arm(server.faults)
        folder = next(folders)
        import_until_done(importer, server, folder)
        saved = {path.name: path.read_bytes() for path in folder.glob("*.eml")}
        assert saved == {file_name(uid): pop3_form(data) for uid, data in mail.items()}
        assert server.store["alice"].messages == ()

    never_loses_nor_duplicates()


def test_hypothesis_catches_the_naive_importer(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError) as caught:
        check(import_mail_naively, pop3_server, tmp_path)
    # The shrunk example, as hypothesis reports it (see docs/howto/strategies.md): no faults
    # needed, only a message without a text/plain part.
    report = "\n".join(getattr(caught.value, "__notes__", []))
    drawn = re.search(
        r"never_loses_nor_duplicates\(\n\s+mail=(.*?),\n\s+plan=(.*?),\n\)", report, re.S
    )
    assert drawn is not None, report
    mail = ast.literal_eval(drawn.group(1))
    assert drawn.group(2) == "FaultPlan(())"
    for message in mail.values():
        parts = email.message_from_bytes(message).walk()
        assert "text/plain" not in [part.get_content_type() for part in parts]


def test_the_naive_importer_loses_a_message_without_text(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    """What hypothesis found, as a plain test: the server deleted the message at QUIT,
    then saving it failed."""
    lost = {"multipart_without_text": corpus.get("multipart_without_text").data}
    pop3_server.reset({"alice": {"password": "secret", "messages": lost}})
    with pytest.raises(AttributeError):
        import_mail_naively(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)
    pop3_server.wait_idle()
    assert pop3_server.store["alice"].messages == ()
    assert list(tmp_path.glob("*.eml")) == []


def test_the_real_importer_keeps_the_property(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    check(import_mail, pop3_server, tmp_path)


# What the property found in importer.py, kept as plain tests.


def test_a_uid_may_hold_a_slash(pop3_server: Pop3ServerThread, tmp_path: Path) -> None:
    """RFC 1939 section 7 allows any of 0x21-0x7E in a UID: "/" too."""
    mail = {"2024/06/invoice": corpus.get("plain").data}
    pop3_server.reset({"alice": {"password": "secret", "messages": mail}})
    assert import_mail(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path) == [
        "2024/06/invoice"
    ]
    assert [path.name for path in tmp_path.iterdir()] == ["2024%2F06%2Finvoice.eml"]


def test_a_refused_connection_leaves_no_socket_open(
    pop3_server: Pop3ServerThread, tmp_path: Path
) -> None:
    """poplib reads the greeting in its constructor and keeps the socket if that
    fails; left open, it would be a ResourceWarning, an error in this suite."""
    pop3_server.faults.add(faults.refuse_connection().once())
    with pytest.raises(poplib.error_proto, match="EOF"):
        import_mail(pop3_server.host, pop3_server.port, "alice", "secret", tmp_path)
    gc.collect()  # a socket left open would warn now
