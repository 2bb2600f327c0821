"""k6 v1.1.0's four metric sinks, with k6's own arithmetic (``metrics/sink.go``).

A sink takes values through ``add``/``extend``: the bound methods of a list of pending values
(C calls; ``array('d').append`` converts each value through ``PyArg_Parse``, ~200 instructions,
a list takes the float as it is). ``flush`` folds the pending values in stream order, and every
read flushes first, so the numbers are the ones k6 computes sample by sample:

* counter: ``count`` is the float sum in stream order; ``rate = count / duration`` (0 when the
  duration is 0, as k6's summary does);
* gauge: ``value`` is the last value in stream order, ``min``/``max`` the true extremes. k6
  v1.1.0 starts its max at 0 with no first-sample guard (bug #6181, fixed in v2.2.0): its max of
  an all-negative gauge is 0. ``k6_max`` is that number; ``GaugeSink(k6_max=True)`` reports it;
* rate: a value is a pass when it is not 0 (0.5 and -1 pass); ``rate = passes / total`` (0 when
  empty, and no value at all for a threshold, which then passes);
* trend: ``count``, ``min``, ``max``, ``avg = sum / count`` (sum in stream order) and
  ``P(p)``: 0 for no value, the value for one, else ``v[floor(i)] + (v[ceil(i)] - v[floor(i)]) *
  (i - floor(i))`` over the sorted values, ``i = p * (n - 1)``; ``med = P(0.5)``,
  ``p(N) = P(N / 100)``. ±Inf go through the same formula, so a percentile that lands on an
  infinite value is NaN (Inf - Inf), as in k6.

Exact trends pack the pending values into an ``array('d')`` at each flush (``struct.pack``: 8
bytes a value plus the array's ~6% growth slack; the aggregator flushes every few thousand
messages, so the list stays short) and sort it when a percentile is asked and values arrived
since the last sort: a tail shorter than a third of the array is merged into the sorted prefix
in place (one bisect per new value), else :func:`.sorting.sorted_array` sorts it with bounded
memory.
Bounded trends (``bounded=True``) fold the pending values into a
:class:`~.sketch.QuantileSketch` at each flush, so memory stays flat while
``count``/``min``/``max``/``avg`` stay exact.

The sketch, and why it is our own: :mod:`.sketch`.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from ..errors import ConfigError
from .go_literals import parse_go_float
from .sketch import QuantileSketch
from .sorting import packed, sorted_array

if TYPE_CHECKING:
    from ..messages import MetricType

INF = math.inf
"""Bounded mode: every percentile is within 1% (relative) of the value at the same rank."""


class TrendStat(NamedTuple):
    """One ``--summary-trend-stats`` column: ``key`` as given, ``percentile`` in [0, 1] or None."""

    key: str
    percentile: float | None


_STATIC_STATS = {"avg": None, "min": None, "max": None, "count": None, "med": 0.5}


def parse_trend_stats(stats: str | Iterable[str]) -> tuple[TrendStat, ...]:
    """Validate k6's ``--summary-trend-stats`` (a comma-separated string or a list), as k6 does.

    Accepted: ``avg``, ``min``, ``med``, ``max``, ``count`` and ``p(N)`` with ``0 <= N <= 100``
    (N any Go float literal: ``p(99.9)``). Nothing is trimmed, exactly as k6.
    """
    names = stats.split(",") if isinstance(stats, str) else list(stats)
    parsed = []
    for name in names:
        if name in _STATIC_STATS:
            parsed.append(TrendStat(name, _STATIC_STATS[name]))
            continue
        if not (name.startswith("p(") and name.endswith(")")):
            raise ConfigError(
                f"invalid trend stat '{name}', unknown format: expected one of "
                "avg, min, med, max, count or p(N) with N between 0 and 100"
            )
        try:
            percent = parse_go_float(name[2:-1])
        except ValueError:
            percent = math.nan
        if not 0 <= percent <= 100:  # NaN too: k6 accepts p(NaN) and then crashes
            raise ConfigError(
                f"invalid percentile trend stat value '{name}', provide a number between 0 and 100"
            )
        parsed.append(TrendStat(name, percent / 100))
    return tuple(parsed)


DEFAULT_TREND_STATS = parse_trend_stats("avg,min,med,max,p(90),p(95)")


def interpolate(p: float, n: int, at: Callable[[int], float]) -> float:
    """k6's ``P(p)`` over ``n >= 2`` sorted values, ``at(rank)`` giving the value at a rank."""
    i = p * (n - 1.0)
    lo = math.floor(i)
    j = at(lo)
    k = at(math.ceil(i))
    return j + (k - j) * (i - lo)


