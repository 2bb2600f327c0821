"""One series' numbers over one span of time, mergeable exactly, and k6's stats read from them.

A :class:`Bucket` is what the rollups keep per series and time bucket, what the run store saves
and what a query or a windowed threshold merges: count, sum, min and max; for rates the
non-zero count; for gauges the last value and its time; for trends a
:class:`~..k6.sketch.QuantileSketch`. Merging adds counts, sums and sketch bins and takes the
extremes, so a merge of buckets equals the bucket of all their samples (sums up to float
rounding in another order).

Stats use k6's names (:func:`stat`): counter ``count`` (the sum of the values, as k6's counter)
and ``rate``; gauge ``value``, ``min``, ``max``; rate ``rate``, ``passes``, ``fails``; trend
``count``, ``avg``, ``min``, ``med``, ``max`` and ``p(N)``, percentiles within the sketch's 1%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..k6.go_literals import parse_go_float
from ..k6.sinks import SinkState, sketch_percentile
from ..k6.sketch import RELATIVE_ACCURACY, QuantileSketch

if TYPE_CHECKING:
    from ..messages import MetricType, SeriesRollup, Tags

STATS: dict[MetricType, tuple[str, ...]] = {
    "counter": ("count", "rate"),
    "gauge": ("value", "min", "max"),
    "rate": ("rate", "passes", "fails", "count"),
    "trend": ("count", "avg", "min", "med", "max", "p(N)"),
}
"""The stats each metric type answers, in k6's names."""


@dataclass(slots=True)
class Bucket:
    """One series over one span: a fresh bucket holds nothing."""

    type: MetricType
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    nonzero: int = 0
    last: float | None = None
    last_time: datetime | None = None
    sketch: QuantileSketch | None = None

    def add_values(self, values: Sequence[float], last_time: datetime | None = None) -> None:
        """Add samples in stream order (``last_time``: the last one's time, for a gauge); the
        rollups pass their ``array('d')`` buffers as they are."""
        if not values:
            return
        total = self.sum
        for value in values:
            total += value
        self.sum = total
        self.count += len(values)
        self.min = min(self.min, min(values))
        self.max = max(self.max, max(values))
        if self.type == "rate":
            self.nonzero += len(values) - values.count(0.0)
        elif self.type == "gauge":
            self.last, self.last_time = values[-1], last_time
        elif self.type == "trend":
            if self.sketch is None:
                self.sketch = QuantileSketch()
            self.sketch.add_many(values)

    def merge(self, other: Bucket) -> None:
        """Add ``other`` (a bucket of the same metric) to this one."""
        if not other.count:
            return
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.nonzero += other.nonzero
        if other.last_time is not None and (
            self.last_time is None or other.last_time >= self.last_time
        ):
            self.last, self.last_time = other.last, other.last_time
        if other.sketch is not None:
            if self.sketch is None:
                self.sketch = QuantileSketch()
            self.sketch.merge(other.sketch)

    # --- k6's stats ----------------------------------------------------------------------------

    def stat(self, name: str, duration_s: float | None = None) -> float | None:
        """The stat ``name`` (k6's names, see :data:`STATS`); ``None`` when the bucket has no
        sample. A counter's ``rate`` divides by ``duration_s`` (the span the bucket covers)."""
        if not self.count:
            return None
        kind = self.type
        if kind == "counter":
            if name == "count":
                return self.sum
            return self.sum / duration_s if duration_s else 0.0
        if kind == "gauge":
            return self.last if name == "value" else self.min if name == "min" else self.max
        if kind == "rate":
            if name == "count":
                return float(self.count)
            if name == "rate":
                return self.nonzero / self.count
            return float(self.nonzero if name == "passes" else self.count - self.nonzero)
        percent = percentile_of(name)
        if name == "med" or percent is not None:
            return self.percentile(0.5 if percent is None else percent)
        if name == "avg":
            return self.sum / self.count
        if name == "count":
            return float(self.count)
        return self.min if name == "min" else self.max

    def percentile(self, p: float) -> float:
        """k6's interpolated ``P(p)``, ``p`` in [0, 1], from the sketch (exact at the ends)."""
        if self.count < 2 or self.sketch is None:
            return self.min
        return sketch_percentile(self.sketch, p, self.count, self.min, self.max)

    def sink_state(self) -> SinkState:
        return SinkState(
            self.count, self.sum, self.min, self.max, self.nonzero, self.last, self.sketch
        )

    # --- the message form ----------------------------------------------------------------------

    def to_model(self, metric: str, tags: Tags) -> SeriesRollup:
        from ..messages import SeriesRollup, Sketch  # the models cost 0.1 s to import

        sketch = self.sketch
        return SeriesRollup(
            metric=metric,
            type=self.type,
            tags=tags,
            count=self.count,
            sum=self.sum,
            min=self.min,
            max=self.max,
            nonzero=self.nonzero if self.type == "rate" else None,
            last=self.last,
            last_time=self.last_time,
            sketch=None
            if sketch is None
            else Sketch(
                alpha=RELATIVE_ACCURACY,
                positive=dict(sketch.pos),
                negative=dict(sketch.neg),
                zeros=sketch.zeros,
                pos_inf=sketch.pos_inf,
                neg_inf=sketch.neg_inf,
            ),
        )

    @classmethod
    def from_model(cls, rollup: SeriesRollup) -> Bucket:
        bucket = cls(
            rollup.type,
            rollup.count,
            rollup.sum,
            rollup.min,
            rollup.max,
            rollup.nonzero or 0,
            rollup.last,
            rollup.last_time,
        )
        if rollup.sketch is not None:
            bucket.sketch = sketch = QuantileSketch(rollup.sketch.alpha)
            sketch.pos.update(rollup.sketch.positive)
            sketch.neg.update(rollup.sketch.negative)
            sketch.zeros = rollup.sketch.zeros
            sketch.pos_inf = rollup.sketch.pos_inf
            sketch.neg_inf = rollup.sketch.neg_inf
        return bucket


def percentile_of(name: str) -> float | None:
    """``p(N)`` → ``N / 100``; ``None`` for any other name (ValueError for a bad ``p(N)``)."""
    if not (name.startswith("p(") and name.endswith(")")):
        return None
    percent = parse_go_float(name[2:-1])
    if not 0 <= percent <= 100:
        raise ValueError(f"percentile {name} is outside 0..100")
    return percent / 100


def check_stat(name: str, kind: MetricType, metric: str) -> None:
    """ConfigError naming the valid stats when ``name`` is not one that ``kind`` answers."""
    valid = STATS[kind]
    try:
        is_percentile = percentile_of(name) is not None
    except ValueError as exc:
        raise ConfigError(f"stat {name!r}: {exc}") from None
    if name in valid or (is_percentile and "p(N)" in valid):
        return
    raise ConfigError(
        f"stat {name!r} does not apply to {metric} (a {kind}); valid: {', '.join(valid)}"
    )
