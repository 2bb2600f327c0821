"""``k6mcp-bridge plugins`` (what is installed, enabled, broken) and ``schema``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import BridgeError
from .app import app, log, setup_logging

if TYPE_CHECKING:
    from ..registry import PluginEntry


plugins_app = typer.Typer(
    help="List installed plugins (name, distribution, version, enabled, load errors); "
    "`plugins new NAME` writes a new plugin package."
)
app.add_typer(plugins_app, name="plugins")


@plugins_app.callback(invoke_without_command=True)
def list_plugins(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="An .ini file.")] = None,
) -> None:
    """List installed plugins: name, distribution, version, enabled, load errors."""
    if ctx.invoked_subcommand is not None:
        return
    from ..config import load_only
    from ..registry import discover
    from .settings import settings_from

    setup_logging("ERROR")
    try:
        enabled = set(settings_from(config, {}, [])[0].plugins)
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None
    entries = discover(load_only(os.environ))
    rows = [_row(entry, entry.name in enabled) for entry in entries.values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    header = ("NAME", "ENABLED", "DISTRIBUTION", "VERSION", "ACCEPTS", "DESCRIPTION / ERROR")
    table = [header] + [
        (
            r["name"],
            "yes" if r["enabled"] else "no",
            r["distribution"],
            r["version"],
            ",".join(r["accepts"]) if r["accepts"] is not None else "all",
            f"ERROR: {r['error']}" if r["error"] else r["description"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]))


def _row(entry: PluginEntry, enabled: bool) -> dict[str, Any]:
    return {
        "name": entry.name,
        "enabled": enabled and entry.cls is not None,
        "distribution": entry.distribution,
        "version": entry.version,
        "target": entry.target,
        "description": entry.description,
        "accepts": accepts_of(entry),
        "error": entry.error,
    }


@app.command()
def schema() -> None:
    """Print the JSON Schema of the MCP messages."""
    from ..messages import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def accepts_of(entry: PluginEntry) -> list[str] | None:
    """The message types a loaded plugin accepts, sorted; ``None`` for all (or not loaded)."""
    if entry.cls is None or entry.cls.accepts is None:
        return None
    return sorted(entry.cls.accepts)
