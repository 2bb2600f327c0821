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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from socket import gethostname
from typing import Any

from pydantic import Field

from k6mcp_bridge import Plugin, RunInfo, RunResult
from k6mcp_bridge.aggregate.state import StateKeeper
from k6mcp_bridge.messages import Message, MetricsSnapshot, SeriesRollup, Window

from .connection import DEFAULT_URL, Credentials, connect_options
from .subjects import MAX_PER_SUBJECT, STREAM, SUBJECTS, message_id, subject

log = logging.getLogger("k6mcp_bridge.nats")

RUN_TAG = "testrun_name"
"""The tag k6-operator gives every sample of a TestRun (``--tag testrun_name=NAME``)..."""
INSTANCE_TAG = "instance_id"
"""...and the runner's number (``--tag instance_id=N``)."""
DEFAULT_RUN = "k6"
BACKOFF_S = (0.2, 5.0)
PUBLISH_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3.0


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


@dataclass(frozen=True)
class Outgoing:
    subject: str
    msg_id: str
    payload: bytes
    seq: int
    final: bool


class Sender:
    """A background thread that publishes the newest :class:`Outgoing` it was offered."""

    def __init__(
        self,
        url: str,
        options: dict[str, Any],
        interval: float = 0.0,
        produce: Callable[[], Outgoing | None] | None = None,
    ) -> None:
        self.url = url
        self._options = options
        self._interval = interval
        self._produce = produce
        """Called every ``interval`` seconds on the thread: a newer state to send, or None."""
        self._lock = threading.Lock()
        self._latest: Outgoing | None = None
        self._stop = False
        self._drained = threading.Event()
        """Set when the slot is empty: the last state offered was acknowledged."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self.published = 0
        self.duplicates = 0
        self.failures = 0
        self.disconnections = 0
        self.last_published: Outgoing | None = None
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._main, name="k6mcp-nats", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def offer(self, outgoing: Outgoing) -> None:
        """Put ``outgoing`` in the slot (replacing an older one not sent yet); never blocks."""
        with self._lock:
            self._latest = outgoing
            self._drained.clear()
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    def close(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the last state offered to be acknowledged, then
        stop the thread; True when it was."""
        sent = self._drained.wait(timeout)
        self._stop = True
        self._poke()
        self._thread.join(3.0)
        return sent

    # --- the thread ------------------------------------------------------------------------

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._run(loop))
        finally:
            loop.close()

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        import nats

        self._loop = loop
        self._wake = wake = asyncio.Event()
        self._ready.set()
        ticker = loop.create_task(self._tick()) if self._produce and self._interval else None
        client: Any = None
        stream_ready = False
        delay = BACKOFF_S[0]
        retry = False
        while not self._stop:
            if retry:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
                delay = min(delay * 2, BACKOFF_S[1])
            else:
                await wake.wait()
            wake.clear()
            with self._lock:
                outgoing = self._latest
            if outgoing is None or self._stop:
                retry = False
                continue
            try:
                if client is None or client.is_closed:
                    client = await asyncio.wait_for(
                        nats.connect(
                            self.url,
                            connect_timeout=2,
                            allow_reconnect=True,
                            max_reconnect_attempts=-1,
                            reconnect_time_wait=0.5,
                            error_cb=_quiet,
                            disconnected_cb=self._disconnected,
                            reconnected_cb=self._reconnected,
                            closed_cb=_nothing,
                            **self._options,
                        ),
                        CONNECT_TIMEOUT_S,
                    )
                js = client.jetstream()
                if not stream_ready:
                    await ensure_stream(js)
                    stream_ready = True
                ack = await js.publish(
                    outgoing.subject,
                    outgoing.payload,
                    timeout=PUBLISH_TIMEOUT_S,
                    headers={"Nats-Msg-Id": outgoing.msg_id},
                )
            except Exception as exc:  # down, slow, refused: retry with backoff, never raise
                self._failed(exc)
                if client is not None and not client.is_connected and not client.is_reconnecting:
                    await _close(client)
                    client = None
                retry = True
                continue
            if self.failures and retry:
                log.info("nats: publishing to %s again", self.url)
            retry, delay = False, BACKOFF_S[0]
            with self._lock:
                if self._latest is outgoing:
                    self._latest = None
                    self._drained.set()
                else:
                    wake.set()  # a newer one came meanwhile
                self.published += 1
                self.duplicates += bool(ack.duplicate)
                self.last_published = outgoing
        if ticker is not None:
            ticker.cancel()
        if client is not None:
            await _close(client)

    async def _tick(self) -> None:
        assert self._produce is not None
        while not self._stop:
            await asyncio.sleep(self._interval)
            try:
                outgoing = self._produce()
            except Exception:  # a bug in building the state must not stop the final one
                log.exception("nats: cannot build the state")
                continue
            if outgoing is not None and not self._stop:
                self.offer(outgoing)

    async def _disconnected(self) -> None:
        if not self._stop:
            self.disconnections += 1
            log.warning("nats: disconnected from %s; reconnecting (the bridge goes on)", self.url)

    async def _reconnected(self) -> None:
        log.info("nats: reconnected to %s", self.url)

    def _failed(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if not self.failures or text != self.last_error:
            log.warning(
                "nats: cannot publish the state to %s (%s); retrying with backoff, "
                "the bridge goes on",
                self.url,
                text,
            )
        self.failures += 1
        self.last_error = text


async def ensure_stream(js: Any) -> None:
    """Create the stream when it is missing (an existing one is left as it is)."""
    from nats.js.errors import BadRequestError, NotFoundError

    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(
                name=STREAM, subjects=[SUBJECTS], max_msgs_per_subject=MAX_PER_SUBJECT
            )
        except BadRequestError:  # created by another runner meanwhile
            await js.stream_info(STREAM)


async def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 2.0)


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _nothing() -> None:
    return None


class NatsPlugin(Plugin):
    name = "nats"
    description = "Publishes the run's mergeable state to NATS JetStream (merge --nats reads it)"
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
            self.config.url, connect_options(self.config), self.config.interval, self._tick
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
            elif kind == "metric":
                keeper.add_metric(message.data)  # type: ignore[arg-type]
            elif kind == "metrics":
                self._snapshot = message.data  # type: ignore[assignment]

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
                "nats: published %d state%s of %s (the last: seq %d%s)%s%s",
                sender.published,
                "" if sender.published == 1 else "s",
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
