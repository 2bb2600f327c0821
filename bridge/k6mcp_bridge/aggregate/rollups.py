"""Rollups: every series (a metric and one tag set) in time buckets, closed as ``window``s.

A point is, mostly, two identity checks (the same time and the same tags dict as the point
before: k6 writes a request's samples together), one dict lookup by metric name and one C
``array.append`` (a gauge's also notes the time); the numbers of a bucket are computed once,
when it closes (:class:`~.buckets.Bucket`). A bucket ``[start, start + width)`` closes once the
latest sample time is ``GRACE_S`` past its end (k6 stamps an HTTP request with its start time and
writes it when it ends, so samples arrive a little out of order); a sample for a bucket already
closed opens it again, and it is sent once more with ``late`` set, holding only those samples.
At the end of the stream every bucket closes (``final``).

Widths climb :data:`LADDER` (each divides the next, starts are multiples of the width since the
epoch, so buckets of one width tile those of the next): when the run has lasted more than
``MAX_BUCKETS`` widths, later buckets take the next width, starting at the first boundary of
the new width after the last bucket opened.

Cardinality: at most ``max_series`` tag sets per metric. Further ones fold into one series whose
tag that has the most values (usually ``url`` without a ``name`` tag) reads ``(other)``, with a
single warning per metric.
"""

from __future__ import annotations

import logging
import math
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..messages import MetricType, Tags, Window, WindowMessage
from ..samples import Decoded, PointRecord
from .buckets import Bucket

log = logging.getLogger("k6mcp_bridge")

LADDER = (1, 2, 10, 30, 60, 300, 600, 1800, 3600)
"""Bucket widths in seconds; each divides the next."""
MAX_BUCKETS = 1200
"""A run moves to the next width once it spans more than this many buckets."""
GRACE_S = 2.0
"""Seconds of stream time a bucket waits past its end for late samples."""
DEFAULT_MAX_SERIES = 1000
"""Tag sets kept per metric before the rest fold into ``(other)``."""
OTHER = "(other)"

TagPairs = tuple[tuple[str, str], ...]
Key = tuple[str, TagPairs]
"""A series: the metric's name and its tags as sorted ``(name, value)`` pairs."""
RawKey = tuple[str, int]
"""A metric's name and the number of a tag set (see :meth:`Rollups._tag_set`)."""
Add = Callable[[float], None]
SAME_TAGS = 4096
"""Tag dicts remembered by identity."""


class _Timed(array):  # type: ignore[type-arg]
    """A gauge's values, with the time of the last one."""

    time: datetime | None = None


@dataclass(eq=False)
class _Slot:
    start: int
    width: int
    late: bool
    lo: datetime
    hi: datetime
    """The span as datetimes in the zone of the record that opened it: comparing datetimes of
    one tzinfo object is ~20 ns, of two (``utcoffset`` calls) ~700 ns."""
    buffers: dict[RawKey, array[float]] = field(default_factory=dict)
    """(metric, tag set number) to the values, in stream order."""
    adders: dict[int, dict[str, Add]] = field(default_factory=dict)
    """Tag set number → metric → the ``append`` of its buffer."""


@dataclass
class Closed:
    """A closed bucket: its span and every series' numbers."""

    start: int
    width: int
    late: bool
    final: bool
    buckets: dict[Key, Bucket]

    @property
    def end(self) -> int:
        return self.start + self.width


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


