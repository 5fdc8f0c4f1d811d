"""The line reader: complete lines out, over-long lines capped."""

from __future__ import annotations

from fakepop._lines import LineReader, TooLong


def test_lines_with_crlf_and_lf() -> None:
    reader = LineReader(255)
    reader.feed(b"ONE\r\nTWO\nTHR")
    assert reader.next_line() == b"ONE"
    assert reader.next_line() == b"TWO"
    assert reader.next_line() is None
    reader.feed(b"EE\r\n")
    assert reader.next_line() == b"THREE"
    assert reader.pending == 0


def test_a_cr_split_from_its_lf() -> None:
    reader = LineReader(255)
    reader.feed(b"NOOP\r")
    assert reader.next_line() is None
    reader.feed(b"\n")
    assert reader.next_line() == b"NOOP"


def test_limit_counts_crlf_whatever_the_client_sent() -> None:
    reader = LineReader(10)
    reader.feed(b"12345678\r\n12345678\n123456789\n")
    assert reader.next_line() == b"12345678"
    assert reader.next_line() == b"12345678"
    assert isinstance(reader.next_line(), TooLong)


def test_an_endless_line_is_reported_once_and_discarded() -> None:
    reader = LineReader(10)
    reader.feed(b"abcdefghij")
    result = reader.next_line()
    assert result == TooLong(b"abcdefghij")
    for _ in range(100):
        reader.feed(b"more more more")
        assert reader.next_line() is None
        assert reader.pending == 0
    reader.feed(b" end\r\nNEXT\r\n")
    assert reader.next_line() == b"NEXT"
