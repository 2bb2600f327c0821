"""The ``window`` messages of a run on one time grid: per series, one bucket per grid slot.

The grid width climbs the rollups' ladder (1, 2, 10, 30 ... 3600 s; each width divides the next,
and a window's start is a multiple of its own width), so a window of any width lands in exactly
one slot and merging is exact (:meth:`Bucket.merge`). Once the run spans more than
``max_points`` slots the grid moves one rung up and merges neighbouring slots, so a series never
holds more than ``max_points`` buckets, however long the run.

Only the tags the report draws are kept: ``name``, ``status`` and ``error_code`` on the
``http_*`` metrics, none on the others (every other tag set of a metric merges into its total).
That bounds memory by metric, endpoint and status, not by k6's full tag sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ..aggregate.buckets import Bucket
from ..aggregate.rollups import LADDER
from ..messages import MetricType, Window

MAX_POINTS = 1200
KEPT_TAGS = ("name", "status", "error_code")

Tags = tuple[tuple[str, str], ...]


def kept(metric: str, tags: dict[str, str]) -> Tags:
    if not metric.startswith("http_"):
        return ()
    return tuple((key, tags[key]) for key in KEPT_TAGS if key in tags)


@dataclass
class Timeline:
    max_points: int = MAX_POINTS
    width: int = LADDER[0]
    first: int | None = None
    """The first slot's start (seconds since the epoch)."""
    end: int | None = None
    """The end of the latest window seen."""
    series: dict[tuple[str, Tags], dict[int, Bucket]] = field(default_factory=dict)
    types: dict[str, MetricType] = field(default_factory=dict)
    windows: int = 0

    def add(self, window: Window) -> None:
        start = int(window.start.timestamp())
        end = int(window.end.timestamp())
        self.windows += 1
        for rollup in window.series:
            bucket = Bucket.from_model(rollup)
            self.add_bucket(rollup.metric, rollup.type, rollup.tags, start, end, bucket)
        if not window.series:
            self._span(start, window.width_s, end)

    def add_bucket(
        self,
        metric: str,
        kind: MetricType,
        tags: dict[str, str],
        start: int,
        end: int,
        bucket: Bucket,
    ) -> None:
        """One series' bucket ``[start, end)`` (from a window, or from the run store)."""
        slot = self._span(start, end - start, end)
        self.types[metric] = kind
        slots = self.series.setdefault((metric, kept(metric, tags)), {})
        known = slots.get(slot)
        if known is None:
            slots[slot] = bucket
        else:
            known.merge(bucket)

    def _span(self, start: int, width: int, end: int) -> int:
        """Widen the grid for a bucket ``width`` wide and the run's span; the bucket's slot."""
        if width > self.width:
            self.regrid(next((w for w in LADDER if w >= width), LADDER[-1]))
        self.first = start if self.first is None else min(self.first, start)
        self.end = end if self.end is None else max(self.end, end)
        while self.span_slots() > self.max_points and self.width < LADDER[-1]:
            self.regrid(LADDER[LADDER.index(self.width) + 1])
        return start - start % self.width

    def span_slots(self) -> int:
        if self.first is None or self.end is None:
            return 0
        first = self.first - self.first % self.width
        return -(-(self.end - first) // self.width)

    def regrid(self, width: int) -> None:
        """Merge every series' slots into slots ``width`` wide (a multiple of the current)."""
        for key, slots in self.series.items():
            merged: dict[int, Bucket] = {}
            for start, bucket in slots.items():
                slot = start - start % width
                if slot in merged:
                    merged[slot].merge(bucket)
                else:
                    merged[slot] = bucket
            self.series[key] = merged
        self.width = width

    def slots(self) -> list[int]:
        """Every slot start from the first to the last, one ``width`` apart."""
        if self.first is None or self.end is None:
            return []
        first = self.first - self.first % self.width
        return list(range(first, self.end, self.width))

    def keys(self, metric: str) -> Iterator[tuple[str, Tags]]:
        return (key for key in self.series if key[0] == metric)

    def merged(self, metric: str, where: dict[str, str] | None = None) -> dict[int, Bucket]:
        """``metric``'s buckets per slot, every series whose tags hold ``where`` merged."""
        return merge_slots(self.series[key] for key in self.select(metric, where))

    def select(self, metric: str, where: dict[str, str] | None = None) -> list[tuple[str, Tags]]:
        wanted = set((where or {}).items())
        return [key for key in self.keys(metric) if wanted <= set(key[1])]

    def total(self, metric: str, where: dict[str, str] | None = None) -> Bucket | None:
        """One bucket of the whole run."""
        buckets = list(self.merged(metric, where).values())
        if not buckets:
            return None
        return merge_buckets(buckets)


def merge_buckets(buckets: Iterable[Bucket]) -> Bucket:
    items = list(buckets)
    out = Bucket(items[0].type)
    for bucket in items:
        out.merge(bucket)
    return out


def merge_slots(series: Iterable[dict[int, Bucket]]) -> dict[int, Bucket]:
    out: dict[int, Bucket] = {}
    for slots in series:
        for start, bucket in slots.items():
            if start not in out:
                out[start] = Bucket(bucket.type)
            out[start].merge(bucket)
    return out
