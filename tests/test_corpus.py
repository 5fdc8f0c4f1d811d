"""fakepop.corpus: each message is documented, sets the trap it is named after, and
comes back through POP3 as given (RFC 1939 section 3)."""

from __future__ import annotations

import email
import email.header
import email.policy
import poplib
import re
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path

import pytest

from fakepop import ConfigError, Pop3ServerThread, ServerConfig, corpus

ROOT = Path(__file__).resolve().parents[1]
#: The messages whose trap is their line endings: POP3 sends them repaired.
REPAIRED = {"bare_lf", "mixed_line_endings", "no_final_newline"}


def pop3_form(message: bytes) -> bytes:
    """What RETR must deliver: every line ending CRLF, a CRLF after the last line."""
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    return wire if not wire or wire.endswith(b"\r\n") else wire + b"\r\n"


@pytest.fixture
def poplib_reads_long_lines() -> Iterator[None]:
    # poplib refuses lines over 2048 octets (its _MAXLINE); overlong_body_line has one.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(poplib, "_MAXLINE", 100_000)
        yield


@pytest.mark.usefixtures("poplib_reads_long_lines")
def test_each_message_comes_back_through_poplib_as_given() -> None:
    """A mailbox of ``corpus.all()`` keeps the names as UIDs (RFC 1939 section 7), and
    RETR gives each message back octet for octet, but for the three whose line endings
    POP3 must repair."""
    with Pop3ServerThread({"alice": {"password": "pw", "messages": corpus.all()}}) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user("alice")
            client.pass_("pw")
            listing = [line.decode().split(" ") for line in client.uidl()[1]]
            assert [uid for _, uid in listing] == corpus.names()
            got = {
                uid: b"".join(line + b"\r\n" for line in client.retr(int(number))[1])
                for number, uid in listing
            }
            client.quit()
        finally:
            client.close()
    assert got == {name: pop3_form(data) for name, data in corpus.all().items()}
    as_given = {name for name, data in corpus.all().items() if got[name] == data}
    assert set(corpus.names()) - as_given == REPAIRED


def test_raw_utf8_headers_are_sent_as_they_are_by_default() -> None:
    """As Dovecot, Gmail and Exchange do (docs/explanation/conformance.md): no UTF8 needed."""
    message = corpus.all()["utf8_headers"]
    mailbox = {"alice": {"password": "pw", "messages": {"utf8_headers": message}}}
    with Pop3ServerThread(mailbox) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user("alice")
            client.pass_("pw")
            _, lines, _ = client.retr(1)
            client.quit()
        finally:
            client.close()
    assert b"".join(line + b"\r\n" for line in lines) == pop3_form(message) == message


def test_raw_utf8_headers_wait_for_the_utf8_command_when_strict() -> None:
    """RFC 6856 section 2.1: without UTF8, RETR of utf8_headers is refused, with
    utf8_refuse_unless_enabled."""
    mailbox = {
        "alice": {"password": "pw", "messages": {"utf8_headers": corpus.all()["utf8_headers"]}}
    }
    config = ServerConfig(utf8_refuse_unless_enabled=True)
    with Pop3ServerThread(mailbox, config=config) as server:
        client = poplib.POP3(server.host, server.port, timeout=10)
        try:
            client.user("alice")
            client.pass_("pw")
            with pytest.raises(poplib.error_proto, match=r"-ERR \[UTF8\]"):
                client.retr(1)
            client.quit()
        finally:
            client.close()


def test_every_message_is_named_and_documented() -> None:
    names = corpus.names()
    assert len(names) >= 30
    assert len(set(names)) == len(names)
    assert list(corpus.all()) == names
    for name in names:
        message = corpus.get(name)
        assert message.name == name
        assert re.fullmatch(r"[a-z0-9_]{1,70}", name)  # a POP3 UID as it is (RFC 1939 7)
        assert len(message.description) > 30, name
        assert message.description.endswith((".", ")", '"')), name
        assert message.data == corpus.all()[name]


def test_the_traps_people_ask_for_are_there() -> None:
    assert {
        "dot_line",
        "only_dot_line",
        "empty",
        "no_final_newline",
        "koi8r_subject",
        "multipart_without_text",
        "nested_rfc822",
        "long_header_line",
        "bare_lf",
        "nul_byte",
        "eight_bit_undeclared",
        "base64_attachment_odd_filename",
    } <= set(corpus.names())


def test_an_unknown_name_is_a_config_error_listing_the_names() -> None:
    with pytest.raises(ConfigError, match="the corpus has no message 'dot'; its names are plain, "):
        corpus.get("dot")


def _parsed(name: str) -> Message:
    return email.message_from_bytes(corpus.get(name).data)


def _types(name: str) -> list[str]:
    return [part.get_content_type() for part in _parsed(name).walk()]


def _subject(name: str) -> str:
    return str(email.header.make_header(email.header.decode_header(_parsed(name)["Subject"])))


