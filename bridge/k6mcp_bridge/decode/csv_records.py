"""k6's CSV output, physical lines → complete records: a quoted field may span lines.

RFC 4180 lets a quoted field hold line breaks (k6 writes a tag value with a newline that way).
:class:`Records` turns lists of physical lines into a :class:`Batch` of complete records,
holding a record whose quote is still open until its closing line arrives; a record that stays
open for ``max_record_lines`` lines, or beyond ``MAX_LINE_BYTES``, has its first line rejected
and the rest read again. :mod:`.csv_rows` turns the records into messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..input.lines import Overlong, line_problem
from ..input.source import MAX_LINE_BYTES
from .csv_values import ends_quoted

MAX_RECORD_LINES: Final = 1000
"""Physical lines one quoted record may span before its first line is taken as broken."""


@dataclass
class _Held:
    """A record whose quoted field is still open at the end of its last line."""

    lineno: int
    lines: list[bytes]
    texts: list[str]
    size: int


Raw = bytes | tuple[bytes, ...]


@dataclass
class Batch:
    """Complete records: their text, the line number each began at, their physical lines."""

    texts: list[str]
    firsts: Sequence[int]
    raws: Sequence[Raw]
    problems: dict[int, tuple[str, str]]
    """Record index → why it cannot be parsed (not UTF-8, overlong, unterminated quote) and
    its text, if any (the record's own text is left empty for the CSV reader)."""

    @classmethod
    def empty(cls) -> Batch:
        return cls([], [], [], {})

    def add(self, text: str, first: int, raw: Raw) -> None:
        self.texts.append(text)
        self.firsts.append(first)  # type: ignore[attr-defined]  # lists when built up
        self.raws.append(raw)  # type: ignore[attr-defined]

    def problem(self, first: int, raw: Raw, reason: str, text: str = "") -> None:
        self.problems[len(self.texts)] = (reason, text)
        self.add("", first, raw)


class Records:
    """Assembles records from physical lines; keeps the one whose quoted field is open."""

    def __init__(self, max_record_lines: int = MAX_RECORD_LINES) -> None:
        self.max_record_lines = max_record_lines
        self.held: _Held | None = None
        self.multiline = 0
        """Records that spanned several physical lines."""

    @property
    def held_bytes(self) -> int:
        """Bytes of input (newlines included) held as the first lines of an open record."""
        held = self.held
        return held.size + 1 if held is not None else 0  # size counts the newlines between

    def split(self, lines: list[bytes], first: int) -> Batch:
        """The complete records in ``lines``, the first of which is line number ``first``."""
        batch = self._simple(lines, first)
        if batch is None:
            batch = Batch.empty()
            self._assemble(lines, first, batch)
        return batch

    def release(self, reason: str) -> Batch:
        """Reject the held record's first line and read its other lines again."""
        batch = Batch.empty()
        self._release(reason, batch)
        return batch

    def _simple(self, lines: list[bytes], first: int) -> Batch | None:
        """The usual batch, without a per-line loop: one record per line, nothing unusual."""
        if self.held is not None or Overlong in map(type, lines):
            return None
        try:
            text = b"\n".join(lines).decode("utf-8")
        except UnicodeDecodeError:
            return None
        if "\x00" in text:  # binary data: the per-line path rejects those lines
            return None
        texts = text.split("\n")
        if '"' in text and any(t.count('"') & 1 for t in texts if '"' in t):
            return None
        return Batch(texts, range(first, first + len(lines)), lines, {})

    def _assemble(self, lines: list[bytes], first: int, batch: Batch) -> None:
        if not lines:
            return
        try:
            texts: list[str | None] = list(b"\n".join(lines).decode("utf-8").split("\n"))
        except UnicodeDecodeError:
            texts = [_utf8(line) for line in lines]
        if any(text is not None and "\x00" in text for text in texts):
            texts = [None if text is None or "\x00" in text else text for text in texts]
        lineno = first - 1
        for line, text in zip(lines, texts, strict=True):
            lineno += 1
            if self.held is not None:
                self._continue(line, text, batch)
            elif text is None or type(line) is Overlong:
                batch.problem(lineno, line, line_problem(line) or "unreadable line")
            elif '"' in text and text.count('"') & 1 and ends_quoted(text, False):
                self.held = _Held(lineno, [line], [text], len(line))
            else:
                batch.add(text, lineno, line)

    def _continue(self, line: bytes, text: str | None, batch: Batch) -> None:
        held = self.held
        assert held is not None
        if text is None or type(line) is Overlong:
            reason = "a quoted field is not closed before a line that cannot continue it"
            self._release(reason, batch, then=[line])
            return
        held.lines.append(line)
        held.texts.append(text)
        held.size += len(line) + 1
        if not ends_quoted(text, True):
            self.held = None
            self.multiline += 1
            batch.add("\n".join(held.texts), held.lineno, tuple(held.lines))
        elif len(held.lines) >= self.max_record_lines or held.size > MAX_LINE_BYTES:
            self._release(f"a quoted field is not closed within {len(held.lines)} lines", batch)

    def _release(self, reason: str, batch: Batch, then: list[bytes] | None = None) -> None:
        """Reject the held record's first line; read its other lines (and ``then``) again."""
        held = self.held
        assert held is not None
        self.held = None
        batch.problem(held.lineno, held.lines[0], reason, held.texts[0])
        self._assemble(held.lines[1:] + (then or []), held.lineno + 1, batch)


def _utf8(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def last_line(batch: Batch, index: int) -> int:
    raw = batch.raws[index]
    return batch.firsts[index] + (len(raw) - 1 if isinstance(raw, tuple) else 0)
