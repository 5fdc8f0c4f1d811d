"""Plain sync code: a server in a background thread, with or without pytest."""

import poplib

from fakepop import Pop3ServerThread, ServerConfig


def login_and_stat(host: str, port: int) -> tuple[int, int]:
    client = poplib.POP3(host, port, timeout=10)
    try:
        client.user("alice")
        client.pass_("secret")
        stat = client.stat()
        client.quit()
    finally:
        client.close()
    return stat


def test_a_server_in_a_with_block() -> None:
    mailboxes = {"alice": {"password": "secret", "messages": ["Subject: hi\n\nHello\n"]}}
    with Pop3ServerThread(mailboxes, config=ServerConfig(apop=False)) as server:
        assert login_and_stat(server.host, server.port) == (1, 22)
        server.wait_idle()  # the session has ended and released its lock
        assert server.store["alice"].logins == 1


def test_start_and_stop_by_hand() -> None:
    server = Pop3ServerThread({"alice": "secret"})
    server.start()  # returns once the server listens; a bind error is raised here
    try:
        assert login_and_stat(server.host, server.port) == (0, 0)
        server.reset({"alice": {"password": "secret", "messages": ["x\n", "y\n"]}})
        assert login_and_stat(server.host, server.port) == (2, 6)
    finally:
        server.stop()  # raises ServerError if a session failed inside the server
