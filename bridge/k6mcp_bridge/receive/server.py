"""The HTTP side of ``--listen``: uvicorn on its own thread, serving one small ASGI app.

* ``POST /mcp``: a body (see :mod:`.bodies`) → 202 when every item was accepted, 400 with the
  errors when some were not (the valid ones are delivered all the same), 413 above the body
  limit, 415 for another ``Content-Type``;
* ``GET /healthz``: 200 once the server is up (a readiness probe);
* with a token, any request without ``Authorization: Bearer TOKEN`` gets 401.

uvicorn was chosen for throughput on a two-core budget (its httptools parser is C, with h11 as
the pure-Python fallback) and because the ``mcp`` plugin's SDK runs on it already; no framework
sits on top, the app is one ASGI callable. The listening socket is bound here, on the caller's
thread, so a taken port is a clear error before any plugin starts.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import uvicorn

from ..addresses import is_loopback, parse_address
from ..errors import ConfigError, SourceError
from .bodies import ACCEPTED_TYPES, BodyReader, Parcel, body_kind

log = logging.getLogger("k6mcp_bridge")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATH = "/mcp"
GRACEFUL_SECONDS = 10.0
"""On a stop, how long requests already being read may take to finish."""
_JSON = [(b"content-type", b"application/json")]


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise SourceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise SourceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


class _Gone(Exception):
    """The client went away before its body was read."""


class HttpServer:
    """The ASGI app and the uvicorn server that runs it; parcels go to ``parcels``."""

    def __init__(
        self,
        listen: str,
        token: str | None,
        max_body: int,
        reader: BodyReader,
        parcels: queue.Queue[Parcel],
    ) -> None:
        host, port = parse_address(listen, "--listen")
        if not token and not is_loopback(host):
            raise ConfigError(
                f"--listen {listen}: a non-loopback address needs a token "
                "(--listen-token, or K6MCP_BRIDGE_LISTEN_TOKEN); clients then send "
                "'Authorization: Bearer TOKEN'"
            )
        self._auth = f"Bearer {token}".encode() if token else None
        self._max_body = max_body
        self._reader = reader
        self._parcels = parcels
        self._socket = _bind(host, port)
        bound = self._socket.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}{PATH}"
        self.last_request = time.monotonic()
        config = uvicorn.Config(
            self,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="k6mcp-bridge-listen", daemon=True)

    def start(self) -> threading.Thread:
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop accepting; finish the requests being read (within :data:`GRACEFUL_SECONDS`)."""
        self._server.should_exit = True

    def close(self) -> None:
        """Stop now, and free the port."""
        self._server.should_exit = self._server.force_exit = True
        if self._thread.is_alive():
            self._thread.join(GRACEFUL_SECONDS)
        self._socket.close()

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # SystemExit from uvicorn's start-up, or a bug: say it
            log.error("the HTTP receiver stopped: %s: %s", type(exc).__name__, exc)

    # --- the ASGI app --------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.last_request = time.monotonic()
        try:
            status, answer, headers = await self._handle(scope, receive)
        except _Gone:
            return
        body = msgspec.json.encode(answer)
        length = [(b"content-length", str(len(body)).encode())]
        await send(
            {"type": "http.response.start", "status": status, "headers": _JSON + length + headers}
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
        headers = dict(scope["headers"])
        if self._auth is not None and not hmac.compare_digest(
            headers.get(b"authorization", b""), self._auth
        ):
            reason = "unauthorized: send 'Authorization: Bearer TOKEN' with the --listen-token"
            return 401, {"error": reason}, [(b"www-authenticate", b'Bearer realm="k6mcp-bridge"')]
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            if method != "GET":
                return 405, {"error": "GET /healthz"}, [(b"allow", b"GET")]
            return 200, {"status": "ok", "requests": self._reader.requests}, []
        if path != PATH:
            return 404, {"error": f"no such path {path!r}: POST to {PATH}"}, []
        if method != "POST":
            return (
                405,
                {"error": f"POST k6 records or MCP envelopes to {PATH}"},
                [(b"allow", b"POST")],
            )
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        kind = body_kind(content_type)
        if kind is None:
            given = repr(content_type) if content_type else "none"
            reason = (
                f"Content-Type {given} is not accepted: send an envelope or an array of them "
                f"as application/json, or k6 JSON lines as NDJSON (accepted: {ACCEPTED_TYPES})"
            )
            return 415, {"error": reason}, [(b"accept-post", ACCEPTED_TYPES.encode())]
        length = headers.get(b"content-length", b"")
        body = (
            None if length.isdigit() and int(length) > self._max_body else await self._body(receive)
        )
        if body is None:
            reason = f"the body is over the {self._max_body}-byte limit (--listen-max-body)"
            return 413, {"error": reason}, []
        parcel = self._reader.read(body, kind)
        await self._put(parcel)
        return (400 if parcel.problems else 202), parcel.answer(), []

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` once it is over the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Gone
            part = message.get("body", b"")
            size += len(part)
            if size > self._max_body:
                return None
            parts.append(part)
            if not message.get("more_body"):
                return b"".join(parts)

    async def _put(self, parcel: Parcel) -> None:
        """Hand ``parcel`` to the pipeline; a full queue waits (backpressure, nothing lost)."""
        try:
            self._parcels.put_nowait(parcel)
        except queue.Full:
            await asyncio.to_thread(self._parcels.put, parcel)
