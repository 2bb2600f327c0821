"""What ``merge --nats`` reads besides the states: every window of the run, from the start.

An ephemeral pull consumer on ``k6mcp.window.v1.<run>.*`` (stream ``K6MCP_WINDOWS``) that starts
at the stream's first message, every time: a restarted merger (after ``kill -9``) starts a new
run in its plugins (a new run in the store), so it reads every window again, not only those
after some durable position. Windows are cumulative in no way (each holds one bucket's samples of
one instance), so each must count exactly once: the server drops a resend within its duplicate
window (2 minutes) by ``Nats-Msg-Id``, and the reader drops any id it has already seen (a resend
after a longer outage). A consumer lost (the broker restarted, the consumer went idle) is made
again from the stream sequence after the last one read.

A run's name may have served before (a TestRun applied again, ``demo`` run twice): the stream
then also holds the windows of earlier runs, under the same instance names. A window goes on
only once the merger holds a state of its instance, and only if it ends after that state's
``first_time`` (the instance's earliest sample in the run whose state counts; a bridge resumed
from its checkpoint keeps it): an earlier run's windows end before it and are left out, so the
buckets match the states. Until then the instance's windows wait.

When the merger has every final state, :meth:`WindowReader.drain` reads the stream to its end:
a publisher sends its windows before any state that counts their samples, so by then every
window of every final instance is there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from k6mcp_bridge.messages import Window, WindowMessage

from .subjects import WINDOW_PREFIX, WINDOW_STREAM, run_filter, untoken

log = logging.getLogger("k6mcp_bridge.nats")

BATCH = 256
FETCH_S = 0.5
IDLE_S = 60.0
"""The server deletes the consumer after this long without a fetch (a merger killed)."""


class WindowReader:
    """Reads the windows of ``run`` and hands each new one of the current run to ``on_windows``
    (see the module), in stream order per instance; ``since(instance)`` is the ``first_time`` of
    the state held for it (None: no state, or none with a sample, yet)."""

    def __init__(
        self,
        js: Any,
        run: str,
        on_windows: Callable[[list[Window]], None],
        since: Callable[[str], datetime | None],
    ) -> None:
        self._js = js
        self._run = run
        self._on_windows = on_windows
        self._since = since
        self._waiting: dict[str, list[Window]] = {}
        """Instance → its windows read before the merger held a state of it with a sample."""
        self._subscription: Any = None
        self._next = 1
        """The stream sequence to read next."""
        self._seen: set[str] = set()
        self._pending: int | None = None
        """Messages left after the last one read (None: not known yet)."""
        self.windows = 0
        self.duplicates = 0
        self.earlier = 0
        """Windows of an earlier run of the same name, left out."""
        self.stopped = False

    async def follow(self) -> None:
        """Read until :attr:`stopped` is set (the merger has every final state)."""
        while not self.stopped:
            await self.poll()

    async def drain(self, idle_s: float) -> bool:
        """Read until the stream holds nothing more for this run, or until ``idle_s`` seconds
        pass without a window read (the broker is away): True when it got there."""
        moved = time.monotonic()
        while time.monotonic() - moved < idle_s:
            try:
                if self._pending == 0 and await self._caught_up():
                    self.release()
                    return True
            except Exception as exc:  # the broker is away: try again
                log.debug("nats: %s", exc)
                await asyncio.sleep(FETCH_S)
            if await self.poll():
                moved = time.monotonic()
        self.release()
        return False

    @property
    def unplaced(self) -> int:
        """Windows of instances the merger holds no state (with a sample) of."""
        return sum(len(windows) for windows in self._waiting.values())

    def release(self) -> None:
        """Hand on the waiting windows of the instances that now have a state."""
        fresh: list[Window] = []
        for instance in list(self._waiting):
            since = self._since(instance)
            if since is not None:
                fresh += self._current(self._waiting.pop(instance), since)
        self._hand_on(fresh)

    async def poll(self) -> int:
        """One fetch: the windows it gave (new ones handed on)."""
        try:
            if self._subscription is None:
                self._subscription = await self._subscribe()
            messages = await self._subscription.fetch(BATCH, timeout=FETCH_S)
        except Exception as exc:  # nothing new (a timeout), or the broker or consumer is away
            from nats.errors import TimeoutError as NatsTimeout

            if not isinstance(exc, (NatsTimeout, asyncio.TimeoutError)):
                log.debug("nats: reading windows: %s: %s", type(exc).__name__, exc)
                self._subscription = None  # made again from the next sequence
                await asyncio.sleep(FETCH_S)
            else:
                self._pending = 0 if self._pending is None else self._pending
            return 0
        fresh: list[Window] = []
        for message in messages:
            metadata = message.metadata
            self._next = max(self._next, metadata.sequence.stream + 1)
            self._pending = metadata.num_pending
            window = self._window(message)
            if window is None:
                continue
            instance = untoken(message.subject.rsplit(".", 1)[1])
            since = self._since(instance)
            if since is None or instance in self._waiting:
                self._waiting.setdefault(instance, []).append(window)
            else:
                fresh += self._current([window], since)
        self.release()
        self._hand_on(fresh)
        return len(messages)

    def _current(self, windows: list[Window], since: datetime) -> list[Window]:
        current = [window for window in windows if window.end > since]
        self.earlier += len(windows) - len(current)
        return current

    def _hand_on(self, windows: list[Window]) -> None:
        if windows:
            self.windows += len(windows)
            self._on_windows(windows)

    def _window(self, message: Any) -> Window | None:
        """The window ``message`` holds; None for one seen before or one that is no window."""
        msg_id = (message.headers or {}).get("Nats-Msg-Id")
        if msg_id is not None:
            if msg_id in self._seen:
                self.duplicates += 1
                return None
            self._seen.add(msg_id)
        try:
            return WindowMessage.model_validate_json(message.data).data
        except ValidationError as exc:
            skipped(message.subject, "window", exc)
            return None

    async def _subscribe(self) -> Any:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        return await self._js.pull_subscribe(
            run_filter(self._run, WINDOW_PREFIX),
            stream=WINDOW_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._next,
                inactive_threshold=IDLE_S,
            ),
        )

    async def _caught_up(self) -> bool:
        if self._subscription is None:
            return False
        info = await self._subscription.consumer_info()
        return bool(info.num_pending == 0)


def skipped(subject: str, what: str, exc: ValidationError) -> None:
    """Say that a message on ``subject`` holds no ``what`` (a state, a window) and why."""
    first = exc.errors(include_url=False)[0]
    log.warning(
        "nats: %s holds no k6mcp-bridge %s (%s: %s): skipped",
        subject,
        what,
        ".".join(str(part) for part in first["loc"]),
        first["msg"],
    )
