"""A small mail importer, the kind of program fakepop is for.

It logs in over POP3, saves every message it has not saved before as ``<uid>.eml`` in
a folder (the UID quoted as in a URL), deletes from the server what it saved, and
quits. If the connection breaks, what was saved stays saved and the server keeps
every message (nothing is deleted before QUIT), so the next run picks up where this
one stopped without duplicates.
"""

from __future__ import annotations

import poplib
import urllib.parse
from pathlib import Path

__all__ = ["connect", "import_mail"]


class _Pop3(poplib.POP3):
    # poplib reads the greeting in its constructor and, if that fails (a server that
    # closes at once, or greets with garbage), leaves the socket open.
    def __init__(self, host: str, port: int, timeout: float) -> None:
        try:
            super().__init__(host, port, timeout=timeout)
        except BaseException:
            if getattr(self, "sock", None) is not None:
                self.close()
            raise


def connect(host: str, port: int) -> poplib.POP3:
    """A POP3 connection that has been greeted; its socket is closed if greeting fails."""
    return _Pop3(host, port, timeout=10)


def import_mail(host: str, port: int, user: str, password: str, folder: Path) -> list[str]:
    """Import new mail into ``folder``; return the UIDs saved by this run."""
    folder.mkdir(parents=True, exist_ok=True)
    client = connect(host, port)
    try:
        client.user(user)
        client.pass_(password)
        saved = []
        _, listing, _ = client.uidl()
        for line in listing:
            number, uid = line.decode("ascii").split(" ", 1)
            # A UID may hold any printable ASCII character but the space (RFC 1939
            # section 7), "/" too, which a file name cannot: quote it.
            target = folder / f"{urllib.parse.quote(uid, safe='')}.eml"
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
