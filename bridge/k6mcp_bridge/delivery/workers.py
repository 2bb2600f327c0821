"""One worker thread per plugin: a bounded queue of batches in stream order, and a timeout.

The pipeline's reader hands every batch to each :class:`Worker` with :meth:`Worker.send`. A
worker's queue holds at most ``queue_batches`` batches; when it is full the reader waits
(backpressure: nothing is dropped, and k6 slows down as it would on a slow disk). A call into
the plugin (``start``, ``process_batch``, ``finish``) that runs longer than ``timeout`` seconds
marks the plugin **hung**: it is sent nothing more, the reader stops waiting for it, and its
daemon thread never holds up the exit. A plugin that raises is **failed**: it gets no more
batches but its ``finish`` still runs. Everyone else keeps receiving everything.

Hangs are noticed whenever the reader waits for a worker (a full queue, the end of the run) and
at every :meth:`Worker.check`, which the pipeline calls after each delivery and when the input
is idle.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial

from ..messages import AnyMessage
from ..plugin import MessageFailed, Plugin, PluginReport, PluginState, RunInfo, RunResult

log = logging.getLogger("k6mcp_bridge")

QUEUE_BATCHES = 8
"""Batches a plugin's queue holds before the reader waits for it."""
_TICK = 0.05
"""Seconds between two looks at a busy plugin's clock while waiting for it."""


@dataclass(frozen=True)
class Batch:
    """What a plugin is sent: its messages, and the records delivered once it is processed."""

    messages: Sequence[AnyMessage]
    records: int
    """Records delivered once this batch is processed (what the checkpoint may commit)."""


@dataclass(frozen=True)
class _Queued:
    batch: Batch
    before: int
    """Records of the batch sent before it, queued or not: done once the queue reaches it."""


@dataclass(frozen=True)
class _Call:
    what: str
    call: Callable[[], None]
    last: bool = False
    """The plugin's ``finish``: the thread ends after it."""


