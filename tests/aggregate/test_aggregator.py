"""The aggregator against k6's own numbers: real k6 v1.1.0 streams and their --summary-export.

k6's export writes a rate's ``rate`` as ``value``, and threshold booleans inverted (``true`` =
failed); ±Inf and NaN become ``null`` (JSON.stringify).
"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import K6_RUN, K6_SAMPLES, SAMPLES
from k6_summaries import T0, decode, export_duration, export_of, inspected
from k6mcp_bridge.aggregate.aggregator import Aggregator, ThresholdResult
from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.k6.thresholds import ThresholdError, parse_threshold
from k6mcp_bridge.messages import Metric, MetricMessage, Submetric
from k6mcp_bridge.samples import PointRecord


def assert_same_as_k6(
    aggregator: Aggregator, export: dict[str, dict[str, Any]], duration: float
) -> int:
    """Every number and verdict of k6's export, bit for bit; returns how many were compared."""
    assert {info.name for info in aggregator.metrics()} == set(export)
    verdicts = {(r.metric, r.threshold.source): r for r in aggregator.evaluate_thresholds(duration)}
    compared = 0
    for name, k6_values in export.items():
        mine = aggregator.values(name, duration)
        for key, k6_value in k6_values.items():
            if key == "thresholds":
                for source, failed in k6_value.items():
                    assert verdicts[(name, source)].ok is not failed, (name, source)
                    compared += 1
                continue
            ours = mine["rate" if key == "value" and "passes" in k6_values else key]
            assert ours == float(k6_value), (name, key, ours, k6_value)
            compared += 1
    assert len(verdicts) == sum(len(v.get("thresholds", {})) for v in export.values())
    return compared


@pytest.mark.parametrize(
    ("stream", "export", "script"),
    [
        (
            K6_SAMPLES / "json-full-2vus.jsonl",
            K6_SAMPLES / "summary-export-full.json",
            K6_SAMPLES / "scripts" / "full.js",
        ),
        (K6_RUN, SAMPLES / "k6-summary-export.json", SAMPLES / "script.js"),
    ],
    ids=["shared-full-2vus", "sample-outputs-run"],
)
def test_every_metric_submetric_and_verdict_equals_k6s_export(
    stream: Path, export: Path, script: Path
) -> None:
    aggregator = inspected(script)
    aggregator.add(decode(stream))
    k6 = export_of(export)
    assert assert_same_as_k6(aggregator, k6, export_duration(k6)) > 100
    assert not aggregator.problems and not aggregator.untyped_points


def test_same_numbers_whatever_the_batch_size() -> None:
    messages = decode(K6_SAMPLES / "json-full-2vus.jsonl")
    k6 = export_of(K6_SAMPLES / "summary-export-full.json")
    one = Aggregator()
    for message in messages:
        one.add([message])
    whole = Aggregator()
    whole.add(messages)
    for name in k6:
        assert one.values(name, 4.0) == whole.values(name, 4.0)


def test_negative_gauge_and_exponent_floats_with_k6_v1_1_0_gauge_max() -> None:
    messages = decode(K6_SAMPLES / "json-TZ-Asia-Kolkata.jsonl")  # the same run as:
    k6 = export_of(K6_SAMPLES / "summary-export-negative-gauge.json")
    k6_like = Aggregator(k6_gauge_max=True)
    k6_like.add(messages)
    assert_same_as_k6(k6_like, k6, export_duration(k6))
    assert k6["neg_gauge"] == {"value": -2, "min": -5, "max": 0}
    true_max = Aggregator()
    true_max.add(messages)
    assert true_max.values("neg_gauge", 1.0) == {"value": -2.0, "min": -5.0, "max": -2.0}


def test_infinite_values_where_k6_exports_null() -> None:
    aggregator = Aggregator()
    aggregator.add(decode(K6_SAMPLES / "json-plus-minus-Inf-INVALID.jsonl"))
    k6 = export_of(K6_SAMPLES / "summary-export-Inf-null.json")
    duration = export_duration(k6)
    for name, k6_values in k6.items():
        mine = aggregator.values(name, duration)
        for key, k6_value in k6_values.items():
            ours = mine["rate" if key == "value" else key] if "passes" in k6_values else mine[key]
            if k6_value is None:  # JSON.stringify(±Infinity or NaN)
                assert not math.isfinite(ours), (name, key)
            else:
                assert ours == k6_value, (name, key)
    inf_trend = aggregator.values("inf_trend", duration)
    assert (inf_trend["min"], inf_trend["max"]) == (-math.inf, math.inf)  # kept, not nulled
    assert all(math.isnan(inf_trend[key]) for key in ("avg", "med", "p(90)", "p(95)"))


