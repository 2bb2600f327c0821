"""``k6mcp-bridge merge STATE.json...``: many runners' states (``--state-export``) as one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import BridgeError, ExitStatus
from .app import app, log, setup_logging


@app.command("merge")
def merge_states(
    states: Annotated[
        list[Path],
        typer.Argument(help="State files written by `k6mcp-bridge --state-export` (one a runner)."),
    ],
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
) -> None:
    """Merge runners' states (--state-export) into one run: summary, verdicts, exit 99."""
    from ..aggregate.merge import merge, merged_snapshot
    from ..aggregate.stage import failed_thresholds
    from ..aggregate.state import read_state
    from ..delivery.runner import resolve_aggregation
    from ..k6.summary_export import write_export
    from ..k6.summary_text import render
    from .settings import settings_from

    setup_logging("INFO")
    flags: dict[str, Any] = {
        "script": script,
        "summary_trend_stats": summary_trend_stats,
        "summary_time_unit": summary_time_unit,
    }
    try:
        settings, _ = settings_from(None, flags, [])
        settings.thresholds.extend(threshold or [])
        aggregation = resolve_aggregation(settings, [])
        merged = merge([read_state(path) for path in states])
        snapshot = merged_snapshot(
            merged, aggregation.thresholds, aggregation.trend_stats, aggregation.time_unit
        )
        if summary_export is not None:
            write_export(snapshot, summary_export)
    except BridgeError as exc:
        log.error("%s", exc)
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
        raise typer.Exit(ExitStatus.THRESHOLD_FAILED)
