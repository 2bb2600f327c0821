"""Follow a results file while k6 writes it (the only module that imports watchdog).

A :class:`Follower` yields one :class:`~.source.Source` per *run*: the file as it is, then
the file that replaced it (a k6 rerun recreates or truncates it). Each source's chunks end
when its run ends: the path names another file, the file shrank or was rewritten below our
offset, or a stop condition fired (``stop()``, ``--idle-timeout``, ``--wait-pid``).

watchdog only wakes the reader: an event sets a ``threading.Event``, and the reader then
reads to the end of the file. Events can coalesce or be lost, so the wait has a timeout
(the polling safety net). The native observer falls back to polling, with a warning, when it
cannot start (inotify limits) or dies.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ..errors import SourceError, TruncatedInput
from .checkpoint import Checkpoint, Identity, State, identify
from .source import CHUNK_SIZE, GZIP_MAGIC, ByteStream, Position, open_source

log = logging.getLogger("k6mcp_bridge")
SAFETY_WAIT = 0.5
"""Longest wait without an event before the file is looked at anyway."""
_CHECK_BYTES = 64


class _Wake(FileSystemEventHandler):
    def __init__(self, target: Path, event: threading.Event) -> None:
        self._target = str(target)
        self._event = event

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = (event.src_path, getattr(event, "dest_path", ""))
        if self._target in [os.fsdecode(p) for p in paths if p]:
            self._event.set()


class Follower:
    """Yields the runs found at ``path``; call :meth:`stop` (e.g. from a signal) to end."""

    def __init__(
        self,
        path: Path,
        *,
        poll: bool = False,
        from_end: bool = False,
        idle_timeout: float | None = None,
        wait_pid: int | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        self.path = path.absolute()
        self.stop_reason: str | None = None
        self._from_end = from_end
        self._idle_timeout = idle_timeout
        self._wait_pid = wait_pid
        self._checkpoint = checkpoint
        self._wake = threading.Event()
        self._observer: BaseObserver | None = None
        self._poll = poll
        self._gzip_said = False

    # -- control ---------------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """End following after one last read to the end of the file. Safe in signal handlers."""
        if self.stop_reason is None:
            self.stop_reason = reason
            log.info("stopping: %s", reason)
        self._wake.set()

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    # -- runs ------------------------------------------------------------------------------------

    def runs(self) -> Iterator[ByteStream]:
        """One source per run of the file, until a stop condition fires."""
        if not self.path.parent.is_dir():
            raise SourceError(f"cannot follow {self.path}: {self.path.parent} is not a directory")
        self._start_observer()
        try:
            first = True
            while True:
                fd = self._wait_for_file()
                if fd is None:
                    return
                start = self._first_position(fd) if first else Position()
                first = False
                yield self._run(fd, start)
                if self.stop_reason is not None:
                    return
        finally:
            self.close()

    def _first_position(self, fd: int) -> Position:
        """Where the first run starts: the checkpoint's offset, the end, or the beginning."""
        state = self._checkpoint.load() if self._checkpoint is not None else None
        if state is not None:
            size = os.fstat(fd).st_size
            if state.identity.same_file(identify(fd)) and state.offset <= size:
                position = replace(resume_position(fd, state.offset), saved_state=state.run_state)
                log.info(
                    "resuming %s at byte %d (line %d)", self.path, state.offset, position.lineno
                )
                return position
            log.warning("the checkpoint is for another file than %s: starting over", self.path)
        if self._from_end:
            return resume_position(fd, _last_line_end(fd))
        return Position()

    def committer(self, run: ByteStream) -> Callable[[int, bytes | None], None] | None:
        """The pipeline's ``on_commit`` for ``run`` (an offset and the run state that goes with
        it, if the run keeps one): saves the checkpoint (if there is one)."""
        checkpoint = self._checkpoint
        if checkpoint is None or not isinstance(run, _FollowedRun):
            return None
        return lambda offset, state: checkpoint.save(State(run.identity(), offset, state))

    def flush_checkpoint(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.flush()

    def _run(self, fd: int, start: Position) -> ByteStream:
        if os.fstat(fd).st_size < len(GZIP_MAGIC):  # k6 creates it empty (gzip: until it exits)
            log.info("%s is empty: waiting for its first bytes", self.path)
            self._wait_for(lambda: os.fstat(fd).st_size >= len(GZIP_MAGIC))
        if os.pread(fd, 2, 0) == GZIP_MAGIC:
            os.close(fd)
            return self._gzip_run()
        return _FollowedRun(self, fd, start)

    def chunks(self, run: _FollowedRun, tick: float | None) -> Iterator[bytes]:
        """The bytes of ``run`` as they are written, and idle ticks, until the run ends."""
        wait = min(tick or SAFETY_WAIT, SAFETY_WAIT)
        last_growth = time.monotonic()
        while True:
            stopping = self.stop_reason is not None or self._pid_gone()
            ended = self._run_ended(run)
            grew = False
            # a replaced file is still ours to finish; truncated or rewritten content is not
            readable = ended is None or ended == "was replaced"
            for chunk in run.read_to_end() if readable else ():
                grew = True
                yield chunk
            if grew:
                last_growth = time.monotonic()
                yield b""  # caught up with the writer: the pipeline delivers what it holds
            if ended:
                log.info("%s %s: a new run starts from its first byte", self.path, ended)
                return
            if stopping:
                self.stop(self.stop_reason or f"process {self._wait_pid} exited (--wait-pid)")
                return
            idle = time.monotonic() - last_growth
            if self._idle_timeout is not None and idle >= self._idle_timeout:
                self.stop(f"no growth for {self._idle_timeout:g} s (--idle-timeout)")
                return
            self._check_observer()
            if not self._wake.wait(wait):
                yield b""  # an idle tick: the pipeline may deliver a partial batch
            self._wake.clear()

    def _run_ended(self, run: _FollowedRun) -> str | None:
        """Why the open file no longer is this run (replaced, truncated, rewritten), or None."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return None  # deleted: keep reading what is open until a new file appears
        mine = os.fstat(run.fd)
        if (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            return "was replaced"
        if mine.st_size < run.offset:
            return "was truncated"
        if run.rewritten():
            return "was rewritten"
        return None

    def _gzip_run(self) -> ByteStream:
        if not self._gzip_said:
            log.warning(
                "%s is gzip: k6 writes it only when it exits, so it is read once complete",
                self.path,
            )
            self._gzip_said = True
        size = -1
        while self.stop_reason is None and not self._pid_gone():
            try:
                now = self.path.stat().st_size
            except FileNotFoundError:
                now = -1  # removed while we wait: wait for it again
            if now == size and _gzip_complete(self.path):
                break
            size = now
            self._wake.wait(SAFETY_WAIT)
            self._wake.clear()
        source = open_source(str(self.path))
        if self.stop_reason is None:
            self.stop("the gzip file is complete")
        return source

    # -- waiting ---------------------------------------------------------------------------------

    def _wait_for_file(self) -> int | None:
        fd: int | None = None

        def opened() -> bool:
            nonlocal fd
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise SourceError(f"cannot open {self.path}: {exc.strerror or exc}") from exc
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise SourceError(
                    f"cannot follow {self.path}: not a regular file (read a named pipe without -f)"
                )
            return True

        if not opened():
            log.info("waiting for %s to be created", self.path)
            self._wait_for(opened)
        return fd

    def _wait_for(self, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()``, or a stop condition (which then says why)."""
        since = time.monotonic()
        while not ready():
            if self.stop_reason is not None:
                return
            if self._pid_gone():
                self.stop(f"process {self._wait_pid} exited (--wait-pid)")
                return
            if self._idle_timeout is not None and time.monotonic() - since >= self._idle_timeout:
                self.stop(f"no growth for {self._idle_timeout:g} s (--idle-timeout)")
                return
            self._check_observer()
            self._wake.wait(SAFETY_WAIT)
            self._wake.clear()

    def _pid_gone(self) -> bool:
        pid = self._wait_pid
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        try:  # a zombie has exited: its parent just has not reaped it yet
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z"
        except OSError:
            return False

    def _start_observer(self) -> None:
        handler = _Wake(self.path, self._wake)
        if not self._poll:
            observer: BaseObserver = Observer()
            try:
                observer.schedule(handler, str(self.path.parent))
                observer.start()
                self._observer = observer
                return
            except OSError as exc:
                reason = (
                    "inotify limit reached" if exc.errno in (errno.ENOSPC, errno.EMFILE) else exc
                )
                log.warning("native file watching failed (%s): polling instead", reason)
        observer = PollingObserver(timeout=0.1)
        observer.schedule(handler, str(self.path.parent))
        observer.start()
        self._observer = observer

    def _check_observer(self) -> None:
        if self._observer is not None and not self._observer.is_alive():
            log.warning("the file watcher stopped: polling instead")
            self._observer = None
            self._poll = True
            self._start_observer()


class _FollowedRun:
    """One run of a followed file: the open file, our offset, the bytes just before it."""

    live = True

    def __init__(self, follower: Follower, fd: int, start: Position) -> None:
        self.name = str(follower.path)
        self.start = start
        self.fd = fd
        self.offset = start.offset
        self._follower = follower
        self._identity: Identity | None = None
        kept = min(_CHECK_BYTES, self.offset)
        self._before = os.pread(fd, kept, self.offset - kept)

    def chunks(self, idle_tick: float | None = None) -> Iterator[bytes]:
        return self._follower.chunks(self, idle_tick)

    def identity(self) -> Identity:
        """This file's identity; computed again until it has a first sample to hash."""
        if self._identity is None or self._identity.first_sample is None:
            self._identity = identify(self.fd)
        return self._identity

    def close(self) -> None:
        os.close(self.fd)

    def read_to_end(self) -> Iterator[bytes]:
        while True:
            data = os.pread(self.fd, CHUNK_SIZE, self.offset)
            if not data:
                return
            self.offset += len(data)
            self._before = (self._before + data)[-_CHECK_BYTES:]
            yield data

    def rewritten(self) -> bool:
        """The bytes before our offset changed: truncated and regrown between two looks."""
        start = self.offset - len(self._before)
        return os.pread(self.fd, len(self._before), start) != self._before


def _last_line_end(fd: int) -> int:
    """The offset just past the file's last complete line (``--from-end``)."""
    size = os.fstat(fd).st_size
    start = max(0, size - CHUNK_SIZE)
    while True:
        data = os.pread(fd, size - start, start)
        end = data.rfind(b"\n")
        if end >= 0 or start == 0:
            return start + end + 1
        start = max(0, start - CHUNK_SIZE)


def _gzip_complete(path: Path) -> bool:
    """Whether the gzip file at ``path`` is whole (corrupt counts as whole: the reader says so)."""
    source = open_source(str(path))
    try:
        for _ in source.chunks():
            pass
    except TruncatedInput:
        return False
    except SourceError:
        return True
    finally:
        source.close()
    return True


def resume_position(fd: int, offset: int) -> Position:
    """The position ``offset`` in ``fd``: its line number and the lines to replay first."""
    lineno, preamble, done = 0, [], 0
    tail = b""
    while done < offset:
        data = tail + os.pread(fd, min(CHUNK_SIZE, offset - done), done)
        done += len(data) - len(tail)
        lines = data.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if (lineno == 0 and line.startswith(b"metric_name,")) or b'"type":"Metric"' in line:
                preamble.append(line)
            lineno += 1
    return Position(offset, lineno, tuple(preamble))
