"""``k6mcp-bridge run [SOURCE]``: every option of the main command, then the run itself."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import BridgeError, ConfigError, ExitStatus
from .app import ConfigFile, PluginNames, PluginOptions, app, log, setup_logging

if TYPE_CHECKING:
    from ..aggregate.stage import AggregationSettings
    from ..config import Settings
    from ..delivery.k6_process import K6Command
    from ..delivery.runner import FollowOptions
    from ..plugin import Plugin
    from ..receive.feed import Receiver

USAGE_HINT = """\
k6mcp-bridge reads k6 results from a pipe or a file, and stdin is a terminal.
  k6 run --out json=- script.js | k6mcp-bridge
  k6mcp-bridge results.json            (plain or gzip)
  k6mcp-bridge --help"""


@app.command()
def run(
    source: Annotated[
        str | None,
        typer.Argument(
            help="A k6 JSON results file (plain or gzip), a named pipe, or - for stdin."
        ),
    ] = None,
    plugin: PluginNames = None,
    option: PluginOptions = None,
    config: ConfigFile = None,
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
    plugin_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds one plugin call may take before the plugin is declared hung. "
            "[default: 30]",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.", show_default=False)
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log level DEBUG.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Log level ERROR (hides per-line warnings).")
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="A progress bar (file) or status line (pipe, follow) on stderr. "
            "[default: when stderr is a terminal, but with -q or exec]",
            show_default=False,
        ),
    ] = None,
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
        typer.Option(
            help="With --follow: stop after this many seconds without growth; with --listen, "
            "without a request.",
            min=0,
        ),
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
    script: Annotated[
        Path | None,
        typer.Option(
            "--script",
            "--thresholds-from",
            help="The k6 script: its thresholds, summaryTrendStats and summaryTimeUnit "
            "(runs `k6 inspect`; --thresholds-from is the old name).",
        ),
    ] = None,
    state_export: Annotated[
        Path | None,
        typer.Option(help="Write the run's mergeable state here (for `k6mcp-bridge merge`)."),
    ] = None,
    state_instance: Annotated[
        str | None,
        typer.Option(help="This runner's name in the state (default: host and state file)."),
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
        typer.Option(
            help="Trend stats, k6's syntax, e.g. 'avg,med,p(99),count' "
            "(default: the script's, else k6's)."
        ),
    ] = None,
    summary_time_unit: Annotated[
        str | None,
        typer.Option(
            help="The text summary's time unit (default: the script's, else automatic).",
            metavar="s|ms|us",
        ),
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
    listen: Annotated[
        str | None,
        typer.Option(
            help="Instead of SOURCE: take what clients POST to http://HOST:PORT/mcp "
            "(k6 JSON lines, MCP envelopes, seed-style metrics). Needs the [http] extra.",
            metavar="HOST:PORT",
            show_default=False,
        ),
    ] = None,
    listen_token: Annotated[
        str | None,
        typer.Option(
            help="With --listen: every request must send 'Authorization: Bearer TOKEN' "
            "(required off loopback; or K6MCP_BRIDGE_LISTEN_TOKEN).",
            show_default=False,
        ),
    ] = None,
    listen_max_body: Annotated[
        int | None,
        typer.Option(
            help="With --listen: the largest body in bytes (larger: 413). [default: 16 MiB]",
            min=1,
            show_default=False,
        ),
    ] = None,
) -> None:
    """Read k6 results and deliver them to the enabled plugins."""
    launch(dict(locals()))


def launch(params: dict[str, Any], k6_command: list[str] | None = None) -> None:
    """``run`` with its parameters; with ``k6_command``, ``exec`` (which has no SOURCE, no
    --follow and its options, and reads the script's options from the k6 command)."""
    from ..delivery.runner import execute  # not needed for --help
    from .settings import enabled_plugins, settings_from

    (source, plugin, option, config, verbose, quiet, log_level, threshold, metric_type) = (
        params[name]
        for name in (
            "source", "plugin", "option", "config", "verbose", "quiet", "log_level",
            "threshold", "metric_type",
        )
    )  # fmt: skip
    level = "DEBUG" if verbose else "ERROR" if quiet else log_level
    setup_logging(level or "INFO")
    flags: dict[str, Any] = {
        "passthrough": params["passthrough"],
        "dead_letter": params["dead_letter"],
        "max_errors": params["max_errors"],
        "plugin_errors": params["plugin_errors"],
        "plugin_timeout": params["plugin_timeout"],
        "log_level": level,
        "format": params["format"],
        "script": params["script"],
        "summary_export": params["summary_export"],
        "state_export": params["state_export"],
        "state_instance": params["state_instance"],
        "snapshot_interval": params["snapshot_interval"],
        "summary_trend_stats": params["summary_trend_stats"],
        "summary_time_unit": params["summary_time_unit"],
        "test_duration": params["test_duration"],
        "bounded_memory": params["bounded_memory"],
        "abort_on_fail": params["abort_on_fail"],
        "progress": params["progress"],
        "listen": params["listen"],
        "listen_token": params["listen_token"],
        "listen_max_body": params["listen_max_body"],
    }
    if flags["progress"] is None:  # k6 draws its own progress under exec
        flags["progress"] = sys.stderr.isatty() and not quiet and k6_command is None
    try:
        settings, options = settings_from(config, flags, option or [], metric_type or [])
        setup_logging(settings.log_level)
        for name in plugin or []:
            if name not in settings.plugins:
                settings.plugins.append(name)
        settings.thresholds.extend(threshold or [])
        plugins = enabled_plugins(settings, options)
        command = None
        receiver = None
        if settings.listen is not None:
            receiver = _receiver(settings, params, exec_command=k6_command is not None)
            following = None
        elif k6_command is not None:
            from ..delivery.k6_process import plan

            command = plan(k6_command)
            if settings.script is None:  # as --script does: k6 inspect
                settings.script = command.script
            following = None
        else:
            following = _follow_options(
                params["follow"],
                source,
                params["from_end"],
                params["poll"],
                params["idle_timeout"],
                params["wait_pid"],
                params["checkpoint"],
            )
            if settings.abort_on_fail and (following is None or following.wait_pid is None):
                raise ConfigError("--abort-on-fail needs --follow with --wait-pid (the k6 to stop)")
        aggregation = _aggregation(settings, plugins, command)
    except BridgeError as exc:
        log.error("%s", exc)
        raise typer.Exit(exc.exit_status) from None
    if command is not None:
        from ..delivery.runner import execute_k6

        raise typer.Exit(execute_k6(command, plugins, settings, aggregation))
    if receiver is not None:
        raise typer.Exit(execute(receiver, plugins, settings, None, aggregation))
    if source is None and sys.stdin.isatty():
        typer.echo(USAGE_HINT, err=True)
        raise typer.Exit(ExitStatus.USAGE)
    raise typer.Exit(execute(source, plugins, settings, following, aggregation))


def _receiver(settings: Settings, params: dict[str, Any], exec_command: bool) -> Receiver:
    """The HTTP receiver ``--listen`` asks for: a source of its own, bound now (a taken port
    is a start-up error)."""
    from ..receive.feed import Receiver

    if exec_command:
        raise ConfigError("--listen is a source of its own: it does not go with exec")
    if params["source"] is not None:
        raise ConfigError(f"--listen is a source of its own: give no SOURCE ({params['source']})")
    for name in ("follow", "from_end", "poll", "wait_pid", "checkpoint"):
        if params[name]:
            raise ConfigError(f"--{name.replace('_', '-')} goes with --follow, not --listen")
    assert settings.listen is not None
    return Receiver(
        settings.listen,
        token=settings.listen_token,
        max_body=settings.listen_max_body,
        metric_types=settings.metric_types,
        idle_timeout=params["idle_timeout"],
    )


def _aggregation(
    settings: Settings, plugins: list[Plugin], command: K6Command | None
) -> AggregationSettings | None:
    """The aggregation's settings; under ``exec`` a script that ``k6 inspect`` rejects is run
    anyway: k6 then says what is wrong itself, in its own words (or runs it after all)."""
    from ..delivery.runner import aggregation_settings

    if command is None or command.script is None or settings.script != command.script:
        return aggregation_settings(settings, plugins)
    try:
        return aggregation_settings(settings, plugins)
    except ConfigError as exc:
        log.debug("%s: running k6 anyway", exc)
        settings.script = None
        return aggregation_settings(settings, plugins)


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
    from ..delivery.runner import FollowOptions

    return FollowOptions(from_end, poll, idle_timeout, wait_pid, checkpoint)
