"""What the HTML report shows, from the timeline (``window`` messages) and the final snapshot.

:func:`chart_data` builds the JSON the page's charts draw: one shared x axis (the grid's slot
starts) and, per chart, its series as arrays of numbers (``null`` for a slot with no sample).
:func:`endpoint_rows` and :func:`error_rows` are the tables. Size is kept down by
construction: at most :data:`~.timeline.MAX_POINTS` slots, the top :data:`TOP_ENDPOINTS`
``name`` tags (the rest merge into ``(other)``), at most :data:`TOP_STATUSES` error statuses
and :data:`MAX_TRENDS` custom trends, numbers to 4 significant digits.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..aggregate.buckets import Bucket
from ..k6.builtin_metrics import BUILTIN_METRICS
from ..k6.thresholds import parse_metric_key
from ..messages import MetricsSnapshot
from .timeline import Timeline, merge_buckets, merge_slots

TOP_ENDPOINTS = 20
TOP_STATUSES = 10
MAX_TRENDS = 20
TOP_ERRORS = 25
OTHER = "(other)"
LATENCY_STATS = ("p(50)", "p(90)", "p(95)", "p(99)")
ENDPOINT_STATS = ("avg", "med", "p(90)", "p(95)", "p(99)", "max")
_LIMIT = re.compile(r"^\s*(avg|min|med|max|p\([\d.]+\))\s*(<=|<)\s*([-+\d.eE]+)\s*$")


def rounded(value: float | None) -> float | None:
    """4 significant digits; ``None`` for no value or a non-finite one (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.4g}")


@dataclass
class Endpoint:
    name: str
    requests: float
    duration: Bucket | None
    failed: Bucket | None


