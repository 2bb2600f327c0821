"""The example plugin, driven the way the bridge drives it."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from k6mcp_bridge import PointMessage, RunInfo, RunResult, Stats
from k6mcp_bridge.messages import MESSAGE_ADAPTER
from k6mcp_bridge_example import ExampleConfig, ExamplePlugin


def point(metric: str) -> PointMessage:
    return PointMessage.model_validate(
        {"data": {"metric": metric, "time": "2026-11-24T18:00:00Z", "value": 1}}
    )


def run(plugin: ExamplePlugin, metrics: list[str]) -> None:
    plugin.start(RunInfo("test", datetime.now(timezone.utc), "0"))
    metric = MESSAGE_ADAPTER.validate_python(
        {"type": "metric", "data": {"name": "a", "type": "counter", "contains": "default"}}
    )
    plugin.process_batch([metric, *[point(m) for m in metrics]])
    plugin.finish(RunResult("completed", Stats(), 0.0))


def test_counts_per_metric_and_progress(capsys: pytest.CaptureFixture[str]) -> None:
    plugin = ExamplePlugin(ExampleConfig(every=2))
    run(plugin, ["a", "b", "a", "a"])
    assert plugin.counts == {"a": 3, "b": 1}
    err = capsys.readouterr().err
    assert err.count("points so far") == 2
    assert "example: a 3" in err and "example: b 1" in err


def test_metric_filter() -> None:
    plugin = ExamplePlugin(ExampleConfig(metric="b"))
    run(plugin, ["a", "b", "a", "b"])
    assert plugin.counts == {"b": 2}


def test_bad_option_is_rejected() -> None:
    with pytest.raises(ValueError, match="every"):
        ExampleConfig.model_validate({"every": "0"})


def test_a_real_k6_run_through_the_real_pipeline(replay: Any, k6_sample: Path) -> None:
    """The fixtures of k6mcp-bridge's pytest plugin (``k6mcp_bridge.testing``)."""
    plugin, result = replay(k6_sample, ExamplePlugin, every=1000)
    assert result.status == "completed"
    assert plugin.counts["http_reqs"] == plugin.counts["http_req_duration"] > 0
    points = gzip.decompress(k6_sample.read_bytes()).count(b'"type":"Point"')
    assert sum(plugin.counts.values()) == points


def test_a_metric_option_through_replay(replay: Any) -> None:
    plugin, _ = replay("k6-run", ExamplePlugin, metric="checks")
    assert set(plugin.counts) == {"checks"}
