"""The command line: ``k6mcp-bridge [run] [SOURCE]``, ``plugins``, ``schema``.

The only module that imports typer, and the only place that turns outcomes into exit codes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, BinaryIO

import typer
from typer.core import TyperGroup

from . import __version__
from .config import Layered, Settings, config_path, load_only, read_env, read_file, validate
from .errors import BridgeError, ConfigError, ExitStatus
from .messages import json_schema
from .pipeline import Pipeline, tune_gc
from .plugin import Plugin, RunResult
from .registry import Option, PluginEntry, build, discover
from .source import Source, open_source

log = logging.getLogger("k6mcp_bridge")

USAGE_HINT = """\
k6mcp-bridge reads k6 results from a pipe or a file, and stdin is a terminal.
  k6 run --out json=- script.js | k6mcp-bridge
  k6mcp-bridge results.json            (plain or gzip)
  k6mcp-bridge --help"""


class _RunByDefault(TyperGroup):
    """``k6mcp-bridge [SOURCE]`` means ``k6mcp-bridge run [SOURCE]``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "--version")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RunByDefault,
    add_completion=False,
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


@app.command()
def run(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A k6 JSON results file (plain or gzip), a named pipe, or - for stdin."
        ),
    ] = None,
    plugin: Annotated[
        list[str] | None,
        typer.Option("--plugin", "-p", help="Enable a plugin (repeatable).", metavar="NAME"),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="Set a plugin option.", metavar="NAME.KEY=VALUE"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="An .ini file (or K6MCP_BRIDGE_CONFIG).")
    ] = None,
    passthrough: Annotated[
        bool | None,
        typer.Option(
            "--passthrough/--no-passthrough",
            help="Copy k6's console lines (banner, progress, summary) to stderr. [default: on]",
            show_default=False,
        ),
    ] = None,
    dead_letter: Annotated[
        Path | None, typer.Option(help="Write every rejected line here, byte for byte.")
    ] = None,
    max_errors: Annotated[
        int | None, typer.Option(help="Stop after this many rejected lines.", show_default=False)
    ] = None,
    plugin_errors: Annotated[
        str | None,
        typer.Option(
            help="When a plugin raises: disable it, or fail the run (exit 70).",
            metavar="disable|fail",
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log level DEBUG.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log level ERROR (hides per-line warnings).")
    ] = False,
) -> None:
    """Read k6 results and deliver them to the enabled plugins."""
    _setup_logging("DEBUG" if verbose else "ERROR" if quiet else log_level or "INFO")
    flags: dict[str, Any] = {
        "passthrough": passthrough,
        "dead_letter": dead_letter,
        "max_errors": max_errors,
        "plugin_errors": plugin_errors,
        "log_level": "DEBUG" if verbose else "ERROR" if quiet else log_level,
    }
    try:
        settings, options = _settings(config, flags, option or [])
        _setup_logging(settings.log_level)
        for name in plugin or []:
            if name not in settings.plugins:
                settings.plugins.append(name)
        plugins = _plugins(settings, options)
        if source is None and sys.stdin.isatty():
            typer.echo(USAGE_HINT, err=True)
            raise typer.Exit(ExitStatus.USAGE)
        opened = open_source(source)
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None
    raise typer.Exit(_run(opened, plugins, settings))


def _run(source: Source, plugins: list[Plugin], settings: Settings) -> ExitStatus:
    with ExitStack() as stack:
        stack.callback(source.close)
        dead: BinaryIO | None = None
        if settings.dead_letter is not None:
            try:
                dead = stack.enter_context(settings.dead_letter.open("wb"))
            except OSError as exc:
                log.error("cannot write dead-letter file %s: %s", settings.dead_letter, exc)
                return ExitStatus.USAGE
        console = sys.stderr.buffer if settings.passthrough else None
        pipeline = Pipeline(plugins, settings, console=console, dead_letter=dead)
        tune_gc()
        if source.live:
            stack.enter_context(_drain_on_first_interrupt(pipeline))
        try:
            result = pipeline.run(source)
        except BridgeError as exc:
            log.error("%s", exc)
            return exc.exit_status
    return _exit_status(result)


def _exit_status(result: RunResult) -> ExitStatus:
    if result.status == "interrupted":
        return ExitStatus.INTERRUPTED
    if result.stats.rejected or result.stats.input_errors:
        return ExitStatus.REJECTED_RECORDS
    return ExitStatus.OK


class _drain_on_first_interrupt:
    """On a pipe, Ctrl-C reaches k6 too: keep reading until k6 has written its last
    samples and summary and closed the pipe. A second Ctrl-C stops at once."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.pipeline.interrupted:
            raise KeyboardInterrupt
        self.pipeline.interrupted = True
        log.warning("interrupted: reading what the writer still sends (Ctrl-C again to stop now)")

    def __enter__(self) -> None:
        self.previous = signal.signal(signal.SIGINT, self._handler)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


def _settings(
    config: Path | None, flags: dict[str, Any], option_args: list[str]
) -> tuple[Settings, dict[str, dict[str, Option]]]:
    layers = Layered()
    path = config_path(config, os.environ)
    if path is not None:
        read_file(path, layers)
    read_env(os.environ, layers)
    for name, value in flags.items():
        if value is not None:
            layers.set(name, value, f"option --{name.replace('_', '-')}")
    for text in option_args:
        target, sep, value = text.partition("=")
        plugin, dot, key = target.partition(".")
        if not (sep and dot and plugin and key):
            raise ConfigError(f"-o {text!r}: expected NAME.KEY=VALUE, e.g. -o jsonl.path=out.jsonl")
        layers.set_option(plugin, key, value, f"option -o {target}")
    return validate(layers), layers.plugin_options


def _plugins(settings: Settings, options: dict[str, dict[str, Option]]) -> list[Plugin]:
    entries = discover(load_only(os.environ))
    for name, plugin_options in options.items():
        flagged = [k for k, o in plugin_options.items() if o.origin.startswith("option -o")]
        if flagged and name not in settings.plugins:
            raise ConfigError(
                f"-o {name}.{flagged[0]} is set but plugin {name!r} is not enabled (add -p {name})"
            )
    plugins = []
    for name in settings.plugins:
        entry = entries.get(name)
        if entry is None:
            installed = ", ".join(sorted(entries)) or "none"
            raise ConfigError(f"unknown plugin {name!r} (installed: {installed})")
        if entry.cls is None:
            log.warning(
                "plugin %r (%s) is enabled but skipped: %s", name, entry.distribution, entry.error
            )
            continue
        plugins.append(build(entry, options.get(name, {})))
    return plugins


@app.command("plugins")
def list_plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: Annotated[Path | None, typer.Option("--config", help="An .ini file.")] = None,
) -> None:
    """List installed plugins: name, distribution, version, enabled, load errors."""
    _setup_logging("ERROR")
    try:
        enabled = set(_settings(config, {}, [])[0].plugins)
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None
    entries = discover(load_only(os.environ))
    rows = [_row(entry, entry.name in enabled) for entry in entries.values()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    header = ("NAME", "ENABLED", "DISTRIBUTION", "VERSION", "DESCRIPTION / ERROR")
    table = [header] + [
        (
            r["name"],
            "yes" if r["enabled"] else "no",
            r["distribution"],
            r["version"],
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
        "error": entry.error,
    }


@app.command()
def schema() -> None:
    """Print the JSON Schema of the MCP messages."""
    typer.echo(json.dumps(json_schema(), indent=2))


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _setup_logging(level: str) -> None:
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
    app()
