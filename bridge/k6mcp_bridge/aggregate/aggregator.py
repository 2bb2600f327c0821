"""Live aggregation of a k6 stream into k6's own numbers, per metric and per submetric.

:class:`Aggregator` takes batches of MCP messages. ``Metric`` messages define metrics (type,
submetrics, and thresholds unless ``stream_thresholds=False``); each ``Point`` goes to its
metric's sink and to every submetric whose tags it contains (exact string equality on every
``tag:value`` of the selector; metadata plays no part), as k6's metrics engine does. A point is
one dict lookup and one C ``array.append`` per sink it feeds: nothing is computed until a
number is read (see ``sinks.py``). Every ``CHUNK`` messages the buffers of counters, gauges,
rates and bounded trends are folded, so only exact trends grow with the stream.

Submetrics come from the ``submetrics`` of ``Metric`` records and from threshold selectors
(:meth:`Aggregator.add_threshold`); two spellings of one selector are one submetric, named by
the first, as in k6. A metric or submetric with a threshold is reported even with no samples,
with zero values (the parent of such a submetric too); its type is then the built-in metric's,
or guessed from the threshold's method (``rate`` guesses a Rate metric).

The stream does not carry the test-run duration a counter's rate divides by; the caller passes
it (:attr:`Aggregator.sample_span_s`, first to last sample time, is a lower bound: it misses
the time before setup's first sample and after the last one). k6 divides by whole nanoseconds
over 1e9: a duration given as ``ns / 1e9`` reproduces k6's rates bit for bit. Samples are not
strictly time-ordered, so the span is taken from the smallest and largest times seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import cast

from ..k6.builtin_metrics import BUILTIN_METRICS
from ..k6.sinks import DEFAULT_TREND_STATS, Sink, SinkState, new_sink, parse_trend_stats
from ..k6.thresholds import Threshold, ThresholdError, parse_metric_key, thresholds_for
from ..messages import (
    Metric,
    MetricMessage,
    MetricType,
    Submetric,
    ThresholdWindow,
    ValueKind,
)
from ..samples import Decoded, PointRecord

CHUNK = 4096
"""Messages between two folds of the sinks' buffers (bounds a bounded trend's buffer)."""

_GUESSED_TYPE: dict[str, MetricType] = {
    "count": "counter",
    "value": "gauge",
    "rate": "rate",
    **dict.fromkeys(("avg", "min", "max", "med", "p"), "trend"),
}
_DEFAULT_STATS = tuple(stat.key for stat in DEFAULT_TREND_STATS)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Pairs = frozenset[tuple[str, str]]
Add = Callable[[float], None]
Route = tuple[Add, tuple[tuple[Pairs, Add], ...], bool]
"""A metric's sink ``add``, each submetric's selector and ``add``, and whether its points are
kept (see :meth:`Aggregator.add`)."""


@dataclass
class MetricInfo:
    """A metric or submetric that k6's summary would show."""

    name: str
    """k6's key: ``http_req_duration`` or ``http_req_duration{status:200}``."""
    type: MetricType
    contains: ValueKind
    parent: str | None
    """The parent metric's name, for a submetric."""
    tags: dict[str, str] | None
    """A submetric's selector."""
    samples: int
    thresholds: tuple[Threshold, ...]


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    metric: str
    """The key of the (sub)metric it was evaluated on (k6's name for it)."""
    ok: bool
    observed: float | None
    """The value compared; None when k6 has none (an empty rate sink, or skipped)."""
    evaluated: bool
    """False when skipped during the run because the metric has no samples yet."""
    abort: bool
    """Failed, ``abortOnFail``, and past its ``delayAbortEval``: k6 would abort the test."""
    window: ThresholdWindow | None = None
    """A windowed threshold's windows (see :mod:`.windowed`)."""