class Rollups:
    """Buckets per series for one stream; :meth:`add` a batch, then :meth:`close`."""

    def __init__(
        self, type_of: Callable[[str], MetricType | None], max_series: int = DEFAULT_MAX_SERIES
    ) -> None:
        """``type_of`` gives a metric's type (``None``: unknown, its points are skipped)."""
        self.max_series = max_series
        self._type_of = type_of
        self._same: dict[int, tuple[Tags, int]] = {}
        """``id(tags)`` → (that dict, its tag set's number)."""
        self._numbers: dict[TagPairs, int] = {}
        """A tag set (sorted pairs) → its number; 0 is no tags."""
        self._pairs: dict[int, TagPairs] = {0: ()}
        self._canon: dict[RawKey, Key] = {}
        """(metric, tag set number) → the series it counts in (or the metric's ``(other)``)."""
        self.tags: dict[Key, Tags] = {}
        """Every series' tags."""
        self.types: dict[str, MetricType] = {}
        self._count: dict[str, int] = {}
        self._other: dict[str, Key] = {}
        self._open: dict[int, _Slot] = {}
        self._clock: list[datetime | None] = [None]
        """The time of the record being added (what a gauge's adder notes)."""
        self._slot: _Slot | None = None
        self._sent_upto = -math.inf
        self._frontier = -math.inf
        self.first_start: int | None = None
        self._starts: list[float] = [-math.inf]
        self._widths: list[int] = [LADDER[0]]

    @property
    def width(self) -> int:
        """The width of the buckets opened from now on."""
        return self._widths[-1]

    # --- the hot path ------------------------------------------------------------------------

    def add(self, records: Sequence[Decoded]) -> None:
        slot = self._slot
        if slot is None:
            lo = hi = datetime.max.replace(tzinfo=timezone.utc)
            adders: dict[int, dict[str, Add]] = {}
        else:
            lo, hi, adders = slot.lo, slot.hi, slot.adders
        same, clock = self._same, self._clock
        last_time: datetime | None = None
        last_tags: Tags | bool | None = False
        number = 0
        current: dict[str, Add] = {}
        for record in records:
            if type(record) is not PointRecord:
                continue
            time = record.time
            if time is not last_time:  # k6 stamps the samples of a request with one time
                last_time = clock[0] = time
                if not lo <= time < hi:  # fast: the bounds have the records' own tzinfo
                    slot = self._slot_at(time)
                    lo, hi, adders = slot.lo, slot.hi, slot.adders
                    last_tags = False
            tags = record.tags
            if tags is not last_tags:  # ... and with one tag set
                last_tags = tags
                if tags is None:
                    number = 0
                else:
                    known = same.get(id(tags))
                    if known is None or known[0] is not tags:
                        known = self._tag_set(tags)
                    number = known[1]
                current = adders.get(number) or adders.setdefault(number, {})
            add = current.get(record.metric)
            if add is None:
                add = self._adder(slot, current, (record.metric, number))  # type: ignore[arg-type]
                if add is None:
                    continue
            add(record.value)
        self._slot = slot

    def _tag_set(self, tags: Tags) -> tuple[Tags, int]:
        """The number of the tag set ``tags`` holds, remembered by the dict's identity (the JSON
        decoder hands out one dict per distinct tag text, so most points hit; the memory holds
        the dict, so its id cannot be reused while remembered)."""
        pairs = tuple(sorted(tags.items()))
        number = self._numbers.get(pairs)
        if number is None:
            number = self._numbers[pairs] = len(self._numbers) + 1
            self._pairs[number] = pairs
        if len(self._same) >= SAME_TAGS:
            self._same.clear()
        known = self._same[id(tags)] = (tags, number)
        return known

    def _slot_at(self, time: datetime) -> _Slot:
        seconds = time.timestamp()
        width = self._widths[bisect_right(self._starts, seconds) - 1]
        start = math.floor(seconds / width) * width
        slot = self._open.get(start)
        if slot is None:
            late = start + width <= self._sent_upto
            zone = time.tzinfo
            lo = datetime.fromtimestamp(start, zone)
            slot = _Slot(start, width, late, lo, datetime.fromtimestamp(start + width, zone))
            self._open[start] = slot
            self._frontier = max(self._frontier, start + width)
            if self.first_start is None or start < self.first_start:
                self.first_start = start
        return slot

    def _adder(self, slot: _Slot, current: dict[str, Add], key: RawKey) -> Add | None:
        """A new buffer for ``key`` in ``slot`` and what appends to it (a gauge's also notes the
        time); ``None`` for a metric of unknown type."""
        metric = key[0]
        kind = self.types.get(metric) or self._type_of(metric)
        if kind is None:
            return None
        self.types[metric] = kind
        if key not in self._canon:
            self._canon[key] = self._series(key)
        add: Add
        if kind == "gauge":
            timed = _Timed("d")
            slot.buffers[key] = timed
            clock = self._clock

            def add_timed(value: float) -> None:
                timed.append(value)
                timed.time = clock[0]

            add = add_timed
        else:
            buffer = slot.buffers[key] = array("d")
            add = buffer.append
        current[key[0]] = add
        return add

    def _series(self, key: RawKey) -> Key:
        metric = key[0]
        canonical = (metric, self._pairs[key[1]])
        if canonical in self.tags:
            return canonical
        count = self._count.get(metric, 0)
        if count >= self.max_series:
            return self._overflow(metric)
        self._count[metric] = count + 1
        self.tags[canonical] = dict(canonical[1])
        return canonical

    def _overflow(self, metric: str) -> Key:
        key = self._other.get(metric)
        if key is not None:
            return key
        distinct: dict[str, set[str]] = {}
        for (name, pairs), _ in self.tags.items():
            if name == metric:
                for tag, value in pairs:
                    distinct.setdefault(tag, set()).add(value)
        tag = max(distinct, key=lambda t: len(distinct[t]), default=OTHER)
        key = self._other[metric] = (metric, ((tag, OTHER),))
        self.tags[key] = {tag: OTHER}
        log.warning(
            "%s has more than %d tag sets (max_series): further ones are folded into one "
            "series with %s=%s; its tag %r has %d values (a `name` tag on requests whose URL "
            "varies keeps them apart)",
            metric,
            self.max_series,
            tag,
            OTHER,
            tag,
            len(distinct.get(tag, ())),
        )
        return key

    # --- closing -----------------------------------------------------------------------------

    def close(self, latest: datetime | None, *, final: bool = False) -> list[Closed]:
        """Close the buckets ``GRACE_S`` behind ``latest`` (every bucket when ``final``), in
        time order; then climb the ladder if the run has grown long."""
        if latest is None and not final:
            return []
        horizon = math.inf if final else latest.timestamp() - GRACE_S  # type: ignore[union-attr]
        slots = sorted(self._open.values(), key=lambda slot: slot.start)
        done = [slot for slot in slots if slot.start + slot.width <= horizon]
        closed = []
        for slot in done:
            del self._open[slot.start]
            if slot is self._slot:
                self._slot = None
            buckets = self._buckets(slot)
            if buckets:
                closed.append(Closed(slot.start, slot.width, slot.late, final, buckets))
            self._sent_upto = max(self._sent_upto, slot.start + slot.width)
        if latest is not None and self.first_start is not None:
            self._climb(latest.timestamp() - self.first_start)
        return closed

    def pending(self) -> list[dict[Key, Bucket]]:
        """The open buckets' numbers, as a close would give them, leaving them open."""
        return [self._buckets(slot) for slot in self._open.values()]

    def _buckets(self, slot: _Slot) -> dict[Key, Bucket]:
        buckets: dict[Key, Bucket] = {}
        for raw, values in slot.buffers.items():
            key = self._canon[raw]
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = Bucket(self.types[key[0]])
            last_time = values.time if type(values) is _Timed else None
            bucket.add_values(values, last_time)
        return buckets

    def _climb(self, span_s: float) -> None:
        width = self.width
        if span_s <= MAX_BUCKETS * width or width == LADDER[-1]:
            return
        wider = LADDER[LADDER.index(width) + 1]
        self._starts.append(math.ceil(self._frontier / wider) * wider)
        self._widths.append(wider)

    def message(self, closed: Closed) -> WindowMessage:
        """The ``window`` message of a closed bucket."""
        return WindowMessage(
            data=Window(
                start=utc(closed.start),
                end=utc(closed.end),
                width_s=closed.width,
                late=closed.late,
                final=closed.final,
                series=[
                    bucket.to_model(key[0], self.tags[key])
                    for key, bucket in closed.buckets.items()
                ],
            )
        )
