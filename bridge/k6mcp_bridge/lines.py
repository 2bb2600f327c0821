"""Cut byte chunks into complete lines; hold a torn last line until its newline arrives."""

from __future__ import annotations

from .source import MAX_LINE_BYTES

_HEAD_BYTES = 4096


class Overlong(bytes):
    """Stands in for a line longer than the limit: its first bytes, and its real ``size``."""

    size: int


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
        if len(tail) > self._max_line:
            self._skipping = Overlong(tail[:_HEAD_BYTES])
            self._skipping.size = len(tail)
            tail = b""
        self._tail = tail
        return lines

    def finish(self) -> bytes | None:
        """The torn last line left at the end of input, if any."""
        if self._skipping is not None:
            line: bytes = self._skipping
        else:
            line = self._tail
        self._tail, self._skipping = b"", None
        return line or None
