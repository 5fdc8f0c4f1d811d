"""Where a Trio server of fakepop's listens: one rule for the server, the cassette
replay server and the recording proxy, which all bind their sockets in ``serve``
(with :func:`fakepop._tcp.listen_tcp`).
"""

from __future__ import annotations

import socket

from .errors import UsageError

__all__ = ["Listening", "ListeningWithPop3s"]


def _bound(listener: socket.socket) -> tuple[str, int]:
    host, port = listener.getsockname()[:2]
    return host, port


class Listening:
    """``address``, ``host`` and ``port`` of an object whose ``serve`` fills
    ``_listeners``; each raises UsageError while there is no such socket."""

    #: What the object is called in those errors.
    _noun = "server"
    _listeners: list[socket.socket]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket."""
        return [_bound(listener) for listener in self._listeners]

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to connect to."""
        if not self._listeners:
            raise UsageError(f"the {self._noun} is not listening (start it with nursery.start)")
        return _bound(self._listeners[0])

    @property
    def host(self) -> str:
        """The host part of :attr:`address`."""
        return self.address[0]

    @property
    def port(self) -> int:
        """The port part of :attr:`address` (the free one picked, with port 0)."""
        return self.address[1]



class ListeningWithPop3s(Listening):
    """:class:`Listening`, and ``pop3s_address`` and ``pop3s_port`` of the POP3S
    listener that ``serve`` puts in ``_pop3s_listeners`` when asked for one."""

    _pop3s_listeners: list[socket.socket]

    @property
    def pop3s_address(self) -> tuple[str, int]:
        """(host, port) of the implicit-TLS (POP3S) listener."""
        if not self._pop3s_listeners:
            raise UsageError(f"the {self._noun} has no POP3S port (make it with pop3s_port=...)")
        return _bound(self._pop3s_listeners[0])

    @property
    def pop3s_port(self) -> int:
        """The port part of :attr:`pop3s_address`."""
        return self.pop3s_address[1]
