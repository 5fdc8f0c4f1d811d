"""A small mail importer, the kind of program fakepop is for.

It logs in over POP3, saves every message it has not saved before as ``<uid>.eml`` in
a folder, deletes from the server what it saved, and quits. If the connection breaks,
what was saved stays saved and the server keeps every message (nothing is deleted
before QUIT), so the next run picks up where this one stopped without duplicates.
"""

from __future__ import annotations

import poplib
from pathlib import Path

__all__ = ["import_mail"]


def import_mail(host: str, port: int, user: str, password: str, folder: Path) -> list[str]:
    """Import new mail into ``folder``; return the UIDs saved by this run."""
    folder.mkdir(parents=True, exist_ok=True)
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user(user)
        client.pass_(password)
        saved = []
        _, listing, _ = client.uidl()
        for line in listing:
            number, uid = line.decode("ascii").split(" ", 1)
            target = folder / f"{uid}.eml"
            if not target.exists():
                _, lines, _ = client.retr(int(number))
                # Write under a temporary name first, so a crash never leaves half a file
                # that a later run would take for a saved message.
                partial = target.with_suffix(".part")
                partial.write_bytes(b"\r\n".join(lines) + b"\r\n")
                partial.replace(target)
                saved.append(uid)
            client.dele(int(number))
        client.quit()
    finally:
        client.close()
    return saved
