"""Read a source, decode it, and deliver batches of messages to the plugins' workers.

The pipeline owns counting, batching (by size and by time), error accounting, the dead-letter
file and the checkpoint offsets. Each plugin runs in its own :class:`~.workers.Worker`: a plugin
that raises is reported by name with the position of the message and gets nothing more (or the
run stops, by policy), a plugin that hangs is cut off after ``plugin_timeout``, and the others
keep receiving everything. A plugin receives only the message types it ``accepts``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import BinaryIO, TypeVar

from .. import __version__
from ..aggregate.stage import Aggregation
from ..config import Settings
from ..decode.dispatch import Decoding, Feed
from ..decode.json_lines import Rejection, shorten
from ..errors import BridgeError, ConfigError, PluginFailed, TooManyErrors
from ..input.source import ByteStream
from ..messages import AnyMessage
from ..plugin import Plugin, PluginReport, RunInfo, RunResult, Stats, Status
from ..receive.feed import ParcelFeed, Receiver
from ..samples import Decoded, messages_of
from .progress import Progress
from .workers import Worker, send_all

C = TypeVar("C")
log = logging.getLogger("k6mcp_bridge")
input_log = logging.getLogger("k6mcp_bridge.input")
STATE_EVERY_S = 0.2
"""Seconds between two run states saved with the checkpoint (when the run keeps one)."""


def tune_gc() -> None:
    """Make CPython's cycle collector fit a stream of short-lived, cycle-free messages.

    With the default gen-0 threshold (700) the collector runs every few hundred messages
    and finds nothing: measured 25-40% of the replay time. The CLI calls this once.
    """
    gc.freeze()  # what was imported so far is never garbage: keep it out of collections
    gc.set_threshold(100_000, 10, 10)


class Pipeline:
    """One run: a source through the decoder into the plugins."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        settings: Settings,
        console: BinaryIO | None = None,
        dead_letter: BinaryIO | None = None,
        on_commit: Callable[[int, bytes | None], None] | None = None,
        aggregation: Aggregation | None = None,
        progress: bool = False,
    ) -> None:
        self.settings = settings
        self._progress = progress
        self.stats = Stats()
        self.interrupted = False
        """Set by a signal handler: the run still reads to the end but reports ``interrupted``."""
        self.stop_requested = False
        """Set by a signal handler: stop reading after the current chunk (``interrupted``)."""
        self.reports: tuple[PluginReport, ...] = ()
        """Every plugin's state, messages and time once the run has ended (``finish`` included)."""
        self._plugins = list(plugins)
        self._workers: list[Worker] = []
        self._console = console
        self._dead_letter = dead_letter
        self._on_commit = on_commit
        self._aggregation = aggregation
        self._offsets: _Offsets | None = None
        self._captured_at = -STATE_EVERY_S
        self._first_line: bytes | None = None
        self.say_if_empty = True
        """Log one error line when the input held no k6 record (``exec`` says it its own way)."""
        self._torn = False
        """A send was cut short (a second signal): some plugins lack a batch, so nothing more is
        delivered and the checkpoint is not moved again."""

    def run(self, source: ByteStream | Receiver) -> RunResult:
        """Read ``source`` to its end (or until stopped); every plugin's ``finish`` is called
        (but a hung plugin's). Raises PluginFailed under ``plugin_errors = fail``."""
        started = time.monotonic()
        script = self.settings.script
        info = RunInfo(
            source.name,
            datetime.now(timezone.utc),
            __version__,
            source.start.offset > 0,
            None if script is None else str(script),
            self._aggregation.restored if self._aggregation is not None else None,
        )
        timeout = self.settings.plugin_timeout
        self._workers = workers = [Worker(plugin, timeout) for plugin in self._plugins]
        status: Status = "completed"
        failure: BridgeError | None = None
        now = False  # a second signal: stop now, without waiting for what plugins have not taken
        try:
            for worker in workers:
                worker.start(info)
            self._read(source)
        except KeyboardInterrupt:
            status, now = "interrupted", True
        except (TooManyErrors, PluginFailed) as exc:
            status, failure = "stopped", exc
        finally:
            if (self.interrupted or self.stop_requested) and status == "completed":
                status = "interrupted"
            try:
                if not now:
                    if self._aggregation is not None:
                        self._send(self._aggregation.finish())
                    for worker in workers:
                        worker.sync()
            except KeyboardInterrupt:
                status, now = "interrupted", True
            if now:  # the final numbers still reach every plugin, in finish(result)
                if self._aggregation is not None and self._aggregation.final is None:
                    self._aggregation.finish()
                for worker in workers:
                    worker.drop_pending()
            self._commit()
            failure = failure or self._policy_failure()
            if failure is not None and status == "completed":
                status = "stopped"
            metrics = self._aggregation.final if self._aggregation is not None else None
            reports = tuple(worker.report() for worker in workers)
            result = RunResult(status, self.stats, time.monotonic() - started, metrics, reports)
            for worker in workers:
                worker.finish(result)
            for worker in workers:
                worker.wait()
            self.reports = tuple(worker.report() for worker in workers)
            failure = failure or self._policy_failure()
            self._say_if_empty(status, source)
        if failure is not None:
            raise failure
        return result

    def _read(self, source: ByteStream | Receiver) -> None:
        settings = self.settings
        if isinstance(source, Receiver):
            self._consume(source, source.chunks(settings.batch_wait), ParcelFeed(self._on_reject))
            return
        decoding = Decoding(
            self._on_console, self._on_reject, source.start, settings.format, settings.metric_types
        )
        self._consume(source, source.chunks(idle_tick=settings.batch_wait), decoding)

    def _consume(self, source: ByteStream | Receiver, chunks: Iterator[C], feed: Feed[C]) -> None:
        """Feed ``chunks`` (an empty one: the source is idle) through ``feed`` to the plugins."""
        size, wait = self.settings.batch_size, self.settings.batch_wait
        batch: list[Decoded] = []
        offsets = self._offsets = _Offsets(source.start.offset) if self._on_commit else None
        first_at = 0.0
        meter = Progress(source, self.stats) if self._progress else None
        try:
            for chunk in chunks:
                if meter is not None:
                    meter.tick()
                if not batch:
                    first_at = time.monotonic()
                if chunk:
                    feed.feed(chunk, batch)
                    if offsets is not None:
                        offsets.mark(self.stats.messages + len(batch), feed.fed - feed.held)
                while len(batch) >= size:  # taken out before sending: never sent twice
                    ready = batch[:size]
                    del batch[:size]
                    self._deliver(ready)
                    first_at = time.monotonic()
                if batch and (  # idle, waited long enough, or a state to save: deliver
                    not chunk or time.monotonic() - first_at >= wait or self._state_due()
                ):
                    ready, batch = batch, []
                    self._deliver(ready)
                if self.stop_requested:
                    return
                if not chunk:  # idle: look at the plugins' clocks, let the checkpoint catch up
                    self._capture()
                    self._check()
                    self._commit()
            feed.finish(batch)
        except BridgeError as exc:
            if isinstance(exc, (TooManyErrors, ConfigError, PluginFailed)):
                raise
            self.stats.input_errors.append(str(exc))  # the input broke off: corrupt gzip...
            log.error("%s", exc)
            feed.finish(batch)
        finally:
            self.stats.lines = feed.lineno
            self.stats.rejoined = feed.rejoined
            try:
                if batch and self._policy_failure() is None and not self._torn:
                    self._deliver(batch, last=True)
                elif not self._torn:
                    self._capture(now=True)
            finally:
                if meter is not None:
                    meter.close()  # the last draw counts the last batch

    def _deliver(self, batch: list[Decoded], *, last: bool = False) -> None:
        """Aggregate ``batch`` (adding any snapshot it completes) and send it to the plugins.

        Point messages are built only when a live plugin accepts them, once, for all of them."""
        stage = self._aggregation
        extra = stage.add(batch) if stage is not None else []
        self.stats.messages += len(batch)
        self._capture(now=last)  # before any commit can pass the offset it belongs to
        if self._workers:
            points = any(w.wants_points for w in self._workers)
            # without points, the batch's Metric messages, which the aggregation picked out
            messages = messages_of(batch if points or stage is None else stage.kept, points)
            self._send(messages + extra if extra else messages)
        self._check()
        self._commit()
        failure = self._policy_failure()
        if failure is not None:
            raise failure

    def _send(self, messages: Sequence[AnyMessage]) -> None:
        self._torn = True  # until every worker has it
        send_all(self._workers, messages, self.stats.messages)
        self._torn = False

    def _check(self) -> None:
        for worker in self._workers:
            worker.check()

    def _state_due(self) -> bool:
        stage = self._aggregation
        return (
            self._offsets is not None
            and stage is not None
            and stage.keeps_state
            and time.monotonic() - self._captured_at >= STATE_EVERY_S
        )

    def _capture(self, *, now: bool = False) -> None:
        """Save the run state with the offset that the records aggregated so far end at, if
        they end at a known one (every ``STATE_EVERY_S``; ``now``: at the end of the input)."""
        if not (self._state_due() or (now and self._offsets is not None and self._keeps_state)):
            return
        assert self._offsets is not None and self._aggregation is not None
        if self._offsets.capture(self.stats.messages, self._aggregation.durable_state):
            self._captured_at = time.monotonic()

    @property
    def _keeps_state(self) -> bool:
        return self._aggregation is not None and self._aggregation.keeps_state

    def _commit(self) -> None:
        """Commit the offset of what every live plugin has processed (at-least-once); when the
        run keeps a state, the newest such offset that has a state saved with it (the state is
        then exactly-once: a resumed run continues it from exactly that offset)."""
        offsets = self._offsets
        if offsets is None or self._on_commit is None or self._torn:
            return
        # under the fail policy the run stops for a failed plugin: it must get it all on restart
        keep = self.settings.plugin_errors == "fail"
        live = [w.records_done for w in self._workers if keep or w.state == "ok"]
        offsets.delivered(min(live, default=self.stats.messages))
        if not self._keeps_state:
            self._on_commit(offsets.committed, None)
        elif offsets.durable is not None:
            self._on_commit(*offsets.durable)

    def _policy_failure(self) -> PluginFailed | None:
        """Under ``plugin_errors = fail``, the first plugin that failed or hung, as an error."""
        if self.settings.plugin_errors != "fail":
            return None
        for worker in self._workers:
            if worker.state != "ok":
                return PluginFailed(f"plugin {worker.plugin.name!r} {worker.problem}")
        return None

    def _say_if_empty(self, status: Status, source: ByteStream | Receiver) -> None:
        """One line when the input held no k6 record at all (the runner then exits 65)."""
        if self.stats.messages or status == "interrupted" or not self.say_if_empty:
            return
        lines, name = self.stats.lines, source.name
        if isinstance(source, Receiver):
            log.error("no record was POSTed to %s (%d items read, none valid)", name, lines)
            return
        if self._first_line is None:
            what = "the input was empty" if not lines else f"{lines} lines read"
        else:
            what = f"{lines} lines read, the first: {shorten(self._first_line, 80)}"
        log.error("no k6 record in %s: %s (is it k6's --out json or csv output?)", name, what)

    def _on_console(self, line: bytes) -> None:
        self.stats.console_lines += 1
        if self._first_line is None:
            self._first_line = line
        if self._console is not None:
            self._console.write(line + b"\n")
            self._console.flush()

    def _on_reject(self, rejection: Rejection) -> None:
        self.stats.rejected += 1
        if self._first_line is None:
            self._first_line = rejection.raw[0]
        input_log.warning("%s", rejection.describe())
        if self._dead_letter is not None:
            for raw in rejection.raw:
                self._dead_letter.write(raw + b"\n")
        limit = self.settings.max_errors
        if limit is not None and self.stats.rejected >= limit:
            raise TooManyErrors(f"stopped after {limit} rejected lines (--max-errors)")


