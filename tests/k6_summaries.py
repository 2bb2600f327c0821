"""What the aggregation and summary tests share: real k6 streams decoded, k6's own exports
read back, a snapshot built the way the pipeline builds it, and a live k6 run of
:data:`LIVE_SCRIPT` (no network, exit 99)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from k6lab import k6_binary, k6_run_args
from k6mcp_bridge.aggregate.aggregator import Aggregator
from k6mcp_bridge.aggregate.snapshot import snapshot_from
from k6mcp_bridge.decode.json_lines import JsonDecoder
from k6mcp_bridge.k6.group_tree import GroupTree
from k6mcp_bridge.k6.thresholds import thresholds_from_options
from k6mcp_bridge.messages import MetricsSnapshot
from k6mcp_bridge.samples import Decoded

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def decode(path: Path) -> list[Decoded]:
    messages: list[Decoded] = []
    decoder = JsonDecoder(lambda line: None, lambda rejection: pytest.fail(rejection.describe()))
    decoder.decode(path.read_bytes().splitlines(), messages)
    decoder.finish(None, messages)
    return messages


def export_of(path: Path) -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = json.loads(path.read_text())["metrics"]
    return metrics


def export_duration(export: dict[str, dict[str, Any]]) -> float:
    """k6's test-run duration, recovered from a counter as whole nanoseconds, as k6 keeps it."""
    iterations = export["iterations"]
    return round(iterations["count"] / iterations["rate"] * 1e9) / 1e9


def inspected(script: Path) -> Aggregator:
    """An aggregator with every threshold of the script (``k6 inspect``: submetric ones too)."""
    out = subprocess.run(
        [k6_binary(), "inspect", str(script)], capture_output=True, check=True, timeout=60
    ).stdout
    aggregator = Aggregator()
    for threshold in thresholds_from_options(json.loads(out)["thresholds"]):
        aggregator.add_threshold(threshold)
    return aggregator


@dataclass
class Built:
    snapshot: MetricsSnapshot
    tree: GroupTree
    aggregator: Aggregator
    observed: dict[tuple[str, str], float | None]
    """Each threshold's compared value, for the text summary."""


def build(stream: Path, script: Path | None, duration_s: float) -> Built:
    """Stream → aggregator (every threshold of ``script``, k6 v1.1.0's gauge max) and group
    tree → the final snapshot, counter rates over ``duration_s``."""
    aggregator = inspected(script) if script is not None else Aggregator()
    aggregator.k6_gauge_max = True  # read when the sinks are made, i.e. during add()
    tree = GroupTree()
    messages = decode(stream)
    aggregator.add(messages)
    tree.add(messages)
    results = aggregator.evaluate_thresholds(duration_s)
    snapshot = snapshot_from(aggregator, tree, duration_s, final=True, results=results)
    observed = {(r.metric, r.threshold.source): r.observed for r in results}
    return Built(snapshot, tree, aggregator, observed)


def group_order(group: dict[str, Any]) -> list[Any]:
    return [
        list(group["checks"]),
        [(name, group_order(sub)) for name, sub in group["groups"].items()],
    ]


LIVE_SCRIPT = """
import { check, group, sleep } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';
import exec from 'k6/execution';

const moved = new Counter('bytes_moved', true);
const depth = new Gauge('queue_depth');
const hits = new Rate('cache_hits');
const wait = new Trend('wait_time', true);
const score = new Trend('score');

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    checks: ['rate>0.5'],
    wait_time: ['p(99.9)<1000', 'avg<0.001'],
    'score{kind:odd}': ['max<100'],
    bytes_moved: ['count>0'],
    cache_hits: ['rate>0.9'],
  },
};

export function setup() {
  check(1, { 'setup ok': (v) => v === 1 });
  group('prepare', () => { check(1, { prepared: () => true }); });
}

export default function () {
  const i = exec.scenario.iterationInTest;
  check(i, { 'before groups': () => true });
  group('setup', () => { check(i, { 'user setup group': () => true }); });
  group('api', () => {
    group('items', () => {
      check(i, { even: (v) => v % 2 === 0, 'shared name': () => true });
      wait.add(1 + i * 0.25);
    });
    group('empty', () => { sleep(0.01); });
  });
  group('other', () => { check(i, { 'shared name': () => i < 4 }); });
  moved.add(1500 * (i + 1));
  depth.add(i - 2);
  hits.add(i % 3 !== 0);
  score.add(i * 10.5, { kind: i % 2 ? 'odd' : 'even' });
}

export function teardown() {
  check(0, { 'teardown ok': () => true });
}
"""
"""Setup and teardown with checks and a group, a ``group('setup')`` in the default function,
one check name in two groups, failing checks, a time counter, a negative gauge, a p(99.9)
threshold, a submetric threshold, thresholds that fail (k6 exits 99)."""


@dataclass
class K6Run:
    script: Path
    stream: Path
    export: Path
    stdout: str
    returncode: int


def run_k6(directory: Path, *extra: str) -> K6Run:
    """Run :data:`LIVE_SCRIPT` with k6 ``-q``, its JSON stream and its summary export."""
    script = directory / "live.js"
    script.write_text(LIVE_SCRIPT)
    stream, exported = directory / "live.jsonl", directory / "live-export.json"
    done = subprocess.run(
        [
            *k6_run_args(),
            "-q",
            "--out",
            f"json={stream}",
            "--summary-export",
            str(exported),
            *extra,
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "K6_NO_USAGE_REPORT": "true"},
    )
    return K6Run(script, stream, exported, done.stdout, done.returncode)