class _Series:
    """One metric or submetric: its sink once the type is known, and its thresholds."""

    __slots__ = ("contains", "key", "parent", "sink", "tags", "thresholds", "type")

    def __init__(self, key: str, parent: _Series | None, tags: Pairs) -> None:
        self.key = key
        self.parent = parent
        self.tags = tags
        self.type: MetricType | None = None
        self.contains: ValueKind = "default"
        self.sink: Sink | None = None
        self.thresholds: list[Threshold] = []


class Aggregator:
    """k6's sinks for every metric and submetric of a stream, and its thresholds."""

    def __init__(
        self,
        trend_stats: Sequence[str] | str = _DEFAULT_STATS,
        bounded: bool = False,
        *,
        stream_thresholds: bool = True,
        k6_gauge_max: bool = False,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        """``trend_stats`` uses ``--summary-trend-stats`` syntax (ConfigError when invalid);
        ``bounded`` switches trends to a 1%-relative-error sketch; ``stream_thresholds`` takes
        the thresholds of ``Metric`` records; ``k6_gauge_max`` reports k6 v1.1.0's gauge max
        (floored at 0, bug #6181) instead of the true max; :meth:`add` returns the points of
        the metrics in ``keep``."""
        self.trend_stats = parse_trend_stats(trend_stats)
        self.bounded = bounded
        self.stream_thresholds = stream_thresholds
        self.k6_gauge_max = k6_gauge_max
        self.keep = keep
        self.first_time: datetime | None = None
        self.last_time: datetime | None = None
        self.problems: list[ThresholdError] = []
        """Thresholds dropped because their metric's type (learnt later) does not allow them."""
        self.untyped_points: dict[str, int] = {}
        """Points dropped because their metric's type is unknown (no ``Metric`` record)."""
        self._metrics: dict[str, _Series] = {}
        self._subs: dict[str, dict[Pairs, _Series]] = {}
        self._series: dict[str, _Series] = {}
        self._sinks: list[Sink] = []
        self._thresholds: list[tuple[Threshold, _Series]] = []
        self._routes: dict[str, Route] = {}

    # --- the hot path ------------------------------------------------------------------------

    def add(self, records: Sequence[Decoded]) -> list[Decoded]:
        """Aggregate a batch, in stream order. Returns, in stream order, what is more than
        numbers: its ``Metric`` messages and the points of the metrics in ``keep`` (the group
        tree's ``checks`` and ``group_duration``), picked out in the same pass."""
        routes = self._routes
        kept: list[Decoded] = []
        keep = kept.append
        first = self.first_time or datetime.max.replace(tzinfo=timezone.utc)
        last = self.last_time or _EPOCH
        seen = None  # the decoders share one time object among a request's samples
        for start in range(0, len(records), CHUNK):
            # a Metric message has no .metric: the lookup's AttributeError picks it out
            for data in cast("Sequence[PointRecord]", records[start : start + CHUNK]):
                try:
                    add, subs, kept_metric = routes[data.metric]
                except KeyError:
                    route = self._route_untyped(data.metric)
                    if route is None:
                        continue
                    add, subs, kept_metric = route
                except AttributeError:  # a Metric message (rare): no type check per point
                    self._define(cast(MetricMessage, data).data)
                    keep(data)
                    continue
                if kept_metric:
                    keep(data)
                value = data.value
                add(value)
                if subs:
                    tags = data.tags
                    if tags is not None:
                        items = tags.items()
                        for selector, add_sub in subs:
                            if items >= selector:
                                add_sub(value)
                time = data.time
                if time is not seen:
                    seen = time
                    if time > last:
                        last = time
                    if time < first:
                        first = time
            for sink in self._sinks:
                sink.flush()
        if last is not _EPOCH:
            self.first_time, self.last_time = first, last
        return kept

    def _route_untyped(self, name: str) -> Route | None:
        if name in BUILTIN_METRICS:
            kind, contains = BUILTIN_METRICS[name]
            self._set_type(self._metric(name), kind, contains)
            return self._routes[name]
        self.untyped_points[name] = self.untyped_points.get(name, 0) + 1
        return None

    # --- definitions -------------------------------------------------------------------------

    def _metric(self, name: str) -> _Series:
        series = self._metrics.get(name)
        if series is None:
            series = self._metrics[name] = self._series[name] = _Series(name, None, frozenset())
            self._subs[name] = {}
        return series

    def _submetric(self, name: str, tags: Pairs, key: str) -> _Series:
        parent = self._metric(name)
        series = self._subs[name].get(tags)
        if series is None:
            series = self._subs[name][tags] = self._series[key] = _Series(key, parent, tags)
            if parent.type is not None:
                self._set_type(series, parent.type, parent.contains)
            self._route(parent)
        return series

    def _define(self, metric: Metric) -> None:
        series = self._metric(metric.name)
        if series.type is None:
            self._set_type(series, metric.type, metric.contains)
        for sub in metric.submetrics or ():
            self._define_submetric(metric.name, sub)
        if self.stream_thresholds:
            for item in metric.thresholds:
                try:
                    for threshold in thresholds_for(metric.name, [item], metric.type):
                        self.add_threshold(threshold)
                except ThresholdError as exc:
                    self.problems.append(exc)

    def _define_submetric(self, name: str, sub: Submetric) -> None:
        if sub.tags is not None:
            self._submetric(name, frozenset(sub.tags.items()), sub.name)
        else:
            _, pairs, key = parse_metric_key(sub.name)
            self._submetric(name, frozenset(pairs), key)

    def _set_type(self, series: _Series, kind: MetricType, contains: ValueKind) -> None:
        series.type, series.contains = kind, contains
        series.sink = new_sink(
            kind, self.trend_stats, bounded=self.bounded, k6_gauge_max=self.k6_gauge_max
        )
        self._sinks.append(series.sink)
        kept = []
        for threshold in series.thresholds:
            try:
                threshold.check_type(kind)
                kept.append(threshold)
            except ThresholdError as exc:
                self.problems.append(exc)
                self._thresholds.remove((threshold, series))
        series.thresholds = kept
        if series.parent is None:
            for sub in self._subs[series.key].values():
                if sub.type is None:
                    self._set_type(sub, kind, contains)
            self._route(series)

    def _route(self, metric: _Series) -> None:
        if metric.sink is None:
            return
        subs = tuple(
            (sub.tags, sub.sink.add)
            for sub in self._subs[metric.key].values()
            if sub.sink is not None
        )
        self._routes[metric.key] = (metric.sink.add, subs, metric.key in self.keep)

    def add_threshold(self, threshold: Threshold) -> None:
        """Evaluate ``threshold`` from now on; its selector becomes a submetric. The same
        expression on the same (sub)metric is kept once. ThresholdError when the metric's
        known type does not allow its method."""
        if threshold.tags:
            series = self._submetric(threshold.metric, frozenset(threshold.tags), threshold.key)
        else:
            series = self._metric(threshold.metric)
        if series.type is not None:
            threshold.check_type(series.type)
        if any(known.source == threshold.source for known in series.thresholds):
            return
        series.thresholds.append(threshold)
        self._thresholds.append((threshold, series))

    def add_submetric(self, threshold: Threshold) -> None:
        """Keep the submetric of ``threshold``'s selector (one evaluated elsewhere: a windowed
        threshold), so that the summary shows it."""
        if threshold.tags:
            self._submetric(threshold.metric, frozenset(threshold.tags), threshold.key)

    # --- reading -----------------------------------------------------------------------------

    def series_defined(self) -> list[tuple[str, str, dict[str, str]]]:
        """Every metric and submetric known: ``(k6's name, the metric's name, selector)``."""
        return [
            (series.key, (series.parent or series).key, dict(series.tags))
            for series in self._series.values()
        ]

    def restore(self, name: str, state: SinkState) -> None:
        """Give metric or submetric ``name`` a merged run's numbers (bounded mode)."""
        series = self._find(name)
        if series.sink is not None:
            series.sink.restore(state)

    def type_of(self, name: str) -> MetricType | None:
        """Metric ``name``'s type; ``None`` while it is unknown."""
        series = self._metrics.get(name)
        return None if series is None else series.type

    @property
    def sample_span_s(self) -> float:
        """Seconds from the earliest to the latest sample time seen (0 before two samples)."""
        if self.first_time is None or self.last_time is None:
            return 0.0
        return (self.last_time - self.first_time).total_seconds()

    def unknown_threshold_metrics(self) -> list[str]:
        """Custom metrics that have thresholds but never had a ``Metric`` record (k6 rejects
        a threshold on a metric the script does not define: a typo, or a metric never used)."""
        unknown = {
            (series.parent or series).key
            for _, series in self._thresholds
            if not (series.parent or series).type
            and (series.parent or series).key not in BUILTIN_METRICS
        }
        return sorted(unknown)

    @property
    def thresholds(self) -> list[Threshold]:
        return [threshold for threshold, _ in self._thresholds]

    def metrics(self) -> list[MetricInfo]:
        """Every metric and submetric k6's summary would show: those with samples, those with
        thresholds, and the parents of submetrics with thresholds; parents first."""
        shown = []
        for metric in self._metrics.values():
            subs = [sub for sub in self._subs[metric.key].values() if self._shown(sub)]
            if subs or self._shown(metric):
                shown.append(self._info(metric))
            shown.extend(self._info(sub) for sub in subs)
        return shown

    @staticmethod
    def _shown(series: _Series) -> bool:
        return bool(series.thresholds) or (series.sink is not None and not series.sink.is_empty)

    def _info(self, series: _Series) -> MetricInfo:
        sink = self._sink(series)
        top = series.parent or series
        contains = (
            series.contains if series.type else BUILTIN_METRICS.get(top.key, ("", "default"))[1]
        )
        return MetricInfo(
            series.key,
            sink.kind,
            contains,
            series.parent.key if series.parent else None,
            dict(series.tags) if series.parent else None,
            sink.sample_count,
            tuple(series.thresholds),
        )

    def values(self, name: str, duration_s: float) -> dict[str, float]:
        """k6's values for metric or submetric ``name``: counter ``count``/``rate``, gauge
        ``value``/``min``/``max``, rate ``rate``/``passes``/``fails``, trend the configured
        stats. ``duration_s`` is the test-run duration a counter's rate divides by."""
        return self._sink(self._find(name)).values(duration_s)

    def _find(self, name: str) -> _Series:
        series = self._series.get(name)
        if series is None:
            metric, pairs, _ = parse_metric_key(name)
            series = self._subs.get(metric, {}).get(frozenset(pairs))
        if series is None:
            raise KeyError(f"no metric or submetric {name!r} in the stream")
        return series

    def _sink(self, series: _Series) -> Sink:
        """The series' sink; an empty one of the guessed type when its type is unknown."""
        if series.sink is not None:
            return series.sink
        top = series.parent or series
        kind, _ = BUILTIN_METRICS.get(top.key, (None, None))
        if kind is None:
            methods = [t.method for s in (top, *self._subs[top.key].values()) for t in s.thresholds]
            kind = _GUESSED_TYPE[methods[0]] if methods else "trend"
        return new_sink(kind, self.trend_stats, bounded=self.bounded)

    def evaluate_thresholds(
        self, duration_s: float, *, final: bool = True
    ) -> list[ThresholdResult]:
        """Every threshold's verdict now, as k6 computes it: during the run (``final=False``)
        a metric with no samples is skipped; at the end it is evaluated with zero values."""
        results = []
        for threshold, series in self._thresholds:
            sink = self._sink(series)
            if not final and sink.is_empty:
                results.append(ThresholdResult(threshold, series.key, True, None, False, False))
                continue
            value = sink.threshold_value(threshold.method, threshold.percentile, duration_s)
            ok, observed = threshold.evaluate({} if value is None else {threshold.stat: value})
            abort = threshold.should_abort(ok, duration_s)
            results.append(ThresholdResult(threshold, series.key, ok, observed, True, abort))
        return results
