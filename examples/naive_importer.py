"""A mail importer with the bugs hand-written tests miss. Do not copy it: it is here to
be caught by ``test_importer_properties.py``; ``importer.py`` is the one to copy.

It downloads every message, marks it deleted and quits, so the server removes the
mail, and only then saves each message with a preview of its text. Two assumptions
hide in there: that saving cannot fail, and that every message has a text/plain part.
With the three plain-text messages a test author writes, it works. A message without
text/plain makes saving fail after the server has deleted the mail, and the message
is lost; so does a connection that fails right after QUIT.
"""

from __future__ import annotations

import email
import email.policy
import urllib.parse
from pathlib import Path

from examples.importer import connect

__all__ = ["import_mail_naively"]


def import_mail_naively(host: str, port: int, user: str, password: str, folder: Path) -> list[str]:
    """Fetch and delete everything, then save it; return the UIDs saved."""
    folder.mkdir(parents=True, exist_ok=True)
    client = connect(host, port)
    try:
        client.user(user)
        client.pass_(password)
        fetched = []
        for line in client.uidl()[1]:
            number, uid = line.decode("ascii").split(" ", 1)
            _, lines, _ = client.retr(int(number))
            fetched.append((uid, b"\r\n".join(lines) + b"\r\n"))
            client.dele(int(number))
        client.quit()  # the server deletes the mail now...
    finally:
        client.close()
    saved = []
    for uid, data in fetched:  # ...and only now is it saved
        message = email.message_from_bytes(data, policy=email.policy.default)
        text = message.get_body(("plain",))  # assumed to be there
        preview = text.get_content()[:80]  # type: ignore[union-attr]
        name = urllib.parse.quote(uid, safe="")  # a UID may hold "/"
        (folder / f"{name}.eml").write_bytes(data)
        (folder / f"{name}.txt").write_text(preview, encoding="utf-8")
        saved.append(uid)
    return saved
