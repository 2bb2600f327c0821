"""``--http HOST:PORT``: the server over streamable HTTP (``/mcp``), guarded.

* Loopback by default. Another address needs ``--allow-remote`` and a bearer token.
* ``Origin`` is validated, as the MCP spec asks of every HTTP server (DNS rebinding: a web page
  in the user's browser must not reach a local server): a request with an ``Origin`` that is
  not a loopback origin, nor one given with ``--allow-origin``, gets 403. A request without
  ``Origin`` (an MCP client that is not a browser) passes.
* On loopback the SDK's own ``Host`` check runs too (``Host`` must be a loopback name).
* With a token, every request needs ``Authorization: Bearer TOKEN`` (401 otherwise).
"""

from __future__ import annotations

import hmac
import logging
import sys
from collections.abc import Sequence
from typing import Any

from k6mcp_bridge.addresses import is_loopback

log = logging.getLogger("k6mcp_bridge")

LOOPBACK_ORIGINS = ("http://127.0.0.1", "http://localhost", "http://[::1]")


def origin_allowed(origin: str, extra: Sequence[str] = ()) -> bool:
    """A loopback origin (any port, http or https), or one of ``extra`` exactly."""
    origin = origin.rstrip("/")
    if origin in {o.rstrip("/") for o in extra}:
        return True
    for base in LOOPBACK_ORIGINS:
        for scheme_base in (base, base.replace("http://", "https://", 1)):
            if origin == scheme_base or (
                origin.startswith(scheme_base + ":") and origin[len(scheme_base) + 1 :].isdigit()
            ):
                return True
    return False


class Guard:
    """ASGI middleware: the Origin check and the bearer token, before the MCP app."""

    def __init__(self, app: Any, token: str | None, origins: Sequence[str]) -> None:
        self.app = app
        self.token = token
        self.origins = list(origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(origin, self.origins):
            log.warning("refused a request with Origin %s (--allow-origin accepts it)", origin)
            await _reply(send, 403, f"Origin {origin} is not allowed\n")
            return
        if self.token is not None:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                await _reply(
                    send, 401, "a bearer token is required\n", [(b"www-authenticate", b"Bearer")]
                )
                return
        await self.app(scope, receive, send)


async def _reply(
    send: Any, status: int, text: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})


def serve(server: Any, host: str, port: int, token: str | None, origins: Sequence[str]) -> None:
    """Serve until interrupted."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    if is_loopback(host):
        names = ["127.0.0.1", "localhost", "[::1]"]
        security = TransportSecuritySettings(
            allowed_hosts=[f"{name}:*" for name in names] + names,
            allowed_origins=[
                f"{base.replace('http', scheme, 1)}{port}"
                for base in LOOPBACK_ORIGINS
                for scheme in ("http", "https")
                for port in ("", ":*")
            ]
            + list(origins),
        )
    else:  # the Host of a remote bind is not known here; the token guards it
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app = Guard(server.streamable_http_app(transport_security=security, host=host), token, origins)
    shown = f"[{host}]" if ":" in host else host
    print(f"k6mcp-bridge: MCP over streamable HTTP at http://{shown}:{port}/mcp", file=sys.stderr)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run()
