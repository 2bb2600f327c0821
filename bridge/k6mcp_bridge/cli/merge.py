"""``k6mcp-bridge merge STATE.json...``: many runners' states (``--state-export``) as one run.

``--nats URL --run NAME`` reads the states from NATS JetStream instead (or as well): the
``k6mcp-bridge-nats`` package does that, imported only then, so the core needs no NATS client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import BridgeError, ConfigError, ExitStatus
from .app import ConfigFile, PluginNames, PluginOptions, app, log, setup_logging

if TYPE_CHECKING:
    from ..aggregate.aggregator import ThresholdResult
    from ..aggregate.state import RunState
    from ..delivery.merged_feed import MergedFeed
    from ..messages import Window
    from ..plugin import PluginReport


@app.command("merge")
def merge_states(
    states: Annotated[
        list[Path] | None,
        typer.Argument(help="State files written by `k6mcp-bridge --state-export` (one a runner)."),
    ] = None,
    script: Annotated[
        Path | None,
        typer.Option(help="The k6 script: its thresholds, summaryTrendStats, summaryTimeUnit."),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="A threshold over the merged run (repeatable).",
            metavar="METRIC:EXPR",
        ),
    ] = None,
    summary_export: Annotated[
        Path | None, typer.Option(help="Write k6's --summary-export JSON of the merged run here.")
    ] = None,
    summary_trend_stats: Annotated[
        str | None, typer.Option(help="Trend stats, k6's syntax, e.g. 'avg,med,p(99),count'.")
    ] = None,
    summary_time_unit: Annotated[
        str | None, typer.Option(help="s, ms or us for the text summary's times.")
    ] = None,
    nats: Annotated[
        str | None,
        typer.Option(
            help="Read the states from NATS JetStream (the `nats` plugin's), e.g. "
            "nats://host:4222; needs k6mcp-bridge-nats. Credentials: K6MCP_NATS_* variables.",
            metavar="URL",
        ),
    ] = None,
    run: Annotated[
        str | None, typer.Option(help="With --nats: the run's name (the publishers' `run`).")
    ] = None,
    instances: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="With --nats: wait for this many instances' final states (default: every "
            "instance seen, once all are final).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            min=0, help="With --nats: seconds to wait for the final states (then exit 75)."
        ),
    ] = 600.0,
    stop_runner: Annotated[
        list[str] | None,
        typer.Option(
            help="With --nats: a runner's k6 REST API (k6 run --address), e.g. "
            "http://10.0.0.5:6565 (repeatable): stopped when a threshold with abortOnFail "
            "fails on the whole test.",
            metavar="URL",
        ),
    ] = None,
    plugin: PluginNames = None,
    option: PluginOptions = None,
    config: ConfigFile = None,
) -> None:
    """Merge runners' states (--state-export) into one run: summary, verdicts, exit 99."""
    from ..aggregate.merge import merge, merged_snapshot
    from ..aggregate.stage import failed_thresholds
    from ..aggregate.state import read_state
    from ..delivery.merged_feed import MergedFeed
    from ..delivery.runner import resolve_aggregation
    from ..k6.summary_export import write_export
    from ..k6.summary_text import render
    from .settings import enabled_plugins, settings_from

    setup_logging("INFO")
    flags: dict[str, Any] = {
        "script": script,
        "summary_trend_stats": summary_trend_stats,
        "summary_time_unit": summary_time_unit,
    }
    feed: MergedFeed | None = None
    reports: tuple[PluginReport, ...] = ()
    try:
        settings, options = settings_from(config, flags, option or [])
        settings.thresholds.extend(threshold or [])
        settings.plugins = list(plugin or [])  # only those asked for: merge prints its summary
        aggregation = resolve_aggregation(settings, [])
        plugins = enabled_plugins(settings, options)
        read = [read_state(path) for path in states or []]
        if nats is None and (run is not None or instances is not None or stop_runner):
            raise ConfigError("--run, --instances and --stop-runner go with --nats URL")
        if not read and nats is None:
            raise ConfigError("nothing to merge: give state files, or --nats URL --run NAME")
        if plugins or stop_runner:
            source = f"{nats} run {run}" if nats is not None else ", ".join(map(str, states or []))
            stop = _stopper(stop_runner or [])
            feed = MergedFeed(plugins, settings, aggregation, f"merge {source}", stop)
        if nats is not None:
            live = None if feed is None else _live(feed, list(read))
            windows = feed.windows if feed is not None and plugins else None
            read += _from_nats(nats, run, instances, timeout, live, windows)
        merged = merge(read)
        if feed is not None:
            snapshot = feed.finish(read)
            reports, feed = feed.reports, None
        else:
            snapshot = merged_snapshot(
                merged, aggregation.thresholds, aggregation.trend_stats, aggregation.time_unit
            )
        if summary_export is not None:
            write_export(snapshot, summary_export)
    except BridgeError as exc:
        log.error("%s", exc)
        if feed is not None:  # the plugins still get their finish, with what came
            feed.finish(feed.states or read, status="stopped")
        raise typer.Exit(exc.exit_status) from None
    except OSError as exc:
        log.error("cannot write the summary export %s: %s", summary_export, exc)
        raise typer.Exit(ExitStatus.USAGE) from None
    unfinished = [name for name, state in merged.instances.items() if not state.final]
    log.info(
        "merged %d instance%s: %s",
        len(merged.instances),
        "" if len(merged.instances) == 1 else "s",
        ", ".join(merged.instances),
    )
    if unfinished:
        log.warning("not final (still running, or cut short): %s", ", ".join(unfinished))
    typer.echo(render(snapshot), nl=False)
    failed = failed_thresholds(snapshot)
    if failed:
        log.error("thresholds crossed: %s", ", ".join(failed))
    if any(report.state != "ok" for report in reports):
        raise typer.Exit(ExitStatus.PLUGIN_FAILED)
    if failed:
        raise typer.Exit(ExitStatus.THRESHOLD_FAILED)


def _stopper(runners: list[str]) -> Callable[[ThresholdResult], None] | None:
    """What a failed ``abortOnFail`` threshold of the merged run does: stop every runner."""
    from ..delivery.k6_api import stop_runners

    if not runners:
        return None

    def stop(result: ThresholdResult) -> None:
        stopped = stop_runners(runners)
        log.warning("%d of %d runners stopped", stopped, len(runners))

    return stop


def _live(feed: MergedFeed, files: list[RunState]) -> Callable[[list[RunState]], None]:
    """What ``merge --nats`` calls with the newest states while the runners run."""
    return lambda states: feed.update(files + states)


def _from_nats(
    url: str,
    run: str | None,
    instances: int | None,
    timeout: float,
    on_states: Callable[[list[RunState]], None] | None,
    on_windows: Callable[[list[Window]], None] | None,
) -> list[RunState]:
    if run is None:
        raise ConfigError("--nats needs --run NAME: the run whose states to merge")
    try:
        from k6mcp_bridge_nats.merger import states_from_nats
    except ImportError as exc:
        raise ConfigError(
            f"merge --nats needs the NATS package ({exc}): "
            "pip install ./plugins/k6mcp-bridge-nats (from a checkout of k6mcp-bridge)"
        ) from None
    log.info("waiting for the final states of run %r at %s (timeout %g s)", run, url, timeout)
    return states_from_nats(
        url, run, instances, timeout, on_states=on_states, on_windows=on_windows
    )
