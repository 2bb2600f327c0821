"""Progress on a terminal: a bar for a file being replayed, a status line for a pipe or a
followed file.

Drawn with rich (installed with typer) on stderr, at most every ``INTERVAL`` seconds, from the
reading loop itself (no refresh thread): bytes read of the file's size, records/s, rejected
lines and the time left; for a followed file, the bytes the bridge is behind the writer. The
CLI turns it on only when stderr is a terminal and the run is not ``-q`` or ``--no-progress``.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any, Protocol

from ..plugin import Stats

INTERVAL = 0.2
"""Seconds between two redraws."""


class Shown(Protocol):
    """What the progress knows of a source (a file's ``fd``, if it has one, gives its size)."""

    @property
    def name(self) -> str: ...

    @property
    def live(self) -> bool: ...


class Progress:
    """The progress of one run of the pipeline; :meth:`tick` often, :meth:`close` at the end."""

    def __init__(self, source: Shown, stats: Stats) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self._source, self._stats = source, stats
        fd = getattr(source, "fd", None)
        self._fd: int | None = None
        if isinstance(fd, int) and stat.S_ISREG(os.fstat(fd).st_mode):
            self._fd = fd
        self._following = source.live and self._fd is not None
        self._total: int | None = None
        if self._fd is not None and not source.live:
            self._total = os.fstat(self._fd).st_size
        columns: list[Any] = [TextColumn("[bold]{task.description}")]
        if self._total is not None:
            columns += [BarColumn(bar_width=20), DownloadColumn(), TimeRemainingColumn()]
        columns.append(TextColumn("{task.fields[status]}"))
        self._bar = Bar(*columns, console=Console(stderr=True), auto_refresh=False, transient=False)
        self._task = self._bar.add_task(os.path.basename(source.name), total=self._total, status="")
        self._started = time.monotonic()
        self._next = 0.0
        self._bar.start()

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + INTERVAL
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self._bar.stop()

    def _position(self) -> int | None:
        """Bytes of the file read so far (compressed bytes for gzip)."""
        if self._fd is None:
            return None
        offset = getattr(self._source, "offset", None)  # a followed file is read with pread
        return offset if isinstance(offset, int) else os.lseek(self._fd, 0, os.SEEK_CUR)

    def _draw(self, now: float) -> None:
        stats = self._stats
        elapsed = now - self._started
        rate = stats.messages / elapsed if elapsed > 0 else 0.0
        status = f"{stats.messages:,} records {rate:,.0f}/s"
        if stats.rejected:
            status += f" {stats.rejected:,} rejected"
        position = self._position()
        if self._following and position is not None and self._fd is not None:
            behind = max(0, os.fstat(self._fd).st_size - position)
            status += f" {behind:,} B behind k6"
        self._bar.update(self._task, completed=position or 0, status=status)
        self._bar.refresh()
