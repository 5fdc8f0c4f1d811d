"""Messages put together from parts with the stdlib ``email`` package.

``fakepop.strategies`` draws its messages with these builders and ``fakepop.corpus``
spells its traps out with them, so both make mail the same way. Nothing here is
random: boundaries, dates and message IDs all come from the caller, so a message is
the same every time it is built from the same values.

Everything is built with LF line endings; :func:`with_line_endings` turns them into
CRLF at the very end, when a message is whole. Header lines are built here as octets
(the caller decides how they are folded and encoded); the MIME entity under them, its
``Content-*`` headers and its body, is built and written by the ``email`` package.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from email import base64mime, quoprimime
from email.generator import BytesGenerator
from email.message import EmailMessage
from io import BytesIO

__all__ = [
    "CHARSET_CODECS",
    "LINE_LIMIT",
    "assemble",
    "attachment",
    "enclosed",
    "encoded_words",
    "fold",
    "header",
    "multipart",
    "text_part",
    "with_line_endings",
]

#: RFC 5322 section 2.1.1: a line is at most 998 octets, not counting its CRLF.
LINE_LIMIT = 998
# RFC 2047 section 2: an encoded word is at most 75 characters long.
_ENCODED_WORD_LIMIT = 75

#: The charsets fakepop writes mail in, by the name a message declares, with the
#: Python codec that encodes text in each.
CHARSET_CODECS = {
    "us-ascii": "ascii",
    "utf-8": "utf-8",
    "iso-8859-1": "latin-1",
    "windows-1252": "cp1252",
    "iso-8859-7": "iso8859-7",
    "koi8-r": "koi8-r",
    "shift_jis": "shift_jis",
    "iso-2022-jp": "iso2022_jp",
    "euc-kr": "euc_kr",
    "gb2312": "gb2312",
    "big5": "big5",
}

# Source headers are written back as they are (never refolded), and no body line
# starting with "From " is changed: the octets are the ones the caller asked for.
_POLICY = email.policy.default.clone(refold_source="none")


def encoded_words(text: str, charset: str, encoding: str = "q") -> list[str]:
    """``text`` as RFC 2047 encoded words in ``charset`` (``"q"`` or ``"b"``), each at
    most 75 characters and split between characters, so every word decodes alone."""
    codec = CHARSET_CODECS[charset]
    encode = quoprimime.header_encode if encoding == "q" else base64mime.header_encode
    words: list[str] = []
    chunk = ""
    for char in text:
        longer = encode((chunk + char).encode(codec), charset)
        if chunk and len(longer) > _ENCODED_WORD_LIMIT:
            words.append(encode(chunk.encode(codec), charset))
            chunk = char
        else:
            chunk += char
    if chunk or not words:
        words.append(encode(chunk.encode(codec), charset))
    return words


def fold(name: str, words: Sequence[str | bytes], width: int = 78) -> bytes:
    """The header line ``name: word word ...``, folded before a word wherever the line
    would pass ``width`` characters (RFC 5322 section 2.2.3), never before the first;
    a word longer than that stays whole. Unfolding gives back the words joined by
    spaces."""
    line = name.encode("ascii") + b":"
    lines: list[bytes] = []
    for number, word in enumerate(words):
        octets = word.encode("utf-8") if isinstance(word, str) else word
        if number and len(line) + 1 + len(octets) > width:
            lines.append(line)
            line = b""
        line += b" " + octets
    lines.append(line)
    return b"\n".join(lines) + b"\n"


def header(name: str, value: str | bytes) -> bytes:
    """One header line, unfolded: ``name: value`` and LF."""
    octets = value.encode("utf-8") if isinstance(value, str) else value
    return name.encode("ascii") + b": " + octets + b"\n"


def text_part(
    text: str, *, subtype: str = "plain", charset: str = "us-ascii", cte: str = "7bit"
) -> EmailMessage:
    """A ``text/<subtype>`` part: ``text`` encoded in ``charset``, then written with
    the Content-Transfer-Encoding ``cte`` (7bit, 8bit, quoted-printable or base64)."""
    part = EmailMessage(policy=_POLICY)
    part.set_content(text, subtype=subtype, charset=charset, cte=cte)
    del part["MIME-Version"]  # the top of the message says it once
    return part


def attachment(
    data: bytes,
    content_type: str = "application/octet-stream",
    *,
    filename: str | None = None,
    disposition: str = "attachment",
    content_id: str | None = None,
) -> EmailMessage:
    """A base64 part holding ``data``; a non-ASCII ``filename`` is written as RFC 2231
    says, by the ``email`` package."""
    maintype, subtype = content_type.split("/")
    part = EmailMessage(policy=_POLICY)
    part.set_content(
        data, maintype, subtype, cte="base64", disposition=disposition, filename=filename
    )
    if content_id is not None:
        part["Content-ID"] = content_id
    del part["MIME-Version"]
    return part


def multipart(
    subtype: str,
    parts: Sequence[EmailMessage],
    boundary: str,
    *,
    preamble: str | None = None,
) -> EmailMessage:
    """A ``multipart/<subtype>`` entity of ``parts``, separated by ``boundary``."""
    entity = EmailMessage(policy=_POLICY)
    entity.set_type(f"multipart/{subtype}")
    entity.set_boundary(boundary)
    del entity["MIME-Version"]
    for part in parts:
        entity.attach(part)
    entity.preamble = preamble
    return entity


def enclosed(message: bytes) -> EmailMessage:
    """A ``message/rfc822`` part holding ``message`` octet for octet (LF endings)."""
    part = EmailMessage(policy=_POLICY)
    part["Content-Type"] = "message/rfc822"
    # A str payload is written out as it is: no header of the inner message refolded.
    part.set_payload(message.decode("ascii", "surrogateescape"))
    return part


class _OctetGenerator(BytesGenerator):
    # The stdlib writes a str payload of message/rfc822 (the enclosed message, as it
    # is) as ASCII; an enclosed message with an 8-bit body has surrogate-escaped
    # octets there, which go back to the octets they stand for, as in every other
    # body BytesGenerator writes.
    def _encode(self, s: str) -> bytes:
        return s.encode("ascii", "surrogateescape")


def _entity_octets(entity: EmailMessage) -> bytes:
    out = BytesIO()
    _OctetGenerator(out, policy=_POLICY).flatten(entity, linesep="\n")
    return out.getvalue()


def assemble(header_lines: Sequence[bytes], entity: EmailMessage | None) -> bytes:
    """A whole message: ``header_lines`` (each ending in LF, folded as the caller
    wants), then the entity's own ``Content-*`` headers, the empty line and its body.
    Without an entity the message ends after the headers and the empty line."""
    head = b"".join(header_lines)
    if entity is None:
        return head + b"\n"
    return head + _entity_octets(entity)


def with_line_endings(message: bytes, ending: str) -> bytes:
    """``message`` (LF endings) with every line ending ``"crlf"`` or ``"lf"``."""
    return message.replace(b"\n", b"\r\n") if ending == "crlf" else message
