"""k6's sink arithmetic, exact and bounded, against k6's own formulas written out plainly."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable

import pytest

from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.k6.sinks import (
    CounterSink,
    GaugeSink,
    RateSink,
    TrendSink,
    parse_trend_stats,
)
from k6mcp_bridge.k6.sketch import QuantileSketch
from k6mcp_bridge.k6.sorting import sorted_array


def k6_percentile(values: list[float], p: float) -> float:
    """k6 v1.1.0's TrendSink.P, transcribed from metrics/sink.go."""
    n = len(values)
    if n == 0:
        return 0.0
    if n == 1:
        return values[0]
    ordered = sorted(values)
    i = p * (n - 1.0)
    j, k = ordered[math.floor(i)], ordered[math.ceil(i)]
    return j + (k - j) * (i - math.floor(i))


def same(a: float, b: float) -> bool:
    """Equal as k6's numbers are: bit for bit, NaN equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


# --- counter, gauge, rate ----------------------------------------------------------------------


def test_counter_sums_in_stream_order_not_exactly() -> None:
    sink = CounterSink()
    sink.extend([1e16, 1.0, -1e16, 2.5])  # in order: (1e16 + 1) == 1e16, so the 1 is lost
    assert sink.values(4.0) == {"count": 2.5, "rate": 0.625}
    assert math.fsum([1e16, 1.0, -1e16, 2.5]) == 3.5  # an exact sum would differ from k6


def test_counter_rate_is_zero_for_a_zero_duration_and_zero_values_still_count() -> None:
    sink = CounterSink()
    for value in (0.0, 0.0):
        sink.add(value)
    assert sink.values(0.0) == {"count": 0.0, "rate": 0.0}
    assert not sink.is_empty and sink.sample_count == 2


def test_gauge_keeps_the_last_value_in_stream_order() -> None:
    sink = GaugeSink()
    sink.extend([3.0, 9.0, 1.0])
    sink.flush()
    sink.extend([4.0, 2.0])
    assert sink.values() == {"value": 2.0, "min": 1.0, "max": 9.0}


def test_all_negative_gauge_true_max_and_k6_v1_1_0_max() -> None:
    true_max, k6_max = GaugeSink(), GaugeSink(k6_max=True)
    for sink in (true_max, k6_max):
        sink.extend([-5.0, -2.0])  # obs: k6 v1.1.0 reported {"value":-2,"min":-5,"max":0}
    assert true_max.values() == {"value": -2.0, "min": -5.0, "max": -2.0}
    assert k6_max.values() == {"value": -2.0, "min": -5.0, "max": 0.0}
    assert true_max.k6_max == 0.0


def test_empty_gauge_is_all_zeros() -> None:
    assert GaugeSink().values() == {"value": 0.0, "min": 0.0, "max": 0.0}


def test_rate_counts_any_non_zero_value_as_a_pass() -> None:
    sink = RateSink()
    sink.extend([1.0, 0.5, -1.0, 0.0, -0.0, math.inf])
    assert sink.values() == {"rate": 4 / 6, "passes": 4.0, "fails": 2.0}
    assert sink.threshold_value("rate", None, 1.0) == 4 / 6


def test_empty_rate_has_rate_zero_but_gives_thresholds_nothing() -> None:
    sink = RateSink()
    assert sink.values() == {"rate": 0.0, "passes": 0.0, "fails": 0.0}
    assert sink.threshold_value("rate", None, 1.0) is None


# --- exact trends --------------------------------------------------------------------------------

PERCENTILES = [0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0]


def test_trend_of_zero_and_one_value() -> None:
    sink = TrendSink()
    assert [sink.stat(name) for name in ("avg", "min", "med", "max", "count")] == [0.0] * 5
    assert sink.percentile(0.95) == 0.0
    sink.add(-7.25)
    assert all(sink.percentile(p) == -7.25 for p in PERCENTILES)
    assert sink.stat("avg") == -7.25 and sink.stat("count") == 1.0


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.lognormvariate(1, 1.5),
        lambda rng: float(rng.randint(-3, 3)),  # many ties, zeros and negatives
        lambda rng: rng.choice([math.inf, -math.inf, 0.0, rng.uniform(-1, 1)]),
    ],
    ids=["lognormal", "ties", "infinities"],
)
def test_trend_percentiles_equal_k6s_formula_bit_for_bit_while_values_keep_coming(
    make: Callable[[random.Random], float],
) -> None:
    rng = random.Random(7)
    sink, seen = TrendSink(), []
    # big first batch (a full sort), then small tails (merged into the sorted prefix)
    for size in (3000, 10, 1, 250, 40, 1500, 5):
        batch = [make(rng) for _ in range(size)]
        seen += batch
        sink.extend(batch)
        for p in PERCENTILES:
            assert same(sink.percentile(p), k6_percentile(seen, p)), (size, p)
        assert sink.buffer.tolist() == sorted(seen)
    total = 0.0
    for value in seen:
        total += value
    assert same(sink.stat("avg"), total / len(seen))
    assert (sink.stat("min"), sink.stat("max")) == (min(seen), max(seen))


def test_trend_of_plus_and_minus_infinity_is_nan_where_k6_computes_inf_minus_inf() -> None:
    """k6's export writes null for all of these (obs k6-samples/summary-export-Inf-null.json)."""
    sink = TrendSink()
    sink.extend([math.inf, -math.inf])
    assert sink.stat("min") == -math.inf and sink.stat("max") == math.inf
    assert all(math.isnan(sink.stat(name)) for name in ("avg", "med"))
    assert math.isnan(sink.percentile(0.9)) and math.isnan(sink.percentile(1.0))


