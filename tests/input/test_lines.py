"""``LineSplitter``: chunks in, complete lines out; torn and overlong lines."""

from __future__ import annotations

import pytest

from conftest import K6_SAMPLES
from k6mcp_bridge.input.lines import LineSplitter, Overlong

SAMPLES = K6_SAMPLES


def split_all(
    data: bytes, chunk_size: int, max_line: int | None = None, via_text: bool = False
) -> list[bytes]:
    """Feed ``data`` in ``chunk_size`` pieces; the lines, then the ``finish()`` tail if any.
    ``via_text``: ask ``feed_text`` first, as the JSON decoding does, and ``feed`` when it
    declines."""
    splitter = LineSplitter() if max_line is None else LineSplitter(max_line=max_line)
    lines: list[bytes] = []
    for start in range(0, len(data), chunk_size):
        chunk = data[start : start + chunk_size]
        text = splitter.feed_text(chunk) if via_text else None
        if text is not None:
            assert text.endswith(b"\n")
            lines += text[:-1].split(b"\n")
        else:
            lines += splitter.feed(chunk)
    tail = splitter.finish()
    if tail is not None:
        lines.append(tail)
    return lines


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 100, 4096, 1 << 20])
@pytest.mark.parametrize(
    "name", ["json-full-2vus.jsonl", "stdout-json-dash-NO-quiet-CORRUPTED.txt"]
)
@pytest.mark.parametrize("via_text", [False, True])
def test_lines_split_across_chunk_boundaries(name: str, chunk_size: int, via_text: bool) -> None:
    data = (SAMPLES / name).read_bytes()
    assert data.endswith(b"\n")
    assert split_all(data, chunk_size, via_text=via_text) == data.split(b"\n")[:-1]


def test_feed_returns_only_completed_lines() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b"1}\nnext") == [b'{"a":1}']
    assert splitter.feed(b" part") == []
    assert splitter.feed(b"\n") == [b"next part"]
    assert splitter.finish() is None


def test_empty_lines_are_kept() -> None:
    assert LineSplitter().feed(b"\n\na\n\n") == [b"", b"", b"a", b""]


def test_empty_chunks_change_nothing() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"") == []
    assert splitter.feed(b"c\n") == [b"abc"]


def test_torn_last_line_is_returned_by_finish() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntwo\nthr") == [b"one", b"two"]
    assert splitter.feed(b"ee") == []
    assert splitter.finish() == b"three"
    assert splitter.finish() is None  # finish() hands the tail over once


def test_finish_without_a_tail_is_none() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"complete\n") == [b"complete"]
    assert splitter.finish() is None


def test_line_exactly_at_the_limit_is_not_overlong() -> None:
    splitter = LineSplitter(max_line=16)
    assert splitter.feed(b"x" * 16) == []
    lines = splitter.feed(b"\n")
    assert lines == [b"x" * 16]
    assert not isinstance(lines[0], Overlong)


def test_overlong_line_fed_in_pieces_becomes_overlong_with_true_size() -> None:
    splitter = LineSplitter(max_line=16)
    assert splitter.feed(b"before\n" + b"x" * 10) == [b"before"]
    assert splitter.feed(b"y" * 30) == []  # now over the limit: no longer held
    assert splitter.feed(b"z" * 100) == []
    lines = splitter.feed(b"w" * 5 + b"\nafter\nnext")
    assert len(lines) == 2
    overlong, after = lines
    assert isinstance(overlong, Overlong)
    assert overlong.size == 10 + 30 + 100 + 5
    assert overlong.startswith(b"x" * 10 + b"y")  # its first bytes are kept
    assert after == b"after"
    assert not isinstance(after, Overlong)
    assert splitter.finish() == b"next"


def test_overlong_torn_last_line_is_returned_by_finish() -> None:
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"ok\n" + b"a" * 20) == [b"ok"]
    assert splitter.feed(b"b" * 7) == []
    tail = splitter.finish()
    assert isinstance(tail, Overlong)
    assert tail.size == 27
    assert splitter.finish() is None


@pytest.mark.parametrize("via_text", [False, True])
def test_two_overlong_lines_in_a_row(via_text: bool) -> None:
    data = b"a" * 50 + b"\n" + b"b" * 60 + b"\nshort\n"
    lines = split_all(data, chunk_size=4, max_line=10, via_text=via_text)
    assert [type(line) for line in lines] == [Overlong, Overlong, bytes]
    assert [getattr(line, "size", None) for line in lines[:2]] == [50, 60]
    assert lines[2] == b"short"


@pytest.mark.parametrize("via_text", [False, True])
def test_overlong_size_is_independent_of_chunking(via_text: bool) -> None:
    data = b"k" * 12345 + b"\nafter\n"
    for chunk_size in (1, 3, 64, 1000, 20000):
        lines = split_all(data, chunk_size, max_line=100, via_text=via_text)
        assert isinstance(lines[0], Overlong), chunk_size
        assert lines[0].size == 12345, chunk_size
        assert lines[1:] == [b"after"], chunk_size


def test_overlong_line_completed_in_the_chunk_that_started_it() -> None:
    """A line over the limit is an Overlong however the bytes arrive (one chunk here)."""
    splitter = LineSplitter(max_line=10)
    lines = splitter.feed(b"x" * 50 + b"\nok\n")
    assert isinstance(lines[0], Overlong)
    assert lines[0].size == 50
    assert lines[1:] == [b"ok"]


def test_overlong_line_completed_by_the_next_chunk() -> None:
    """Held tail under the limit + a chunk that ends the line over the limit: still Overlong."""
    splitter = LineSplitter(max_line=10)
    assert splitter.feed(b"x" * 5) == []
    lines = splitter.feed(b"x" * 8 + b"\nok\n")
    assert isinstance(lines[0], Overlong)
    assert lines[0].size == 13
    assert lines[1:] == [b"ok"]
