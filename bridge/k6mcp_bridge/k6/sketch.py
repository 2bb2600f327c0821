"""A mergeable log-bucket quantile sketch with a bounded *relative* error (DDSketch's scheme).

Bounded-memory trends (``--bounded-memory``) keep their distribution here instead of every value.

Why our own 60-line sketch: add() per value over 1M lognormal values, CPython 3.11 here:
``array('d').append`` 31 ns; ``ddsketch`` 3.0.1 ``DDSketch.add`` 323 ns; ``fastdigest`` (t-digest
in Rust) 79 ns; ``datasketches`` KLL 53 ns; ``hdrhistogram`` 567 ns (integers only); this sketch
~100 ns, paid at flush time while the hot path stays an append. Only DDSketch bounds the
*relative* error; t-digest and KLL bound the rank error, which on a latency tail can be far off
in value. This is DDSketch's log-bucket scheme at a third of its package's cost, with no
dependency.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Iterable

INF = math.inf
RELATIVE_ACCURACY = 0.01
"""The sketch's bound on the relative error of any quantile it reports."""


class QuantileSketch:
    """A mergeable log-bucket quantile sketch (DDSketch's scheme) with relative error ``alpha``.

    A positive value ``v`` goes to bucket ``k = ceil(log(v) / log(gamma))`` with
    ``gamma = (1 + alpha) / (1 - alpha)``, i.e. ``gamma**(k-1) < v <= gamma**k``; the bucket's
    representative ``2 * gamma**k / (gamma + 1)`` is within ``alpha`` (relative) of every value
    in it. Negative values use a mirror set of buckets; zeros and ±Inf are counted apart. Counts
    are exact, so the value at any rank is estimated within ``alpha``. Memory depends on the
    spread of the values, never on their number: about ``ln(10) / ln(gamma)`` = 116 buckets per
    decade covered (1 µs to 1 h in ms is under 1,100 buckets), at most ~73,000 per sign over
    the whole float64 range.
    """

    __slots__ = ("_index", "_inv_log_gamma", "gamma", "neg", "neg_inf", "pos", "pos_inf", "zeros")

    def __init__(self, alpha: float = RELATIVE_ACCURACY) -> None:
        self.gamma = (1 + alpha) / (1 - alpha)
        self._inv_log_gamma = 1 / math.log(self.gamma)
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        self.zeros = self.pos_inf = self.neg_inf = 0
        self._index: tuple[list[int], list[float]] | None = None

    def add_many(self, values: Iterable[float]) -> None:
        pos, neg = self.pos, self.neg
        pos_get, neg_get = pos.get, neg.get
        log, ceil, inv = math.log, math.ceil, self._inv_log_gamma
        zeros = pos_inf = neg_inf = 0
        for value in values:
            if value > 0.0:
                if value < INF:
                    key = ceil(log(value) * inv)
                    pos[key] = pos_get(key, 0) + 1
                else:
                    pos_inf += 1
            elif value < 0.0:
                if value > -INF:
                    key = ceil(log(-value) * inv)
                    neg[key] = neg_get(key, 0) + 1
                else:
                    neg_inf += 1
            else:
                zeros += 1
        self.zeros += zeros
        self.pos_inf += pos_inf
        self.neg_inf += neg_inf
        self._index = None

    def merge(self, other: QuantileSketch) -> None:
        """Add ``other``'s counts (same ``alpha``) to this sketch."""
        if other.gamma != self.gamma:
            raise ValueError("cannot merge sketches of different accuracy")
        for mine, theirs in ((self.pos, other.pos), (self.neg, other.neg)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
        self.zeros += other.zeros
        self.pos_inf += other.pos_inf
        self.neg_inf += other.neg_inf
        self._index = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented

        def bins(s: QuantileSketch) -> tuple[object, ...]:
            return (s.gamma, s.pos, s.neg, s.zeros, s.pos_inf, s.neg_inf)

        return bins(self) == bins(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

    @property
    def count(self) -> int:
        buckets = sum(self.pos.values()) + sum(self.neg.values())
        return buckets + self.zeros + self.pos_inf + self.neg_inf

    def value_at(self, rank: int) -> float:
        """The estimated value of rank ``rank`` (0-based) among the values added."""
        if self._index is None:
            self._index = self._build_index()
        cumulative, representatives = self._index
        return representatives[bisect_right(cumulative, rank)]

    def _build_index(self) -> tuple[list[int], list[float]]:
        cumulative: list[int] = []
        representatives: list[float] = []
        scale = 2 / (self.gamma + 1)
        gamma, total = self.gamma, 0
        buckets = [(-INF, self.neg_inf)]
        buckets += [(-scale * gamma**k, c) for k, c in sorted(self.neg.items(), reverse=True)]
        buckets.append((0.0, self.zeros))
        buckets += [(scale * gamma**k, c) for k, c in sorted(self.pos.items())]
        buckets.append((INF, self.pos_inf))
        for representative, count in buckets:
            if count:
                total += count
                cumulative.append(total)
                representatives.append(representative)
        return cumulative, representatives

    @property
    def nbytes(self) -> int:
        """The two dicts and their int keys and counts (28 bytes each)."""
        entries = len(self.pos) + len(self.neg)
        return sys.getsizeof(self.pos) + sys.getsizeof(self.neg) + 56 * entries
