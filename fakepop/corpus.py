"""Named messages, each made to spring one trap that mail importers fall into.

Every message is built by code in this module (no real mail is copied), is the same
octets every time, and is named after its trap; the name is also a valid POP3 UID,
so a mailbox of the whole corpus keeps the names as UIDs::

    from fakepop import corpus

    MAILBOXES = {"alice": {"password": "pw", "messages": corpus.all()}}
    corpus.names()                 # ['plain', 'empty', 'headers_only', ...]
    corpus.get("koi8r_subject")    # a CorpusMessage: .name, .description, .data

``python -m fakepop --corpus alice`` serves them from the command line.

Most messages are given with CRLF line endings and a final CRLF, as POP3 sends them,
so RETR delivers exactly ``data``. Those whose trap is the line endings
(``bare_lf``, ``mixed_line_endings``, ``no_final_newline``) arrive with every line
ending made CRLF and a last one added, as fakepop (like any POP3 server) must send
them; they matter to code that reads mail from files. ``utf8_headers`` has raw UTF-8
in its headers, so fakepop sends it only after the client's ``UTF8`` command
(RFC 6856), and refuses it before with ``-ERR [UTF8]``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from . import _composing as compose
from .errors import ConfigError

__all__ = ["CorpusMessage", "all", "get", "names"]


@dataclass(frozen=True)
class CorpusMessage:
    """One message of the corpus."""

    #: The trap it sets, as a name; also its UID in a mailbox made of ``all()``.
    name: str
    #: What the trap is, and what a correct importer does with it.
    description: str
    #: The message octets.
    data: bytes


_BUILDERS: dict[str, Callable[[], bytes]] = {}


def _trap(build: Callable[[], bytes]) -> Callable[[], bytes]:
    # Registers a message under its builder's name, which its docstring describes.
    _BUILDERS[build.__name__] = functools.cache(build)
    return build


def names() -> list[str]:
    """The names of every message, in corpus order."""
    return list(_BUILDERS)


def get(name: str) -> CorpusMessage:
    """The message called ``name`` (ConfigError for a name the corpus lacks)."""
    try:
        build = _BUILDERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"the corpus has no message {name!r}; its names are {', '.join(_BUILDERS)}"
        ) from None
    return CorpusMessage(name, " ".join((build.__doc__ or "").split()), build())


def all() -> dict[str, bytes]:
    """Every message, by name: the ``messages`` of a mailbox, with the names as UIDs."""
    return {name: build() for name, build in _BUILDERS.items()}


# -- building blocks --------------------------------------------------------------------

_DATE = "Mon, 03 Jun 2024 09:00:00 +0000"


def _head(name: str, subject: str | list[str] = "", *, mime: bool = True) -> list[bytes]:
    # The ordinary headers of a corpus message; Subject is the trap's name by default,
    # and a list of words is folded.
    words = subject if isinstance(subject, list) else [subject or name.replace("_", " ")]
    lines = [
        compose.header("From", "Corpus Sender <sender@example.org>"),
        compose.header("To", "importer@example.org"),
        compose.fold("Subject", words),
        compose.header("Date", _DATE),
        compose.header("Message-ID", f"<{name}@corpus.fakepop.example>"),
    ]
    if mime:
        lines.append(compose.header("MIME-Version", "1.0"))
    return lines


def _crlf(message: bytes) -> bytes:
    return compose.with_line_endings(message, "crlf")


def _text(text: str, *, charset: str = "us-ascii", cte: str = "7bit") -> EmailMessage:
    return compose.text_part(text, charset=charset, cte=cte)


def _plain(name: str, body: bytes, *extra_headers: bytes) -> bytes:
    # A message with ordinary headers (plus any given) and a body spelled out in octets.
    return _crlf(b"".join([*_head(name, mime=False), *extra_headers]) + b"\n" + body)


def _pdf(name: str = "report.pdf") -> EmailMessage:
    return compose.attachment(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)), "application/pdf", filename=name
    )


# -- the messages -----------------------------------------------------------------------


@_trap
def plain() -> bytes:
    """An ordinary, correct text message: the control, which every importer must get
    right."""
    return _crlf(compose.assemble(_head("plain"), _text("Hello,\n\nsee you at ten.\n")))


@_trap
def empty() -> bytes:
    """A message of 0 octets: RETR answers ``+OK`` and the terminating ``.`` at once.
    An importer must store an empty file, not skip it or crash on the missing
    headers."""
    return b""


@_trap
def headers_only() -> bytes:
    """Headers and no empty line after them: a message with no body at all
    (RFC 5322 section 3.5 makes the body optional)."""
    return _crlf(b"".join(_head("headers_only", mime=False)))


@_trap
def empty_body() -> bytes:
    """Headers, the empty line, and nothing after it."""
    return _crlf(b"".join(_head("empty_body", mime=False)) + b"\n")


@_trap
def no_final_newline() -> bytes:
    """The last line has no line ending. POP3 cannot send it so (RFC 1939 section 3),
    so it arrives with a CRLF added; code reading mail files sees it as it is."""
    return _plain("no_final_newline", b"the last line has no line ending\n")[:-2]


@_trap
def bare_lf() -> bytes:
    """Every line ends in a bare LF, as mail is stored on Unix; it arrives with CRLF
    endings. An importer that compares sizes must compare the CRLF form (LIST's)."""
    return _plain("bare_lf", b"line one\nline two\n").replace(b"\r\n", b"\n")


@_trap
def mixed_line_endings() -> bytes:
    """CRLF, bare LF and a bare CR in one message; each arrives as CRLF (a bare CR
    too), so a line count taken before delivery differs from the one after."""
    message = _plain("mixed_line_endings", b"crlf\nbare lf\nbare cr\nend\n")
    return message.replace(b"crlf\r\nbare lf\r\n", b"crlf\r\nbare lf\n").replace(
        b"bare cr\r\n", b"bare cr\r"
    )


@_trap
def dot_line() -> bytes:
    """Body lines starting with ``.`` and ``..``: POP3 sends each with one more dot
    (RFC 1939 section 3) and a client must take it off again, no more."""
    return _plain("dot_line", b".hidden-file\n..two dots\n. a dot and a space\nlast line\n")


@_trap
def only_dot_line() -> bytes:
    """A body line that is exactly ``.``: sent as ``..``, it must not end the message
    early."""
    return _plain("only_dot_line", b"before the dot\n.\nafter the dot\n")


@_trap
def leading_dot() -> bytes:
    """The very first line of the message starts with a dot (and so is no header):
    the first line of a RETR payload is stuffed too."""
    return _crlf(b".first line, not a header\n\nbody\n")


@_trap
def from_line() -> bytes:
    """Body lines starting with ``From ``: an mbox writer must quote them (``>From``),
    and a reader of mbox files must not take them for the start of a new message."""
    return _plain("from_line", b"From here on, all is well.\nFrom: not a header either\n")


@_trap
def long_header_line() -> bytes:
    """One header line of 998 octets, the longest RFC 5322 section 2.1.1 allows,
    unfolded."""
    name = b"X-Long-Header: "
    value = (b"0123456789" * 100)[: compose.LINE_LIMIT - len(name)]
    return _plain("long_header_line", b"body\n", name + value + b"\n")


@_trap
def folded_header() -> bytes:
    """A Subject folded over five lines, with spaces and tabs: unfolding removes each
    CRLF and keeps the white space after it (RFC 5322 section 2.2.3)."""
    subject = b"Subject: a subject\n  folded with spaces\n\tand with a tab\n more\n end\n"
    head = [line for line in _head("folded_header", mime=False) if not line.startswith(b"Subject")]
    return _crlf(b"".join(head) + subject + b"\nbody\n")


@_trap
def long_body_line() -> bytes:
    """A body line of 998 octets, the longest allowed: more than many line buffers
    hold."""
    return _plain("long_body_line", b"x" * compose.LINE_LIMIT + b"\n")


@_trap
def overlong_body_line() -> bytes:
    """A body line of 10,000 octets, over RFC 5322's limit, as real mailboxes hold
    them (HTML mail written by programs). Python's poplib refuses lines over 2048
    octets ("line too long") unless ``poplib._MAXLINE`` is raised."""
    return _plain("overlong_body_line", b"<p>" + b"y" * 9_993 + b"</p>\n")


@_trap
def koi8r_subject() -> bytes:
    """A Subject in KOI8-R, as an RFC 2047 B encoded word: decodes to
    "Привет, мир"."""
    words = compose.encoded_words("Привет, мир", "koi8-r", "b")
    return _crlf(compose.assemble(_head("koi8r_subject", words), _text("Cyrillic subject.\n")))


@_trap
def iso2022jp_subject() -> bytes:
    """A Japanese Subject in ISO-2022-JP (escape sequences inside a B encoded word),
    and a body in the same charset."""
    words = compose.encoded_words("請求書を添付します", "iso-2022-jp", "b")
    body = _text("請求書を添付します。\n", charset="iso-2022-jp", cte="7bit")
    return _crlf(compose.assemble(_head("iso2022jp_subject", words), body))


@_trap
def mixed_encoded_words() -> bytes:
    """A Subject of encoded words in three charsets, Q and B, next to plain words: the
    white space between two adjacent encoded words disappears when decoding
    (RFC 2047 section 6.2), the one next to plain words does not."""
    parts = [
        "Re:",
        *compose.encoded_words("Grüße", "iso-8859-1", "q"),
        *compose.encoded_words(" aus Zürich", "utf-8", "b"),
        "and",
        *compose.encoded_words("Καλημέρα", "iso-8859-7", "q"),
    ]
    head = _head("mixed_encoded_words", parts)
    return _crlf(compose.assemble(head, _text("Several charsets in one header.\n")))


@_trap
def encoded_word_in_address() -> bytes:
    """A From display name that is an encoded word holding a comma: decoded too early,
    "Müller, Jürgen <...>" reads as two addresses."""
    display = compose.encoded_words("Müller, Jürgen", "utf-8", "q")[0]
    head = [
        line
        if not line.startswith(b"From:")
        else compose.header("From", f"{display} <mj@example.de>")
        for line in _head("encoded_word_in_address")
    ]
    return _crlf(compose.assemble(head, _text("Who sent this?\n")))


@_trap
def utf8_headers() -> bytes:
    """Raw UTF-8 in the headers (RFC 6532). fakepop sends it only after the client's
    ``UTF8`` command (RFC 6856) and answers ``-ERR [UTF8]`` before."""
    head = [
        line
        if not line.startswith(b"From:")
        else compose.header("From", "Jürgen Müller <jm@example.de>")
        for line in _head("utf8_headers", "Grüße aus Zürich")
    ]
    return _crlf(compose.assemble(head, _text("Grüße!\n", charset="utf-8", cte="8bit")))


@_trap
def latin1_8bit_body() -> bytes:
    """A body of 8-bit ISO-8859-1 octets, declared so: decoding it as UTF-8 fails."""
    body = _text("Grüße aus Zürich, Ça va?\n", charset="iso-8859-1", cte="8bit")
    return _crlf(compose.assemble(_head("latin1_8bit_body"), body))


@_trap
def eight_bit_undeclared() -> bytes:
    """8-bit octets (Windows-1252) in a body with no MIME headers at all, which says
    US-ASCII: an importer must keep the octets, whatever it shows."""
    return _plain("eight_bit_undeclared", "Caf\u00e9 \u2013 4,50 \u20ac\n".encode("cp1252"))


@_trap
def quoted_printable() -> bytes:
    """A quoted-printable body with soft line breaks, ``=3D``, encoded trailing white
    space and a line of 200 characters that arrives in pieces of 76."""
    text = "a = b\ntrailing space \n" + "long " * 40 + "\nCafé\n"
    body = _text(text, charset="utf-8", cte="quoted-printable")
    return _crlf(compose.assemble(_head("quoted_printable"), body))


@_trap
def base64_text() -> bytes:
    """A text/plain part in base64: its lines mean nothing until decoded."""
    body = _text("Hello in base64, with ümlauts.\n", charset="utf-8", cte="base64")
    return _crlf(compose.assemble(_head("base64_text"), body))


@_trap
def html_only() -> bytes:
    """A single text/html part and no text/plain at all."""
    html = compose.text_part("<html><body><p>Only <b>HTML</b>.</p></body></html>\n", subtype="html")
    return _crlf(compose.assemble(_head("html_only"), html))


@_trap
def multipart_alternative() -> bytes:
    """multipart/alternative: the same text as plain text and as HTML; the last part
    is the richest (RFC 2046 section 5.1.4)."""
    parts = [
        _text("Plain version.\n"),
        compose.text_part("<p>HTML version.</p>\n", subtype="html"),
    ]
    entity = compose.multipart("alternative", parts, "=_alt")
    return _crlf(compose.assemble(_head("multipart_alternative"), entity))


@_trap
def multipart_without_text() -> bytes:
    """multipart/mixed holding a PDF and nothing else: no text part to show or index."""
    entity = compose.multipart("mixed", [_pdf()], "=_mixed")
    return _crlf(compose.assemble(_head("multipart_without_text"), entity))


@_trap
def nested_multipart() -> bytes:
    """multipart/mixed > multipart/alternative > (text/plain, multipart/related >
    (text/html, image/png)), then a PDF: the text is three levels down."""
    image = compose.attachment(
        b"\x89PNG\r\n\x1a\n",
        "image/png",
        filename="logo.png",
        disposition="inline",
        content_id="<logo@corpus.fakepop.example>",
    )
    html = compose.text_part(
        '<p>See <img src="cid:logo@corpus.fakepop.example"></p>\n', subtype="html"
    )
    related = compose.multipart("related", [html, image], "=_related")
    alternative = compose.multipart(
        "alternative", [_text("See the logo.\n"), related], "=_alternative"
    )
    entity = compose.multipart("mixed", [alternative, _pdf()], "=_mixed")
    return _crlf(compose.assemble(_head("nested_multipart"), entity))


@_trap
def nested_rfc822() -> bytes:
    """A forwarded message (message/rfc822) that holds a forwarded message with a PDF:
    the inner messages' headers are not the outer message's."""
    innermost = compose.assemble(
        _head("innermost", "The original"),
        compose.multipart("mixed", [_text("Original.\n"), _pdf()], "=_inner2"),
    )
    inner = compose.assemble(
        _head("inner", "Fwd: The original"),
        compose.multipart(
            "mixed", [_text("Forwarding.\n"), compose.enclosed(innermost)], "=_inner1"
        ),
    )
    entity = compose.multipart("mixed", [_text("Fwd: Fwd:\n"), compose.enclosed(inner)], "=_outer")
    return _crlf(compose.assemble(_head("nested_rfc822", "Fwd: Fwd: The original"), entity))


@_trap
def base64_attachment_odd_filename() -> bytes:
    """A base64 attachment whose file name has accents, spaces, parentheses and a path
    (RFC 2231 encoded): saving it under that name unchecked writes outside the folder."""
    entity = compose.multipart(
        "mixed", [_text("Attached.\n"), _pdf("../../Résumé final (2).pdf")], "=_odd"
    )
    return _crlf(compose.assemble(_head("base64_attachment_odd_filename"), entity))


@_trap
def filename_encoded_word() -> bytes:
    """An attachment named with an RFC 2047 encoded word inside the quoted file name, as
    some clients write it although RFC 2047 section 5 forbids it."""
    word = compose.encoded_words("Счёт.pdf", "utf-8", "b")[0]
    part = (
        b"Content-Type: application/pdf\n"
        b'Content-Disposition: attachment; filename="' + word.encode("ascii") + b'"\n'
        b"Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n"
    )
    body = b"--=_ew\n" + part + b"--=_ew--\n"
    return _plain(
        "filename_encoded_word",
        body,
        b"MIME-Version: 1.0\n",
        b'Content-Type: multipart/mixed; boundary="=_ew"\n',
    )


@_trap
def long_filename() -> bytes:
    """An attachment name of 300 characters, split into RFC 2231 continuations
    (``filename*0*=``, ``filename*1*=``, ...)."""
    entity = compose.multipart("mixed", [_pdf("ä" + "n" * 295 + ".pdf")], "=_long")
    return _crlf(compose.assemble(_head("long_filename"), entity))


@_trap
def unknown_charset() -> bytes:
    """A text part in a charset nobody knows (``x-unknown``): decoding must fall back,
    not fail the import."""
    return _plain(
        "unknown_charset",
        b"caf\xe9\n",
        b"MIME-Version: 1.0\n",
        b'Content-Type: text/plain; charset="x-unknown"\n',
        b"Content-Transfer-Encoding: 8bit\n",
    )


@_trap
def broken_boundary() -> bytes:
    """A multipart whose parts are separated by a boundary other than the one it
    declares: a parser finds no parts, only a preamble."""
    body = b"--=_used\nContent-Type: text/plain\n\ntext\n--=_used--\n"
    return _plain(
        "broken_boundary",
        body,
        b"MIME-Version: 1.0\n",
        b'Content-Type: multipart/mixed; boundary="=_declared"\n',
    )


@_trap
def unterminated_multipart() -> bytes:
    """A multipart that never closes: no final ``--boundary--`` line, as when a
    message was cut off."""
    part = b"--=_open\nContent-Type: text/plain\n\n"
    body = part + b"first\n" + part + b"second\n"
    return _plain(
        "unterminated_multipart",
        body,
        b"MIME-Version: 1.0\n",
        b'Content-Type: multipart/mixed; boundary="=_open"\n',
    )


@_trap
def empty_multipart() -> bytes:
    """A multipart/mixed with a preamble, the closing delimiter and no part at all."""
    return _plain(
        "empty_multipart",
        b"A preamble only.\n--=_none--\n",
        b"MIME-Version: 1.0\n",
        b'Content-Type: multipart/mixed; boundary="=_none"\n',
    )


@_trap
def deeply_nested() -> bytes:
    """Multiparts nested 30 deep around one text part: recursive parsers run out of
    stack or patience."""
    entity = _text("At the bottom.\n")
    for depth in range(30):
        entity = compose.multipart("mixed", [entity], f"=_depth{depth}")
    return _crlf(compose.assemble(_head("deeply_nested"), entity))


@_trap
def many_parts() -> bytes:
    """A multipart/mixed of 200 small attachments."""
    parts = [
        compose.attachment(b"part %d\n" % i, "text/csv", filename=f"part{i:03d}.csv")
        for i in range(200)
    ]
    return _crlf(compose.assemble(_head("many_parts"), compose.multipart("mixed", parts, "=_many")))


@_trap
def invalid_base64() -> bytes:
    """A base64 body with characters outside the alphabet and broken padding."""
    return _plain(
        "invalid_base64",
        b"SGVsbG8*!@#\nSGVs=bG8=\n",
        b"MIME-Version: 1.0\n",
        b"Content-Type: text/plain; charset=utf-8\n",
        b"Content-Transfer-Encoding: base64\n",
    )


@_trap
def header_without_colon() -> bytes:
    """A line without a colon amid the headers: strict parsers end the headers there
    and take the rest for the body."""
    head = _head("header_without_colon", mime=False)
    head.insert(2, b"This line has no colon\n")
    return _crlf(b"".join(head) + b"\nbody\n")


@_trap
def whitespace_before_colon() -> bytes:
    """``Subject : ...``, white space between a field name and its colon: obsolete
    syntax that RFC 5322 section 4.5 says to accept."""
    head = [
        line
        for line in _head("whitespace_before_colon", mime=False)
        if not line.startswith(b"Subject")
    ]
    return _crlf(b"".join(head) + b"Subject : obsolete but legal\n\nbody\n")


@_trap
def nul_byte() -> bytes:
    """NUL octets in the body, which RFC 5322 forbids and C strings end at."""
    return _plain("nul_byte", b"before\x00after\n\x00\n")


@_trap
def duplicate_subject() -> bytes:
    """Two Subject headers (RFC 5322 section 3.6 allows one): which one is shown
    differs between programs."""
    return _plain("duplicate_subject", b"body\n", b"Subject: the second subject\n")


@_trap
def missing_from_and_date() -> bytes:
    """No From and no Date, both required by RFC 5322 section 3.6."""
    head = [
        line
        for line in _head("missing_from_and_date", mime=False)
        if not line.startswith((b"From:", b"Date:"))
    ]
    return _crlf(b"".join(head) + b"\nbody\n")


@_trap
def bad_date() -> bytes:
    """A Date that parses as nothing (``31 Feb 2024 25:61:61 +9999``): sorting by date
    must not fail the import."""
    head = [line for line in _head("bad_date", mime=False) if not line.startswith(b"Date:")]
    return _crlf(b"".join(head) + b"Date: 31 Feb 2024 25:61:61 +9999\n\nbody\n")


@_trap
def large_message() -> bytes:
    """About 1 MiB of text in 32-octet lines: more than one read, one buffer or one
    socket timeout's worth."""
    body = b"".join(b"Line %06d of a large message.\n" % i for i in range(32_768))
    return _plain("large_message", body)
