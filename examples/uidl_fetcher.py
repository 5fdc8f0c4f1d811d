"""A getmail-style fetcher: it remembers which UIDs it has saved, in a state file,
and leaves mail on the server (or deletes only what it saved).

The UIDL state makes a retry safe: a message saved before the connection dropped is
not saved twice, whichever messages the server still offers (RFC 1939 §7, UIDL).
"""

from __future__ import annotations

import json
import poplib
from pathlib import Path


def fetch_new(
    host: str,
    port: int,
    user: str,
    password: str,
    maildir: Path,
    *,
    state_file: Path,
    delete: bool = False,
) -> list[str]:
    """Save every message whose UID is not in ``state_file``; return their UIDs."""
    seen: set[str] = set(json.loads(state_file.read_text())) if state_file.exists() else set()
    saved = []
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user(user)
        client.pass_(password)
        _, listing, _ = client.uidl()
        for line in listing:
            number, uid = line.decode("ascii").split(" ", 1)
            if uid in seen:
                if delete:
                    client.dele(int(number))
                continue
            _, lines, _ = client.retr(int(number))
            (maildir / f"{uid}.eml").write_bytes(b"\r\n".join(lines) + b"\r\n")
            seen.add(uid)
            saved.append(uid)
            # Remember it at once: if the connection drops now, it is not fetched again.
            state_file.write_text(json.dumps(sorted(seen)))
            if delete:
                client.dele(int(number))
        client.quit()
    finally:
        client.close()
    return saved
