"""Hypothesis strategies for mail: valid messages, and the malformed ones real
mailboxes hold. ``fakepop.strategies`` exports them; see its docstring.

Every message is drawn as a sequence of choices, the simplest first (a single
text/plain part before any multipart, ordinary headers before odd ones, short bodies
before large ones), so hypothesis shrinks a failing message toward a plain one and
what is left in the shrunk example is what the code under test cannot take.
"""

from __future__ import annotations

import datetime
import email.utils
import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TypeVar

from hypothesis import strategies as st

from . import _composing as compose
from .errors import ConfigError

__all__ = [
    "CHARSETS",
    "LINE_ENDINGS",
    "STRUCTURES",
    "TRANSFER_ENCODINGS",
    "messages",
]

#: The MIME structures ``messages()`` draws, simplest first: one part; then
#: multipart/mixed (text and attachments, sometimes attachments only),
#: multipart/alternative (text and HTML), multipart/related (HTML and the images it
#: shows), multiparts inside multiparts, and a forwarded message/rfc822 inside.
STRUCTURES = ("single", "mixed", "alternative", "related", "nested", "rfc822")
#: The Content-Transfer-Encodings of text parts (attachments are always base64).
TRANSFER_ENCODINGS = ("7bit", "8bit", "quoted-printable", "base64")
#: The charsets of encoded words in headers (RFC 2047) and of 8-bit, quoted-printable
#: and base64 text.
CHARSETS = (
    "utf-8",
    "iso-8859-1",
    "windows-1252",
    "koi8-r",
    "iso-8859-7",
    "shift_jis",
    "iso-2022-jp",
    "euc-kr",
    "gb2312",
    "big5",
)
#: ``"crlf"``: as POP3 sends mail; ``"lf"``: as mail is stored on Unix.
LINE_ENDINGS = ("crlf", "lf")

# Text in several scripts; each charset uses the phrases it can encode.
_PHRASES = (
    "Hello",
    "Invoice 2024-0042 attached",
    "Re: Fwd: lunch on Friday?",
    "Price: 5 EUR (incl. VAT)",
    "Grüße aus Zürich",
    "Ça va? Très bien!",
    "Café crème à 4,50 €",
    "\u201cSmart quotes\u201d \u2013 and a dash",
    "Привет, мир",
    "Счёт на оплату 42",
    "Καλημέρα κόσμε",
    "こんにちは世界",
    "請求書を添付します",
    "안녕하세요",
    "你好\uff0c世界",
    "📬 New mail",
)
_DISPLAY_NAMES = ("Alice Example", "Bob O'Neil", "Müller, Jürgen", "Иван Петров", "山田太郎")
_LOCAL_PARTS = ("alice", "bob.smith", "first+tag", "o'reilly", "x")
_DOMAINS = ("example.org", "example.com", "mail.example.net")
# Body lines that trip POP3 dot-stuffing (RFC 1939 section 3) and mbox "From " quoting.
_DOT_LINES = (".", "..", ".hidden-file", "..two dots", ". a dot and a space")
_FROM_LINES = ("From here on, all is well.", "From: not a header", ">From quoted already")
_PROSE = "The quick brown fox jumps over the lazy dog. "
# Odd but legal attachment names: non-ASCII, spaces, quotes, path separators, long.
_FILENAMES = (
    "report.pdf",
    "résumé final (2).pdf",
    "Счёт №42.xlsx",
    "報告書.docx",
    'say "cheese".jpg',
    "a;b=c.txt",
    "..\\..\\windows\\evil.exe",
    "../../etc/passwd",
    " leading and trailing spaces .txt ",
    "no extension",
    ".hidden",
    "CON",
    "x" * 120 + ".bin",
)
_ATTACHMENT_TYPES = (
    "application/octet-stream",
    "application/pdf",
    "image/png",
    "text/csv",
    "application/zip",
)
# Legal boundaries (RFC 2046 section 5.1.1): up to 70 of these characters, not ending
# in a space; a serial number keeps those of one message apart.
_BOUNDARIES = (
    "=_fakepop_{n}",
    "----=_Part_{n}_1234567.890",
    "simple boundary {n}",
    "b{n}",
    "'()+_,-./:=? {n}",
    "=_" + "x" * 60 + "_{n}",
)
# One in eight: the rare branches (large bodies, a missing final newline).
_RARELY = st.sampled_from((False,) * 7 + (True,))
_COIN = st.booleans()
_ABSENT = st.frozensets(st.sampled_from(("To", "Cc", "Subject", "Message-ID")))
_SMALL_DATA = st.binary(max_size=64)
_T = TypeVar("_T")


