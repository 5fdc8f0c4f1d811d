"""Hypothesis strategies for malformed mail: messages with one defect each, as real
mailboxes hold them and the RFCs forbid. ``fakepop.strategies`` exports them; see its
docstring.

Each is built around a plain, single-part message drawn by the valid messages'
builder (:mod:`fakepop._message_strategies`), then broken in one way, so hypothesis
shrinks it toward the plainest message that still shows the defect.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from hypothesis import strategies as st

from . import _composing as compose
from ._message_strategies import CHARSETS, PHRASES_IN, Builder, Knobs, choose, prose

__all__ = ["DEFECTS", "Malformed", "malformed_messages"]


@dataclass(frozen=True)
class Malformed:
    """A message as real mailboxes hold it and the RFCs forbid, with what is wrong."""

    #: The octets of the message.
    data: bytes
    #: What is wrong with it: one of ``DEFECTS``.
    defect: str


def malformed_messages(*, defects: Collection[str] | None = None) -> st.SearchStrategy[Malformed]:
    """Messages with one defect each, as :class:`Malformed` ``(data, defect)``
    pairs; ``defects`` chooses among :data:`DEFECTS` (all by default).

    Each is the kind of thing parsers choke on and mailboxes hold anyway; a robust
    importer stores it unchanged (fakepop sends it as it is, line endings made CRLF).
    Those with 8-bit octets in their headers need the client's ``UTF8`` command first,
    as for :func:`messages` with ``raw_utf8_headers``.
    """
    chosen = DEFECTS if defects is None else choose("defects", defects, DEFECTS)
    return _malformed(chosen)


@st.composite
def _malformed(draw: st.DrawFn, defects: tuple[str, ...]) -> Malformed:
    defect = draw(st.sampled_from(defects))
    return Malformed(_DEFECT_BUILDERS[defect](Builder(draw, _SIMPLE)), defect)


# What a malformed message is built around: a plain, ASCII, single-part message.
_SIMPLE = Knobs(
    structures=("single",),
    transfer_encodings=("7bit",),
    charsets=(),
    raw_utf8_headers=False,
    long_headers=False,
    duplicate_headers=False,
    missing_headers=False,
    dot_lines=True,
    from_lines=False,
    long_lines=False,
    line_endings=("crlf",),
    final_newline=True,
    max_size=0,
    max_depth=0,
)


def _plain_headers(build: Builder) -> bytes:
    return b"".join(build.headers(top=True))


def _body_lines(build: Builder) -> bytes:
    lines = build.draw(st.lists(build.line("us-ascii"), min_size=1, max_size=4))
    return "".join(f"{line}\n" for line in lines).encode("ascii")


def _crlf(message: bytes) -> bytes:
    return compose.with_line_endings(message, "crlf")


def _simple(build: Builder, headers: bytes = b"", body: bytes | None = None) -> bytes:
    # Extra header lines first, then a plain message's, the empty line and a body.
    body = _body_lines(build) if body is None else body
    return _crlf(headers + _plain_headers(build) + b"\n" + body)


def _multipart(build: Builder, boundary: bytes | None, body: bytes) -> bytes:
    parameter = b"" if boundary is None else b'; boundary="' + boundary + b'"'
    mime = b"MIME-Version: 1.0\nContent-Type: multipart/mixed" + parameter + b"\n"
    return _crlf(_plain_headers(build) + mime + b"\n" + body)


def _part(build: Builder) -> bytes:
    return b"Content-Type: text/plain; charset=us-ascii\n\n" + _body_lines(build)


def _text_with(build: Builder, content_type: bytes, cte: bytes, body: bytes) -> bytes:
    mime = b"MIME-Version: 1.0\nContent-Type: " + content_type + b"\n"
    mime += b"Content-Transfer-Encoding: " + cte + b"\n"
    return _crlf(_plain_headers(build) + mime + b"\n" + body)


def _broken_boundary(build: Builder) -> bytes:
    # The parts are separated by a boundary other than the one declared.
    return _multipart(build, b"=_declared", b"--=_used\n" + _part(build) + b"--=_used--\n")


def _unterminated_multipart(build: Builder) -> bytes:
    # No closing delimiter: the message ends inside its last part.
    parts = build.number(1, 3)
    body = b"".join(b"--=_open\n" + _part(build) for _ in range(parts))
    return _multipart(build, b"=_open", body)


def _missing_boundary_parameter(build: Builder) -> bytes:
    return _multipart(build, None, b"--=_nowhere\n" + _part(build) + b"--=_nowhere--\n")


def _undeclared_8bit(build: Builder) -> bytes:
    # 8-bit octets in the body, and no MIME header to say what they are.
    charset = build.pick([c for c in CHARSETS if c != "iso-2022-jp"])  # that one is 7-bit
    text = build.pick([p for p in PHRASES_IN[charset] if not p.isascii()])
    return _simple(build, body=text.encode(compose.CHARSET_CODECS[charset]) + b"\n")


def _eight_bit_header(build: Builder) -> bytes:
    # Raw Latin-1 (not UTF-8) in a header, as old clients wrote it.
    text = build.pick(("Grüße aus Zürich", "Ça va? Très bien!"))
    return _simple(build, headers=b"Subject: " + text.encode("latin-1") + b"\n")


def _unknown_charset(build: Builder) -> bytes:
    name = build.pick(("x-unknown", "utf-9", "latin-42", ""))
    if build.coin():
        return _simple(build, headers=f"Subject: =?{name}?q?caf=E9?=\n".encode())
    content_type = b'text/plain; charset="' + name.encode() + b'"'
    return _text_with(build, content_type, b"8bit", b"caf\xe9\n")


def _bad_encoded_word(build: Builder) -> bytes:
    word = build.draw(
        st.sampled_from(
            (
                "=?utf-8?q?unterminated",
                "=?utf-8?b?not*base64?=",
                "=?utf-8?x?unknown_encoding?=",
                "=?utf-8?q?invalid_utf8_=FF=FE?=",
                "=?utf-8?b?w6k?=",  # base64 without its padding
                "=?utf-8?q?spaces inside the word?=",
            )
        )
    )
    return _simple(build, headers=f"Subject: {word}\n".encode())


def _header_without_colon(build: Builder) -> bytes:
    headers = build.headers(top=True)
    where = build.number(0, len(headers))
    headers.insert(where, b"This line has no colon\n")
    return _crlf(b"".join(headers) + b"\n" + _body_lines(build))


def _continuation_first(build: Builder) -> bytes:
    # The first header line starts with white space: the continuation of nothing.
    return _simple(build, headers=b" folded onto nothing\n")


def _nul_byte(build: Builder) -> bytes:
    body = _body_lines(build)
    where = build.number(0, len(body) - 1)
    return _simple(build, body=body[:where] + b"\x00" + body[where:])


def _invalid_base64(build: Builder) -> bytes:
    payload = build.draw(
        st.sampled_from((b"SGVsbG8*!@#\n", b"SGVsbG8\n", b"SGVs=bG8=\n", b"====\n"))
    )
    return _text_with(build, b"text/plain; charset=utf-8", b"base64", payload)


def _invalid_utf8(build: Builder) -> bytes:
    junk = build.draw(
        st.sampled_from((b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf"))
    )
    body = b"before " + junk + b" after\n"
    return _text_with(build, b"text/plain; charset=utf-8", b"8bit", body)


def _overlong_line(build: Builder) -> bytes:
    # Longer than RFC 5322's 998 octets: in the body or in a header.
    line = prose(build.number(compose.LINE_LIMIT + 1, 20_000)).encode("ascii")
    if build.coin():
        return _simple(build, headers=b"X-Overlong: " + line + b"\n")
    return _simple(build, body=line + b"\n")


def _duplicate_singleton(build: Builder) -> bytes:
    # RFC 5322 section 3.6 allows one of each of these; mailboxes hold two.
    name = build.pick(("Subject", "From", "Date", "Message-ID", "To"))
    value = "<second@example.org>" if name == "Message-ID" else "second"
    return _simple(build, headers=compose.header(name, value))


def _missing_required(build: Builder) -> bytes:
    gone = build.pick(((b"From:",), (b"Date:",), (b"From:", b"Date:")))
    kept = [line for line in build.headers(top=True) if not line.startswith(gone)]
    return _crlf(b"".join(kept) + b"\n" + _body_lines(build))


def _bad_date(build: Builder) -> bytes:
    date = build.draw(
        st.sampled_from(
            (
                "yesterday",
                "31 Feb 2024 25:61:61 +9999",
                "Mon, 32 Foo 20 12:00:00",
                "2024-06-03T09:00:00Z",
                "",
            )
        )
    )
    kept = [line for line in build.headers(top=True) if not line.startswith(b"Date:")]
    headers = b"".join(kept) + compose.header("Date", date)
    return _crlf(headers + b"\n" + _body_lines(build))


def _mixed_line_endings(build: Builder) -> bytes:
    # CRLF, bare LF and bare CR in one message (fakepop sends each as CRLF): the first
    # line (a header) ends in a bare LF, the last in a bare CR, the others as drawn.
    lines = (_plain_headers(build) + b"\n" + _body_lines(build)).split(b"\n")[:-1]
    middle = build.draw(
        st.lists(
            st.sampled_from((b"\r\n", b"\n", b"\r")),
            min_size=len(lines) - 2,
            max_size=len(lines) - 2,
        )
    )
    endings = [b"\n", *middle, b"\r"]
    return b"".join(line + ending for line, ending in zip(lines, endings, strict=True))


_DEFECT_BUILDERS: dict[str, Callable[[Builder], bytes]] = {
    "nul_byte": _nul_byte,
    "undeclared_8bit": _undeclared_8bit,
    "eight_bit_header": _eight_bit_header,
    "invalid_utf8": _invalid_utf8,
    "unknown_charset": _unknown_charset,
    "bad_encoded_word": _bad_encoded_word,
    "header_without_colon": _header_without_colon,
    "continuation_first": _continuation_first,
    "missing_required_headers": _missing_required,
    "duplicate_singleton_header": _duplicate_singleton,
    "bad_date": _bad_date,
    "overlong_line": _overlong_line,
    "mixed_line_endings": _mixed_line_endings,
    "invalid_base64": _invalid_base64,
    "broken_boundary": _broken_boundary,
    "unterminated_multipart": _unterminated_multipart,
    "missing_boundary_parameter": _missing_boundary_parameter,
}
#: The defects ``malformed_messages()`` draws, by name: NUL octets; 8-bit octets with
#: no charset declared, or in a header as Latin-1; invalid UTF-8 in a UTF-8 body;
#: unknown charsets; broken encoded words; a header line without a colon, or a first
#: line that continues nothing; From or Date missing, Subject and the like twice; an
#: unparseable Date; lines over 998 octets; CRLF, LF and CR mixed; invalid base64;
#: multiparts whose boundary is wrong, never closed or not declared.
DEFECTS = tuple(_DEFECT_BUILDERS)
