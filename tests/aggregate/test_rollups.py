"""Rollups: buckets per series, closing, late samples, the width ladder and the cardinality cap;
the mergeable Bucket and its stats; windowed thresholds."""

from __future__ import annotations

import logging
import math
import random
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k6mcp_bridge.aggregate.buckets import Bucket, check_stat
from k6mcp_bridge.aggregate.rollups import GRACE_S, MAX_BUCKETS, OTHER, Closed, Rollups
from k6mcp_bridge.aggregate.stage import Aggregation, AggregationSettings
from k6mcp_bridge.aggregate.windowed import WindowedThresholds
from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.k6.sinks import TrendSink
from k6mcp_bridge.k6.thresholds import parse_cli_threshold
from k6mcp_bridge.messages import Metric, MetricMessage, MetricType, WindowMessage
from k6mcp_bridge.samples import PointRecord

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
TYPES: dict[str, MetricType] = {
    "reqs": "counter",
    "dur": "trend",
    "failed": "rate",
    "vus": "gauge",
}


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def point(metric: str, seconds: float, value: float = 1.0, **tags: str) -> PointRecord:
    return PointRecord(metric, value, tags or None, None, at(seconds))


def rollups(max_series: int = 1000) -> Rollups:
    return Rollups(TYPES.get, max_series)


def counts(closed: list[Closed]) -> dict[tuple[str, tuple[tuple[str, str], ...]], int]:
    total: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
    for bucket in closed:
        for key, numbers in bucket.buckets.items():
            total[key] = total.get(key, 0) + numbers.count
    return total


def test_points_land_in_their_second_and_close_after_the_grace() -> None:
    r = rollups()
    r.add([point("reqs", 0.2, name="a"), point("reqs", 0.9, name="b"), point("reqs", 1.5)])
    assert r.close(at(1.5)) == []  # [0, 1) waits GRACE_S past its end
    r.add([point("reqs", 1.0 + GRACE_S)])
    closed = r.close(at(1.0 + GRACE_S))
    assert [(c.start - T0.timestamp(), c.width, c.late) for c in closed] == [(0, 1, False)]
    assert counts(closed) == {("reqs", (("name", "a"),)): 1, ("reqs", (("name", "b"),)): 1}
    rest = r.close(at(3.0), final=True)
    assert [c.final for c in rest] == [True, True]
    assert sum(counts(rest).values()) == 2


def test_one_tag_set_in_any_order_is_one_series() -> None:
    r = rollups()
    first = PointRecord("reqs", 1.0, {"a": "1", "b": "2"}, None, at(0.1))
    second = PointRecord("reqs", 2.0, {"b": "2", "a": "1"}, None, at(0.2))
    r.add([first, second])
    (closed,) = r.close(None, final=True)
    (bucket,) = closed.buckets.values()
    assert (bucket.count, bucket.sum) == (2, 3.0)
    assert r.tags[("reqs", (("a", "1"), ("b", "2")))] == {"a": "1", "b": "2"}


def test_a_sample_for_a_closed_bucket_is_sent_again_as_late() -> None:
    r = rollups()
    r.add([point("dur", 0.5, 10.0), point("dur", 5.0, 1.0)])
    assert [c.late for c in r.close(at(5.0))] == [False]
    r.add([point("dur", 0.7, 30.0)])  # a request that started at 0.7 s and took 4.5 s
    late = r.close(at(5.1))
    assert [(c.late, c.start - T0.timestamp()) for c in late] == [(True, 0)]
    (bucket,) = late[0].buckets.values()
    assert (bucket.count, bucket.max) == (1, 30.0)  # only the late sample: merge it


def test_points_of_an_unknown_metric_are_skipped() -> None:
    r = rollups()
    r.add([point("nobody_defined_me", 0.1), point("reqs", 0.1)])
    (closed,) = r.close(None, final=True)
    assert list(closed.buckets) == [("reqs", ())]


