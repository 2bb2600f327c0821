"""``k6mcp-bridge mcp``: registered on the bridge's app through ``k6mcp_bridge.commands``.

This module imports typer only; ``mcp``, uvicorn and the server are imported when the command
runs, so ``k6mcp-bridge --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from k6mcp_bridge.cli.app import log, setup_logging
from k6mcp_bridge.errors import BridgeError, ConfigError, ExitStatus

TOKEN_ENV = "K6MCP_BRIDGE_MCP_TOKEN"


def register(app: typer.Typer) -> None:
    """The ``k6mcp_bridge.commands`` entry point."""
    app.command("mcp")(mcp)


def mcp(
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="The run store (default: K6MCP_BRIDGE_STORE, else "
            "$XDG_DATA_HOME/k6mcp-bridge/runs.db). Read-only, unless --follow writes it.",
        ),
    ] = None,
    follow: Annotated[
        Path | None,
        typer.Option(
            "--follow",
            help="Also follow this k6 JSON results file (as k6 writes it, or finished) into the "
            "store.",
        ),
    ] = None,
    idle_timeout: Annotated[
        float,
        typer.Option(
            help="With --follow: the run is over after this many seconds without growth.", min=0.1
        ),
    ] = 10.0,
    wait_pid: Annotated[
        int | None,
        typer.Option(help="With --follow: the run is over once this process (k6) exits.", min=1),
    ] = None,
    poll: Annotated[bool, typer.Option(help="With --follow: poll the file (NFS, VMs).")] = False,
    script: Annotated[
        Path | None,
        typer.Option(help="With --follow: the k6 script (its thresholds, trend stats)."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold", help="With --follow: a threshold (repeatable).", metavar="METRIC:EXPR"
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            help="Serve streamable HTTP at HOST:PORT (path /mcp) instead of stdio, "
            "e.g. 127.0.0.1:8765.",
            metavar="HOST:PORT",
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option(help="With --http: allow a non-loopback address (needs --token).")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            help=f"With --http: require 'Authorization: Bearer TOKEN' (or set {TOKEN_ENV}).",
            envvar=TOKEN_ENV,
            show_envvar=False,
        ),
    ] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-origin",
            help="With --http: also accept this Origin, e.g. https://app.example (repeatable; "
            "loopback origins are always accepted).",
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING or ERROR (stderr).")
    ] = "WARNING",
) -> None:
    """Serve the run store to AI assistants over MCP (stdio; --http for streamable HTTP)."""
    setup_logging(log_level)
    try:
        listen = None if http is None else _listen(http, allow_remote, token)
        if follow is None and (wait_pid is not None or script is not None or threshold):
            raise ConfigError("--wait-pid, --script and --threshold go with --follow")
        following = None
        if follow is not None:
            from .follow import Following

            following = Following(
                follow,
                store,
                idle_timeout=idle_timeout,
                wait_pid=wait_pid,
                poll=poll,
                script=script,
                thresholds=threshold or [],
                log_level=log_level,
            )
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None

    from .server import build_server

    server = build_server(store, following.status if following is not None else None)
    if following is not None:
        following.start()
    try:
        if listen is None:
            server.run("stdio")
        else:
            from .http import serve

            serve(server, listen[0], listen[1], token, allow_origin or [])
    except KeyboardInterrupt:
        raise typer.Exit(ExitStatus.INTERRUPTED) from None
    finally:
        if following is not None:
            following.stop()


def _listen(text: str, allow_remote: bool, token: str | None) -> tuple[str, int]:
    from k6mcp_bridge.addresses import is_loopback, parse_address

    host, port = parse_address(text, "--http", "127.0.0.1:8765")
    if not is_loopback(host):
        if not allow_remote:
            raise ConfigError(
                f"--http {text}: {host} is not a loopback address; anyone who can reach it could "
                "read your runs. Bind 127.0.0.1, or pass --allow-remote with --token "
                f"(or {TOKEN_ENV})"
            )
        if not token:
            raise ConfigError(
                f"--http {text} with --allow-remote needs a bearer token: --token or {TOKEN_ENV}"
            )
    return host, port
