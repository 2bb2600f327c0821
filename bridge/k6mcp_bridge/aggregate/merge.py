"""Many runners' states into one run: k6's numbers and verdicts over the whole distributed test.

Per instance the newest state counts (highest ``seq``). Series with the same metric and tags add
up bucket by bucket: counts, sums, min and max and rate passes exactly, trend percentiles from
the summed sketches (within 1%). Gauges keep the value of the latest sample, except ``vus`` and
``vus_max``, which are summed across instances (as k6 Cloud shows them). The test-run duration
is the span from the earliest sample of any instance to the latest.

The merged numbers go into a bounded-mode :class:`~.aggregator.Aggregator` (its sinks restored
from the buckets, submetrics being the series whose tags hold the selector), so thresholds,
the snapshot, the text summary and the summary export are exactly those of a single run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..k6.group_tree import GroupTree
from ..k6.thresholds import Threshold
from ..messages import Metric, MetricMessage, MetricsSnapshot
from .aggregator import Aggregator, ThresholdResult
from .buckets import Bucket
from .snapshot import snapshot_from
from .state import RunState

SUMMED_GAUGES = frozenset({"vus", "vus_max"})


@dataclass
class Merged:
    """The states merged: definitions, one bucket per series, the span, who took part."""

    metrics: dict[str, Metric]
    series: dict[tuple[str, tuple[tuple[str, str], ...]], Bucket]
    first: datetime | None
    last: datetime | None
    instances: dict[str, RunState]

    @property
    def duration_s(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return (self.last - self.first).total_seconds()


def newest(states: Sequence[RunState]) -> dict[str, RunState]:
    """Each instance's state with the highest ``seq`` (a replay or an older copy is dropped)."""
    kept: dict[str, RunState] = {}
    for state in states:
        known = kept.get(state.instance)
        if known is None or state.seq > known.seq:
            kept[state.instance] = state
    return kept


def merge(states: Sequence[RunState]) -> Merged:
    instances = newest(states)
    metrics: dict[str, Metric] = {}
    series: dict[tuple[str, tuple[tuple[str, str], ...]], Bucket] = {}
    firsts, lasts = [], []
    for state in instances.values():
        for metric in state.metrics:
            metrics.setdefault(metric.name, metric)
        for rollup in state.series:
            key = (rollup.metric, tuple(sorted(rollup.tags.items())))
            bucket = Bucket.from_model(rollup)
            total = series.get(key)
            if total is None:
                series[key] = bucket
            elif rollup.metric in SUMMED_GAUGES:
                _sum_gauge(total, bucket)
            else:
                total.merge(bucket)
        firsts += [state.first_time] if state.first_time else []
        lasts += [state.last_time] if state.last_time else []
    return Merged(metrics, series, min(firsts, default=None), max(lasts, default=None), instances)


def _sum_gauge(total: Bucket, other: Bucket) -> None:
    total.count += other.count
    total.sum += other.sum
    total.min += other.min
    total.max += other.max
    total.last = (total.last or 0.0) + (other.last or 0.0)
    if other.last_time is not None and (
        total.last_time is None or other.last_time > total.last_time
    ):
        total.last_time = other.last_time


def aggregator_of(
    merged: Merged, thresholds: Sequence[Threshold], trend_stats: Sequence[str] | str
) -> Aggregator:
    """A bounded-mode aggregator holding the merged numbers, with the stream's thresholds (from
    the definitions) and ``thresholds``."""
    aggregator = Aggregator(trend_stats, bounded=True)
    define(aggregator, merged)
    for threshold in thresholds:
        aggregator.add_threshold(threshold)
    restore(aggregator, merged)
    return aggregator


def define(aggregator: Aggregator, merged: Merged) -> None:
    """Give ``aggregator`` the merged run's metric definitions (their thresholds included)."""
    aggregator.add([MetricMessage(data=metric) for metric in merged.metrics.values()])


def restore(aggregator: Aggregator, merged: Merged) -> None:
    """Give a bounded-mode ``aggregator`` the merged run's span and numbers: each metric and
    submetric it defines, from the series whose tags hold its selector."""
    aggregator.first_time, aggregator.last_time = merged.first, merged.last
    for name, parent, tags in aggregator.series_defined():
        selector = set(tags.items())
        total: Bucket | None = None
        for (metric, pairs), bucket in merged.series.items():
            if metric == parent and selector.issubset(pairs):
                if total is None:
                    total = Bucket(bucket.type)
                total.merge(bucket)
        if total is not None and total.count:
            aggregator.restore(name, total.sink_state())


def tree_of(merged: Merged, tree: GroupTree | None = None) -> GroupTree:
    """The merged run's checks and groups, added to ``tree`` (by default a new one)."""
    tree = GroupTree() if tree is None else tree
    for (metric, pairs), bucket in merged.series.items():
        if metric in ("checks", "group_duration"):
            tree.add_counts(metric, dict(pairs), bucket.nonzero, bucket.count - bucket.nonzero)
    return tree


def merged_snapshot(
    merged: Merged,
    thresholds: Sequence[Threshold],
    trend_stats: Sequence[str] | str,
    time_unit: str | None,
) -> MetricsSnapshot:
    """The final snapshot of the merged run, verdicts included."""
    return judge(merged, thresholds, trend_stats, time_unit, final=True)[0]


def judge(
    merged: Merged,
    thresholds: Sequence[Threshold],
    trend_stats: Sequence[str] | str,
    time_unit: str | None,
    *,
    final: bool,
) -> tuple[MetricsSnapshot, list[ThresholdResult]]:
    """The merged run's snapshot and every threshold's verdict, during the run (``final``
    False: a metric with no sample yet is not judged) or at its end."""
    aggregator = aggregator_of(merged, thresholds, trend_stats)
    duration = merged.duration_s
    results = aggregator.evaluate_thresholds(duration, final=final)
    snapshot = snapshot_from(
        aggregator,
        tree_of(merged),
        duration,
        final=final,
        results=results,
        time_unit=time_unit,  # type: ignore[arg-type]
    )
    return snapshot, results