def test_the_cap_folds_further_tag_sets_into_other_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rollups(max_series=3)
    r.add([point("reqs", 0.1, method="GET", url=f"http://127.0.0.1/item/{i}") for i in range(10)])
    r.add([point("reqs", 1.1, method="GET", url=f"http://127.0.0.1/item/{i}") for i in range(10)])
    closed = r.close(None, final=True)
    totals = counts(closed)
    other = ("reqs", (("url", OTHER),))
    assert totals[other] == 14
    assert len(totals) == 4
    assert sum(totals.values()) == 20
    warnings = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "reqs" in warnings[0].getMessage()
    assert "'url' has 3 values" in warnings[0].getMessage()


def test_a_long_run_climbs_the_ladder_without_overlap_and_keeps_every_count() -> None:
    r = rollups()
    closed: list[Closed] = []
    seconds = MAX_BUCKETS + 300
    for second in range(seconds):
        r.add([point("reqs", second + 0.5)])
        closed += r.close(at(second + 0.5))
    closed += r.close(at(seconds), final=True)
    spans = [(c.start, c.end, c.width) for c in closed]
    assert {width for _, _, width in spans} == {1, 2}
    assert all(start % width == 0 for start, _, width in spans)
    assert all(a_end <= b_start for (_, a_end, _), (b_start, _, _) in pairwise(spans))
    assert sum(counts(closed).values()) == seconds
    assert spans[-1][2] == 2
    assert len(spans) < seconds


def test_window_message_round_trips_every_number() -> None:
    r = rollups()
    r.add(
        [
            point("dur", 0.1, 12.5, name="a"),
            point("dur", 0.2, 0.0, name="a"),
            point("failed", 0.3, 0.0),
            point("failed", 0.4, 1.0),
            point("vus", 0.5, 3.0),
            point("vus", 0.6, 2.0),
        ]
    )
    (closed,) = r.close(None, final=True)
    message = r.message(closed)
    again = WindowMessage.model_validate_json(message.model_dump_json())
    assert again == message
    by_metric = {s.metric: s for s in again.data.series}
    assert by_metric["failed"].nonzero == 1
    assert (by_metric["vus"].last, by_metric["vus"].last_time) == (2.0, at(0.6))
    assert by_metric["dur"].sketch is not None
    assert by_metric["dur"].sketch.zeros == 1
    for series in again.data.series:
        key = (series.metric, tuple(series.tags.items()))
        assert Bucket.from_model(series) == closed.buckets[key]


# --- Bucket --------------------------------------------------------------------------------------

values_st = st.lists(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False), min_size=1
)


@settings(max_examples=60, deadline=None)
@given(values_st, st.integers(min_value=1, max_value=9))
def test_merged_buckets_equal_the_bucket_of_all_values(values: list[float], parts: int) -> None:
    whole = Bucket("trend")
    whole.add_values(values)
    merged = Bucket("trend")
    for index in range(parts):
        piece = Bucket("trend")
        piece.add_values(values[index::parts])
        merged.merge(piece)
    assert (merged.count, merged.min, merged.max) == (whole.count, whole.min, whole.max)
    assert merged.sum == pytest.approx(whole.sum, rel=1e-9, abs=1e-6)
    assert merged.sketch is not None and whole.sketch is not None
    assert (merged.sketch.pos, merged.sketch.neg, merged.sketch.zeros) == (
        whole.sketch.pos,
        whole.sketch.neg,
        whole.sketch.zeros,
    )


def test_bucket_percentiles_are_within_one_percent_of_k6s() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(3, 1) for _ in range(20_000)]
    bucket = Bucket("trend")
    for start in range(0, len(values), 1000):
        piece = Bucket("trend")
        piece.add_values(values[start : start + 1000])
        bucket.merge(piece)
    exact = TrendSink()
    exact.extend(values)
    for name, p in (("med", 0.5), ("p(90)", 0.9), ("p(95)", 0.95), ("p(99.9)", 0.999)):
        assert bucket.stat(name) == pytest.approx(exact.percentile(p), rel=0.01)
    assert bucket.stat("avg") == pytest.approx(exact.stat("avg"), rel=1e-12)
    assert (bucket.stat("count"), bucket.stat("max")) == (20_000.0, max(values))