class Worker:
    """A plugin on its own thread. All public methods are called from the reader's thread."""

    def __init__(self, plugin: Plugin, timeout: float, queue_batches: int = QUEUE_BATCHES) -> None:
        self.plugin = plugin
        self.accepts = None if plugin.accepts is None else frozenset(plugin.accepts)
        self.timeout = timeout
        self.state: PluginState = "ok"
        self.problem = ""
        """What went wrong, e.g. ``failed in process_batch on message #12``."""
        self.received = 0
        """Messages handed to the plugin."""
        self.seconds = 0.0
        """Time spent inside the plugin's methods."""
        self._enqueued = 0
        """Batches put in the queue (the reader's count)."""
        self._latest = 0
        """Records of the newest batch sent, queued or not (the reader's)."""
        self._processed = 0
        """Batches taken from the queue and processed (the plugin thread's count)."""
        self._records_processed = 0
        """Records of the newest batch the plugin processed while ok (the plugin thread's)."""
        self._queue: queue.Queue[_Queued | _Call] = queue.Queue(maxsize=queue_batches)
        self._busy: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"k6mcp-plugin-{plugin.name}", daemon=True
        )
        self._thread.start()

    # --- the reader's side -------------------------------------------------------------------

    def start(self, info: RunInfo) -> None:
        self._put(_Call("start", partial(self.plugin.start, info)))

    def send(self, batch: Batch) -> None:
        """Queue ``batch``; waits while the queue is full, unless the plugin hangs. A batch
        with no message for this plugin is not queued (a thread woken for nothing costs the
        reader a GIL hand-over): it only moves :attr:`records_done` once the queue is done."""
        if self.state == "ok":
            before, self._latest = self._latest, batch.records
            if batch.messages:
                self._enqueued += 1
                self._put(_Queued(batch, before))

    @property
    def records_done(self) -> int:
        """Records of the batches the plugin has processed (the checkpoint's share)."""
        if self.state == "ok" and self._processed == self._enqueued:
            return self._latest  # nothing queued is left: the batches not queued are done too
        return self._records_processed

    def sync(self) -> None:
        """Wait until the plugin has processed everything sent so far (or hangs)."""
        if self.state == "hung":
            return
        done = threading.Event()
        self._put(_Call("", done.set))
        self._wait(done)

    def drop_pending(self) -> None:
        """Forget the batches the plugin has not taken yet (a second Ctrl-C: stop now). They are
        not counted as processed, so a checkpoint still holds them."""
        with suppress(queue.Empty):
            while True:
                self._queue.get_nowait()

    def finish(self, result: RunResult) -> None:
        """Queue the plugin's ``finish`` (it runs for a failed plugin too, not a hung one)."""
        if self.state != "hung":
            self._put(_Call("finish", partial(self.plugin.finish, result), last=True))
        else:
            self._ended.set()

    def wait(self) -> None:
        """Wait for ``finish`` to return, or for the plugin to be declared hung."""
        self._wait(self._ended)

    def check(self) -> None:
        """Declare the plugin hung if its current call has run longer than the timeout."""
        with self._lock:
            busy = self._busy
            if busy is None or self.state == "hung":
                return
            what, since = busy
            elapsed = time.monotonic() - since
            if elapsed <= self.timeout:
                return
            self.state = "hung"
            self.problem = f"hung in {what}"
        log.error(
            "plugin %r (%s) hung: %s has not returned after %.1f s (plugin_timeout %g s); "
            "it gets nothing more and the others carry on",
            self.plugin.name,
            self.plugin.origin or "not installed",
            what,
            elapsed,
            self.timeout,
        )

    @property
    def wants_points(self) -> bool:
        """Alive and accepting ``point`` messages (else none need be built for it)."""
        return self.state == "ok" and (self.accepts is None or "point" in self.accepts)

    def report(self) -> PluginReport:
        """Its state and counts now; a call still running counts up to now."""
        with self._lock:
            busy = self._busy
            running = time.monotonic() - busy[1] if busy is not None else 0.0
            return PluginReport(self.plugin.name, self.state, self.received, self.seconds + running)

    def _put(self, item: _Queued | _Call) -> None:
        while self.state != "hung":
            try:
                self._queue.put(item, timeout=_TICK)
                return
            except queue.Full:
                self.check()

    def _wait(self, event: threading.Event) -> None:
        while self.state != "hung" and not event.wait(_TICK) and self._thread.is_alive():
            self.check()

    # --- the plugin's thread -----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Queued):
                if self.state == "ok":
                    self._records_processed = item.before
                    messages = item.batch.messages
                    first = self.received + 1
                    self.received += len(messages)
                    last = self.received
                    self._run(
                        f"process_batch on messages #{first}-#{last}",
                        partial(self.plugin.process_batch, messages),
                        first,
                    )
                if self.state == "ok":
                    self._records_processed = item.batch.records
                self._processed += 1
            elif self.state == "ok" or item.last or not item.what:
                self._run(item.what, item.call)
            if self.state == "hung":
                return  # declared hung while it ran: whatever it returns now is not waited for
            if isinstance(item, _Call) and item.last:
                self._ended.set()
                return

    def _run(self, what: str, call: Callable[[], None], first: int = 0) -> None:
        started = time.monotonic()
        with self._lock:
            self._busy = (what, started) if what else None
        try:
            call()
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: no signal lands here
            self._failed(what, exc, first)
        finally:
            with self._lock:
                self._busy = None
                self.seconds += time.monotonic() - started

    def _failed(self, what: str, exc: BaseException, first: int) -> None:
        if isinstance(exc, MessageFailed) and exc.__cause__ is not None:
            what = f"process_batch on message #{first + exc.index}"
            cause: BaseException = exc.__cause__
        else:
            cause = exc
        with self._lock:
            if self.state == "hung":
                return
            self.state = "failed"
            self.problem = f"failed in {what}"
        log.error(
            "plugin %r (%s) failed in %s: %s: %s; it is disabled for the rest of this run",
            self.plugin.name,
            self.plugin.origin or "not installed",
            what,
            type(cause).__name__,
            cause,
        )
        log.debug("traceback", exc_info=cause)


def send_all(workers: Sequence[Worker], messages: Sequence[AnyMessage], records: int) -> None:
    """Give every worker the messages its plugin accepts (one filtered list per choice);
    ``records``: the records delivered once they are processed."""
    views: dict[frozenset[str] | None, Sequence[AnyMessage]] = {None: messages}
    for worker in workers:
        accepts = worker.accepts
        view = views.get(accepts)
        if view is None:
            assert accepts is not None
            view = views[accepts] = [m for m in messages if m.type in accepts]
        worker.send(Batch(view, records))