class _Offsets:
    """The file offset that every plugin has processed, known at chunk boundaries.

    After each chunk the pipeline marks (messages decoded so far, offset of the end of the last
    complete line). Once that many messages are delivered, the offset is committed: a restart
    from it repeats at most the messages of one chunk. A mark may carry the run state after
    exactly its messages (:meth:`capture`); ``durable`` is the newest committed mark that does.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.committed = base
        self.durable: tuple[int, bytes] | None = None
        """(offset, run state) of the newest committed mark with a state."""
        self._done = 0
        """Messages before ``committed``."""
        self._marks: deque[_Mark] = deque()

    def mark(self, messages: int, offset: int) -> None:
        self._marks.append(_Mark(messages, self.base + offset))

    def capture(self, messages: int, state: Callable[[], bytes]) -> bool:
        """Attach ``state()`` (the state after ``messages`` messages) to the newest mark if it
        is at exactly that many (else a state could not be told where it belongs): True if so."""
        marks = self._marks
        if marks:
            newest = marks[-1]
            if newest.messages != messages or newest.state is not None:
                return False
            newest.state = state()
            return True
        if self._done != messages or (self.durable and self.durable[0] == self.committed):
            return False
        self.durable = (self.committed, state())
        return True

    def delivered(self, messages: int) -> None:
        marks = self._marks
        while marks and marks[0].messages <= messages:
            mark = marks.popleft()
            self.committed, self._done = mark.offset, mark.messages
            if mark.state is not None:
                self.durable = (mark.offset, mark.state)


@dataclass(slots=True)
class _Mark:
    messages: int
    offset: int
    state: bytes | None = None