def test_bucket_stats_follow_k6s_names_per_type() -> None:
    counter, rate, gauge = Bucket("counter"), Bucket("rate"), Bucket("gauge")
    counter.add_values([1.0, 2.0, 3.0])
    rate.add_values([1.0, 0.0, 0.5, 0.0])
    gauge.add_values([5.0, -2.0, 4.0], at(3))
    assert (counter.stat("count"), counter.stat("rate", 2.0)) == (6.0, 3.0)
    assert (rate.stat("rate"), rate.stat("passes"), rate.stat("fails")) == (0.5, 2.0, 2.0)
    assert (gauge.stat("value"), gauge.stat("min"), gauge.stat("max")) == (4.0, -2.0, 5.0)
    assert Bucket("trend").stat("avg") is None
    check_stat("p(99.9)", "trend", "dur")
    with pytest.raises(ConfigError, match=r"valid: count, rate"):
        check_stat("p(95)", "counter", "reqs")
    with pytest.raises(ConfigError, match="outside"):
        check_stat("p(101)", "trend", "dur")


# --- windowed thresholds ------------------------------------------------------------------------


def spiky_run(seconds: int = 10, spike_at: int = 4) -> list[PointRecord]:
    """A trend ``dur`` at 10 ms, 100 points a second, and 400 ms for 0.4 s (4% of the run)."""
    return [
        point("dur", second + i / 100, 400.0 if second == spike_at and i < 40 else 10.0, name="x")
        for second in range(seconds)
        for i in range(100)
    ]


def judge(expression: str, records: list[PointRecord]) -> WindowedThresholds:
    windowed = WindowedThresholds([parse_cli_threshold(expression)])
    windowed.first_time = records[0].time.timestamp()
    r = rollups()
    for start in range(0, len(records), 50):
        r.add(records[start : start + 50])
        for closed in r.close(records[min(start + 49, len(records) - 1)].time):
            windowed.on_close(closed)
    for closed in r.close(records[-1].time, final=True):
        windowed.on_close(closed)
    return windowed


def test_a_spike_fails_a_one_second_window_and_names_it() -> None:
    (result,) = judge("dur{name:x}:p(95)<30 over 1s", spiky_run()).results(final=True)
    assert not result.ok
    assert result.window is not None
    assert result.window.first_failure is not None
    assert result.window.first_failure.start == at(4)
    assert result.window.first_failure.end == at(5)
    assert result.window.first_failure.observed == pytest.approx(400.0, rel=0.01)
    assert result.window.worst == result.window.first_failure
    assert result.window.windows >= 9
    assert result.metric == "dur{name:x}"


def test_the_same_expression_over_the_whole_run_passes() -> None:
    (result,) = judge("dur:p(95)<30 over 10m", spiky_run()).results(final=True)
    assert result.ok  # shorter than the window: judged on the whole run, where p95 is 10 ms
    assert result.window is not None
    assert result.window.windows == 0
    assert result.observed == pytest.approx(10.0, rel=0.01)


def test_a_counter_rate_over_a_window_divides_by_its_span() -> None:
    records = [point("reqs", s + i / 10) for s in range(6) for i in range(10)]
    (result,) = judge("reqs:rate>=10 over 2s", records).results(final=True)
    assert result.ok
    assert result.observed == pytest.approx(10.0)
    (low,) = judge("reqs:rate>10.5 over 2s", records).results(final=True)
    assert not low.ok


def test_windows_reach_plugins_only_when_wanted() -> None:
    definition = MetricMessage(
        data=Metric(name="reqs", type="counter", contains="default", thresholds=[])
    )
    batch = [definition, *(point("reqs", s + 0.5) for s in range(5))]
    quiet = Aggregation(AggregationSettings())
    assert quiet.rollups is None
    assert not [m for m in quiet.add(batch) + quiet.finish() if m.type == "window"]
    loud = Aggregation(AggregationSettings(windows=True))
    windows = [m for m in loud.add(batch) + loud.finish() if m.type == "window"]
    assert sum(s.count for w in windows for s in w.data.series) == 5
    assert [w.data.final for w in windows][-1] is True
    assert not math.isnan(windows[0].data.series[0].sum)
