"""What the fakepop command prints: the ready line, the hints for humans after it,
and errors."""

from __future__ import annotations

import os
import sys
import urllib.parse
from typing import TYPE_CHECKING

from .._server import Pop3Server

if TYPE_CHECKING:
    from ._arguments import Plan

__all__ = ["READY_PREFIX", "CannotStart", "announce", "error", "format_address", "say"]

#: The first line printed once the server listens is READY_PREFIX + "HOST:PORT".
READY_PREFIX = "fakepop listening on "


class CannotStart(Exception):
    """Reported as ``fakepop: error: <message>``, exit status 2."""


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def say(text: str = "") -> None:
    # Scripts often read the ready line and close the pipe; that must not crash us.
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at devnull so the interpreter's final flush does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def error(text: str) -> None:
    print(f"fakepop: error: {text}", file=sys.stderr, flush=True)


def announce(server: Pop3Server, plan: Plan, transcript: str | None) -> None:
    host, port = server.address
    say(READY_PREFIX + format_address(host, port))
    for other_host, other_port in server.addresses[1:]:
        say(f"  also listening on {format_address(other_host, other_port)}")
    store = server.store
    users = store.users
    for n, user in enumerate(users):
        label = "accounts:" if n == 0 else ""
        say(f"  {label:<10}{user}/{store.password_of(user)} ({_count(server, user)})")
    if plan.tls is not None:
        say(f"  tls:      STLS on {format_address(host, port)}")
        if plan.pop3s_port is not None:
            say(f"            POP3S on {format_address(*server.pop3s_address)}")
    if transcript is not None:
        say(f"  transcript: {'stdout' if transcript == '-' else transcript}")
    # An unspecified address accepts connections on loopback too; suggest that.
    client_host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    url_host = format_address(client_host, port)
    glob_off = "-g " if ":" in client_host else ""  # curl would read [ ] as a glob
    user = users[0]
    password = store.password_of(user) or ""
    quoted = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    url = f"pop3://{quoted}@{url_host}"
    say(f"  try:      telnet {client_host} {port}")
    say(f"            curl {glob_off}{url}/      (list messages)")
    say(f"            curl {glob_off}{url}/1     (fetch message 1)")
    unchanged = "" if plan.demo else " (source files are never changed)"
    say(f"  Deletions happen in memory only{unchanged}. Press Ctrl-C to stop.")


def _count(server: Pop3Server, user: str) -> str:
    count = len(server.store[user])
    return f"{count} message{'' if count == 1 else 's'}"
