import poplib

import pytest

CASSETTE = "../../examples/cassettes/dovecot-2.3.jsonl"


def fetch_all(host, port, password):
    client = poplib.POP3(host, port, timeout=10)
    client.user("alice")
    client.pass_(password)
    messages = [b"\r\n".join(client.retr(n)[1]) for n in range(1, client.stat()[0] + 1)]
    client.quit()
    return messages


# A cassette holds no password: the model's mailbox gets the marker's.
@pytest.mark.pop3_cassette(CASSETTE, mode="model", password="pw")
def test_fetch_all_from_the_recorded_mail(pop3_cassette_server):
    messages = fetch_all(pop3_cassette_server.host, pop3_cassette_server.port, "pw")
    assert [m.split(b"\r\n")[0] for m in messages] == [b"Subject: first", b"Subject: second"]
