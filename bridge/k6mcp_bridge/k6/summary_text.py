"""k6 v1.1.0's end-of-test text summary (the default ``compact`` mode), from a snapshot.

A port of ``internal/js/summary.js`` as embedded in the k6 v1.1.0 binary, fed the way
``internal/output/summary`` feeds it in compact mode:

* THRESHOLDS: every (sub)metric with thresholds, sorted by name (a submetric under its parent,
  indented, shown by its selector when the parent is listed too); per threshold ✓/✗, the
  source, and the value it was checked against as the summary formats it;
* TOTAL RESULTS: ``checks_total``/``checks_succeeded``/``checks_failed`` and one line per check
  (by name, all groups merged), then the metrics by section, CUSTOM first, then HTTP,
  EXECUTION, NETWORK, BROWSER, WEB_VITALS, GRPC, WEBSOCKET (by name prefix, as k6 does).
  ``checks``, ``group_duration`` and the HTTP timing trends other than ``http_req_duration``
  are not shown (k6 matches those names as prefixes, so a custom ``checks_x`` is hidden too).

Numbers are formatted as k6's JavaScript does (:mod:`.humanize`: truncated durations
``2.69ms``/``418.58µs``, rates ``48.48%``, data ``12 kB``, counts ``toFixed(6)`` without
trailing zeros) and columns are aligned across all sections, including k6's quirks: the
name column is as wide as the longest ``indent + name + display name``, and every extra value
column is padded, so lines may end in spaces. Metric names sort like k6's ``localeCompare``
(Unicode collation): punctuation before digits before letters, case and accents only breaking
ties.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..messages import Check, Group, MetricsSnapshot, MetricSummary, ThresholdWindow
from .humanize import collation_key, humanize
from .summary_export import js_number

DEFAULT_TREND_STATS = ("avg", "min", "med", "max", "p(90)", "p(95)")
SKIPPED_PREFIXES = (
    "checks", "group_duration", "http_req_blocked", "http_req_connecting", "http_req_receiving",
    "http_req_sending", "http_req_tls_handshaking", "http_req_waiting",
)  # fmt: skip
_HTTP = ("http_reqs", "http_req_failed", "http_req_duration", *SKIPPED_PREFIXES[2:])
_EXECUTION = ("vus", "vus_max", "iterations", "iteration_duration", "dropped_iterations")
SECTIONS = ("custom", "http", "execution", "network", "browser", "web_vitals", "grpc", "websocket")
_COLORS = {"green": "32", "red": "31", "white": "37", "cyan": "36"}
_FAINT = "2"
_PERCENTILE_SOURCE = re.compile(r"p\((\d+(?:\.\d+)?)\)\s*[<>=]")
"""A threshold whose percentile k6 adds to the values (``extractPercentileThresholdSource``)."""
Observed = Mapping[tuple[str, str], float | None]
"""``(metric key, threshold source)`` → the value the threshold was compared with."""


def _sort_key(name: str) -> tuple[object, ...]:
    parent = name.split("{", 1)[0]
    return collation_key(parent), collation_key(name[len(parent) :])


def _width(text: str) -> int:
    return len(unicodedata.normalize("NFKC", text))


def _display_name(name: str) -> str:
    brace = name.find("{")
    return name if brace < 0 else "  { " + name[brace + 1 : -1] + " }"


def section_of(name: str) -> str | None:
    """The TOTAL RESULTS section k6 lists a (sub)metric in; None when it hides it."""
    if name.startswith(SKIPPED_PREFIXES):
        return None
    if name.startswith(_HTTP):
        return "http"
    if name.startswith(_EXECUTION):
        return "execution"
    if name.startswith(("data_sent", "data_received")):
        return "network"
    if name.startswith("browser_web_vital_"):
        return "web_vitals"
    if name.startswith("browser_"):
        return "browser"
    if name.startswith("grpc_"):
        return "grpc"
    return "websocket" if name.startswith("ws_") else "custom"


# --- rendering ----------------------------------------------------------------------------------


@dataclass
class _Style:
    enabled: bool

    def __call__(self, text: str, color: str, *styles: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{';'.join((*styles, _COLORS[color]))}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.enabled else text


@dataclass
class _Columns:
    """k6's ``computeSummaryInfo``: each metric's formatted values and the column widths."""

    indent: str
    trend_stats: Sequence[str]
    time_unit: str | None
    name_width: int = 0
    cells: dict[str, list[str]] = field(default_factory=dict)
    widths: dict[tuple[bool, int], int] = field(default_factory=dict)

    @classmethod
    def of(
        cls, metrics: Mapping[str, MetricSummary], stats: Sequence[str], unit: str | None
    ) -> _Columns:
        columns = cls(_indent(2), stats, unit)
        for name, metric in metrics.items():
            columns.add(name, metric)
        return columns

    def add(self, name: str, metric: MetricSummary) -> None:
        self.name_width = max(self.name_width, _width(self.indent + name + _display_name(name)))
        trend = metric.type == "trend"
        cells = (
            [_trend_value(metric, stat, self.time_unit) for stat in self.trend_stats]
            if trend
            else _non_trend_values(metric, self.time_unit)
        )
        self.cells[name] = cells
        for column, cell in enumerate(cells):
            key = (trend, column)
            self.widths[key] = max(self.widths.get(key, 0), _width(cell))

    def line(self, name: str, metric: MetricSummary, style: _Style) -> str:
        shown = _display_name(name)
        dots = self.name_width - _width(shown) - len(self.indent) + 3
        cells = self.cells[name]
        if metric.type == "trend":
            data = " ".join(
                f"{stat}={style(cell, 'cyan')}" + self._pad(True, column, cell)
                for column, (stat, cell) in enumerate(zip(self.trend_stats, cells, strict=True))
            )
        else:
            data = style(cells[0], "cyan") + self._pad(False, 0, cells[0])
            extras = cells[1:]
            if len(extras) == 1:
                data += " " + style(extras[0], "cyan", _FAINT)
            elif extras:
                data += " " + " ".join(
                    style(cell, "cyan", _FAINT) + self._pad(False, column, cell)
                    for column, cell in enumerate(extras, 1)
                )
        return self.indent + shown + style("." * dots + ":", "white", _FAINT) + " " + data

    def _pad(self, trend: bool, column: int, cell: str) -> str:
        return " " * (self.widths[(trend, column)] - _width(cell))


def _trend_value(metric: MetricSummary, stat: str, time_unit: str | None) -> str:
    value = metric.values.get(stat)
    if value is None:
        return "undefined"
    return js_number(value) if stat == "count" else humanize(value, metric, time_unit)


def _non_trend_values(metric: MetricSummary, time_unit: str | None) -> list[str]:
    values = metric.values
    if metric.type == "counter":
        count, rate = values["count"], values["rate"]
        return [humanize(count, metric, time_unit), humanize(rate, metric, time_unit) + "/s"]
    if metric.type == "gauge":
        return [
            humanize(values["value"], metric, time_unit),
            "min=" + humanize(values["min"], metric, time_unit),
            "max=" + humanize(values["max"], metric, time_unit),
        ]
    passes, fails = values["passes"], values["fails"]
    total = js_number(passes + fails)
    return [humanize(values["rate"], metric, time_unit), f"{js_number(passes)} out of {total}"]


def _indent(level: int) -> str:
    return "  " * level


def _threshold_lines(
    metrics: Mapping[str, MetricSummary], columns: _Columns, observed: Observed, style: _Style
) -> list[str]:
    lines: list[str] = []
    for name in sorted(metrics, key=_sort_key):
        metric = metrics[name]
        parent = name.split("{", 1)[0]
        nested = len(name) > len(parent) and parent in metrics
        indent = _indent(3 if nested else 2)
        lines.append(indent + (name[len(parent) :] if nested else name))
        for source, state in (metric.thresholds or {}).items():
            mark = style("✓", "green") if state.ok else style("✗", "red")
            stat = re.split(r"[=><]", source, maxsplit=1)[0].strip()
            if state.window is None:
                value = _threshold_value(name, metric, stat, source, columns, observed)
            else:
                value = _shown(state.observed, metric, columns.time_unit)
            if value is None:  # JavaScript: join() drops undefined, a template literal prints it
                value = "undefined" if style.enabled else ""
            shown = style(f"'{source.strip()}'", "white")
            lines.append(f"{indent}{mark} {shown} {style(stat, 'white')}={style(value, 'cyan')}")
            if state.window is not None:
                lines += _window_lines(indent, stat, metric, state.window, columns.time_unit)
        lines.append("\n")
    return lines


def _shown(value: float | None, metric: MetricSummary, time_unit: str | None) -> str:
    return "undefined" if value is None else humanize(value, metric, time_unit)


def _window_lines(
    indent: str, stat: str, metric: MetricSummary, window: ThresholdWindow, time_unit: str | None
) -> list[str]:
    """A windowed threshold's first failing window and its worst one (the bridge's own)."""
    if window.windows == 0:
        return [f"{indent}  judged on the whole run (it is shorter than the window)"]
    first, worst = window.first_failure, window.worst
    if first is None:
        items = [("worst window", worst)]
    elif first == worst:
        items = [("first and worst failing window", first)]
    else:
        items = [("first failing window", first), ("worst window", worst)]
    return [
        f"{indent}  {label} {judged.start.isoformat()} .. {judged.end.time().isoformat()} "
        f"{stat}={_shown(judged.observed, metric, time_unit)}"
        for label, judged in items
        if judged is not None
    ]


def _threshold_value(
    name: str,
    metric: MetricSummary,
    stat: str,
    source: str,
    columns: _Columns,
    observed: Observed,
) -> str | None:
    """The value k6 shows: a trend's own column, else a percentile k6 computed for the
    threshold alone; ``None`` (JavaScript's undefined) for another stat not among the columns."""
    cells = columns.cells[name]
    if metric.type == "counter":
        return cells[0] if stat == "count" else cells[1]
    if metric.type != "trend":
        return cells[0]
    if stat in columns.trend_stats:
        return cells[list(columns.trend_stats).index(stat)]
    if not _PERCENTILE_SOURCE.match(source.strip()):
        return None
    value = observed.get((name, source), metric.values.get(stat))
    return "undefined" if value is None else humanize(value, metric, columns.time_unit)


def _check_lines(checks: Sequence[Check], style: _Style) -> list[str]:
    lines = []
    for check in checks:
        if check.fails == 0:
            lines.append(_indent(2) + style(f"✓ {check.name}", "green"))
            continue
        percent = 100 * check.passes // (check.passes + check.fails)
        detail = f"↳  {percent}% — ✓ {check.passes} / ✗ {check.fails}"
        name_line = _indent(2) + style(f"✗ {check.name}", "red")
        lines.append(name_line + "\n" + _indent(3) + style(detail, "red"))
    return lines


def _checks_metrics(checks: MetricSummary, duration_s: float) -> dict[str, MetricSummary]:
    passes, fails = checks.values["passes"], checks.values["fails"]
    total = passes + fails
    make = MetricSummary.model_construct
    return {
        "checks_total": make(
            type="counter",
            contains="default",
            values={"count": total, "rate": total / duration_s if duration_s else 0.0},
        ),
        "checks_succeeded": make(type="rate", contains="default", values=dict(checks.values)),
        "checks_failed": make(
            type="rate",
            contains="default",
            values={"rate": fails / total if total else math.nan, "passes": fails, "fails": passes},
        ),
    }


def flatten_checks(group: Group) -> list[Check]:
    """The checks of a group tree merged by name, each group's subgroups before its own checks:
    an approximation of k6's list (first seen first) when only ``root_group`` is known."""
    merged: dict[str, Check] = {}
    for check in _walk(group):
        known = merged.setdefault(check.name, check.model_copy(update={"passes": 0, "fails": 0}))
        merged[check.name] = known.model_copy(
            update={"passes": known.passes + check.passes, "fails": known.fails + check.fails}
        )
    return list(merged.values())


def _walk(group: Group) -> list[Check]:
    return [check for sub in group.groups for check in _walk(sub)] + list(group.checks)


def render(
    snapshot: MetricsSnapshot,
    *,
    checks: Sequence[Check] | None = None,
    observed: Observed | None = None,
    trend_stats: Sequence[str] | None = None,
    color: bool = False,
) -> str:
    """The text k6 v1.1.0 writes to stdout at the end of a test (``\\n`` + summary + ``\\n\\n``).

    ``checks``: the list under TOTAL RESULTS (:meth:`GroupTree.checks`; default: the
    snapshot's root group, merged by name). ``observed``: threshold values that are not among
    the trend stats (a ``p(99.9)`` threshold; from the threshold verdicts). ``trend_stats``:
    the columns (default: the trends' own keys). Times are in the snapshot's
    ``summary_time_unit`` (k6's ``summaryTimeUnit``), else in k6's automatic units.
    ``color``: k6's ANSI colors (k6 uses them when stdout is a terminal).
    """
    style = _Style(color)
    metrics = snapshot.metrics
    time_unit = snapshot.summary_time_unit
    stats = trend_stats or next(
        (list(m.values) for m in metrics.values() if m.type == "trend"), DEFAULT_TREND_STATS
    )
    sections: list[tuple[str, list[str]]] = []
    with_thresholds = {name: m for name, m in metrics.items() if m.thresholds}
    if observed is None:
        observed = {
            (name, source): state.observed
            for name, metric in with_thresholds.items()
            for source, state in (metric.thresholds or {}).items()
        }
    if with_thresholds:
        columns = _Columns.of(with_thresholds, stats, time_unit)
        lines = _threshold_lines(with_thresholds, columns, observed or {}, style)
        sections.append(("THRESHOLDS", lines))
    total: list[str] = []
    if "checks" in metrics:
        check_metrics = _checks_metrics(metrics["checks"], snapshot.test_run_duration_ms / 1000)
        columns = _Columns.of(check_metrics, stats, time_unit)
        total += [columns.line(name, metric, style) for name, metric in check_metrics.items()]
        listed = checks if checks is not None else snapshot.checks
        listed = listed or flatten_checks(snapshot.root_group)
        total += ["\n", *_check_lines(listed, style), "\n"]
    by_section: dict[str, list[str]] = {}
    for name in metrics:
        by_section.setdefault(section_of(name) or "", []).append(name)
    by_section.pop("", None)  # hidden
    shown = {name: metrics[name] for names in by_section.values() for name in names}
    columns = _Columns.of(shown, stats, time_unit)
    for section in SECTIONS:
        names = sorted(by_section.get(section, ()), key=_sort_key)
        if names:
            total.append(_indent(2) + style.bold(section.upper()))
            total += [columns.line(name, metrics[name], style) for name in names]
            total.append("\n")
    sections.append(("TOTAL RESULTS", total))
    text = ""
    for title, content in sections:
        for item in [f"{_indent(1)}█ {style.bold(title)} \n", *content, "\n"]:
            text += item if item == "\n" else "\n" + item
    return "\n" + text + "\n\n"
