"""The HTML report's server-side sections: header, thresholds, checks and tables, escaped.

Every value from the stream (metric keys, threshold sources, group and check names, tag
values) goes through :func:`~.html_page.esc` here; nothing is left for the browser to parse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..k6.humanize import humanize
from ..messages import Group, MetricsSnapshot, MetricSummary
from .html_page import esc
from .text import observed_text

_TIME = MetricSummary.model_construct(type="trend", contains="time", values={})


@dataclass
class Header:
    source: str
    script: str | None
    start: datetime | None
    end: datetime | None
    duration_s: float
    max_vus: float | None
    width_s: int
    bridge_version: str
    live: bool
    status: str | None = None
    refresh_s: float = 5.0


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone().isoformat(sep=" ", timespec="seconds")


def header(info: Header, baseline: str | None = None) -> str:
    rows = [
        ("script" if info.script else "source", info.script or info.source),
        ("start", _when(info.start)),
        ("end", _when(info.end) + (" (so far)" if info.live else "")),
        ("duration", humanize(info.duration_s * 1000, _TIME)),
        ("max VUs", "—" if info.max_vus is None else f"{info.max_vus:g}"),
        ("bucket width", f"{info.width_s} s"),
        ("k6mcp-bridge", info.bridge_version),
    ]
    if info.status and info.status != "completed":
        rows.append(("run", info.status))
    if baseline is not None:
        rows.append(("baseline run", baseline))
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    banner = (
        '<p class="banner" id="in-progress">In progress: this page reloads itself while the '
        "run goes on.</p>\n"
        if info.live
        else ""
    )
    return f'<h1>k6 report</h1>\n{banner}<dl class="header">{items}</dl>'


def _table(head: Sequence[str], rows: Sequence[Sequence[tuple[str, bool]]], table_id: str) -> str:
    """``rows``: cells as (already escaped HTML, numeric?)."""
    if not rows:
        return f'<p class="note" id="{table_id}">None.</p>'
    top = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if n else f"<td>{c}</td>" for c, n in row)
        + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{top}</tr></thead><tbody>{body}</tbody></table>'


@dataclass
class Breach:
    """What the report remembers of a threshold from the ``threshold`` messages."""

    first_failed: datetime | None = None
    abort_on_fail: bool = False


def thresholds(
    snapshot: MetricsSnapshot | None,
    breaches: dict[tuple[str, str], Breach],
    baseline: MetricsSnapshot | None = None,
) -> str:
    """The thresholds table; with a ``baseline`` snapshot, a "vs baseline" column (its observed
    value and verdict for the same threshold)."""
    rows = []
    for key, metric in (snapshot.metrics if snapshot else {}).items():
        for source, state in (metric.thresholds or {}).items():
            breach = breaches.get((key, source), Breach())
            mark = '<span class="ok">✓</span>' if state.ok else '<span class="ko">✗</span>'
            window = ""
            if state.window is not None and state.window.first_failure is not None:
                failing = state.window.first_failure
                value = "—" if failing.observed is None else humanize(failing.observed, metric)
                window = f"{_when(failing.start)} .. {_when(failing.end)} ({value})"
            elif state.window is not None and state.window.windows == 0:
                window = "judged on the whole run (shorter than the window)"
            rows.append(
                [
                    (f"<code>{esc(key)}</code>", False),
                    (f"<code>{esc(source.strip())}</code>", False),
                    (esc(observed_text(source, state, metric)), False),
                    (mark, False),
                    (esc(_when(breach.first_failed)) if breach.first_failed else "", False),
                    ("yes" if breach.abort_on_fail else "", False),
                    (esc(window), False),
                ]
            )
            if baseline is not None:
                rows[-1].append((esc(_versus(baseline, key, source)), False))
    head = ["metric", "threshold", "observed", "ok", "first breach", "abortOnFail"]
    head += ["failing window", *(["vs baseline"] if baseline is not None else [])]
    return "<h2>Thresholds</h2>\n" + _table(head, rows, "thresholds")


def _versus(baseline: MetricsSnapshot, key: str, source: str) -> str:
    metric = baseline.metrics.get(key)
    state = (metric.thresholds or {}).get(source) if metric else None
    if metric is None or state is None:
        return "—"
    return f"{observed_text(source, state, metric)} {'✓' if state.ok else '✗'}"


def _walk(group: Group, depth: int = 0) -> Iterator[tuple[Group, int]]:
    yield group, depth
    for sub in group.groups:
        yield from _walk(sub, depth + 1)


def checks(snapshot: MetricsSnapshot | None) -> str:
    rows = []
    if snapshot is not None:
        for group, _ in _walk(snapshot.root_group):
            for check in group.checks:
                total = check.passes + check.fails
                percent = f"{100 * check.passes / total:.2f}%" if total else "—"
                mark = "ok" if check.fails == 0 else "ko"
                rows.append(
                    [
                        (esc(group.path or "(root)"), False),
                        (f'<span class="{mark}">{esc(check.name)}</span>', False),
                        (str(check.passes), True),
                        (str(check.fails), True),
                        (percent, True),
                    ]
                )
    return "<h2>Checks by group</h2>\n" + _table(
        ["group", "check", "passes", "fails", "%"], rows, "checks"
    )


def _ms(value: float | None) -> str:
    return "—" if value is None else esc(humanize(value, _TIME))


def endpoints(rows: Sequence[dict[str, Any]]) -> str:
    stats = ("avg", "med", "p(90)", "p(95)", "p(99)", "max")
    cells = [
        [
            (esc(row["name"]), False),
            (f"{row['count']:g}", True),
            ("—" if row["rate"] is None else f"{row['rate']:.2f}", True),
            *[(_ms(row[stat]), True) for stat in stats],
            ("—" if row["error%"] is None else f"{row['error%']:.2f}%", True),
            *(
                [(_delta(row["p(95)"], row["baseline p(95)"]), True)]
                if "baseline p(95)" in row
                else []
            ),
        ]
        for row in rows
    ]
    head = ["endpoint (name)", "count", "req/s", *stats, "error %"]
    if any("baseline p(95)" in row for row in rows):
        head.append("p(95) vs baseline")
    return "<h2>Endpoints</h2>\n" + _table(head, cells, "endpoints")


def _delta(now: float | None, before: float | None) -> str:
    if now is None or before is None:
        return "—"
    change = f" ({100 * (now - before) / before:+.1f}%)" if before else ""
    return f"{_ms(before)}{change}"


def errors(rows: Sequence[tuple[str, str, str, int]]) -> str:
    cells = [
        [(esc(name), False), (esc(status), False), (esc(code), False), (str(count), True)]
        for name, status, code, count in rows
    ]
    return "<h2>Top errors</h2>\n" + _table(
        ["name", "status", "error_code", "count"], cells, "errors"
    )


def metrics(snapshot: MetricsSnapshot | None) -> str:
    cells = []
    for key, metric in (snapshot.metrics if snapshot else {}).items():
        values = " ".join(
            f"{stat}={humanize(value, metric)}"
            if metric.type != "rate" or stat == "rate"
            else f"{stat}={value:g}"
            for stat, value in metric.values.items()
        )
        cells.append(
            [(f"<code>{esc(key)}</code>", False), (esc(metric.type), False), (esc(values), False)]
        )
    return "<h2>All metrics</h2>\n" + _table(["metric", "type", "values"], cells, "metrics")


def download() -> str:
    return (
        '<h2>Download</h2>\n<p><a id="download" download="k6-summary.json" href="#">'
        "The end-of-test data (handleSummary's shape), as JSON</a></p>"
    )