def test_failing_thresholds_of_a_k6_exit_99_run() -> None:
    aggregator = inspected(K6_SAMPLES / "scripts" / "thr-fail.js")
    messages = decode(K6_SAMPLES / "json-threshold-fail-exit99.jsonl")
    aggregator.add(messages)
    results = {r.metric: r for r in aggregator.evaluate_thresholds(aggregator.sample_span_s)}
    # k6 printed: ✗ 'max<0.001' max=1.11ms and ✗ 'count>100' count=3
    durations = [
        m.value for m in messages if isinstance(m, PointRecord) and m.metric == "http_req_duration"
    ]
    assert not results["http_req_duration"].ok
    assert results["http_req_duration"].observed == max(durations)
    assert round(max(durations), 2) == 1.11
    assert (results["http_reqs{status:200}"].ok, results["http_reqs{status:200}"].observed) == (
        False,
        3.0,
    )


def test_abort_on_fail_after_delay_abort_eval_on_k6s_2_second_ticks() -> None:
    """thr-abort.js: max<0.001 with abortOnFail and delayAbortEval 3s; k6 aborted at ~4.0 s."""
    messages = decode(K6_SAMPLES / "json-threshold-abortOnFail.jsonl")
    points = [m for m in messages if isinstance(m, PointRecord)]
    start = min(p.time for p in points)
    aggregator, fed = Aggregator(), 0
    ticks: list[ThresholdResult] = []
    for tick in (2, 4):
        batch = [
            m
            for m in messages[fed:]
            if not isinstance(m, PointRecord) or m.time < start + timedelta(seconds=tick)
        ]
        fed += len(batch)
        aggregator.add(batch)
        (result,) = aggregator.evaluate_thresholds(float(tick), final=False)
        ticks.append(result)
    assert [(r.ok, r.abort) for r in ticks] == [(False, False), (False, True)]
    assert ticks[0].threshold.delay_abort_eval == 3.0


# --- synthetic streams ---------------------------------------------------------------------------


def metric(name: str, kind: str, *subs: str, thresholds: tuple[str, ...] = ()) -> MetricMessage:
    submetrics = [Submetric(name=f"{name}{{{s}}}", suffix=s) for s in subs] or None
    contains = "time" if kind == "trend" else "default"
    data = Metric(
        name=name, type=kind, contains=contains, thresholds=list(thresholds), submetrics=submetrics
    )  # type: ignore[arg-type]
    return MetricMessage(data=data)


def point(
    name: str,
    value: float,
    tags: dict[str, str] | None = None,
    second: float = 0.0,
    metadata: dict[str, str] | None = None,
) -> PointRecord:
    """A sample in the internal form the aggregator reads (decoders make it)."""
    return PointRecord(name, value, tags, metadata, T0 + timedelta(seconds=second))


def test_a_point_feeds_a_submetric_iff_its_tags_contain_every_pair() -> None:
    aggregator = Aggregator()
    aggregator.add(
        [
            metric("reqs", "counter", "status:200", "status:200,method:GET"),
            point("reqs", 1, {"status": "200", "method": "GET", "url": "/"}),
            point("reqs", 10, {"status": "200", "method": "POST"}),
            point("reqs", 100, {"status": "404", "method": "GET"}),
            point("reqs", 1000, {"method": "GET"}, metadata={"status": "200"}),  # metadata: no
            point("reqs", 10000, None),
            point("reqs", 100000, {"status": "2000"}),
        ]
    )
    assert aggregator.values("reqs", 0)["count"] == 111111
    assert aggregator.values("reqs{status:200}", 0)["count"] == 11
    assert aggregator.values("reqs{status:200,method:GET}", 0)["count"] == 1
    assert aggregator.values("reqs{ method:GET , status:'200'}", 0)["count"] == 1  # same selector


def test_threshold_selectors_become_submetrics_named_by_their_first_spelling() -> None:
    aggregator = Aggregator()
    aggregator.add_threshold(parse_threshold("t{ kind : 'a' }", "max<10"))
    aggregator.add_threshold(parse_threshold("t{kind:a}", "avg<5"))
    aggregator.add(
        [metric("t", "trend"), point("t", 3, {"kind": "a"}), point("t", 30, {"kind": "b"})]
    )
    names = [info.name for info in aggregator.metrics()]
    assert names == ["t", "t{kind : 'a'}"]
    results = aggregator.evaluate_thresholds(1.0)
    assert [(r.metric, r.ok, r.observed) for r in results] == [
        ("t{kind : 'a'}", True, 3.0),
        ("t{kind : 'a'}", True, 3.0),
    ]


