"""``k6mcp-bridge runs`` and ``query``: the run store (written by ``-p store``) from the shell."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import BridgeError, ConfigError
from .app import app, log, setup_logging

if TYPE_CHECKING:
    from ..store.query import QueryResult, Store

_STORE_HELP = (
    "The store file (default: K6MCP_BRIDGE_STORE, else $XDG_DATA_HOME/k6mcp-bridge/runs.db)."
)


def _open(path: Path | None) -> Store:
    from ..store.query import Store  # not needed for --help

    return Store(path)


def _fail(exc: BridgeError) -> typer.Exit:
    log.error("%s", exc)
    return typer.Exit(exc.exit_status)


@app.command("runs")
def list_runs(
    store: Annotated[Path | None, typer.Option("--store", help=_STORE_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the runs in the store, newest first."""
    setup_logging("ERROR")
    try:
        with _open(store) as opened:
            runs = opened.runs()
    except BridgeError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps([run.to_dict() for run in runs], indent=2))
        return
    header = ("ID", "STATE", "STARTED", "ENDED", "SOURCE", "SCRIPT")
    rows = [header] + [
        (r.id, r.state, r.started_at[:19], (r.ended_at or "")[:19], r.source, r.script or "")
        for r in runs
    ]
    _table(rows)


@app.command()
def query(
    metric: Annotated[str, typer.Argument(help="A metric of the run, e.g. http_req_duration.")],
    run: Annotated[str, typer.Option("--run", help="A run id, or latest.")] = "latest",
    stat: Annotated[
        list[str] | None,
        typer.Option("--stat", help="count, rate, avg, min, med, max, p(N), value (repeatable)."),
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Keep series with this tag (repeatable).", metavar="K=V"),
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="The last DURATION before the run's last sample, e.g. 30s.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Start: a duration from the run's start (10s) or an RFC 3339 time."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="End: a duration from the run's start (20s) or an RFC 3339 time."),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        typer.Option("--group-by", help="One series per value of this tag (repeatable)."),
    ] = None,
    step: Annotated[
        str | None, typer.Option(help="Also give points, one per interval, e.g. 10s.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Series at most (default 20, at most 1000).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    store: Annotated[Path | None, typer.Option("--store", help=_STORE_HELP)] = None,
) -> None:
    """k6's stats of a metric in a run (default: the latest), over a window of stream time."""
    from ..store.query import DEFAULT_LIMIT

    setup_logging("ERROR")
    try:
        tags = _tags(tag or [])
        with _open(store) as opened:
            result = opened.query(
                metric,
                run=run,
                stats=stat or [],
                tags=tags,
                window=window,
                since=since,
                until=until,
                group_by=group_by or [],
                step=step,
                limit=DEFAULT_LIMIT if limit is None else limit,
            )
    except BridgeError as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    _print(result)


def _tags(items: list[str]) -> dict[str, str]:
    tags = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not (sep and key):
            raise ConfigError(f"--tag {item!r}: expected K=V, e.g. --tag name=login")
        tags[key] = value
    return tags


def _print(result: QueryResult) -> None:
    window = result.window
    typer.echo(
        f"run {result.run_id} ({result.run_state})  window {window['start']} .. {window['end']}"
    )
    if not result.series:
        typer.echo("no samples in the window")
        return
    stats = list(result.series[0].values)
    keys = sorted({key for series in result.series for key in series.tags})
    stepped = result.series[0].points is not None
    rows: list[tuple[str, ...]] = [(*keys, *(["START"] if stepped else []), *stats)]
    for series in result.series:
        labels = [series.tags.get(key, "") for key in keys]
        rows.append((*labels, *(["all"] if stepped else []), *_cells(series.values, stats)))
        for point in series.points or []:
            rows.append((*labels, str(point.start), *_cells(point.values, stats)))
    _table(rows)
    if result.truncated:
        typer.echo(f"(truncated to {len(result.series)} series: --limit raises it, up to 1000)")


def _cells(values: dict[str, Any], stats: list[str]) -> list[str]:
    return ["-" if values[s] is None else f"{values[s]:.6g}" for s in stats]


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        typer.echo("  ".join(cells).rstrip())


@app.command("report")
def report(
    run: Annotated[str, typer.Option("--run", help="A run id, or latest.")] = "latest",
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "k6-report.html"
    ),
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="A run id to compare with.")
    ] = None,
    store: Annotated[Path | None, typer.Option("--store", help=_STORE_HELP)] = None,
) -> None:
    """Rebuild the HTML report of a run from the store, after the fact."""
    from ..reports.html_report import rebuild  # not needed for --help

    setup_logging("ERROR")
    try:
        run_id = rebuild(store, run, output, baseline)
    except BridgeError as exc:
        raise _fail(exc) from None
    typer.echo(f"wrote {output} (run {run_id})")
