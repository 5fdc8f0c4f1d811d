"""The Celery task against fakepop, run eagerly with ``apply()`` (no broker, no worker):
a dropped connection makes it retry, and the retry finishes the job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery.exceptions import Retry
from celery.signals import task_retry

from examples.celery_fetcher import fetch_mailbox
from fakepop import Pop3ServerThread, faults

MAILBOXES = {
    "alice": {
        "password": "secret",
        "messages": {"a": "Subject: A\n\nOne.\n", "b": "Subject: B\n\nTwo.\n"},
    },
}


@pytest.fixture
def retries() -> Iterator[list[str]]:
    """The reasons of the retries the task asks for while the test runs."""
    seen: list[str] = []

    def record(reason: object, **_: object) -> None:
        seen.append(str(reason))

    task_retry.connect(record, weak=False)
    yield seen
    task_retry.disconnect(record)


def run(server: Pop3ServerThread, maildir: Path, password: str = "secret") -> object:
    # apply() runs the task here and now, its retries too (without their delay);
    # get() returns its result or raises its error.
    result = fetch_mailbox.apply(
        args=(server.host, server.port, "alice", password), kwargs={"maildir": str(maildir)}
    )
    return result.get()


@pytest.mark.pop3(MAILBOXES)
def test_the_task_fetches_and_deletes(
    pop3_server: Pop3ServerThread, tmp_path: Path, retries: list[str]
) -> None:
    assert run(pop3_server, tmp_path) == ["a", "b"]
    pop3_server.wait_idle()
    pop3_server.assert_deleted("alice", ["a", "b"])
    assert retries == []


@pytest.mark.pop3(MAILBOXES)
def test_a_dropped_connection_is_retried(
    pop3_server: Pop3ServerThread, tmp_path: Path, retries: list[str]
) -> None:
    pop3_server.faults.add(faults.close_before("RETR").nth(2).once())
    assert run(pop3_server, tmp_path) == ["b"]  # the retry's result: "a" was saved before
    pop3_server.wait_idle()
    assert len(retries) == 1
    assert len(pop3_server.transcript.sessions) == 2
    pop3_server.assert_retrieved("alice", ["a", "b"])  # nothing fetched twice
    pop3_server.assert_deleted("alice", ["a", "b"])  # by the second session's QUIT
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == ["a.eml", "b.eml"]


@pytest.mark.pop3(MAILBOXES)
def test_a_temporary_error_is_retried(
    pop3_server: Pop3ServerThread, tmp_path: Path, retries: list[str]
) -> None:
    # RFC 3206 §4: [SYS/TEMP] is a failure that may go away; try again.
    pop3_server.faults.add(faults.error("UIDL", code="SYS/TEMP").once())
    assert run(pop3_server, tmp_path) == ["a", "b"]
    assert len(retries) == 1


@pytest.mark.pop3(MAILBOXES)
def test_a_refused_login_is_not_retried(
    pop3_server: Pop3ServerThread, tmp_path: Path, retries: list[str]
) -> None:
    with pytest.raises(Exception, match=r"\[AUTH\]") as failed:
        run(pop3_server, tmp_path, password="wrong")
    assert not isinstance(failed.value, Retry)
    assert retries == []
    pop3_server.wait_idle()
    assert len(pop3_server.transcript.sessions) == 1