def test_metrics_with_thresholds_and_no_samples_show_zero_values() -> None:
    aggregator = Aggregator()
    for key, source in [
        ("ghost_counter", "count>0"),
        ("checks", "rate>0.9"),
        ("http_req_duration{status:500}", "p(95)<100"),
        ("my_gauge", "value<5"),
    ]:
        aggregator.add_threshold(parse_threshold(key, source))
    shown = {info.name: (info.type, info.contains, info.samples) for info in aggregator.metrics()}
    assert shown == {
        "ghost_counter": ("counter", "default", 0),
        "checks": ("rate", "default", 0),
        "http_req_duration": ("trend", "time", 0),  # the parent of a submetric with thresholds
        "http_req_duration{status:500}": ("trend", "time", 0),
        "my_gauge": ("gauge", "default", 0),
    }
    assert aggregator.values("ghost_counter", 10.0) == {"count": 0.0, "rate": 0.0}
    assert aggregator.values("http_req_duration{status:500}", 10.0)["p(95)"] == 0.0
    during = aggregator.evaluate_thresholds(10.0, final=False)
    assert all(r.ok and not r.evaluated and r.observed is None for r in during)
    final = {r.metric: (r.ok, r.observed) for r in aggregator.evaluate_thresholds(10.0)}
    assert final == {
        "ghost_counter": (False, 0.0),
        "checks": (True, None),  # an empty rate sink has no rate: the threshold passes
        "http_req_duration{status:500}": (True, 0.0),
        "my_gauge": (True, 0.0),
    }


def test_stream_thresholds_type_checks_and_problems() -> None:
    aggregator = Aggregator()
    aggregator.add_threshold(parse_threshold("http_reqs", "p(95)<100"))  # type not known yet
    aggregator.add(
        [
            metric("http_reqs", "counter", thresholds=("count>1", "avg<3")),
            point("http_reqs", 1.0),
            point("http_reqs", 1.0),
        ]
    )
    assert [str(p).split(";")[0] for p in aggregator.problems] == [
        'invalid threshold "p(95)<100" applied on metric http_reqs',  # found when typed
        'invalid threshold "avg<3" applied on metric http_reqs',
    ]
    assert [t.source for t in aggregator.thresholds] == ["count>1"]
    with pytest.raises(ThresholdError, match="unsupported aggregation method value"):
        aggregator.add_threshold(parse_threshold("http_reqs", "value>1"))
    ignoring = Aggregator(stream_thresholds=False)
    ignoring.add([metric("http_reqs", "counter", thresholds=("count>1",))])
    assert ignoring.thresholds == []


def test_sample_span_tolerates_out_of_order_times_and_untyped_points() -> None:
    aggregator = Aggregator()
    aggregator.add(
        [
            point("vus", 1, second=5.0),  # a built-in: typed before its Metric record
            point("mystery", 1, second=4.0),  # unknown type: dropped, counted
            metric("m", "counter"),
            point("m", 1, second=3.0),
            point("m", 1, second=9.5),
            point("m", 1, second=3.0 - 0.0028),
        ]
    )
    assert aggregator.sample_span_s == pytest.approx(6.5028)
    assert aggregator.values("vus", 0) == {"value": 1.0, "min": 1.0, "max": 1.0}
    assert aggregator.untyped_points == {"mystery": 1}
    with pytest.raises(KeyError, match="no metric or submetric 'mystery'"):
        aggregator.values("mystery", 0)


def test_trend_stats_follow_summary_trend_stats_syntax() -> None:
    aggregator = Aggregator(trend_stats="count,p(99.9),med")
    aggregator.add([metric("t", "trend")] + [point("t", float(v)) for v in range(1, 101)])
    # P(99.9 / 100), as k6 computes it: 99.90100000000001, not 99.901
    assert aggregator.values("t", 0) == {"count": 100.0, "p(99.9)": 99.90100000000001, "med": 50.5}
    with pytest.raises(ConfigError, match=r"invalid percentile trend stat value 'p\(101\)'"):
        Aggregator(trend_stats=["avg", "p(101)"])


def test_bounded_mode_on_a_real_stream_is_within_one_percent() -> None:
    messages = decode(K6_RUN)
    k6 = export_of(SAMPLES / "k6-summary-export.json")
    bounded = Aggregator(bounded=True)
    bounded.add(messages)
    for name, k6_values in k6.items():
        if "p(95)" in k6_values:
            mine = bounded.values(name, 1.0)
            for key in ("avg", "min", "max"):
                assert mine[key] == k6_values[key]
            for key in ("med", "p(90)", "p(95)"):
                assert mine[key] == pytest.approx(k6_values[key], rel=0.01, abs=1e-12), (name, key)
