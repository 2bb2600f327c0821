"""Helpers for the run-store tests: the bridge CLI into a store, queries, exact k6 numbers."""

from __future__ import annotations

import json
import math
import subprocess
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conftest import bridge_exe, clean_env
from k6mcp_bridge.plugin import RunInfo, RunResult, Stats
from k6mcp_bridge.store.writer import StoreConfig, StorePlugin


def cli(
    *args: str, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """The installed console script, its output as text."""
    return subprocess.run(
        [bridge_exe(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env if env is not None else clean_env(),
        **kwargs,
    )


def store_file(source: Path, store: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """``k6mcp-bridge SOURCE -p store -o store.path=STORE``; asserts it exits 0."""
    done = cli(str(source), "-p", "store", "-o", f"store.path={store}", *more)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def query_json(store: Path, metric: str, *args: str) -> dict[str, Any]:
    done = cli("query", metric, "--store", str(store), "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def runs_json(store: Path) -> list[dict[str, Any]]:
    done = cli("runs", "--store", str(store), "--json")
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def k6_values(path: Path, metric: str) -> dict[tuple[tuple[str, str], ...], list[float]]:
    """Every value of ``metric`` in a k6 JSON file, by its sorted tag pairs."""
    values: dict[tuple[tuple[str, str], ...], list[float]] = defaultdict(list)
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if record["type"] == "Point" and record["metric"] == metric:
                tags = tuple(sorted((record["data"].get("tags") or {}).items()))
                values[tags].append(float(record["data"]["value"]))
    return values


def k6_percentile(values: list[float], p: float) -> float:
    """k6's interpolated percentile of exact values."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    i = p * (len(ordered) - 1)
    lo = math.floor(i)
    return ordered[lo] + (ordered[math.ceil(i)] - ordered[lo]) * (i - lo)


def direct_plugin(path: Path, **options: Any) -> StorePlugin:
    """A started store plugin, called in-process (no bridge)."""
    plugin = StorePlugin(StoreConfig(path=str(path), **options))
    plugin.start(RunInfo("test-source", datetime.now(timezone.utc), "0.0-test"))
    return plugin


def finished(status: str = "completed") -> RunResult:
    return RunResult(status, Stats(), 0.0)  # type: ignore[arg-type]