def sketch_percentile(sketch: QuantileSketch, p: float, n: int, low: float, high: float) -> float:
    """k6's ``P(p)`` over ``n >= 2`` values held in ``sketch``, whose exact extremes are ``low``
    and ``high``: ranks 0 and ``n - 1`` are exact, the others within the sketch's error."""

    def at(rank: int) -> float:
        if rank == 0:
            return low
        if rank == n - 1:
            return high
        return min(max(sketch.value_at(rank), low), high)

    return interpolate(p, n, at)


class SinkState(NamedTuple):
    """A sink's numbers without its values: what a merge of runs knows."""

    samples: int
    sum: float
    min: float
    max: float
    nonzero: int
    last: float | None
    sketch: QuantileSketch | None


class Sink:
    """Base of the four sinks: a list of pending values that :meth:`flush` folds and empties."""

    kind: ClassVar[MetricType]
    __slots__ = ("add", "extend", "pending", "samples")
    add: Callable[[float], None]
    """Add one value (the pending list's C ``append``)."""
    extend: Callable[[Iterable[float]], None]

    def __init__(self) -> None:
        self.pending: list[float] = []
        self.add = self.pending.append
        self.extend = self.pending.extend
        self.samples = 0
        """Values folded so far; k6 calls a sink with none "empty"."""

    def flush(self) -> None:
        """Fold the pending values, in stream order."""
        pending = self.pending
        if pending:
            self._fold(pending)
            self.samples += len(pending)
            pending.clear()

    def _fold(self, values: list[float]) -> None:
        raise NotImplementedError

    @property
    def is_empty(self) -> bool:
        return not self.pending and self.samples == 0

    @property
    def sample_count(self) -> int:
        """Values added so far."""
        self.flush()
        return self.samples

    def values(self, duration_s: float = 0.0) -> dict[str, float]:
        """The numbers k6's summary shows for this sink (after a flush)."""
        raise NotImplementedError

    def restore(self, state: SinkState) -> None:
        """Hold the numbers of ``state`` (a merged run's: see ``aggregate/merge.py``) instead
        of values added one by one."""
        self.pending.clear()
        self.samples = state.samples

    def threshold_value(
        self, method: str, percentile: float | None, duration_s: float
    ) -> float | None:
        """What a k6 threshold with ``method`` sees, or None when k6 would see nothing."""
        return self.values(duration_s)[method]


class CounterSink(Sink):
    kind = "counter"
    __slots__ = ("count",)

    def __init__(self) -> None:
        super().__init__()
        self.count = 0.0

    def _fold(self, values: list[float]) -> None:
        total = self.count
        for value in values:
            total += value
        self.count = total

    def values(self, duration_s: float = 0.0) -> dict[str, float]:
        self.flush()
        return {"count": self.count, "rate": self.count / duration_s if duration_s else 0.0}

    def restore(self, state: SinkState) -> None:
        super().restore(state)
        self.count = state.sum


class GaugeSink(Sink):
    kind = "gauge"
    __slots__ = ("k6_max_reported", "max", "min", "value")

    def __init__(self, k6_max: bool = False) -> None:
        super().__init__()
        self.value = self.min = self.max = 0.0
        """Last, smallest and (true) largest value; read them after :meth:`flush`."""
        self.k6_max_reported = k6_max

    def _fold(self, values: list[float]) -> None:
        low, high = min(values), max(values)
        if self.samples == 0 or low < self.min:
            self.min = low
        if self.samples == 0 or high > self.max:
            self.max = high
        self.value = values[-1]

    @property
    def k6_max(self) -> float:
        """k6 v1.1.0's max: floored at 0 (bug #6181)."""
        self.flush()
        return max(0.0, self.max)

    def values(self, duration_s: float = 0.0) -> dict[str, float]:
        self.flush()
        top = self.k6_max if self.k6_max_reported else self.max
        return {"value": self.value, "min": self.min, "max": top}

    def restore(self, state: SinkState) -> None:
        super().restore(state)
        self.value = 0.0 if state.last is None else state.last
        self.min, self.max = state.min, state.max


class RateSink(Sink):
    kind = "rate"
    __slots__ = ("passes",)

    def __init__(self) -> None:
        super().__init__()
        self.passes = 0

    def _fold(self, values: list[float]) -> None:
        self.passes += len(values) - values.count(0.0)  # -0.0 == 0.0: a fail, as in Go

    def values(self, duration_s: float = 0.0) -> dict[str, float]:
        self.flush()
        rate = self.passes / self.samples if self.samples else 0.0
        return {
            "rate": rate,
            "passes": float(self.passes),
            "fails": float(self.samples - self.passes),
        }

    def threshold_value(
        self, method: str, percentile: float | None, duration_s: float
    ) -> float | None:
        return None if self.is_empty else self.values()["rate"]

    def restore(self, state: SinkState) -> None:
        super().restore(state)
        self.passes = state.nonzero


