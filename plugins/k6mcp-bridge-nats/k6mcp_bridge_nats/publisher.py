"""The ``nats`` plugin: publish this runner's cumulative run state to JetStream.

The plugin accepts ``metric``, ``window`` and ``metrics`` messages and keeps its own
:class:`~k6mcp_bridge.aggregate.state.StateKeeper`: the definitions from the ``metric``
messages, one whole-run bucket per series from the ``window`` messages (the rollups' closed
buckets: they add up to the run, a ``late`` window included), the span from the ``metrics``
snapshots (their ``time`` is the latest sample, ``test_run_duration_ms`` the span back to the
first). It is the state ``--state-export`` writes, built from what every plugin is given. A run
resumed from a checkpoint starts from the state the checkpoint holds (``RunInfo.state``: the
samples before the offset it resumes at), so nothing is counted twice or lost; ``seq`` goes on
growing from there (milliseconds since the epoch), so the merger takes the new states.

Every ``interval`` seconds of wall-clock time (when something changed) and at the end it puts
the state in a one-state slot; a background thread with its own event loop publishes whatever the
slot holds, to ``k6mcp.state.v1.<run>.<instance>`` with ``Nats-Msg-Id`` ``run.instance.seq``.
A newer state replaces one not sent yet: the broker always gets the newest. A broker that is
down or slow costs ``process_batch`` nothing: the thread retries with backoff (0.2 s doubling to
5 s), the other plugins go on, and ``finish`` waits at most ``finish_timeout`` seconds for the
final state, then says what was published and what was not.

Every ``window`` message it receives (a closed bucket, or a ``late`` one with the samples that
came after it closed) is also published as it comes, to ``k6mcp.window.v1.<run>.<instance>`` on
the stream ``K6MCP_WINDOWS``, with ``Nats-Msg-Id`` ``run.instance.w<session>.<number>.<start>``
(:func:`~.subjects.window_id`): ``merge --nats`` hands them to its plugins, so the merged run
has time buckets. Windows wait in a bounded queue while the broker is away and are sent in
order once it is back (:mod:`.sender`), each before any state that counts its samples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from socket import gethostname

from pydantic import Field

from k6mcp_bridge import Plugin, RunInfo, RunResult
from k6mcp_bridge.aggregate.state import StateKeeper
from k6mcp_bridge.messages import Message, MetricsSnapshot, SeriesRollup, Window

from .connection import DEFAULT_URL, Credentials, connect_options
from .sender import Outgoing, Sender
from .subjects import WINDOW_PREFIX, message_id, subject, window_id

log = logging.getLogger("k6mcp_bridge.nats")

RUN_TAG = "testrun_name"
"""The tag k6-operator gives every sample of a TestRun (``--tag testrun_name=NAME``)..."""
INSTANCE_TAG = "instance_id"
"""...and the runner's number (``--tag instance_id=N``)."""
DEFAULT_RUN = "k6"


class NatsConfig(Credentials):
    url: str = Field(DEFAULT_URL, description="The NATS server (nats://, tls://)")
    run: str | None = Field(
        None, description=f"The run's name (default: the {RUN_TAG} tag, else {DEFAULT_RUN!r})"
    )
    instance: str | None = Field(
        None, description=f"This runner's name (default: the {INSTANCE_TAG} tag, else HOST:INPUT)"
    )
    interval: float = Field(5.0, gt=0, description="Wall-clock seconds between two publishes")
    finish_timeout: float = Field(
        10.0, ge=0, description="Seconds the end of the run waits for the final state's ack"
    )
    windows: bool = Field(
        True, description="Publish the closed windows too (the merged run's time buckets)"
    )
    window_queue_mb: float = Field(
        64.0, gt=0, description="MB of windows kept while the broker is away (then dropped)"
    )