def _lines(name: str) -> list[bytes]:
    return re.split(rb"\r\n|\r|\n", corpus.get(name).data)


def _depth(part: Message) -> int:
    payload = part.get_payload()
    if not part.is_multipart() or not isinstance(payload, list):
        return 0
    return 1 + max((_depth(inner) for inner in payload), default=0)


#: What each named trap is, checked in the octets or with the stdlib parser.
TRAPS: dict[str, Callable[[], bool]] = {
    "empty": lambda: corpus.get("empty").data == b"",
    "headers_only": lambda: b"\r\n\r\n" not in corpus.get("headers_only").data,
    "empty_body": lambda: corpus.get("empty_body").data.endswith(b">\r\n\r\n"),
    "no_final_newline": lambda: not corpus.get("no_final_newline").data.endswith(b"\n"),
    "bare_lf": lambda: b"\r" not in corpus.get("bare_lf").data,
    "mixed_line_endings": lambda: (
        re.search(rb"\r(?!\n)", corpus.get("mixed_line_endings").data) is not None
        and re.search(rb"(?<!\r)\n", corpus.get("mixed_line_endings").data) is not None
    ),
    "dot_line": lambda: any(line.startswith(b".") for line in _lines("dot_line")),
    "only_dot_line": lambda: b"." in _lines("only_dot_line"),
    "leading_dot": lambda: corpus.get("leading_dot").data.startswith(b"."),
    "from_line": lambda: any(line.startswith(b"From ") for line in _lines("from_line")),
    "long_header_line": lambda: max(map(len, _lines("long_header_line"))) == 998,
    "long_body_line": lambda: max(map(len, _lines("long_body_line"))) == 998,
    "overlong_body_line": lambda: max(map(len, _lines("overlong_body_line"))) == 10_000,
    "koi8r_subject": lambda: (
        _subject("koi8r_subject") == "Привет, мир"
        and b"=?koi8-r?b?" in corpus.get("koi8r_subject").data
    ),
    "iso2022jp_subject": lambda: _subject("iso2022jp_subject") == "請求書を添付します",
    "mixed_encoded_words": lambda: (
        _subject("mixed_encoded_words") == "Re: Grüße aus Zürich and Καλημέρα"
    ),
    "utf8_headers": lambda: not corpus.get("utf8_headers").data.split(b"\r\n\r\n")[0].isascii(),
    "eight_bit_undeclared": lambda: (
        not corpus.get("eight_bit_undeclared").data.isascii()
        and b"charset" not in corpus.get("eight_bit_undeclared").data
    ),
    "html_only": lambda: _types("html_only") == ["text/html"],
    "multipart_without_text": lambda: "text/plain" not in _types("multipart_without_text"),
    "nested_rfc822": lambda: _types("nested_rfc822").count("message/rfc822") == 2,
    "nested_multipart": lambda: _depth(_parsed("nested_multipart")) == 3,
    "deeply_nested": lambda: _depth(_parsed("deeply_nested")) == 30,
    "many_parts": lambda: len(_parsed("many_parts").get_payload()) == 200,
    "base64_attachment_odd_filename": lambda: (
        "../../Résumé final (2).pdf"
        in [part.get_filename() for part in _parsed("base64_attachment_odd_filename").walk()]
    ),
    "long_filename": lambda: (
        len(str(_parsed("long_filename").get_payload(0).get_filename())) == 300
    ),
    "nul_byte": lambda: b"\x00" in corpus.get("nul_byte").data,
    "duplicate_subject": lambda: len(_parsed("duplicate_subject").get_all("Subject", [])) == 2,
    "missing_from_and_date": lambda: (
        _parsed("missing_from_and_date")["From"] is None
        and _parsed("missing_from_and_date")["Date"] is None
    ),
    "broken_boundary": lambda: (
        "StartBoundaryNotFoundDefect"
        in [type(defect).__name__ for defect in _parsed("broken_boundary").defects]
    ),
    "unterminated_multipart": lambda: (
        "CloseBoundaryNotFoundDefect"
        in [
            type(d).__name__
            for part in _parsed("unterminated_multipart").walk()
            for d in part.defects
        ]
    ),
    "large_message": lambda: len(corpus.get("large_message").data) > 1_000_000,
}


@pytest.mark.parametrize("name", sorted(TRAPS))
def test_the_message_sets_its_trap(name: str) -> None:
    assert name in corpus.names()
    assert TRAPS[name]()


def test_the_corpus_takes_no_randomness() -> None:
    source = (ROOT / "fakepop" / "corpus.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(import random|from random|import time)", source, re.MULTILINE)


def test_every_message_parses_with_the_stdlib() -> None:
    """Even the broken ones: the stdlib parser records defects instead of failing."""
    policy = email.policy.default
    for name, data in corpus.all().items():
        assert email.message_from_bytes(data, policy=policy) is not None, name
