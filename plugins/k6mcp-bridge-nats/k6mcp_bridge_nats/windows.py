"""What ``merge --nats`` reads besides the states: every window of the run, from the start.

An ephemeral pull consumer on ``k6mcp.window.v1.<run>.*`` (stream ``K6MCP_WINDOWS``) that starts
at the stream's first message, every time: a restarted merger (after ``kill -9``) starts a new
run in its plugins (a new run in the store), so it reads every window again, not only those
after some durable position. Windows are cumulative in no way (each holds one bucket's samples of
one instance), so each must count exactly once: the server drops a resend within its duplicate
window (2 minutes) by ``Nats-Msg-Id``, and the reader drops any id it has already seen (a resend
after a longer outage). A consumer lost (the broker restarted, the consumer went idle) is made
again from the stream sequence after the last one read.

When the merger has every final state, :meth:`WindowReader.drain` reads the stream to its end:
a publisher sends its windows before any state that counts their samples, so by then every
window of every final instance is there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from k6mcp_bridge.messages import Window, WindowMessage

from .subjects import WINDOW_PREFIX, WINDOW_STREAM, run_filter

log = logging.getLogger("k6mcp_bridge.nats")

BATCH = 256
FETCH_S = 0.5
IDLE_S = 60.0
"""The server deletes the consumer after this long without a fetch (a merger killed)."""


class WindowReader:
    """Reads the windows of ``run`` and hands each new one to ``on_windows``, in stream order."""

    def __init__(self, js: Any, run: str, on_windows: Callable[[list[Window]], None]) -> None:
        self._js = js
        self._run = run
        self._on_windows = on_windows
        self._subscription: Any = None
        self._next = 1
        """The stream sequence to read next."""
        self._seen: set[str] = set()
        self._pending: int | None = None
        """Messages left after the last one read (None: not known yet)."""
        self.windows = 0
        self.duplicates = 0
        self.stopped = False

    async def follow(self) -> None:
        """Read until :attr:`stopped` is set (the merger has every final state)."""
        while not self.stopped:
            await self.poll()

    async def drain(self, deadline: float) -> bool:
        """Read until the stream holds nothing more for this run (or ``deadline``, monotonic):
        True when it got there."""
        while time.monotonic() < deadline:
            try:
                if self._pending == 0 and await self._caught_up():
                    return True
            except Exception as exc:  # the broker is away: try again
                log.debug("nats: %s", exc)
                await asyncio.sleep(FETCH_S)
            await self.poll()
        return False

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
        fresh = []
        for message in messages:
            metadata = message.metadata
            self._next = max(self._next, metadata.sequence.stream + 1)
            self._pending = metadata.num_pending
            window = self._window(message)
            if window is not None:
                fresh.append(window)
        if fresh:
            self.windows += len(fresh)
            self._on_windows(fresh)
        return len(messages)

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
