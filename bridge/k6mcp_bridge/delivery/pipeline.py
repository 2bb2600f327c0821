"""Read a source, decode it, and deliver batches of messages to the plugins.

The pipeline owns counting, batching (by size and by time), error accounting,
the dead-letter file, and plugin isolation: a plugin that raises is reported by
name with the position of the message, then disabled (or the run fails, by policy),
while the others keep receiving everything.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import BinaryIO

from .. import __version__
from ..aggregate.stage import Aggregation
from ..config import Settings
from ..decode.dispatch import Decoding
from ..decode.json_lines import Decoded, Rejection
from ..errors import BridgeError, ConfigError, PluginFailed, TooManyErrors
from ..input.source import ByteStream
from ..messages import AnyMessage
from ..plugin import MessageFailed, Plugin, RunInfo, RunResult, Stats, Status

log = logging.getLogger("k6mcp_bridge")
input_log = logging.getLogger("k6mcp_bridge.input")


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
        on_commit: Callable[[int], None] | None = None,
        aggregation: Aggregation | None = None,
    ) -> None:
        self.settings = settings
        self.stats = Stats()
        self.interrupted = False
        """Set by a signal handler: the run still reads to the end but reports ``interrupted``."""
        self.stop_requested = False
        """Set by a signal handler: stop reading after the current chunk (``interrupted``)."""
        self._plugins = list(plugins)
        self._active = list(plugins)
        self._console = console
        self._dead_letter = dead_letter
        self._on_commit = on_commit
        self._aggregation = aggregation
        self._sent = 0
        """Messages sent to plugins, snapshots included (``stats.messages`` counts records)."""

    def run(self, source: ByteStream) -> RunResult:
        """Read ``source`` to its end (or until stopped); every plugin's ``finish`` is called."""
        started = time.monotonic()
        info = RunInfo(
            source.name, datetime.now(timezone.utc), __version__, source.start.offset > 0
        )
        status: Status = "completed"
        failure: BridgeError | None = None
        try:
            for plugin in list(self._active):
                self._call(plugin, "start", lambda p: p.start(info))
            self._read(source)
        except KeyboardInterrupt:
            status = "interrupted"
        except (TooManyErrors, PluginFailed) as exc:
            status, failure = "stopped", exc
        finally:
            if (self.interrupted or self.stop_requested) and status == "completed":
                status = "interrupted"
            if self._aggregation is not None:
                snapshot_failure = self._final_snapshot()
                failure = failure or snapshot_failure
            metrics = self._aggregation.final if self._aggregation is not None else None
            result = RunResult(status, self.stats, time.monotonic() - started, metrics)
            for plugin in self._plugins:
                finish_failure = self._finish(plugin, result)  # every plugin, whatever happened
                failure = failure or finish_failure  # the first failure is the cause
        if failure is not None:
            raise failure
        return result

    def _final_snapshot(self) -> PluginFailed | None:
        assert self._aggregation is not None
        try:
            self._send(self._aggregation.finish())
        except PluginFailed as exc:
            return exc
        return None

    def _read(self, source: ByteStream) -> None:
        settings = self.settings
        size, wait = settings.batch_size, settings.batch_wait
        decoding = Decoding(
            self._on_console, self._on_reject, source.start, settings.format, settings.metric_types
        )
        batch: list[Decoded] = []
        offsets = _Offsets(source.start.offset) if self._on_commit else None
        first_at = 0.0
        failed = False
        try:
            for chunk in source.chunks(idle_tick=wait):
                if not batch:
                    first_at = time.monotonic()
                if chunk:
                    decoding.feed(chunk, batch)
                    if offsets is not None:
                        offsets.mark(self.stats.messages + len(batch), decoding.fed - decoding.held)
                while len(batch) >= size:  # taken out before sending: never sent twice
                    ready = batch[:size]
                    del batch[:size]
                    self._deliver(ready, offsets)
                    first_at = time.monotonic()
                if batch and (not chunk or time.monotonic() - first_at >= wait):  # idle: deliver
                    ready, batch = batch, []
                    self._deliver(ready, offsets)
                if self.stop_requested:
                    return
                if offsets is not None and not chunk:
                    self._commit(offsets)  # idle: let a rate-limited save catch up
            decoding.finish(batch)
        except PluginFailed:
            failed = True
            raise
        except BridgeError as exc:
            if isinstance(exc, (TooManyErrors, ConfigError)):
                raise
            self.stats.input_errors.append(str(exc))  # the input broke off: corrupt gzip...
            log.error("%s", exc)
            decoding.finish(batch)
        finally:
            self.stats.lines = decoding.lineno
            self.stats.rejoined = decoding.rejoined
            if batch and not failed:
                self._deliver(batch, offsets)
            if offsets is not None:
                self._commit(offsets)

    def _commit(self, offsets: _Offsets) -> None:
        if self._on_commit is not None:
            self._on_commit(offsets.committed)

    def _deliver(self, batch: list[Decoded], offsets: _Offsets | None = None) -> None:
        """Aggregate ``batch`` (adding any snapshot it completes) and send it to the plugins."""
        messages: Sequence[AnyMessage] = batch
        if self._aggregation is not None:
            extra = self._aggregation.add(batch)
            if extra:
                messages = [*batch, *extra]
        self._send(messages)
        self.stats.messages += len(batch)
        if offsets is not None:
            offsets.delivered(self.stats.messages)
            self._commit(offsets)

    def _send(self, batch: Sequence[AnyMessage]) -> None:
        first = self._sent + 1
        self._sent += len(batch)
        for plugin in list(self._active):
            try:
                plugin.process_batch(batch)
            except Exception as exc:
                if isinstance(exc, MessageFailed) and exc.__cause__ is not None:
                    where = f"message #{first + exc.index}"
                    exc = exc.__cause__  # type: ignore[assignment]
                else:
                    where = f"the batch of messages #{first}-#{first + len(batch) - 1}"
                self._failed(plugin, f"process_batch on {where}", exc)

    def _call(self, plugin: Plugin, method: str, call: Callable[[Plugin], None]) -> None:
        try:
            call(plugin)
        except Exception as exc:
            self._failed(plugin, method, exc)

    def _finish(self, plugin: Plugin, result: RunResult) -> PluginFailed | None:
        """Call ``finish``; under the fail policy return (not raise) its failure."""
        try:
            plugin.finish(result)
        except Exception as exc:
            try:
                self._failed(plugin, "finish", exc, disable=False)
            except PluginFailed as failed:
                return failed
        return None

    def _failed(
        self, plugin: Plugin, where: str, exc: BaseException, *, disable: bool = True
    ) -> None:
        log.error(
            "plugin %r (%s) failed in %s: %s: %s",
            plugin.name,
            plugin.origin or "not installed",
            where,
            type(exc).__name__,
            exc,
        )
        log.debug("traceback", exc_info=exc)
        if disable and plugin in self._active:
            self._active.remove(plugin)  # it gets nothing more, whatever the policy
            if self.settings.plugin_errors == "disable":
                log.warning("plugin %r is disabled for the rest of this run", plugin.name)
        if self.settings.plugin_errors == "fail":
            raise PluginFailed(f"plugin {plugin.name!r} failed in {where}") from exc

    def _on_console(self, line: bytes) -> None:
        self.stats.console_lines += 1
        if self._console is not None:
            self._console.write(line + b"\n")
            self._console.flush()

    def _on_reject(self, rejection: Rejection) -> None:
        self.stats.rejected += 1
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
    from it repeats at most the messages of one chunk.
    """

    def __init__(self, base: int) -> None:
        self.base = base
        self.committed = base
        self._marks: deque[tuple[int, int]] = deque()

    def mark(self, messages: int, offset: int) -> None:
        self._marks.append((messages, self.base + offset))

    def delivered(self, messages: int) -> None:
        marks = self._marks
        while marks and marks[0][0] <= messages:
            self.committed = marks.popleft()[1]