@pytest.mark.parametrize("run", [3, 64, 1 << 16])
@pytest.mark.parametrize(
    "make",
    [
        lambda rng, i: rng.random(),
        lambda rng, i: float(i),  # runs that do not overlap: one run gives each block
        lambda rng, i: rng.choice([0.0, -0.0, 1.0]),  # ties across runs and blocks
        lambda rng, i: rng.choice([math.inf, -math.inf, rng.uniform(-1, 1)]),
    ],
    ids=["random", "ascending", "ties", "infinities"],
)
def test_sorting_in_runs_merges_as_a_stable_sort(
    make: Callable[[random.Random, int], float], run: int
) -> None:
    rng = random.Random(3)
    values = [make(rng, i) for i in range(5000)]
    ordered = sorted_array(array("d", values), False, run)
    assert ordered.tobytes() == array("d", sorted(values)).tobytes()  # -0.0 and 0.0 in order


def test_trend_sorts_nan_first_as_go_does() -> None:
    sink = TrendSink(parse_trend_stats("min,med,p(90)"))
    sink.extend([3.0, math.nan, 1.0, 2.0, math.nan])
    assert sink.percentile(0.5) == 1.0  # Go: NaN NaN 1 2 3
    assert sink.percentile(0.75) == 2.0
    sink.extend([0.5])
    assert sink.percentile(0.5) == 0.5 + (1.0 - 0.5) * 0.5  # NaN NaN 0.5 1 2 3


def test_trend_values_follow_the_configured_stats_and_keep_their_spelling() -> None:
    sink = TrendSink(parse_trend_stats("count,p(99.9),p(95.0),med,max"))
    sink.extend(float(v) for v in range(1, 1001))
    assert sink.values() == {
        "count": 1000.0,
        # k6 computes P(99.9 / 100) = P(0.9990000000000001): 999.0010000000001, not 999.001
        "p(99.9)": k6_percentile([float(v) for v in range(1, 1001)], 99.9 / 100),
        "p(95.0)": 950.05,
        "med": 500.5,
        "max": 1000.0,
    }


def test_exact_trend_stores_about_8_bytes_per_value() -> None:
    sink = TrendSink()
    sink.extend(random.Random(1).random() for _ in range(200_000))
    sink.percentile(0.5)  # the array sorted into replaces the one sorted: no second kept
    assert sink.buffer.itemsize == 8
    assert sink.nbytes / 200_000 < 8.6  # 8 bytes plus the array's growth slack