@functools.cache
def _sampled(values: tuple[_T, ...]) -> st.SearchStrategy[_T]:
    return st.sampled_from(values)


@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


def _fits(text: str, charset: str) -> bool:
    try:
        text.encode(compose.CHARSET_CODECS[charset])
    except UnicodeError:
        return False
    return True


# The phrases each charset can write.
PHRASES_IN = {
    charset: tuple(p for p in _PHRASES if _fits(p, charset)) for charset in compose.CHARSET_CODECS
}


def choose(
    name: str, given: Iterable[str], allowed: tuple[str, ...], *, empty_ok: bool = False
) -> tuple[str, ...]:
    # The allowed values asked for, in the canonical order (simplest first), so that
    # shrinking goes the same way whatever order the caller wrote them in.
    if isinstance(given, str):
        raise ConfigError(f"{name} must be a collection of names, like {allowed[:2]!r}")
    chosen = set(given)
    unknown = chosen - set(allowed)
    if unknown:
        raise ConfigError(f"unknown {name} {sorted(unknown)}; choose from {list(allowed)}")
    if not chosen and not empty_ok:
        raise ConfigError(f"{name} cannot be empty; choose from {list(allowed)}")
    return tuple(value for value in allowed if value in chosen)


@dataclass(frozen=True)
class Knobs:
    structures: tuple[str, ...]
    transfer_encodings: tuple[str, ...]
    charsets: tuple[str, ...]
    raw_utf8_headers: bool
    long_headers: bool
    duplicate_headers: bool
    missing_headers: bool
    dot_lines: bool
    from_lines: bool
    long_lines: bool
    line_endings: tuple[str, ...]
    final_newline: bool | None
    max_size: int
    max_depth: int


