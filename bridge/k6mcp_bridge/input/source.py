"""Where bytes come from: stdin, a plain or gzip file, a named pipe.

This stage knows only bytes and line boundaries. gzip is recognised by its magic
bytes, never by the file name, and decompressed incrementally, so a large file is
streamed, not loaded.
"""

from __future__ import annotations

import io
import os
import select
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from ..errors import SourceError, TruncatedInput

GZIP_MAGIC = b"\x1f\x8b"
SETTLE = 0.005
"""Seconds a live source waits for more before it says it has caught up with the writer: k6
writes a burst as many 4 KiB pieces, and each "caught up" costs a delivery to every plugin."""
CHUNK_SIZE = 1 << 16
"""64 KiB: a batch of decoded messages stays in the CPU cache (1 MiB measured 25% slower)."""
PIPE_SIZE = 1 << 20
"""Bytes a pipe into the bridge holds (Linux's default is 64 KiB, its unprivileged maximum
1 MiB). k6 writes its samples in a burst every 200 ms; in a 64 KiB pipe its writing thread
blocks ~100 times a burst while the bridge catches up, and k6 then spent ~18% more CPU a
request, and made 0.75-0.8x the requests of ``--out json=FILE`` (``benchmarks/pipe.py``)."""
MAX_LINE_BYTES = 64 << 20
"""A line longer than this is not held in memory: it is reported with its first bytes."""

_GZIP_OUT_LIMIT = 4 << 20


@dataclass(frozen=True)
class Position:
    """Where reading starts: a file offset, the line number before it, lines to replay first."""

    offset: int = 0
    lineno: int = 0
    preamble: tuple[bytes, ...] = ()
    """Lines from before ``offset`` that the decoder needs again (Metric records, CSV header)."""
    saved_state: bytes | None = None
    """The run state the checkpoint holds for ``offset`` (JSON, opaque here): a resumed run
    continues it (``aggregate/stage.py``)."""


class ByteStream(Protocol):
    """What the pipeline reads: a :class:`Source`, or one run of a followed file."""

    name: str
    live: bool
    """Data may trickle in: deliver batches by time, and expect idle ticks (``b""``)."""
    start: Position

    def chunks(self, idle_tick: float | None = None) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class Source:
    """An opened input. :meth:`chunks` yields its decoded bytes in order."""

    name: str
    read: Callable[[int], bytes]
    fd: int | None
    """A descriptor that ``select`` can wait on; ``None`` for in-memory streams."""
    live: bool
    """True for pipes, FIFOs and terminals: data may trickle, so batches are flushed by time."""
    close: Callable[[], None]
    start: Position = Position()

    def chunks(self, idle_tick: float | None = None) -> Iterator[bytes]:
        """Yield decoded bytes; a live source also yields ``b""`` when it has caught up with
        the writer, and again every ``idle_tick`` seconds while nothing arrives."""
        raw = self._raw_chunks(idle_tick)
        head = b""
        for chunk in raw:  # gather the two magic bytes before choosing plain or gzip
            head += chunk
            if len(head) >= len(GZIP_MAGIC):
                break
            if not chunk:
                yield chunk
        if head[:2] == GZIP_MAGIC:
            yield from _gunzip(head, raw, self.name)
        else:
            if head:
                yield head
            yield from raw

    def _raw_chunks(self, idle_tick: float | None) -> Iterator[bytes]:
        waitable = [self.fd] if self.live and self.fd is not None else []
        wait = bool(waitable) and idle_tick is not None
        ready = select.select
        while True:
            if wait and not ready(waitable, [], [], SETTLE)[0]:
                yield b""  # caught up with the writer: the pipeline delivers what it holds
                if not ready(waitable, [], [], idle_tick)[0]:
                    continue
            data = self._read()
            # a pipe hands over what one write put there (k6: 4 KiB): take what is already
            # waiting too, so that a burst is decoded in large pieces
            while waitable and 0 < len(data) < CHUNK_SIZE and ready(waitable, [], [], 0)[0]:
                more = self._read(CHUNK_SIZE - len(data))
                if not more:
                    break
                data += more
            if not data:
                return
            yield data

    def _read(self, size: int = CHUNK_SIZE) -> bytes:
        try:
            return self.read(size)
        except OSError as exc:
            raise SourceError(f"cannot read {self.name}: {exc.strerror or exc}") from exc


def open_source(path: str | None) -> Source:
    """Open ``path`` (``None`` or ``"-"``: standard input) for reading."""
    if path is None or path == "-":
        return _open_stdin()
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise SourceError(f"cannot open {path}: {exc.strerror or exc}") from exc
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise SourceError(f"cannot read {path}: it is a directory")
    if stat.S_ISFIFO(mode):
        widen_pipe(fd)
    live = not stat.S_ISREG(mode)
    return Source(
        name=path,
        read=lambda n: os.read(fd, n),
        fd=fd,
        live=live,
        close=lambda: os.close(fd),
    )


def _open_stdin() -> Source:
    stream: BinaryIO = sys.stdin.buffer
    try:
        fd: int | None = stream.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        fd = None  # an in-memory stream (tests, embedding): read it as it is
    if fd is None:
        return Source("<stdin>", stream.read, None, live=False, close=lambda: None)
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode):
        widen_pipe(fd)
    live = not stat.S_ISREG(mode)
    return Source("<stdin>", lambda n: os.read(fd, n), fd, live=live, close=lambda: None)


def widen_pipe(fd: int) -> None:
    """Ask for a pipe of :data:`PIPE_SIZE` (Linux; elsewhere, or past the system's
    ``fs.pipe-max-size``, the pipe stays as it is)."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (ImportError, AttributeError, OSError):
        pass


def _gunzip(first: bytes, rest: Iterator[bytes], name: str) -> Iterator[bytes]:
    """Decompress one or more concatenated gzip members, yielding bounded pieces."""
    inflater = zlib.decompressobj(wbits=31)
    member_open = False  # a member has started and its end has not been seen yet
    consumed = 0

    def inflate(data: bytes) -> Iterator[bytes]:
        nonlocal inflater, member_open, consumed
        while data:
            member_open = True
            try:
                out = inflater.decompress(data, _GZIP_OUT_LIMIT)
            except zlib.error as exc:
                raise SourceError(f"{name}: corrupt gzip data near byte {consumed}: {exc}") from exc
            consumed += len(data) - len(inflater.unconsumed_tail) - len(inflater.unused_data)
            if out:
                yield out
            if inflater.eof:
                member_open = False
                data = inflater.unused_data
                if data and data[:1] != GZIP_MAGIC[:1]:
                    raise SourceError(f"{name}: unexpected bytes after the gzip data at {consumed}")
                inflater = zlib.decompressobj(wbits=31)
            else:
                data = inflater.unconsumed_tail

    yield from inflate(first)
    for chunk in rest:
        if chunk:
            yield from inflate(chunk)
        else:
            yield chunk
    if member_open:
        raise TruncatedInput(
            f"{name}: the gzip data ends early (truncated, or still being written)"
        )
