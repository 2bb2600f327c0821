"""The command line: ``k6mcp-bridge [run] [SOURCE]``, ``plugins``, ``schema``.

The only module that imports typer, and the only place that turns outcomes into exit codes.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import __version__
from .config import Layered, Settings, config_path, load_only, read_env, read_file, validate
from .errors import BridgeError, ConfigError, ExitStatus
from .messages import json_schema
from .plugin import Plugin
from .registry import Option, PluginEntry, build, discover
from .runner import FollowOptions, aggregation_settings, execute

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
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep reading SOURCE as k6 writes it (it may not exist yet)."
        ),
    ] = False,
    from_end: Annotated[
        bool, typer.Option(help="With --follow: start at the file's current end.")
    ] = False,
    poll: Annotated[
        bool, typer.Option(help="With --follow: poll the file instead of inotify (NFS, VMs).")
    ] = False,
    idle_timeout: Annotated[
        float | None,
        typer.Option(help="With --follow: stop after this many seconds without growth.", min=0),
    ] = None,
    wait_pid: Annotated[
        int | None,
        typer.Option(
            help="With --follow: stop once this process (k6) has exited, after draining.", min=1
        ),
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            "--format", help="Input format: auto (default), json or csv.", show_default=False
        ),
    ] = None,
    metric_type: Annotated[
        list[str] | None,
        typer.Option(
            "--metric-type",
            help="Type of a custom metric in CSV input (repeatable).",
            metavar="NAME=counter|gauge|rate|trend",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="A k6 threshold, e.g. 'http_req_duration:p(99)<300' (repeatable).",
            metavar="METRIC:EXPR",
        ),
    ] = None,
    thresholds_from: Annotated[
        Path | None,
        typer.Option(help="Read every threshold of this k6 script (runs `k6 inspect`)."),
    ] = None,
    summary_export: Annotated[
        Path | None, typer.Option(help="Write k6's --summary-export JSON here at the end.")
    ] = None,
    snapshot_interval: Annotated[
        float | None,
        typer.Option(help="Seconds of stream time between metrics snapshots (0: final only)."),
    ] = None,
    summary_trend_stats: Annotated[
        str | None,
        typer.Option(help="Trend stats, k6's syntax, e.g. 'avg,med,p(99),count'."),
    ] = None,
    test_duration: Annotated[
        float | None,
        typer.Option(help="Seconds counter rates divide by (default: the samples' time span)."),
    ] = None,
    bounded_memory: Annotated[
        bool | None,
        typer.Option(
            "--bounded-memory/--exact",
            help="Trends in a sketch (1% error, flat memory) or exact. [default: exact]",
            show_default=False,
        ),
    ] = None,
    abort_on_fail: Annotated[
        bool | None,
        typer.Option(
            "--abort-on-fail/--no-abort-on-fail",
            help="With --wait-pid: SIGINT k6 when an abortOnFail threshold fails.",
            show_default=False,
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="With --follow: save progress here and resume from it on restart."),
    ] = None,
) -> None:
    """Read k6 results and deliver them to the enabled plugins."""
    level = "DEBUG" if verbose else "ERROR" if quiet else log_level
    _setup_logging(level or "INFO")
    flags: dict[str, Any] = {
        "passthrough": passthrough,
        "dead_letter": dead_letter,
        "max_errors": max_errors,
        "plugin_errors": plugin_errors,
        "log_level": level,
        "format": format,
        "thresholds_from": thresholds_from,
        "summary_export": summary_export,
        "snapshot_interval": snapshot_interval,
        "summary_trend_stats": summary_trend_stats,
        "test_duration": test_duration,
        "bounded_memory": bounded_memory,
        "abort_on_fail": abort_on_fail,
    }
    try:
        settings, options = _settings(config, flags, option or [], metric_type or [])
        _setup_logging(settings.log_level)
        for name in plugin or []:
            if name not in settings.plugins:
                settings.plugins.append(name)
        settings.thresholds.extend(threshold or [])
        plugins = _plugins(settings, options)
        following = _follow_options(
            follow, source, from_end, poll, idle_timeout, wait_pid, checkpoint
        )
        if settings.abort_on_fail and (following is None or following.wait_pid is None):
            raise ConfigError("--abort-on-fail needs --follow with --wait-pid (the k6 to stop)")
        aggregation = aggregation_settings(settings, bool(plugins))
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None
    if source is None and sys.stdin.isatty():
        typer.echo(USAGE_HINT, err=True)
        raise typer.Exit(ExitStatus.USAGE)
    raise typer.Exit(execute(source, plugins, settings, following, aggregation))


def _follow_options(
    follow: bool,
    source: str | None,
    from_end: bool,
    poll: bool,
    idle_timeout: float | None,
    wait_pid: int | None,
    checkpoint: Path | None,
) -> FollowOptions | None:
    if not follow:
        given = [
            name
            for name, value in (
                ("--from-end", from_end),
                ("--poll", poll),
                ("--idle-timeout", idle_timeout),
                ("--wait-pid", wait_pid),
                ("--checkpoint", checkpoint),
            )
            if value
        ]
        if given:
            raise ConfigError(f"{given[0]} goes with --follow")
        return None
    if source is None or source == "-":
        raise ConfigError("--follow needs a file path (stdin cannot be followed)")
    return FollowOptions(from_end, poll, idle_timeout, wait_pid, checkpoint)


def _settings(
    config: Path | None,
    flags: dict[str, Any],
    option_args: list[str],
    metric_types: Sequence[str] = (),
) -> tuple[Settings, dict[str, dict[str, Option]]]:
    layers = Layered()
    path = config_path(config, os.environ)
    if path is not None:
        read_file(path, layers)
    read_env(os.environ, layers)
    for name, value in flags.items():
        if value is not None:
            layers.set(name, value, f"option --{name.replace('_', '-')}")
    for text in metric_types:
        name, sep, kind = text.partition("=")
        if not (sep and name):
            raise ConfigError(f"--metric-type {text!r}: expected NAME=counter|gauge|rate|trend")
        layers.set_entry("metric_types", name, kind, f"option --metric-type {name}")
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
        try:
            plugins.append(build(entry, options.get(name, {})))
        except ConfigError:
            raise
        except Exception as exc:  # its __init__ failed: report it, the others carry on
            log.error(
                "plugin %r (%s %s) failed to start: %s: %s; the others carry on",
                name,
                entry.distribution,
                entry.version,
                type(exc).__name__,
                exc,
            )
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
