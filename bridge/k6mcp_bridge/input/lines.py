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
        self._parts: list[bytes] = []
        """The unfinished last line, in the pieces it came in (joined once it ends)."""
        self._held = 0
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
        limit = self._max_line
        if b"\n" not in chunk:  # a long line arriving: keep the piece, rescan nothing
            self._parts.append(chunk)
            self._held += len(chunk)
            if self._held > limit:
                head = b"".join(self._parts)
                self._skipping = Overlong.of(head, self._held, limit)
                self._parts, self._held = [], 0
            return lines
        if self._parts:
            chunk = b"".join([*self._parts, chunk])
        lines += chunk.split(b"\n")
        tail = lines.pop()
        if len(chunk) > limit:  # only then can a line be over the limit
            lines = [Overlong.of(ln, len(ln), limit) if len(ln) > limit else ln for ln in lines]
            if len(tail) > limit:
                self._skipping = Overlong.of(tail, len(tail), limit)
                tail = b""
        self._parts = [tail] if tail else []
        self._held = len(tail)
        return lines

    def feed_text(self, chunk: bytes) -> bytes | None:
        """The lines completed by ``chunk`` as one text, each with its newline, keeping the
        unfinished end for later; ``None`` (nothing taken) when :meth:`feed` must cut them:
        no newline in ``chunk``, or a line that may be over the limit."""
        if self._skipping is not None:
            return None
        end = chunk.rfind(b"\n") + 1
        if not end or self._held + len(chunk) > self._max_line:
            return None
        if self._parts:
            chunk = b"".join([*self._parts, chunk])
            end += self._held
        tail = chunk[end:]
        self._parts = [tail] if tail else []
        self._held = len(tail)
        return chunk[:end] if tail else chunk

    @property
    def held(self) -> int:
        """Bytes fed but not yet returned as lines."""
        skipping = self._skipping
        return self._held + (skipping.size if skipping is not None else 0)

    def finish(self) -> bytes | None:
        """The torn last line left at the end of input, if any."""
        if self._skipping is not None:
            line: bytes = self._skipping
        else:
            line = b"".join(self._parts)
        self._parts, self._held, self._skipping = [], 0, None
        return line or None


def line_problem(line: bytes) -> str | None:
    """Why ``line`` cannot be read as text (too long, a NUL byte, not UTF-8), or ``None``."""
    if isinstance(line, Overlong):
        return f"the line is {line.size} bytes long, over the {line.limit}-byte limit"
    nul = line.find(b"\x00")
    if nul >= 0:
        return f"binary data: a NUL byte at column {nul + 1}"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: byte 0x{line[exc.start]:02x} at column {exc.start + 1}"
    return None
