"""fakepop.strategies: what it draws is what it says, reaches clients intact, and does
not quietly collapse to trivial mail.

Round trip, for each place a message goes (RFC 1939 section 3 for POP3):

- RETR, read by poplib and by curl: exactly the message with every line ending made
  CRLF and a CRLF added after a last line that had none (``pop3_form``).
- the stdlib parser (``email.policy.default`` that keeps source headers as they
  are), written back with CRLF: ``pop3_form`` again, plus the empty line that ends
  the headers of a message that is all headers; and no part has a defect.
- ``mailbox.mbox``: the message as given, each line starting with ``From `` quoted
  as ``>From `` (mboxrd/mboxo quoting), a final LF added if it had none.
- a Maildir: octet for octet, and fakepop's ``read_maildir`` reads it back so.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.header
import email.parser
import email.policy
import email.utils
import mailbox
import os
import poplib
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage, Message
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, find, given, seed, settings
from hypothesis import strategies as st

from fakepop import ConfigError, FaultSet, MailStore, Pop3ServerThread, faults, read_maildir
from fakepop._saslprep import saslprep
from fakepop.strategies import (
    CHARSETS,
    DEFECTS,
    FAULT_KINDS,
    STRUCTURES,
    SURVIVABLE_FAULT_KINDS,
    TRANSFER_ENCODINGS,
    FaultPlan,
    Malformed,
    fault_plans,
    mailboxes,
    malformed_messages,
    messages,
    passwords,
    uids,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
#: A few examples per property with a server: the whole file stays well under 20 s.
NETWORK = settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
#: Settings to collect many examples without a server (no shrinking: nothing fails).
SAMPLE = settings(database=None, derandomize=True, deadline=None, phases=[Phase.generate])
SMALL = messages(max_size=20_000)


def pop3_form(message: bytes) -> bytes:
    """What RETR must deliver (RFC 1939 section 3): CRLF line endings, a final CRLF."""
    wire = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    return wire if not wire or wire.endswith(b"\r\n") else wire + b"\r\n"


def collect(strategy: st.SearchStrategy[T], count: int) -> list[T]:
    """``count`` examples of ``strategy``, the same ones every run."""
    found: list[T] = []

    @settings(SAMPLE, max_examples=count)
    @given(strategy)
    def draw(value: T) -> None:
        found.append(value)

    draw()
    return found


@pytest.fixture(scope="module")
def server() -> Iterator[Pop3ServerThread]:
    with Pop3ServerThread() as running:
        yield running


def retrieve(
    server: Pop3ServerThread, user: str, password: str, *, utf8: bool = False
) -> dict[str, bytes]:
    """Every message of a mailbox through poplib, by UID."""
    client = poplib.POP3(server.host, server.port, timeout=10)
    try:
        if utf8:
            client.utf8()  # before login (RFC 6856 section 2)
        client.user(user)
        client.pass_(password)
        got = {}
        for line in client.uidl()[1]:
            number, uid = line.decode("ascii").split(" ", 1)
            got[uid] = b"".join(line + b"\r\n" for line in client.retr(int(number))[1])
        client.quit()
    finally:
        client.close()
    return got


# -- round trips --------------------------------------------------------------------------


@NETWORK
@given(mail=mailboxes(messages(max_size=20_000, raw_utf8_headers=True), max_messages=3))
def test_mailboxes_log_in_and_retr_gives_every_message_back(
    server: Pop3ServerThread, mail: dict[str, dict[str, dict[str, bytes]]]
) -> None:
    """A drawn mailbox dict is taken as it is; each user logs in with the drawn password
    (SASLprep-able, RFC 4013) and RETR delivers each message's POP3 form under its UID
    (RFC 1939 sections 7 and 3); raw UTF-8 headers after UTF8 (RFC 6856)."""
    server.reset(mail)
    for user, spec in mail.items():
        got = retrieve(server, user, str(spec["password"]), utf8=True)
        assert got == {uid: pop3_form(data) for uid, data in spec["messages"].items()}


@pytest.mark.curl
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@NETWORK
@given(password=passwords(), mail=st.lists(SMALL, min_size=1, max_size=3))
def test_curl_retrieves_each_drawn_message_octet_for_octet(
    server: Pop3ServerThread, password: str, mail: list[bytes]
) -> None:
    """curl (``pop3://.../N``, RFC 2384) logs in with the drawn password and gets each
    message's POP3 form, dot-stuffing undone (RFC 1939 section 3)."""
    server.reset({"alice": {"password": password, "messages": mail}})
    quoted = urllib.parse.quote(password, safe="")
    for number, message in enumerate(mail, 1):
        result = subprocess.run(
            ["curl", "-q", "-sS", "--noproxy", "*", "--max-time", "10",
             f"pop3://alice:{quoted}@{server.host}:{server.port}/{number}"],
            capture_output=True,
            check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == pop3_form(message)


@settings(SAMPLE, max_examples=100)
@given(messages(max_size=5_000, raw_utf8_headers=True))
def test_the_stdlib_parser_reads_every_message_without_a_defect(message: bytes) -> None:
    """policy.default finds no defect in any part, and writes the message back as its
    POP3 form (plus the empty line after headers that had no body); of a message with
    no final line end, the stdlib adds one after a multipart only."""
    # utf8=True: the headers may hold raw UTF-8 (RFC 6532), which is written back as
    # it is, not turned into encoded words (as Python 3.13 does with utf8=False).
    policy = email.policy.default.clone(refold_source="none", linesep="\r\n", utf8=True)
    parsed = email.parser.BytesParser(policy=policy).parsebytes(message)
    assert [part.defects for part in parsed.walk() if part.defects] == []
    expected = pop3_form(message)
    if b"\r\n\r\n" not in expected:
        expected += b"\r\n"
    written = parsed.as_bytes()
    if not message.endswith((b"\n", b"\r")) and not written.endswith(b"\r\n"):
        written += b"\r\n"  # the stdlib ends a multipart with a line end, a text not
    assert written == expected


def test_mbox_quotes_from_lines_and_maildir_keeps_every_octet(tmp_path: Path) -> None:
    drawn = collect(messages(max_size=5_000), 60)
    box = mailbox.mbox(tmp_path / "all.mbox")
    keys = [box.add(message) for message in drawn]
    box.flush()
    for key, message in zip(keys, drawn, strict=True):
        assert isinstance(message, bytes)
        quoted = message.replace(b"\nFrom ", b"\n>From ")
        expected = quoted if quoted.endswith(b"\n") else quoted + b"\n"
        assert box.get_bytes(key) == expected
    box.close()
    assert any(b"\n>From " in box_bytes for box_bytes in [(tmp_path / "all.mbox").read_bytes()])

    maildir = mailbox.Maildir(tmp_path / "maildir")
    names = [maildir.add(message) for message in drawn]
    assert [maildir.get_bytes(name) for name in names] == drawn
    assert read_maildir(str(tmp_path / "maildir")) == dict(zip(names, drawn, strict=True))


# -- the knobs do what they say, and each value occurs --------------------------------------


def _parts(message: bytes) -> list[Message]:
    return list(email.message_from_bytes(message.replace(b"\r\n", b"\n")).walk())


def _headers(message: bytes) -> bytes:
    end = re.search(rb"\r?\n\r?\n", message)
    return message if end is None else message[: end.start()]


def _body_lines(message: bytes) -> list[bytes]:
    end = re.search(rb"\r?\n\r?\n", message)
    return [] if end is None else re.split(rb"\r?\n", message[end.end() :])


def _structure(message: bytes) -> str:
    parts = _parts(message)
    types = [part.get_content_type() for part in parts]
    if "message/rfc822" in types:
        return "rfc822"
    if not parts[0].is_multipart():
        return "single"
    if any(part.is_multipart() for part in parts[1:]):
        return "nested"
    return types[0].removeprefix("multipart/")


ENCODED_WORD = re.compile(rb"=\?([\w-]+)\?([qQbB])\?")


def _traits(message: bytes) -> set[str]:
    """Every trait of ``message`` that a knob of messages() asks for, read back from
    the octets (not from what the strategy meant to do)."""
    traits = {f"structure:{_structure(message)}", "crlf" if b"\r\n" in message else "lf"}
    if not message.endswith(b"\n"):
        traits.add("no final newline")
    if len(message) > LARGE:
        traits.add("large")
    return traits | _part_traits(message) | _header_traits(message) | _body_traits(message)


def _part_traits(message: bytes) -> set[str]:
    traits = set()
    parts = _parts(message)
    for part in parts:
        if part.get_content_maintype() == "text" and "Content-Transfer-Encoding" in part:
            traits.add(f"cte:{part['Content-Transfer-Encoding'].lower()}")
        charset = part.get_content_charset()
        if charset and not part.is_multipart() and charset != "us-ascii":
            traits.add(f"charset:{charset}")
        filename = part.get_filename()
        if filename and not re.fullmatch(r"[\w-]+\.\w+", filename):
            traits.add("odd filename")
    if not any(part.get_content_type() == "text/plain" for part in parts):
        traits.add("no text/plain part")
    return traits


def _header_traits(message: bytes) -> set[str]:
    traits = set()
    head = _headers(message)
    for charset, encoding in ENCODED_WORD.findall(head):
        traits.add(f"charset:{charset.decode()}")
        traits.add(f"encoded word {encoding.decode().lower()}")
    if not head.isascii():
        traits.add("raw utf-8 header")
    if re.search(rb"\nSubject:.*\r?\n[ \t]", head):
        traits.add("folded subject")
    if max(len(line) for line in re.split(rb"\r?\n", head)) > 500:
        traits.add("long header line")
    names = re.findall(rb"^([\w-]+):", head, flags=re.MULTILINE)
    if max(Counter(names).values()) > 1:
        traits.add("duplicate header")
    traits.update(
        f"no {name.decode()}" for name in (b"To", b"Subject", b"Message-ID") if name not in names
    )
    return traits


def _text_lines(message: bytes) -> list[bytes]:
    """The lines of every text part, transfer encoding undone."""
    lines = []
    for part in _parts(message):
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            lines += re.split(rb"\r?\n", payload)
    return lines


def _body_traits(message: bytes) -> set[str]:
    traits = set()
    lines = _text_lines(message)
    if b"." in lines:
        traits.add("line '.'")
    if any(line.startswith(b".") and line != b"." for line in lines):
        traits.add("line starting with '.'")
    if any(line.startswith(b"From ") for line in lines):
        traits.add("line starting with 'From '")
    if any(len(line) > 78 for line in lines):  # RFC 5322 2.1.1: SHOULD be at most 78
        traits.add("long line")
    if not any(_body_lines(message)):
        traits.add("empty body")
    return traits


#: What "large" means in these tests: half their max_size.
LARGE = 50_000
EXPECTED_TRAITS = {
    *(f"structure:{structure}" for structure in STRUCTURES),
    *(f"cte:{cte}" for cte in TRANSFER_ENCODINGS),
    *(f"charset:{charset}" for charset in CHARSETS),
    "encoded word q",
    "encoded word b",
    "raw utf-8 header",
    "folded subject",
    "long header line",
    "duplicate header",
    "no To",
    "no Subject",
    "no Message-ID",
    "line '.'",
    "line starting with '.'",
    "line starting with 'From '",
    "long line",
    "empty body",
    "crlf",
    "lf",
    "no final newline",
    "large",
    "no text/plain part",
    "odd filename",
}


def test_every_knob_value_occurs_in_a_few_hundred_messages() -> None:
    """The strategy cannot silently collapse to trivial mail: over 300 messages, each
    value of each knob shows in the octets."""
    seen: Counter[str] = Counter()
    for message in collect(messages(raw_utf8_headers=True, max_size=2 * LARGE), 300):
        assert isinstance(message, bytes)
        seen.update(_traits(message))
    assert EXPECTED_TRAITS - set(seen) == set(), seen


@pytest.mark.parametrize(
    ("knobs", "never"),
    [
        ({"structures": ["single"]}, {f"structure:{s}" for s in STRUCTURES[1:]}),
        ({"charsets": ()}, {"encoded word q", "encoded word b", "cte:8bit"}),
        ({"raw_utf8_headers": False}, {"raw utf-8 header"}),
        ({"dot_lines": False}, {"line '.'", "line starting with '.'"}),
        ({"from_lines": False}, {"line starting with 'From '"}),
        ({"long_lines": False, "long_headers": False}, {"long line", "long header line"}),
        ({"line_endings": ["lf"], "final_newline": True}, {"crlf", "no final newline"}),
        ({"duplicate_headers": False, "missing_headers": False}, {"duplicate header", "no To"}),
        ({"max_size": 0}, {"large"}),
        ({"transfer_encodings": ["base64"]}, {"cte:7bit", "cte:8bit", "cte:quoted-printable"}),
    ],
)
def test_a_knob_turned_off_never_shows(knobs: dict[str, object], never: set[str]) -> None:
    options = {"max_size": 2 * LARGE, "raw_utf8_headers": True, **knobs}
    for message in collect(messages(**options), 40):  # type: ignore[arg-type]
        assert isinstance(message, bytes)
        assert _traits(message) & never == set()


def test_a_message_without_text_plain_shrinks_to_a_small_plain_one() -> None:
    """Draws go simplest first, so what hypothesis shrinks a failure to keeps only what
    the failure needs: here, no text/plain part in an otherwise ordinary message."""
    found = find(
        messages(),
        lambda m: "no text/plain part" in _traits(m),
        settings=settings(database=None, derandomize=True),
    )
    assert len(found) < 1_000
    assert found.isascii()
    names = re.findall(rb"^([\w-]+):", _headers(found), flags=re.MULTILINE)
    assert names[:5] == [b"From", b"To", b"Subject", b"Date", b"Message-ID"]
    assert "text/html" in [part.get_content_type() for part in _parts(found)]


@pytest.mark.parametrize(
    ("call", "complaint"),
    [
        (lambda: messages(structures=["single", "tree"]), "unknown structures ['tree']"),
        (lambda: messages(structures="single"), "structures must be a collection"),
        (lambda: messages(structures=()), "structures cannot be empty"),
        (lambda: messages(charsets=["ebcdic"]), "unknown charsets ['ebcdic']"),
        (lambda: messages(max_size=-1), "max_size must be a whole number from 0"),
        (lambda: malformed_messages(defects=["typo"]), "unknown defects ['typo']"),
        (lambda: uids(max_size=71), "max_size must be from 1 to 70"),
        (lambda: mailboxes(max_users=-2), "max_users must be a whole number from 0"),
        (lambda: fault_plans(kinds=["meteor"]), "kinds must name faults of"),
        (lambda: fault_plans(max_times=0), "max_times and max_session must be at least 1"),
    ],
)
def test_bad_options_raise_config_error(call: Callable[[], object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        call()


# -- malformed messages -------------------------------------------------------------------


def _subject_word_is_broken(data: bytes) -> bool:
    subject = re.search(rb"^Subject: (.*)$", data, flags=re.MULTILINE)
    assert subject is not None
    word = subject.group(1).strip()
    match = re.fullmatch(rb"=\?([^?]+)\?([qQbB])\?([^?\s]*)\?=", word)
    if match is None:
        return True
    charset, encoding, text = match.groups()
    try:
        if encoding in b"bB":
            raw = base64.b64decode(text, validate=True)
        else:
            raw = binascii.a2b_qp(text, header=True)
        raw.decode(charset.decode())
    except (binascii.Error, UnicodeError, LookupError):
        return True
    return False


def _declared_charset_unknown(data: bytes) -> bool:
    found = re.search(rb'charset="([^"]*)"', data) or re.search(rb"=\?([^?]*)\?", data)
    assert found is not None
    try:
        codecs.lookup(found.group(1).decode())
    except LookupError:
        return True
    return False


def _body_base64_invalid(data: bytes) -> bool:
    body = b"".join(_body_lines(data))
    try:
        base64.b64decode(body, validate=True)
    except binascii.Error:
        return True
    return False


def _defects_of(data: bytes) -> set[str]:
    parsed = email.message_from_bytes(data)
    return {type(defect).__name__ for part in parsed.walk() for defect in part.defects}


def _head_lines(data: bytes) -> list[bytes]:
    return re.split(rb"\r?\n", _headers(data))


def _date_unparseable(data: bytes) -> bool:
    date = re.search(rb"^Date: ?(.*?)\r?$", data, flags=re.MULTILINE)
    assert date is not None
    try:
        email.utils.parsedate_to_datetime(date.group(1).decode())
    except (ValueError, TypeError):
        return True
    return False


#: How each defect shows in the octets, checked independently of how it was made.
SHOWS: dict[str, Callable[[bytes], bool]] = {
    "nul_byte": lambda data: b"\x00" in data,
    "undeclared_8bit": lambda data: not data.isascii() and b"charset" not in data,
    "eight_bit_header": lambda data: not _headers(data).isascii() and not _is_utf8(_headers(data)),
    "invalid_utf8": lambda data: b"charset=utf-8" in data and not _is_utf8(data),
    "unknown_charset": _declared_charset_unknown,
    "bad_encoded_word": _subject_word_is_broken,
    "header_without_colon": lambda data: any(
        line and b":" not in line and line[:1] not in b" \t" for line in _head_lines(data)
    ),
    "continuation_first": lambda data: data[:1] in (b" ", b"\t"),
    "missing_required_headers": lambda data: (
        not (
            re.search(rb"^From:", data, flags=re.MULTILINE)
            and re.search(rb"^Date:", data, flags=re.MULTILINE)
        )
    ),
    "duplicate_singleton_header": lambda data: any(
        count > 1
        for name, count in Counter(
            line.split(b":")[0] for line in _head_lines(data) if b":" in line
        ).items()
        if name in (b"From", b"Subject", b"Date", b"To", b"Message-ID")
    ),
    "bad_date": _date_unparseable,
    "overlong_line": lambda data: max(len(line) for line in re.split(rb"\r\n|\r|\n", data)) > 998,
    "mixed_line_endings": lambda data: (
        re.search(rb"\r(?!\n)", data) is not None and re.search(rb"(?<!\r)\n", data) is not None
    ),
    "invalid_base64": _body_base64_invalid,
    "broken_boundary": lambda data: "StartBoundaryNotFoundDefect" in _defects_of(data),
    "unterminated_multipart": lambda data: "CloseBoundaryNotFoundDefect" in _defects_of(data),
    "missing_boundary_parameter": lambda data: "NoBoundaryInMultipartDefect" in _defects_of(data),
}


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_every_defect_has_a_check() -> None:
    assert set(SHOWS) == set(DEFECTS)


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_malformed_message_has_the_defect_it_is_tagged_with(defect: str) -> None:
    drawn = collect(malformed_messages(defects=[defect]), 25)
    for item in drawn:
        assert item.defect == defect
        assert SHOWS[defect](item.data), item


@pytest.fixture(scope="module")
def poplib_reads_long_lines() -> Iterator[None]:
    # poplib refuses lines over 2048 octets (its _MAXLINE); mailboxes hold longer ones.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(poplib, "_MAXLINE", 100_000)
        yield


@pytest.mark.usefixtures("poplib_reads_long_lines")
@NETWORK
@given(st.lists(malformed_messages(), min_size=1, max_size=6))
def test_malformed_messages_reach_poplib_as_they_are(
    server: Pop3ServerThread, drawn: list[Malformed]
) -> None:
    """fakepop serves whatever a mailbox holds: each malformed message arrives in its
    POP3 form (after UTF8, for 8-bit headers; with poplib's line limit raised)."""
    mail = {f"m{i}": item.data for i, item in enumerate(drawn)}
    server.reset({"alice": {"password": "pw", "messages": mail}})
    got = retrieve(server, "alice", "pw", utf8=True)
    assert got == {uid: pop3_form(data) for uid, data in mail.items()}


# -- mailboxes ------------------------------------------------------------------------------


@settings(SAMPLE, max_examples=100)
@given(mailboxes(st.just(b"Subject: x\r\n\r\ny\r\n"), max_users=4, max_messages=4))
def test_mailboxes_are_what_mail_store_takes(mail: dict[str, dict[str, object]]) -> None:
    store = MailStore(mail)  # raises on anything fakepop would refuse
    for user, spec in mail.items():
        uids_drawn = list(spec["messages"])  # type: ignore[call-overload]
        assert store[user].uids == uids_drawn
        assert all(re.fullmatch(r"[\x21-\x7e]{1,70}", uid) for uid in uids_drawn)
        password = spec["password"]
        assert isinstance(password, str)
        assert saslprep(password).strip()


def test_passwords_include_what_saslprep_maps_and_normalises() -> None:
    drawn = [p for p in collect(passwords(), 300) if isinstance(p, str)]
    assert any(not p.isascii() for p in drawn)
    assert any(saslprep(p) != p for p in drawn)  # mapped to nothing, or NFKC
    assert all(len(p.encode()) <= 248 for p in drawn)


def test_mailboxes_without_uids_are_numbered_by_fakepop() -> None:
    for mail in collect(mailboxes(st.just(b"x\r\n"), with_uids=False, min_messages=1), 20):
        assert isinstance(mail, dict)
        for user, spec in mail.items():
            assert MailStore(mail)[user].uids[0] == "uid000001"
            assert isinstance(spec, dict)
            assert isinstance(spec["messages"], list)


# -- fault plans ----------------------------------------------------------------------------


def _shape(fault: faults.Fault) -> tuple[object, ...]:
    # Everything that says where and how often, and what (the description).
    return (fault.description, fault.stage, fault.keywords, fault.user, fault.session,
            fault.first, fault.limit)  # fmt: skip


def test_fault_plans_draw_every_kind_and_every_scope() -> None:
    plans = collect(fault_plans(kinds=FAULT_KINDS, users=("alice", "bob")), 200)
    kinds: Counter[str] = Counter()
    for plan in plans:
        assert isinstance(plan, FaultPlan)
        for fault in plan:
            assert fault.limit is not None
            assert 1 <= fault.limit <= 2
            kinds["user" if fault.user else "any user"] += 1
            kinds["session" if fault.session else "any session"] += 1
            kinds["nth" if fault.first > 1 else "first"] += 1
        for code in plan.code:
            kinds[code.split("(")[0].removeprefix("faults.")] += 1
    assert set(FAULT_KINDS) - set(kinds) == set(), kinds
    assert {"user", "any user", "session", "any session", "nth", "first"} <= set(kinds)


def test_default_fault_plans_hold_only_survivable_faults() -> None:
    for plan in collect(fault_plans(), 100):
        assert isinstance(plan, FaultPlan)
        assert {code.split("(")[0].removeprefix("faults.") for code in plan.code} <= set(
            SURVIVABLE_FAULT_KINDS
        )


def test_a_fault_plan_arms_in_one_call_and_its_repr_rebuilds_it() -> None:
    for plan in collect(fault_plans(kinds=FAULT_KINDS, min_faults=1), 60):
        assert isinstance(plan, FaultPlan)
        target = FaultSet()
        armed = plan.arm(target)
        assert [a.fault for a in armed] == list(plan) == [a.fault for a in target]
        rebuilt = eval(repr(plan), {"faults": faults, "FaultPlan": FaultPlan})
        assert [_shape(f) for f in rebuilt] == [_shape(f) for f in plan]
    assert str(FaultPlan()) == "no faults"


# -- packaging ------------------------------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_hypothesis_the_import_error_names_the_extra() -> None:
    done = _run(
        """
        import sys
        sys.modules["hypothesis"] = None  # as if it were not installed
        import fakepop
        from fakepop import *  # the package works without it
        try:
            import fakepop.strategies
        except ImportError as exc:
            print(exc)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "fakepop.strategies needs Hypothesis: pip install 'fakepop[hypothesis]'\n"


def test_neither_the_package_nor_the_plugin_imports_the_strategies() -> None:
    done = _run(
        """
        import sys
        import fakepop, fakepop.pytest_plugin
        print("fakepop.strategies" in sys.modules, "hypothesis" in sys.modules)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "False False\n"


def test_strategies_take_no_randomness_but_hypothesis() -> None:
    """No random module, no clock: a seed replays the same examples."""

    def draw_with(number: int) -> list[object]:
        found: list[object] = []

        @seed(number)
        @settings(database=None, max_examples=30, phases=[Phase.generate])
        @given(messages(max_size=1_000), fault_plans())
        def draw(message: bytes, plan: FaultPlan) -> None:
            found.append((message, repr(plan)))

        draw()
        return found

    assert draw_with(1234) == draw_with(1234)
    source = "".join(
        (ROOT / "fakepop" / name).read_text(encoding="utf-8")
        for name in ("_composing.py", "_message_strategies.py", "_malformed_strategies.py",
                     "_mailbox_strategies.py", "_fault_strategies.py", "strategies.py")
    )  # fmt: skip
    assert not re.search(r"^\s*(import random|from random|import time)", source, re.MULTILINE)


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("Grüße aus Zürich, Привет, こんにちは " * 4, "utf-8"),
        ("請求書を添付します、こんにちは " * 5, "iso-2022-jp"),
        ("Привет, мир " * 8, "koi8-r"),
    ],
)
@pytest.mark.parametrize("encoding", ["q", "b"])
def test_encoded_words_decode_back_to_their_text(text: str, charset: str, encoding: str) -> None:
    """RFC 2047 section 2: at most 75 characters a word, each decodable alone."""
    from fakepop._composing import encoded_words  # noqa: PLC0415 - the builder itself

    words = encoded_words(text, charset, encoding)
    assert len(words) > 1
    assert all(len(word) <= 75 for word in words)
    assert [str(email.header.make_header(email.header.decode_header(w))) for w in words]
    decoded = str(email.header.make_header(email.header.decode_header(" ".join(words))))
    assert decoded == text


def test_a_message_is_an_email_message_for_the_stdlib() -> None:
    message = collect(messages(structures=["alternative"]), 1)[0]
    assert isinstance(message, bytes)
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_body(("plain",)) is not None
