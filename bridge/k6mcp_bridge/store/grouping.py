"""The read API's series merged into groups by any function of their tags (``Store.groups``).

A trend's rows are merged with :class:`~.codec.Rows` (sketch bins as integer lanes); a
counter's and a rate's need no sketch, so SQLite sums them per series (one row per series
instead of one per bucket), which is what keeps ``top_errors`` fast on a long run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..aggregate.buckets import Bucket
from .codec import Rows
from .results import RunSummary, rfc3339

if TYPE_CHECKING:
    from .query import Store

K = TypeVar("K", bound=Hashable)


@dataclass
class Group:
    """Series merged into one :class:`Bucket`; ``first``/``last``: the start of its first and
    the end of its last bucket with a sample, ``first_nonzero``/``last_nonzero`` the same for
    a rate's non-zero samples (bucket precision: 1 s, wider in long runs)."""

    bucket: Bucket
    first: float | None = None
    last: float | None = None
    first_nonzero: float | None = None
    last_nonzero: float | None = None

    def seen(self, start: float, end: float, nonzero: bool) -> None:
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)
        if nonzero:
            low, high = self.first_nonzero, self.last_nonzero
            self.first_nonzero = start if low is None else min(low, start)
            self.last_nonzero = end if high is None else max(high, end)


def grouped(
    store: Store,
    metric: str,
    key: Callable[[dict[str, str]], K | None],
    run: str,
    window: str | float | None,
    since: str | None,
    until: str | None,
) -> tuple[RunSummary, dict[str, str | None], dict[K, Group]]:
    """:meth:`Store.groups`."""
    info = store.run(run)
    kind = store._kind(info.id, metric)
    rows = store._rows(
        "SELECT id, tags FROM series WHERE run_id = ? AND metric = ?", [info.id, metric]
    )
    keys = {}
    for series_id, text in rows:
        group_key = key(json.loads(text))
        if group_key is not None:
            keys[series_id] = group_key
    first, last = store._span(info.id)
    lo, hi = store._window(first, last, window, since, until)
    found: dict[K, Group] = {}
    if kind in ("counter", "rate"):
        for series_id, count, total, low, high, nonzero, begin, end, nz_begin, nz_end in _sums(
            store, list(keys), lo, hi
        ):
            group = found.setdefault(keys[series_id], Group(Bucket(kind)))
            bucket = group.bucket
            bucket.count += count
            bucket.sum += total
            bucket.min, bucket.max = min(bucket.min, low), max(bucket.max, high)
            bucket.nonzero += nonzero
            group.seen(begin, end, False)
            if nz_begin is not None:
                group.seen(nz_begin, nz_end, True)
    else:
        merged: dict[K, Rows] = {}
        for series_id, start, width, row in store._buckets(list(keys), lo, hi):
            group_key = keys[series_id]
            if group_key not in found:
                found[group_key], merged[group_key] = Group(Bucket(kind)), Rows(kind)
            merged[group_key].add(row)
            found[group_key].seen(start, start + width, False)
        for group_key, parts in merged.items():
            found[group_key].bucket = parts.done()
    begin = lo if first is None else max(lo, first)
    stop = hi if last is None else min(hi, last)
    return info, {"start": rfc3339(begin), "end": rfc3339(stop)}, found


def _sums(store: Store, ids: list[int], lo: float, hi: float) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for chunk in range(0, len(ids), 500):
        part = ids[chunk : chunk + 500]
        marks = ",".join("?" * len(part))
        found += store._rows(
            "SELECT series_id, SUM(count), SUM(sum), MIN(min), MAX(max), SUM(nonzero), "
            "MIN(start), MAX(start + width), MIN(CASE WHEN nonzero > 0 THEN start END), "
            "MAX(CASE WHEN nonzero > 0 THEN start + width END) FROM buckets "
            f"WHERE series_id IN ({marks}) AND start >= ? AND start < ? AND count > 0 "
            "GROUP BY series_id",
            [*part, lo, hi],
        )
    return found