def endpoint_names(timeline: Timeline) -> list[str]:
    """``name`` tags of ``http_reqs`` by request count, most first."""
    counts: dict[str, float] = {}
    for key in timeline.keys("http_reqs"):
        name = dict(key[1]).get("name")
        if name is not None:
            counts[name] = counts.get(name, 0.0) + sum(b.sum for b in timeline.series[key].values())
    return [name for name, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def endpoint_groups(timeline: Timeline, top: int = TOP_ENDPOINTS) -> dict[str, list[str]]:
    """Label → the ``name`` tags it merges: the top ones alone, then ``(other)``."""
    names = endpoint_names(timeline)
    groups = {name: [name] for name in names[:top]}
    if names[top:]:
        groups[OTHER + (" " if OTHER in groups else "")] = names[top:]
    return groups


def _by_names(timeline: Timeline, metric: str, names: Sequence[str]) -> dict[int, Bucket]:
    wanted = set(names)
    return merge_slots(
        timeline.series[key] for key in timeline.keys(metric) if dict(key[1]).get("name") in wanted
    )


def _column(slots: Sequence[int], per_slot: dict[int, Bucket], stat: str, width: int) -> list[Any]:
    """One chart series: ``stat`` per slot (rates as %, counts per second, times in ms)."""
    out: list[Any] = []
    for start in slots:
        bucket = per_slot.get(start)
        if stat == "per_s":
            out.append(rounded(bucket.sum / width) if bucket else 0)
        elif stat == "nonzero_per_s":
            out.append(rounded(bucket.nonzero / width) if bucket else 0)
        elif stat == "rate%":
            out.append(rounded(100 * bucket.nonzero / bucket.count) if bucket else None)
        elif stat == "fail%":
            out.append(rounded(100 - 100 * bucket.nonzero / bucket.count) if bucket else None)
        else:
            out.append(rounded(bucket.stat(stat, width)) if bucket else None)
    return out


def _series(label: str, values: list[Any], **extra: Any) -> dict[str, Any]:
    return {"label": label, "values": values, **extra}


def latency_limits(snapshot: MetricsSnapshot | None) -> list[tuple[str, float]]:
    """``http_req_duration`` thresholds that draw as a line: ``avg|min|med|max|p(N) <[=] X``."""
    limits: list[tuple[str, float]] = []
    for key, metric in (snapshot.metrics if snapshot else {}).items():
        if parse_metric_key(key)[0] != "http_req_duration":
            continue
        for source in metric.thresholds or {}:
            match = _LIMIT.match(source)
            if match:
                limits.append((f"{key}: {source.strip()}", float(match.group(3))))
    return limits


def baseline_column(timeline: Timeline, baseline: Timeline, metric: str, stat: str) -> list[Any]:
    """``stat`` of ``baseline`` on ``timeline``'s slots, aligned by the time since each run's
    first slot (the baseline's own bucket width where it is wider)."""
    slots = timeline.slots()
    if not slots or baseline.first is None:
        return [None] * len(slots)
    if baseline.width < timeline.width:
        baseline.regrid(timeline.width)
    per_slot = baseline.merged(metric)
    origin = baseline.first - baseline.first % baseline.width
    out: list[Any] = []
    for start in slots:
        moment = origin + (start - slots[0])
        slot = moment - moment % baseline.width
        out.append(_column([slot], per_slot, stat, baseline.width)[0])
    return out


def chart_data(
    timeline: Timeline, snapshot: MetricsSnapshot | None, baseline: Timeline | None = None
) -> dict[str, Any]:
    """The charts' JSON: ``{"x", "width", "range", "charts": [{"id", "title", "unit",
    "series": [{"label", "values", "scale"?, "dash"?, "threshold"?, "baseline"?}]}]}``. With a
    ``baseline`` run, its request rate, p(95) and error rate are drawn over this run's."""
    slots = timeline.slots()
    width = timeline.width
    charts: list[dict[str, Any]] = []

    def overlay(series: list[dict[str, Any]], label: str, metric: str, stat: str) -> None:
        if baseline is not None and baseline.select(metric):
            values = baseline_column(timeline, baseline, metric, stat)
            series.append(_series(label, values, baseline=True))

    def chart(chart_id: str, title: str, unit: str, series: list[dict[str, Any]]) -> None:
        if series:
            charts.append({"id": chart_id, "title": title, "unit": unit, "series": series})

    def col(metric: str, stat: str, where: dict[str, str] | None = None) -> list[Any]:
        return _column(slots, timeline.merged(metric, where), stat, width)

    load = []
    if timeline.select("http_reqs"):
        load.append(_series("requests/s", col("http_reqs", "per_s")))
    if timeline.select("iterations") and not load:
        load.append(_series("iterations/s", col("iterations", "per_s")))
    if load:
        overlay(load, "requests/s (baseline)", "http_reqs", "per_s")
    if timeline.select("vus"):
        load.append(_series("VUs", col("vus", "max"), scale="vus"))
    chart("load", "Request rate and VUs", "per second", load)

    if timeline.select("http_req_duration"):
        latency = [_series(s, col("http_req_duration", s)) for s in LATENCY_STATS]
        overlay(latency, "p(95) (baseline)", "http_req_duration", "p(95)")
        latency += [
            _series(label, [limit] * len(slots), dash=True, threshold=True)
            for label, limit in latency_limits(snapshot)
        ]
        chart("latency", "http_req_duration percentiles", "ms", latency)

    if timeline.select("http_req_failed"):
        errors = [_series("error rate %", col("http_req_failed", "rate%"))]
        overlay(errors, "error rate % (baseline)", "http_req_failed", "rate%")
        statuses: Counter[str] = Counter()
        for key in timeline.keys("http_req_failed"):
            status = dict(key[1]).get("status", "")
            statuses[status] += sum(b.nonzero for b in timeline.series[key].values())
        for status, count in statuses.most_common(TOP_STATUSES):
            if count:
                per = col("http_req_failed", "nonzero_per_s", {"status": status})
                errors.append(_series(f"status {status or '?'} errors/s", per, scale="errors/s"))
        chart("errors", "Errors", "%", errors)

    if timeline.select("checks"):
        chart("checks", "Check failure rate", "%", [_series("failed %", col("checks", "fail%"))])

    groups = endpoint_groups(timeline)
    if groups:
        by: dict[str, list[dict[str, Any]]] = {"rate": [], "p95": [], "err": []}
        for label, names in groups.items():
            reqs = _by_names(timeline, "http_reqs", names)
            by["rate"].append(_series(label, _column(slots, reqs, "per_s", width)))
            duration = _by_names(timeline, "http_req_duration", names)
            by["p95"].append(_series(label, _column(slots, duration, "p(95)", width)))
            failed = _by_names(timeline, "http_req_failed", names)
            by["err"].append(_series(label, _column(slots, failed, "rate%", width)))
        chart("ep-rate", "Requests/s per endpoint (name tag)", "per second", by["rate"])
        chart("ep-p95", "p(95) per endpoint", "ms", by["p95"])
        chart("ep-err", "Error % per endpoint", "%", by["err"])

    trends = [
        metric
        for metric, kind in sorted(timeline.types.items())
        if kind == "trend" and metric not in BUILTIN_METRICS
    ]
    for metric in trends[:MAX_TRENDS]:
        contains = (
            snapshot.metrics[metric].contains if snapshot and metric in snapshot.metrics else ""
        )
        unit = "ms" if contains == "time" else "bytes" if contains == "data" else ""
        series = [_series(s, col(metric, s)) for s in ("avg", "p(50)", "p(95)", "max")]
        chart(f"trend-{len(charts)}", metric, unit, series)

    first = slots[0] if slots else 0
    end = timeline.end if timeline.end is not None else first + width
    return {
        "x": slots,
        "width": width,
        "range": [first, max(end, first + width)],
        "charts": charts,
    }


def endpoint_rows(
    timeline: Timeline, duration_s: float, baseline: Timeline | None = None
) -> list[dict[str, Any]]:
    """Per endpoint (top names, then ``(other)``): count, req/s, duration stats, error %; with
    a ``baseline``, the baseline's p(95) of the same ``name`` tag (``None`` if it had none)."""
    rows = []
    for label, names in endpoint_groups(timeline).items():
        reqs = list(_by_names(timeline, "http_reqs", names).values())
        duration = list(_by_names(timeline, "http_req_duration", names).values())
        failed = list(_by_names(timeline, "http_req_failed", names).values())
        count = merge_buckets(reqs).sum if reqs else 0.0
        row: dict[str, Any] = {
            "name": label,
            "count": count,
            "rate": count / duration_s if duration_s else None,
        }
        total = merge_buckets(duration) if duration else None
        for stat in ENDPOINT_STATS:
            row[stat] = total.stat(stat) if total else None
        fails = merge_buckets(failed) if failed else None
        row["error%"] = 100 * fails.nonzero / fails.count if fails and fails.count else None
        if baseline is not None:
            before = list(_by_names(baseline, "http_req_duration", names).values())
            row["baseline p(95)"] = merge_buckets(before).stat("p(95)") if before else None
        rows.append(row)
    return rows


def error_rows(timeline: Timeline) -> list[tuple[str, str, str, int]]:
    """Failed requests by (name, status, error_code), most first."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for key in timeline.keys("http_req_failed"):
        tags = dict(key[1])
        failed = sum(b.nonzero for b in timeline.series[key].values())
        if failed:
            counts[(tags.get("name", ""), tags.get("status", ""), tags.get("error_code", ""))] += (
                failed
            )
    return [(*key, count) for key, count in counts.most_common(TOP_ERRORS)]
