"""Record ``examples/cassettes/dovecot-2.3.jsonl``: start a real Dovecot (as root,
see tests/dovecot.py), put fakepop's recording proxy in front of it, and run the
example's ``fetch_and_delete`` through it with poplib.

    python -m tests.record_dovecot_cassette
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import trustme

from examples.test_dovecot_cassette import fetch_and_delete
from fakepop import RecordingProxy, serve_in_thread
from tests.dovecot import Account, Dovecot, dovecot_unavailable

CASSETTE = Path(__file__).resolve().parent.parent / "examples/cassettes/dovecot-2.3.jsonl"
MESSAGES = (
    b"Subject: first\r\nFrom: bob@example.org\r\n\r\nHello Alice.\r\n.signed, Bob\r\n",
    b"Subject: second\r\nFrom: carol@example.org\r\n\r\nSee you.\r\n",
)


def main() -> None:
    reason = dovecot_unavailable()
    if reason is not None:
        raise SystemExit(reason)
    certificate = trustme.CA().issue_cert("127.0.0.1")
    pem = (
        b"".join(blob.bytes() for blob in certificate.cert_chain_pems),
        certificate.private_key_pem.bytes(),
    )
    with tempfile.TemporaryDirectory() as root:
        server = Dovecot(Path(root), {"alice": Account("wonderland", MESSAGES)}, pem)
        server.start()
        try:
            proxy = RecordingProxy(CASSETTE, (server.host, server.port))
            with serve_in_thread(proxy):
                fetch_and_delete(proxy.host, proxy.port, "alice", "wonderland")
        finally:
            server.stop()
    print(f"wrote {CASSETTE}")


if __name__ == "__main__":
    main()