class NatsPlugin(Plugin):
    name = "nats"
    description = "Publishes the run's mergeable state and windows to NATS JetStream (merge --nats)"
    Config = NatsConfig
    config: NatsConfig
    accepts = frozenset({"metric", "window", "metrics"})

    def start(self, run_info: RunInfo) -> None:
        self._source = run_info.source
        self._keeper = StateKeeper("")
        self._names: tuple[str, str] | None = None
        self._tag_run: str | None = None
        self._tag_instance: str | None = None
        self._snapshot: MetricsSnapshot | None = None
        self._window_span: tuple[datetime, datetime] | None = None
        self._lock = threading.Lock()
        """process_batch and finish (the plugin's thread) against the sender's ticks."""
        self._changed = False
        self._finished = False
        self._session = time.time_ns() // 1_000_000
        """This bridge's start, in the windows' message ids."""
        self._windows = 0
        restored = run_info.state
        if restored is not None:  # resumed: the checkpoint's state holds what came before
            self._keeper.restore(restored)
            self._saw_series(restored.series)
            if restored.first_time is not None and restored.last_time is not None:
                self._window_span = (restored.first_time, restored.last_time)
        elif run_info.resumed:
            log.warning(
                "nats: resumed from a checkpoint without a run state: this instance's state "
                "starts again from the checkpoint (the samples before it are not in it)"
            )
        self._sender = Sender(
            self.config.url,
            connect_options(self.config),
            self.config.interval,
            self._tick,
            int(self.config.window_queue_mb * (1 << 20)),
        )

    def process_batch(self, messages: Sequence[Message]) -> None:
        with self._lock:
            self._add(messages)

    def _add(self, messages: Sequence[Message]) -> None:
        keeper = self._keeper
        self._changed = True
        for message in messages:
            kind = message.type
            if kind == "window":
                window: Window = message.data  # type: ignore[assignment]
                keeper.add_window(window)
                self._saw_window(window)
                if self.config.windows:
                    self._queue_window(message)
            elif kind == "metric":
                keeper.add_metric(message.data)  # type: ignore[arg-type]
            elif kind == "metrics":
                self._snapshot = message.data  # type: ignore[assignment]

    def _queue_window(self, message: Message) -> None:
        """``message`` (a ``window``) to the sender's queue, before any state that counts it."""
        window: Window = message.data  # type: ignore[assignment]
        run, instance = self.names()
        start = int(window.start.timestamp())
        outgoing = Outgoing(
            subject(run, instance, WINDOW_PREFIX),
            window_id(run, instance, self._session, self._windows, start),
            message.model_dump_json().encode("utf-8"),
            self._windows,
            window.final,
        )
        self._windows += 1
        self._sender.queue(outgoing)

    def _tick(self) -> None:
        """The sender's clock: offer the state, when something came since the last one (under
        the lock, so that no state built before the final one is offered after it)."""
        with self._lock:
            if not self._changed or self._finished or self._keeper.empty:
                return
            self._changed = False
            outgoing = self._state(final=False)
            log.debug("nats: state seq %d (%d bytes) to send", outgoing.seq, len(outgoing.payload))
            self._sender.offer(outgoing)

    def _saw_window(self, window: Window) -> None:
        span = self._window_span
        start, end = window.start, window.end
        self._window_span = (
            (start, end) if span is None else (min(span[0], start), max(span[1], end))
        )
        self._saw_series(window.series)

    def _saw_series(self, series: Sequence[SeriesRollup]) -> None:
        """k6-operator's tags, for the default run and instance names."""
        if self._names is None and (self._tag_run is None or self._tag_instance is None):
            for rollup in series:
                tags = rollup.tags
                self._tag_run = self._tag_run or tags.get(RUN_TAG)
                self._tag_instance = self._tag_instance or tags.get(INSTANCE_TAG)

    def names(self) -> tuple[str, str]:
        """The run's and this instance's names, fixed at the first publish."""
        if self._names is None:
            config = self.config
            run = config.run or self._tag_run or DEFAULT_RUN
            instance = config.instance or self._tag_instance or f"{gethostname()}:{self._source}"
            self._names = (run, instance)
        return self._names

    def _span(self) -> tuple[datetime | None, datetime | None]:
        snapshot = self._snapshot
        if snapshot is not None and snapshot.time is not None:
            last = snapshot.time
            return last - timedelta(milliseconds=snapshot.test_run_duration_ms), last
        if self._window_span is not None:
            return self._window_span
        return None, None

    def _state(self, *, final: bool) -> Outgoing:
        run, instance = self.names()
        keeper = self._keeper
        keeper.instance = instance
        first, last = self._span()
        state = keeper.state(first, last, final=final)
        outgoing = Outgoing(
            subject(run, instance),
            message_id(run, instance, state.seq),
            state.model_dump_json().encode("utf-8"),
            state.seq,
            final,
        )
        return outgoing

    def finish(self, result: RunResult) -> None:
        with self._lock:
            self._finished = True
            if result.metrics is not None:
                self._snapshot = result.metrics
            final = result.status == "completed"
            outgoing = self._state(final=final)
            self._sender.offer(outgoing)
        if not final:
            log.warning(
                "nats: the run was %s: its last state is published as not final", result.status
            )
        sender = self._sender
        run, instance = self.names()
        where = f"run {run!r} instance {instance!r} at {sender.url}"
        timeout = self.config.finish_timeout
        acked = sender.close(timeout if final else min(timeout, 2.0))
        last = sender.last_published
        if last is not None and last.seq == outgoing.seq:
            log.info(
                "nats: published %d state%s%s of %s (the last: seq %d%s)%s%s",
                sender.published,
                "" if sender.published == 1 else "s",
                f" and {sender.windows_published} windows" if self.config.windows else "",
                where,
                last.seq,
                ", final" if last.final else "",
                f"; {sender.failures} attempts failed" if sender.failures else "",
                f"; {sender.disconnections} disconnections" if sender.disconnections else "",
            )
        else:
            log.error(
                "nats: the %s state of %s was NOT published (%s): %s; %d attempts failed (%s)",
                "final" if final else "last",
                where,
                f"no ack within {timeout:g} s" if not acked else "superseded",
                f"the last published is seq {last.seq}" if last else "nothing was published",
                sender.failures,
                sender.last_error or "no error",
            )
        unsent = sender.waiting + sender.windows_dropped
        if unsent:
            log.error(
                "nats: %d windows of %s were NOT published (%d dropped, %d still queued at the "
                "end): the merged run's time buckets miss them (its numbers and verdicts do not)",
                unsent,
                where,
                sender.windows_dropped,
                sender.waiting,
            )
