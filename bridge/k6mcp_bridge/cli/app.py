"""The typer app: ``k6mcp-bridge [SOURCE]`` means ``run``; ``--version``; logging to stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__

log = logging.getLogger("k6mcp_bridge")


PluginNames = Annotated[
    list[str] | None,
    typer.Option("--plugin", "-p", help="Enable a plugin (repeatable).", metavar="NAME"),
]
"""``-p NAME``, for every command that feeds plugins (``run``, ``merge``)."""
PluginOptions = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Set a plugin option.", metavar="NAME.KEY=VALUE"),
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="An .ini file (or K6MCP_BRIDGE_CONFIG).")
]


_OWN_OPTIONS = ("--help", "--version", "--install-completion", "--show-completion")
"""The app's own options: anything else first means ``run``."""


class _RunByDefault(TyperGroup):
    """``k6mcp-bridge [SOURCE]`` means ``k6mcp-bridge run [SOURCE]``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in _OWN_OPTIONS):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    add_completion=True,
    no_args_is_help=False,
    help="Stream k6 results (k6 run --out json=...) as MCP messages into plugins.\n\n"
    "The bare form `k6mcp-bridge [SOURCE]` runs the bridge (`run`).",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"k6mcp-bridge {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    pass


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup_logging(level: str) -> None:
    logger = logging.getLogger("k6mcp_bridge")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper() if level.upper() in _LEVELS else "INFO")
    logger.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        prefix = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"k6mcp-bridge: {prefix}{record.getMessage()}"


def main() -> None:
    from .commands import load_commands, needed

    if needed(sys.argv[1:], app):
        load_commands(app)
    app()
