"""The store plugin on real k6 captures (through the bridge CLI) and on windows built by hand."""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import K6_SAMPLES
from k6mcp_bridge.aggregate.buckets import Bucket
from k6mcp_bridge.k6.sketch import QuantileSketch
from k6mcp_bridge.messages import Window, WindowMessage
from k6mcp_bridge.store.codec import pack_sketch, unpack_sketch
from k6mcp_bridge.store.query import Store
from storelab import (
    direct_plugin,
    finished,
    k6_percentile,
    k6_values,
    query_json,
    runs_json,
    store_file,
)

CAPTURES = ["json-full-2vus.jsonl", "json-medium-rate-excerpt.jsonl", "json-TZ-Asia-Kolkata.jsonl"]


@pytest.mark.parametrize("capture", CAPTURES)
def test_counts_per_tag_are_exact_and_p95_within_1_percent(tmp_path: Path, capture: str) -> None:
    source = K6_SAMPLES / capture
    store = tmp_path / "s.db"
    store_file(source, store)
    [run] = runs_json(store)
    assert run["state"] == "finished"
    assert run["source"] == str(source)

    for metric in ("http_req_duration", "medium_trend", "iteration_duration"):
        by_tags = k6_values(source, metric)
        if not by_tags:
            continue
        by_name: dict[str, list[float]] = {}
        for tags, values in by_tags.items():
            by_name.setdefault(dict(tags).get("name", ""), []).extend(values)
        for name, values in by_name.items():
            args = ["--stat", "count", "--stat", "p(95)", "--stat", "max", "--stat", "min"]
            args += ["--tag", f"name={name}"] if name else []
            result = query_json(store, metric, *args)
            [series] = result["series"]
            assert series["values"]["count"] == len(values)
            exact = k6_percentile(values, 0.95)
            assert series["values"]["p(95)"] == pytest.approx(exact, rel=0.01)
            assert series["values"]["max"] == max(values)
            assert series["values"]["min"] == min(values)

    for counter in ("http_reqs", "medium_counter", "iterations"):
        points = k6_values(source, counter)
        if points:
            result = query_json(store, counter, "--stat", "count")
            assert result["series"][0]["values"]["count"] == sum(sum(v) for v in points.values())


def test_a_late_window_merges_into_the_stored_bucket(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    plugin = direct_plugin(path)
    first, late = Bucket("trend"), Bucket("trend")
    first.add_values([1.0, 2.0, 3.0])
    late.add_values([10.0, 20.0])
    start = 1_800_000_000
    plugin.process_batch([_window(start, 1, {"x": first})])
    plugin.process_batch([_window(start, 1, {"x": late}, late=True)])
    plugin.finish(finished())
    with Store(path) as store:
        values = store.query("m", stats=["count", "min", "max", "avg"]).series[0].values
    assert values == {"count": 5, "min": 1.0, "max": 20.0, "avg": 36.0 / 5}
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM buckets").fetchone()
    assert rows == (1,)


def test_a_wider_width_compacts_older_buckets_exactly(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    plugin = direct_plugin(path)
    rng = random.Random(7)
    start = 1_800_000_000
    everything: list[float] = []
    for second in range(10):  # ten 1 s buckets of two series
        buckets = {}
        for tag in ("a", "b"):
            values = [rng.lognormvariate(3, 1) for _ in range(rng.randint(1, 40))]
            everything += values
            buckets[tag] = Bucket("trend")
            buckets[tag].add_values(values)
        plugin.process_batch([_window(start + second, 1, buckets)])
    wide = Bucket("trend")
    wide.add_values([5.0, 6.0])
    everything += [5.0, 6.0]
    plugin.process_batch([_window(start + 10, 2, {"a": wide})])
    late = Bucket("trend")  # a late sample of a compacted 1 s slot: lands in its 2 s bucket
    late.add_values([7.0])
    everything.append(7.0)
    plugin.process_batch([_window(start + 3, 1, {"b": late}, late=True)])
    plugin.finish(finished())

    db = sqlite3.connect(path)
    assert db.execute("SELECT DISTINCT width FROM buckets").fetchall() == [(2,)]
    assert db.execute("SELECT count(*) FROM buckets").fetchone() == (11,)  # 5 slots x 2 + 1
    assert db.execute("SELECT count(*) FROM buckets WHERE start % 2").fetchone() == (0,)
    with Store(path) as store:
        values = store.query("m", stats=["count", "min", "max", "p(50)"]).series[0].values
        per_tag = store.query("m", stats=["count"], group_by=["t"]).series
    assert values["count"] == len(everything)
    assert values["min"] == min(everything)
    assert values["max"] == max(everything)
    assert values["p(50)"] == pytest.approx(k6_percentile(everything, 0.5), rel=0.01)
    assert sum(s.values["count"] or 0 for s in per_tag) == len(everything)


def test_sketch_blob_round_trips_and_is_small() -> None:
    rng = random.Random(1)
    sketch = QuantileSketch()
    sketch.add_many([rng.lognormvariate(1, 2) for _ in range(5000)])
    sketch.add_many([0.0, 0.0, math.inf, -math.inf, -3.5, -1e-9])
    blob = pack_sketch(sketch)
    back = unpack_sketch(blob)
    assert (back.pos, back.neg, back.zeros, back.pos_inf, back.neg_inf) == (
        sketch.pos,
        sketch.neg,
        sketch.zeros,
        sketch.pos_inf,
        sketch.neg_inf,
    )
    assert back.gamma == sketch.gamma
    assert len(blob) < 3 * (len(sketch.pos) + len(sketch.neg)) + 10
    other = unpack_sketch(pack_sketch(QuantileSketch(0.02)))
    assert other.gamma == QuantileSketch(0.02).gamma


def test_snapshots_verdicts_and_metric_definitions_are_kept(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    source = K6_SAMPLES / "json-full-2vus.jsonl"
    store_file(source, store, "--snapshot-interval", "1")
    with Store(store) as opened:
        run = opened.run()
        final = opened.snapshot(run.id, "final")
        latest = opened.snapshot(run.id, "latest")
        verdicts = opened.verdicts(run.id)
        kinds = opened.metrics(run.id)
    assert final is not None and final["final"] is True
    assert latest == final
    assert final["metrics"]["http_reqs"]["values"]["count"] == 33
    assert kinds["http_req_duration"] == "trend" and kinds["vus"] == "gauge"
    assert {(v["metric"], v["threshold"]) for v in verdicts} >= {("http_reqs", "count>1")}
    assert all(v["time"] is not None for v in verdicts)


def test_many_runs_live_in_one_store(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    store_file(K6_SAMPLES / "json-full-2vus.jsonl", store)
    store_file(K6_SAMPLES / "json-TZ-Asia-Kolkata.jsonl", store)
    runs = runs_json(store)
    assert len(runs) == 2 and runs[0]["id"] > runs[1]["id"]
    assert runs[0]["source"].endswith("Kolkata.jsonl")
    older = query_json(store, "http_reqs", "--run", runs[1]["id"], "--stat", "count")
    assert older["run_id"] == runs[1]["id"]
    assert older["series"][0]["values"]["count"] == 33


def _window(
    start: int, width: int, buckets: dict[str, Bucket], late: bool = False
) -> WindowMessage:
    return WindowMessage(
        data=Window(
            start=datetime.fromtimestamp(start, timezone.utc),
            end=datetime.fromtimestamp(start + width, timezone.utc),
            width_s=width,
            late=late,
            series=[bucket.to_model("m", {"t": tag}) for tag, bucket in buckets.items()],
        )
    )
