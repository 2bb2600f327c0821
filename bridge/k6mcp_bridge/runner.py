"""Run the bridge on one input, or on every run of a followed file, and decide the exit code.

Signals: the first SIGINT or SIGTERM asks for a graceful stop where one exists (a pipe keeps
being read until the writer — k6, which got the same Ctrl-C — closes it; a followed file is
read to its end once more), the second stops at once. Every plugin's ``finish`` runs either way.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from .checkpoint import Checkpoint
from .config import Settings
from .errors import BridgeError, ExitStatus
from .follower import Follower
from .pipeline import Pipeline, tune_gc
from .plugin import Plugin, RunResult
from .source import open_source

log = logging.getLogger("k6mcp_bridge")


@dataclass(frozen=True)
class FollowOptions:
    from_end: bool = False
    poll: bool = False
    idle_timeout: float | None = None
    wait_pid: int | None = None
    checkpoint: Path | None = None


class _Signals:
    """The first SIGINT/SIGTERM calls ``graceful`` (if any); the next one stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.graceful: Callable[[], None] | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None and self.graceful is not None:
            self.received = signum
            log.warning(
                "interrupted (%s): finishing what is being read (send it again to stop now)",
                signal.Signals(signum).name,
            )
            self.graceful()
            return
        self.received = self.received or signum
        raise KeyboardInterrupt

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.TERMINATED if self.received == signal.SIGTERM else ExitStatus.INTERRUPTED


@contextmanager
def _signals() -> Iterator[_Signals]:
    handler = _Signals()
    previous = {sig: signal.signal(sig, handler.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def execute(
    source: str | None,
    plugins: list[Plugin],
    settings: Settings,
    follow: FollowOptions | None = None,
) -> ExitStatus:
    """Run the bridge; return the exit status."""
    with ExitStack() as stack:
        dead: BinaryIO | None = None
        if settings.dead_letter is not None:
            try:
                dead = stack.enter_context(settings.dead_letter.open("wb"))
            except OSError as exc:
                log.error("cannot write dead-letter file %s: %s", settings.dead_letter, exc)
                return ExitStatus.USAGE
        console = sys.stderr.buffer if settings.passthrough else None
        signals = stack.enter_context(_signals())
        tune_gc()
        try:
            if follow is None or source is None:
                opened = open_source(source)
                stack.callback(opened.close)
                pipeline = Pipeline(plugins, settings, console, dead)
                if opened.live:  # k6 got the same Ctrl-C: read on until it closes the pipe
                    signals.graceful = lambda: setattr(pipeline, "interrupted", True)
                results = [pipeline.run(opened)]
            else:
                results = _follow(Path(source), follow, signals, plugins, settings, console, dead)
        except BridgeError as exc:
            log.error("%s", exc)
            return exc.exit_status
    if any(result.status == "interrupted" for result in results):
        return signals.exit_status
    if any(r.stats.rejected or r.stats.input_errors for r in results):
        return ExitStatus.REJECTED_RECORDS
    return ExitStatus.OK


def _follow(
    path: Path,
    follow: FollowOptions,
    signals: _Signals,
    plugins: list[Plugin],
    settings: Settings,
    console: BinaryIO | None,
    dead: BinaryIO | None,
) -> list[RunResult]:
    """One pipeline run per run of the followed file."""
    follower = _follower(path, follow)
    current: list[Pipeline] = []

    def graceful() -> None:
        follower.stop("interrupted")
        for pipeline in current:
            pipeline.interrupted = True

    signals.graceful = graceful
    results = []
    for run in follower.runs():
        pipeline = Pipeline(plugins, settings, console, dead, follower.committer(run))
        current[:] = [pipeline]
        try:
            results.append(pipeline.run(run))
        finally:
            run.close()
            follower.flush_checkpoint()
    return results


def _follower(path: Path, follow: FollowOptions) -> Follower:
    checkpoint = Checkpoint(follow.checkpoint) if follow.checkpoint is not None else None
    return Follower(
        path,
        poll=follow.poll,
        from_end=follow.from_end,
        idle_timeout=follow.idle_timeout,
        wait_pid=follow.wait_pid,
        checkpoint=checkpoint,
    )
