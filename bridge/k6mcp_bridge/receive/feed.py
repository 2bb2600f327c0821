"""The ``--listen`` source as the pipeline reads it: parcels from the HTTP server's thread.

:class:`Receiver` stands where a file or stdin would: the pipeline iterates its
:meth:`~Receiver.chunks` (a parcel per request, an empty one when idle) and feeds them through
:class:`ParcelFeed`, whose records go on to the aggregation and the plugins and whose problems
are rejections, logged and counted as a bad line of a file is. uvicorn is imported only here,
when ``--listen`` is given: nothing listens otherwise.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterator, Mapping

from ..decode.json_lines import Rejection
from ..errors import ConfigError
from ..input.source import Position
from ..messages import MetricType
from ..samples import Decoded
from .bodies import BodyReader, Parcel

log = logging.getLogger("k6mcp_bridge")

QUEUE_PARCELS = 64
"""Requests read but not yet taken by the pipeline; past that, the server waits (backpressure)."""


class ParcelFeed:
    """A :class:`~..decode.dispatch.Feed` of parcels; ``lineno`` counts the items read."""

    def __init__(self, on_reject: Callable[[Rejection], None]) -> None:
        self._on_reject = on_reject
        self.fed = self.held = self.lineno = self.rejoined = 0

    def feed(self, chunk: Parcel, out: list[Decoded]) -> None:
        out += chunk.records
        self.lineno += chunk.items
        for problem in chunk.problems:
            self._on_reject(problem.rejection(chunk.request))

    def finish(self, out: list[Decoded]) -> None:
        """Nothing is held between requests: each body holds whole items."""


class Receiver:
    """An HTTP receiver on ``listen`` (``HOST:PORT``); it ends on :meth:`stop`, or after
    ``idle_timeout`` seconds without a request, once what was accepted is delivered."""

    live = True
    start = Position()

    def __init__(
        self,
        listen: str,
        *,
        token: str | None,
        max_body: int,
        metric_types: Mapping[str, MetricType],
        idle_timeout: float | None = None,
    ) -> None:
        try:
            from .server import HttpServer
        except ImportError as exc:  # the [http] extra
            raise ConfigError(
                f"--listen needs an HTTP server ({exc.name} is not installed): "
                "pip install 'k6mcp-bridge[http]'"
            ) from None
        self._parcels: queue.Queue[Parcel] = queue.Queue(QUEUE_PARCELS)
        self._server = HttpServer(listen, token, max_body, BodyReader(metric_types), self._parcels)
        self.name = self._server.url
        self._idle_timeout = idle_timeout

    def chunks(self, idle_tick: float) -> Iterator[Parcel]:
        """Every request's parcel in arrival order; an empty parcel every ``idle_tick`` seconds
        without one. Ends once the server has stopped and every parcel is taken."""
        thread = self._server.start()
        log.info("listening on %s", self.name)
        idle = Parcel(0)
        stopping = False
        while True:
            try:
                yield self._parcels.get(timeout=idle_tick)
                continue
            except queue.Empty:
                pass
            if not thread.is_alive():
                while not self._parcels.empty():  # what came in just before the end
                    yield self._parcels.get_nowait()
                return
            quiet = time.monotonic() - self._server.last_request
            if self._idle_timeout is not None and quiet >= self._idle_timeout and not stopping:
                log.info("no request for %gs (--idle-timeout): stopping", self._idle_timeout)
                stopping = True
                self.stop()
            yield idle

    def stop(self) -> None:
        """Stop accepting requests; those being read are still answered and delivered."""
        self._server.stop()

    def close(self) -> None:
        self._server.close()