def test_trend_stats_syntax_is_k6s() -> None:
    stats = parse_trend_stats("avg,min,med,max,count,p(0),p(100),p(99.99),p(1e1)")
    # N / 100 in floating point, as k6 divides: 99.99 / 100 is 0.9998999999999999
    assert [s.percentile for s in stats][4:] == [None, 0.0, 1.0, 99.99 / 100, 0.1]
    assert stats[7].percentile != 0.9999
    assert parse_trend_stats(["med"])[0].percentile == 0.5


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        ("avg,p95", "invalid trend stat 'p95', unknown format"),
        ("avg, min", "invalid trend stat ' min', unknown format"),  # k6 does not trim either
        ("mean", "invalid trend stat 'mean'"),
        ("p(101)", "invalid percentile trend stat value 'p(101)', provide a number between 0"),
        ("p(-1)", "invalid percentile trend stat value 'p(-1)'"),
        ("p(abc)", "invalid percentile trend stat value 'p(abc)'"),
        ("p(NaN)", "invalid percentile trend stat value 'p(NaN)'"),
    ],
)
def test_bad_trend_stats_are_refused_with_k6s_words(stats: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_trend_stats(stats)


# --- bounded trends ------------------------------------------------------------------------------

DISTRIBUTIONS: dict[str, Callable[[random.Random], float]] = {
    "uniform": lambda rng: rng.uniform(0.0, 1000.0),
    "lognormal": lambda rng: rng.lognormvariate(3.0, 1.2),
    "with negatives and zeros": lambda rng: (
        0.0 if rng.random() < 0.05 else rng.choice([-1, 1, 1]) * rng.lognormvariate(0, 2)
    ),
}
BOUNDED_STATS = parse_trend_stats("avg,min,med,max,count,p(1),p(10),p(25),p(90),p(95),p(99.9)")


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_bounded_trend_is_within_one_percent_of_exact(name: str) -> None:
    rng = random.Random(11)
    values = [DISTRIBUTIONS[name](rng) for _ in range(100_000)]
    exact, bounded = TrendSink(BOUNDED_STATS), TrendSink(BOUNDED_STATS, bounded=True)
    for start in range(0, len(values), 4096):  # as the aggregator feeds and flushes
        exact.extend(values[start : start + 4096])
        bounded.extend(values[start : start + 4096])
        bounded.flush()
    want, got = exact.values(), bounded.values()
    for stat in ("avg", "min", "max", "count"):
        assert got[stat] == want[stat]  # exact in both modes
    for stat, value in want.items():
        assert got[stat] == pytest.approx(value, rel=0.01, abs=0.0), stat
    assert not bounded.buffer  # everything went into the sketch


def test_bounded_trend_memory_stays_flat_as_values_grow_tenfold() -> None:
    rng = random.Random(5)
    sink = TrendSink(bounded=True)
    sizes = {}
    for target in (100_000, 1_000_000):
        while sink.samples < target:
            sink.extend(rng.lognormvariate(3.0, 1.2) for _ in range(4096))
            sink.flush()
        sizes[target] = sink.nbytes
    assert sizes[1_000_000] < 1.3 * sizes[100_000]
    assert sizes[1_000_000] < 100_000  # an exact trend would hold 8 MB


def test_sketch_merges_and_counts_exactly() -> None:
    left, right, whole = QuantileSketch(), QuantileSketch(), QuantileSketch()
    rng = random.Random(3)
    a = [rng.uniform(-50, 50) for _ in range(5000)] + [0.0, math.inf, -math.inf]
    b = [rng.lognormvariate(0, 3) for _ in range(7000)]
    left.add_many(a)
    right.add_many(b)
    whole.add_many(a + b)
    left.merge(right)
    assert left.count == whole.count == len(a) + len(b)
    ordered = sorted(a + b)
    for rank in (0, 1, 100, 6000, len(ordered) - 2, len(ordered) - 1):
        estimate = left.value_at(rank)
        assert estimate == whole.value_at(rank)
        assert estimate == pytest.approx(ordered[rank], rel=0.01, abs=0.0)
