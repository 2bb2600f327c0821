"""Cut byte chunks into complete lines; hold a torn last line until its newline arrives."""

from __future__ import annotations

from .source import MAX_LINE_BYTES

_HEAD_BYTES = 4096


class Overlong(bytes):
    """Stands in for a line longer than the limit: its first bytes, its ``size``, the ``limit``."""

    size: int
    limit: int

    @classmethod
    def of(cls, head: bytes, size: int, limit: int) -> Overlong:
        line = cls(head[:_HEAD_BYTES])
        line.size, line.limit = size, limit
        return line


class LineSplitter:
    """Turns chunks into lists of complete lines (without the ``\\n``)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._max_line = max_line
        self._tail = b""
        self._skipping: Overlong | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the lines completed by ``chunk``; keep its unfinished end for later."""
        lines: list[bytes] = []
        if self._skipping is not None:
            end = chunk.find(b"\n")
            if end < 0:
                self._skipping.size += len(chunk)
                return lines
            self._skipping.size += end
            lines.append(self._skipping)
            self._skipping = None
            chunk = chunk[end + 1 :]
        if self._tail:
            chunk = self._tail + chunk
        lines += chunk.split(b"\n")
        tail = lines.pop()
        limit = self._max_line
        if len(chunk) > limit:  # only then can a line be over the limit
            lines = [Overlong.of(ln, len(ln), limit) if len(ln) > limit else ln for ln in lines]
            if len(tail) > limit:
                self._skipping = Overlong.of(tail, len(tail), limit)
                tail = b""
        self._tail = tail
        return lines

    @property
    def held(self) -> int:
        """Bytes fed but not yet returned as lines."""
        skipping = self._skipping
        return len(self._tail) + (skipping.size if skipping is not None else 0)

    def finish(self) -> bytes | None:
        """The torn last line left at the end of input, if any."""
        if self._skipping is not None:
            line: bytes = self._skipping
        else:
            line = self._tail
        self._tail, self._skipping = b"", None
        return line or None
