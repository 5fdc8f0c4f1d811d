"""Fetch mail over POP3S with an OAuth 2.0 access token (SASL XOAUTH2), as Gmail and
Exchange Online ask, with the standard library alone.

The token comes from your OAuth library; this module only sends it. poplib has no
AUTH command, so ``xoauth2_login`` sends its lines on the client's own connection.
"""

from __future__ import annotations

import base64
import poplib
import ssl

#: RFC 5034 §4: the AUTH line, CRLF included, stays within the 255 octets of RFC 2449
#: §4; a longer initial response is sent on a line of its own, after the server's "+".
MAX_AUTH_LINE = 255


class TokenRefused(poplib.error_proto):
    """The server refused the token: ``reply`` is its -ERR line, ``details`` its JSON
    error challenge decoded (RFC 7628 §3.2.2), or "" if it sent none."""

    def __init__(self, reply: bytes, details: str) -> None:
        super().__init__(reply)
        self.reply = reply
        self.details = details


def _command(client: poplib.POP3, line: str) -> bytes:
    """Send ``line`` and return the one-line reply, raising error_proto for -ERR."""
    client.sock.sendall(line.encode("ascii") + b"\r\n")
    reply = client.file.readline().rstrip(b"\r\n")
    if not reply:
        raise EOFError("the server closed the connection")
    if reply.startswith(b"-"):
        raise poplib.error_proto(reply)
    return reply


def xoauth2_login(client: poplib.POP3, user: str, token: str) -> None:
    """Log ``client`` in with AUTH XOAUTH2; raise TokenRefused if the token is refused."""
    response = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode())
    command = "AUTH XOAUTH2 " + response.decode("ascii")
    details = ""
    try:
        if len(command) + 2 <= MAX_AUTH_LINE:
            reply = _command(client, command)
        else:
            _command(client, "AUTH XOAUTH2")  # the server answers "+ ", then takes the response
            reply = _command(client, response.decode("ascii"))
        if not reply.startswith(b"+OK"):
            # A refused token: the error comes as a challenge, and the -ERR follows
            # the client's empty answer.
            details = base64.b64decode(reply.removeprefix(b"+").strip()).decode("utf-8", "replace")
            _command(client, "")
    except poplib.error_proto as error:
        raise TokenRefused(error.args[0], details) from None
    if details:
        raise TokenRefused(b"", details)  # +OK after an error challenge: not a login


def fetch_with_token(
    host: str, port: int, user: str, token: str, *, context: ssl.SSLContext | None = None
) -> list[bytes]:
    """Log in to the POP3S server at ``host``:``port`` with ``token`` and return every
    message, raw; the mail stays on the server."""
    client = poplib.POP3_SSL(host, port, context=context, timeout=10)
    try:
        xoauth2_login(client, user, token)
        count, _ = client.stat()
        messages = [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]
        client.quit()
    finally:
        client.close()
    return messages