class TrendSink(Sink):
    kind = "trend"
    __slots__ = ("_sketch", "_sorted", "buffer", "max", "min", "stats", "sum")

    def __init__(
        self, stats: Sequence[TrendStat] = DEFAULT_TREND_STATS, bounded: bool = False
    ) -> None:
        super().__init__()
        self.stats = tuple(stats)
        self.sum = self.min = self.max = 0.0
        """Read after :meth:`flush` (as ``samples``, the count)."""
        self.buffer = array("d")
        """Exact mode: every value folded so far."""
        self._sorted = 0
        """Exact mode: ``buffer[:_sorted]`` are in ascending order."""
        self._sketch = QuantileSketch() if bounded else None

    def _fold(self, values: list[float]) -> None:
        low, high = min(values), max(values)
        total = self.sum
        for value in values:
            total += value
        self.sum = total
        if self.samples == 0 or low < self.min:
            self.min = low
        if self.samples == 0 or high > self.max:
            self.max = high
        if self._sketch is None:
            self.buffer.frombytes(packed(values))
        else:
            self._sketch.add_many(values)

    def restore(self, state: SinkState) -> None:
        """Bounded mode only: the percentiles come from ``state.sketch``."""
        if self._sketch is None:
            raise ValueError("an exact trend cannot be restored from a sketch")
        super().restore(state)
        self._sorted = 0
        self.sum, self.min, self.max = state.sum, state.min, state.max
        self._sketch = state.sketch or QuantileSketch()

    def stat(self, name: str, percentile: float | None = None) -> float:
        """``avg``, ``min``, ``max``, ``count``, ``med``, or the ``percentile`` (in [0, 1])."""
        self.flush()
        if percentile is not None or name == "med":
            return self.percentile(0.5 if percentile is None else percentile)
        if name == "avg":
            return self.sum / self.samples if self.samples else 0.0
        if name == "count":
            return float(self.samples)
        return self.min if name == "min" else self.max

    def percentile(self, p: float) -> float:
        """k6's ``P(p)`` for ``p`` in [0, 1] (``p(95)`` is ``percentile(0.95)``)."""
        if not 0 <= p <= 1:
            raise ValueError(f"percentile {p!r} is outside [0, 1]")
        self.flush()
        n = self.samples
        if n < 2:
            return self.min  # 0 when empty, else the only value
        if self._sketch is None:
            self._sort()
            return interpolate(p, n, self.buffer.__getitem__)
        return sketch_percentile(self._sketch, p, n, self.min, self.max)

    def _sort(self) -> None:
        """Sort the values: a short unsorted tail is merged into the sorted prefix in place."""
        values, done = self.buffer, self._sorted
        n = len(values)
        if done == n:
            return
        # a long tail: one sort is cheaper than a bisect per value; a NaN sum: NaNs (or both
        # infinities) in the values, which only a whole sort puts in Go's order
        nan = self.sum != self.sum
        if (n - done) * 3 > n or nan:
            self.buffer = sorted_array(values, nan)
        else:
            tail = sorted(values[done:])
            with memoryview(values) as view:
                high = done  # values[:high] are the sorted values not yet moved
                for j in range(len(tail) - 1, -1, -1):  # largest first, filling from the end
                    value = tail[j]
                    at = bisect_right(values, value, 0, high)
                    view[at + j + 1 : high + j + 1] = view[at:high]
                    values[at + j] = value
                    high = at
        self._sorted = n

    def values(self, duration_s: float = 0.0) -> dict[str, float]:
        return {key: self.stat(key, p) for key, p in self.stats}

    def threshold_value(
        self, method: str, percentile: float | None, duration_s: float
    ) -> float | None:
        return self.stat(method, percentile)

    @property
    def nbytes(self) -> int:
        """Memory held for the values: the array's allocation, or the sketch's buckets."""
        self.flush()
        size = sys.getsizeof(self.buffer)
        return size + (self._sketch.nbytes if self._sketch is not None else 0)


def new_sink(
    kind: MetricType,
    trend_stats: Sequence[TrendStat] = DEFAULT_TREND_STATS,
    *,
    bounded: bool = False,
    k6_gauge_max: bool = False,
) -> Sink:
    """The sink for a metric type."""
    if kind == "trend":
        return TrendSink(trend_stats, bounded)
    if kind == "gauge":
        return GaugeSink(k6_gauge_max)
    return CounterSink() if kind == "counter" else RateSink()
