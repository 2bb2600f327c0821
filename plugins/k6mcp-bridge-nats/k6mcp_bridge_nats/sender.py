"""The publisher's background sender: the newest state, and every window queued, to JetStream.

A thread with its own event loop publishes what it was given, so that a broker that is down or
slow costs the bridge nothing:

* **states** go through a one-state slot: a newer state replaces one not sent yet, the broker
  always gets the newest;
* **windows** go through a FIFO queue, bounded in bytes (``queue_bytes``): every one is sent,
  in order, up to ``WINDOW_BATCH`` at a time; a window that does not fit the queue (the broker
  has been away long) is dropped and counted, never blocking.

The queue is emptied before the slot is looked at, and a caller queues a window before it
offers a state that counts it, so when a state is acknowledged, every window whose samples it
holds is in the stream: a merger that holds an instance's final state and has read the window
stream to its end has all that instance's windows. A failed publish is retried with backoff
(0.2 s doubling to 5 s); ``Nats-Msg-Id`` makes a resend that the server had already stored a
duplicate it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from .subjects import (
    MAX_PER_SUBJECT,
    STREAM,
    SUBJECTS,
    WINDOW_MAX_AGE_S,
    WINDOW_STREAM,
    WINDOW_SUBJECTS,
)

log = logging.getLogger("k6mcp_bridge.nats")

BACKOFF_S = (0.2, 5.0)
PUBLISH_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3.0
WINDOW_BATCH = 64
"""Windows published at once (their acknowledgements awaited together)."""


@dataclass(frozen=True)
class Outgoing:
    subject: str
    msg_id: str
    payload: bytes
    seq: int
    """A state's ``seq``; a window's number."""
    final: bool


class Sender:
    """A background thread that publishes the newest state offered and every window queued."""

    def __init__(
        self,
        url: str,
        options: dict[str, Any],
        interval: float = 0.0,
        produce: Callable[[], Outgoing | None] | None = None,
        queue_bytes: int = 64 << 20,
    ) -> None:
        self.url = url
        self._options = options
        self._interval = interval
        self._produce = produce
        """Called every ``interval`` seconds on the thread: a newer state to send, or None."""
        self._queue_bytes = queue_bytes
        self._lock = threading.Lock()
        self._latest: Outgoing | None = None
        self._queue: deque[Outgoing] = deque()
        self._queued = 0
        """Bytes of payload in the queue."""
        self._stop = False
        self._drained = threading.Event()
        """Set when the slot and the queue are empty: all offered was acknowledged."""
        self._drained.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self.published = 0
        self.duplicates = 0
        self.failures = 0
        self.disconnections = 0
        self.windows_published = 0
        self.windows_dropped = 0
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

    def queue(self, outgoing: Outgoing) -> bool:
        """Queue a window to send after those before it; never blocks. False (and a warning the
        first time) when the queue is full: the window is dropped."""
        size = len(outgoing.payload)
        with self._lock:
            if self._queued + size > self._queue_bytes:
                self.windows_dropped += 1
                dropped = self.windows_dropped
            else:
                self._queue.append(outgoing)
                self._queued += size
                self._drained.clear()
                dropped = 0
        if dropped == 1:
            log.warning(
                "nats: %d MB of windows wait for %s: further windows are dropped (the merged "
                "run's time buckets will miss them; its numbers and verdicts will not)",
                self._queue_bytes >> 20,
                self.url,
            )
        if not dropped:
            self._poke()
        return not dropped

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)

    @property
    def waiting(self) -> int:
        """Windows queued, not acknowledged yet."""
        with self._lock:
            return len(self._queue)

    def close(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for everything offered and queued to be acknowledged,
        then stop the thread; True when it was."""
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
        self._loop = loop
        self._wake = wake = asyncio.Event()
        self._ready.set()
        ticker = loop.create_task(self._tick()) if self._produce and self._interval else None
        client: Any = None
        streams_ready = False
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
            with self._lock:  # the queue first: a state is sent once its windows are
                batch = list(islice(self._queue, WINDOW_BATCH))
                outgoing = None if batch else self._latest
            if (not batch and outgoing is None) or self._stop:
                retry = False
                continue
            try:
                if client is None or client.is_closed:
                    client = await self._connect()
                js = client.jetstream()
                if not streams_ready:
                    await ensure_streams(js)
                    streams_ready = True
                if batch:
                    acked, duplicates, error = await self._publish_windows(js, batch)
                    self._sent_windows(batch[:acked], duplicates)
                    if error is not None:
                        raise error
                else:
                    assert outgoing is not None
                    ack = await _publish(js, outgoing)
                    self._sent_state(outgoing, bool(ack.duplicate))
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
                if self._latest is None and not self._queue:
                    self._drained.set()
                else:
                    wake.set()  # more came meanwhile, or the state waits behind the windows
        if ticker is not None:
            ticker.cancel()
        if client is not None:
            await _close(client)

    async def _connect(self) -> Any:
        import nats

        return await asyncio.wait_for(
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

    async def _publish_windows(
        self, js: Any, batch: list[Outgoing]
    ) -> tuple[int, int, BaseException | None]:
        """Publish ``batch`` at once: how many from its head are done (acknowledged, or too
        large to ever be: dropped), the duplicates among them, and the first error after."""
        from nats.errors import MaxPayloadError

        results = await asyncio.gather(
            *(_publish(js, outgoing) for outgoing in batch), return_exceptions=True
        )
        duplicates = 0
        for done, result in enumerate(results):
            if isinstance(result, MaxPayloadError):
                log.error(
                    "nats: window %s (%d bytes) is larger than the server takes: dropped",
                    batch[done].msg_id,
                    len(batch[done].payload),
                )
                with self._lock:
                    self.windows_dropped += 1
            elif isinstance(result, BaseException):
                return done, duplicates, result
            else:
                duplicates += bool(result.duplicate)
        return len(batch), duplicates, None

    def _sent_windows(self, done: list[Outgoing], duplicates: int) -> None:
        with self._lock:
            for outgoing in done:
                self._queue.popleft()
                self._queued -= len(outgoing.payload)
            self.windows_published += len(done)
            self.duplicates += duplicates

    def _sent_state(self, outgoing: Outgoing, duplicate: bool) -> None:
        with self._lock:
            if self._latest is outgoing:
                self._latest = None
            self.published += 1
            self.duplicates += duplicate
            self.last_published = outgoing

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
                "nats: cannot publish to %s (%s); retrying with backoff, the bridge goes on",
                self.url,
                text,
            )
        self.failures += 1
        self.last_error = text


async def _publish(js: Any, outgoing: Outgoing) -> Any:
    return await js.publish(
        outgoing.subject,
        outgoing.payload,
        timeout=PUBLISH_TIMEOUT_S,
        headers={"Nats-Msg-Id": outgoing.msg_id},
    )


async def ensure_streams(js: Any) -> None:
    """Create the states' and the windows' streams when they are missing (an existing one is
    left as it is)."""
    await _ensure(js, STREAM, subjects=[SUBJECTS], max_msgs_per_subject=MAX_PER_SUBJECT)
    await _ensure(js, WINDOW_STREAM, subjects=[WINDOW_SUBJECTS], max_age=WINDOW_MAX_AGE_S)


async def _ensure(js: Any, name: str, **config: Any) -> None:
    from nats.js.errors import BadRequestError, NotFoundError

    try:
        await js.stream_info(name)
    except NotFoundError:
        try:
            await js.add_stream(name=name, **config)
        except BadRequestError:  # created by another runner meanwhile
            await js.stream_info(name)


async def _close(client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 2.0)


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _nothing() -> None:
    return None
