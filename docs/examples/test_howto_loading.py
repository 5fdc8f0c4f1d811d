"""Real mail: fill mailboxes from mbox files, Maildirs and directories of .eml files."""

import mailbox
import poplib
from pathlib import Path

import pytest

from fakepop import MailSourceError, Pop3ServerThread, read_eml_dir, read_maildir, read_mbox


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """A Maildir as a mail client leaves it (in a real suite: a directory in git)."""
    box = mailbox.Maildir(tmp_path / "alice")
    box.add(b"Subject: first\n\nHello.\n")
    box.add(b"Subject: second\n\n.a line that POP3 dot-stuffs\n")
    return tmp_path / "alice"


@pytest.fixture
def pop3_mailboxes(maildir: Path) -> dict[str, object]:
    # Overriding this fixture gives every test of the module the same mailboxes.
    return {"alice": {"password": "pw", "messages": read_maildir(maildir)}}


def test_a_maildir_served_byte_for_byte(pop3_server: Pop3ServerThread, maildir: Path) -> None:
    on_disk = read_maildir(maildir)  # unique name -> the file's bytes
    client = poplib.POP3(pop3_server.host, pop3_server.port, timeout=10)
    try:
        client.user("alice")
        client.pass_("pw")
        uids = [line.split()[1].decode() for line in client.uidl()[1]]
        fetched = [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in (1, 2)]
        client.dele(1)
        client.quit()
    finally:
        client.close()
    assert uids == list(on_disk)  # Maildir unique names are the UIDs
    assert fetched == [data.replace(b"\n", b"\r\n") for data in on_disk.values()]
    pop3_server.wait_idle()
    assert read_maildir(maildir) == on_disk  # deleted in memory only


def test_mbox_and_eml_files(tmp_path: Path) -> None:
    mbox = tmp_path / "bob.mbox"
    mbox.write_bytes(b"From a@example.org Mon Jun  3 09:00:00 2024\nSubject: a\n\nA\n")
    (tmp_path / "eml").mkdir()
    (tmp_path / "eml" / "note.eml").write_bytes(b"Subject: note\r\n\r\nN\r\n")

    assert read_mbox(mbox) == {"uid000001": b"Subject: a\n\nA\n"}
    assert read_eml_dir(tmp_path / "eml") == {"note": b"Subject: note\r\n\r\nN\r\n"}
    # Two sources in one mailbox: join the messages, not the dicts.
    messages = [*read_mbox(mbox).values(), *read_eml_dir(tmp_path / "eml").values()]
    with Pop3ServerThread({"bob": {"password": "pw", "messages": messages}}) as server:
        assert len(server.store["bob"]) == 2


def test_a_bad_source_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(MailSourceError, match="does not exist") as caught:
        read_mbox(tmp_path / "missing.mbox")
    assert caught.value.path == str(tmp_path / "missing.mbox")