def messages(
    *,
    structures: Collection[str] = STRUCTURES,
    transfer_encodings: Collection[str] = TRANSFER_ENCODINGS,
    charsets: Collection[str] = CHARSETS,
    raw_utf8_headers: bool = False,
    long_headers: bool = True,
    duplicate_headers: bool = True,
    missing_headers: bool = True,
    dot_lines: bool = True,
    from_lines: bool = True,
    long_lines: bool = True,
    line_endings: Collection[str] = LINE_ENDINGS,
    final_newline: bool | None = None,
    max_size: int = 256 * 1024,
    max_depth: int = 3,
) -> st.SearchStrategy[bytes]:
    """Valid RFC 5322 messages as octets, built with the stdlib ``email`` package.

    - ``structures``: which of :data:`STRUCTURES` may be drawn.
    - ``transfer_encodings``: the Content-Transfer-Encodings of text parts.
    - ``charsets``: of encoded words in Subject, From, To and Cc (RFC 2047, Q and B)
      and of non-ASCII text; ``()`` keeps headers ASCII and text 7-bit.
    - ``raw_utf8_headers``: also raw UTF-8 in those headers (RFC 6532). Off by
      default, so messages stay RFC 5322 as it stood before RFC 6532; fakepop sends
      them as they are, unless the server refuses them before the client's ``UTF8``
      command (``ServerConfig(utf8_refuse_unless_enabled=True)``).
    - ``long_headers``: long Subjects folded over several lines, and single header
      lines of up to 998 octets. ``duplicate_headers``: repeated Received, Comments
      and Keywords fields. ``missing_headers``: To, Cc, Subject and Message-ID may be
      absent (From and Date never are: RFC 5322 section 3.6 requires them).
    - ``dot_lines``: body lines that start with ``.``, and lines that are exactly ``.``.
      ``from_lines``: body lines that start with ``From ``. ``long_lines``: body
      lines of up to 998 octets, the longest RFC 5322 allows.
    - ``line_endings``: ``"crlf"`` and/or ``"lf"``. ``final_newline``: ``True`` always
      ends the message with a line ending, ``False`` never, ``None`` mostly.
    - ``max_size``: now and then a large part, of between half this many octets and
      this many; ``0`` never. ``max_depth``: how deep multiparts and enclosed messages nest.

    Empty bodies, headers without a body, attachments only (no text part at all),
    HTML only and attachments with odd file names come with the structures.
    """
    for name, value in (("max_size", max_size), ("max_depth", max_depth)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be a whole number from 0, not {value!r}")
    knobs = Knobs(
        structures=choose("structures", structures, STRUCTURES),
        transfer_encodings=choose("transfer_encodings", transfer_encodings, TRANSFER_ENCODINGS),
        charsets=choose("charsets", charsets, CHARSETS, empty_ok=True),
        raw_utf8_headers=bool(raw_utf8_headers),
        long_headers=bool(long_headers),
        duplicate_headers=bool(duplicate_headers),
        missing_headers=bool(missing_headers),
        dot_lines=bool(dot_lines),
        from_lines=bool(from_lines),
        long_lines=bool(long_lines),
        line_endings=choose("line_endings", line_endings, LINE_ENDINGS),
        final_newline=final_newline,
        max_size=max_size,
        max_depth=max_depth,
    )
    return _whole_message(knobs)


@st.composite
def _whole_message(draw: st.DrawFn, knobs: Knobs) -> bytes:
    message = Builder(draw, knobs).message(depth=0)
    ending = draw(st.sampled_from(knobs.line_endings))
    final = knobs.final_newline
    if final is None:
        final = not draw(_RARELY)
    if not final and message.endswith(b"\n"):
        message = message[:-1]
    return compose.with_line_endings(message, ending)


class Builder:
    """Draws the parts of one message, each choice simplest first."""

    def __init__(self, draw: st.DrawFn, knobs: Knobs) -> None:
        self.draw = draw
        self.knobs = knobs
        self.boundaries = 0  # numbered, so that nested multiparts never share one

    # Strategies are made once and reused: hypothesis checks each new one it meets.
    def pick(self, values: Sequence[_T]) -> _T:
        """One of ``values``, shrinking toward the first."""
        strategy: st.SearchStrategy[_T] = _sampled(tuple(values))
        return self.draw(strategy)

    def number(self, low: int, high: int) -> int:
        return self.draw(_integers(low, high))

    def coin(self) -> bool:
        return self.draw(_COIN)

    def rarely(self) -> bool:
        """True one time in eight."""
        return bool(self.draw(_RARELY))

    def message(self, depth: int) -> bytes:
        """A whole message with LF endings; below the top, with ASCII headers (an
        enclosed message/rfc822, RFC 2046 section 5.2.1)."""
        structure = self.pick(self.knobs.structures)
        headers = self.headers(top=depth == 0)
        entity = self.structure(structure, depth)
        if entity is not None:
            headers.append(compose.header("MIME-Version", "1.0"))
        return compose.assemble(headers, entity)

    # -- structure ----------------------------------------------------------------------
    def structure(self, structure: str, depth: int) -> EmailMessage | None:
        if structure == "single":
            kind = self.pick(("text", "empty", "html", "attachment"))
            if kind == "empty":
                return None  # the headers, the empty line, and no body at all
            if kind == "attachment":
                return self.attachment()
            return self.text("html" if kind == "html" else "plain")
        if structure == "alternative":
            parts = [self.text("plain"), self.text("html")]
            return compose.multipart("alternative", parts, self.boundary())
        if structure == "related":
            return self.related()
        if structure == "nested" and depth < self.knobs.max_depth:
            inner = self.pick(("alternative", "related", "mixed"))
            first = self.structure(inner, depth + 1)
            assert first is not None
            rest = [self.leaf() for _ in range(self.number(0, 2))]
            return compose.multipart("mixed", [first, *rest], self.boundary())
        if structure == "rfc822" and depth < self.knobs.max_depth:
            note = self.text("plain")
            forwarded = compose.enclosed(self.message(depth + 1))
            return compose.multipart("mixed", [note, forwarded], self.boundary())
        # multipart/mixed, and what nests no deeper: sometimes without any text part.
        parts = [self.leaf() for _ in range(self.number(1, 4))]
        return compose.multipart("mixed", parts, self.boundary())

    def leaf(self) -> EmailMessage:
        kind = self.pick(("plain", "attachment", "html"))
        return self.attachment() if kind == "attachment" else self.text(kind)

    def related(self) -> EmailMessage:
        count = self.number(1, 2)
        images = [
            compose.attachment(
                _PNG_SIGNATURE + bytes([i]),
                "image/png",
                filename=f"image{i}.png",
                disposition="inline",
                content_id=f"<image{i}@fakepop.example>",
            )
            for i in range(count)
        ]
        tags = "".join(f'<img src="cid:image{i}@fakepop.example">\n' for i in range(count))
        html = self.text("html", extra=tags)
        return compose.multipart("related", [html, *images], self.boundary())

    def boundary(self) -> str:
        self.boundaries += 1
        return self.pick(_BOUNDARIES).format(n=self.boundaries)

    # -- bodies -------------------------------------------------------------------------
    def text(self, subtype: str, extra: str = "") -> EmailMessage:
        draw, knobs = self.draw, self.knobs
        cte = self.pick(knobs.transfer_encodings)
        if cte == "7bit" or not knobs.charsets:
            charset = "us-ascii"
            cte = "7bit" if cte == "8bit" else cte
        else:
            charset = self.pick(knobs.charsets)
        lines = draw(st.lists(self.line(charset), min_size=1, max_size=8))
        if knobs.max_size and self.rarely():
            size = self.number(knobs.max_size // 2, knobs.max_size)
            lines += [f"Line {i:06d} of a large message." for i in range(size // 32)]
        if subtype == "html":
            body = "".join(f"{_html_escape(line)}<br>\n" for line in lines)
            text = f"<html>\n<body>\n{extra}{body}</body>\n</html>\n"
        else:
            text = "\n".join(lines) + "\n"
        return compose.text_part(text, subtype=subtype, charset=charset, cte=cte)

    def line(self, charset: str) -> st.SearchStrategy[str]:
        return _line(self.knobs, charset)

    def attachment(self) -> EmailMessage:
        draw = self.draw
        filename = self.pick(_FILENAMES)
        content_type = self.pick(_ATTACHMENT_TYPES)
        data = draw(_SMALL_DATA)
        if self.knobs.max_size and self.rarely():
            size = self.number(self.knobs.max_size // 2, self.knobs.max_size)
            data = (data or b"\x00") * (size // max(1, len(data)))
        return compose.attachment(data, content_type, filename=filename)

    # -- headers ------------------------------------------------------------------------
    def headers(self, *, top: bool) -> list[bytes]:
        draw, knobs = self.draw, self.knobs
        lines: list[bytes] = []
        date = self.date()
        if knobs.duplicate_headers:
            for hop in range(self.number(0, 3)):
                trace = f"from relay{hop}.example.net by mx.example.org; {date}"
                lines.append(compose.fold("Received", trace.split(" ")))
        absent: frozenset[str] = frozenset()
        if knobs.missing_headers:
            absent = draw(_ABSENT)
        lines.append(self.address("From", top=top))
        if "To" not in absent:
            lines.append(self.address("To", top=top))
        if "Cc" not in absent and self.coin():
            lines.append(self.address("Cc", top=top))
        if "Subject" not in absent:
            lines.append(self.subject(top=top))
        lines.append(compose.header("Date", date))
        if "Message-ID" not in absent:
            number = self.number(0, 10**9)
            lines.append(compose.header("Message-ID", f"<{number}.fakepop@example.org>"))
        if knobs.duplicate_headers:
            repeated = self.pick(("", "Comments", "Keywords"))
            if repeated:
                lines += [compose.header(repeated, "first"), compose.header(repeated, "second")]
        if knobs.long_headers and self.rarely():
            # One unfolded line, as long as RFC 5322 allows (998 octets without CRLF).
            length = self.number(79, compose.LINE_LIMIT)
            name = "X-Long-Header"
            lines.append(compose.header(name, prose(length - len(name) - 2).rstrip()))
        return lines

    def date(self) -> str:
        seconds = self.number(0, 4_102_444_800)  # 1970 to 2100
        offset = self.pick((0, 60, -300, 330, 545, -720, 840))
        zone = datetime.timezone(datetime.timedelta(minutes=offset))
        return email.utils.format_datetime(datetime.datetime.fromtimestamp(seconds, zone))

    def style(self, *, top: bool) -> str:
        """How a header's text is written: ASCII, RFC 2047 encoded words, raw UTF-8."""
        styles = ["ascii"]
        if self.knobs.charsets:
            styles.append("encoded")
        if self.knobs.raw_utf8_headers and top:
            styles.append("raw")
        return self.pick(styles)

    def words(self, candidates: Iterable[str], style: str) -> list[str]:
        """One of ``candidates`` in ``style``, as the words of a header line."""
        if style == "encoded":
            charset = self.pick(self.knobs.charsets)
            texts = [text for text in candidates if _fits(text, charset) and not text.isascii()]
            text = self.pick(texts or ["x"])
            encoding = self.pick(("q", "b"))
            return compose.encoded_words(text, charset, encoding)
        wanted = style == "ascii"
        text = self.pick([text for text in candidates if text.isascii() == wanted])
        return text.split(" ")

    def subject(self, *, top: bool) -> bytes:
        words = self.words(_PHRASES, self.style(top=top))
        if self.knobs.long_headers and self.coin():
            words *= self.number(2, 12)  # folded over several lines
        return compose.fold("Subject", words)

    def address(self, name: str, *, top: bool) -> bytes:
        local = self.pick(_LOCAL_PARTS)
        address = f"{local}@{self.pick(_DOMAINS)}"
        if not self.coin():
            return compose.header(name, address)
        style = self.style(top=top)
        words = self.words(_DISPLAY_NAMES, style)
        if style == "encoded":
            return compose.fold(name, [*words, f"<{address}>"])
        # A quoted string: the names hold commas and apostrophes (RFC 5322 3.2.4).
        display = " ".join(words).replace("\\", "\\\\").replace('"', '\\"')
        return compose.header(name, f'"{display}" <{address}>')


@functools.cache
def _line(knobs: Knobs, charset: str) -> st.SearchStrategy[str]:
    # A body line in ``charset``: a phrase first, then the lines the knobs allow.
    phrases = st.sampled_from(PHRASES_IN[charset])
    choices = [phrases, st.just(""), phrases.map(lambda phrase: phrase + " \t")]
    if knobs.dot_lines:
        choices.append(st.sampled_from(_DOT_LINES))
    if knobs.from_lines:
        choices.append(st.sampled_from(_FROM_LINES))
    if knobs.long_lines:
        # ASCII, so that the octet count is the character count in every charset.
        choices.append(st.integers(79, compose.LINE_LIMIT).map(prose))
    return st.one_of(choices)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def _html_escape(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def prose(length: int) -> str:
    return (_PROSE * (length // len(_PROSE) + 1))[:length]
