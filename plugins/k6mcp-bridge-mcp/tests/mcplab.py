"""Helpers for the MCP server's tests: real k6 runs into a store, the real MCP client.

The core's test helpers (``tests/k6lab.py``: the loopback server and k6; ``tests/conftest.py``:
the installed console script) are imported from the repository's ``tests`` folder.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT / "tests") not in sys.path:
    sys.path.append(str(ROOT / "tests"))

import k6lab  # noqa: E402
from conftest import bridge_exe, clean_env  # noqa: E402

MIX = HERE / "k6" / "mix.js"
LIVE = ROOT / "tests" / "k6_scripts" / "store_live.js"
K6_TIMEOUT = 30
"""Seconds any k6 run here may take (each is a few seconds long)."""

__all__ = ["LIVE", "MIX", "Capture", "bridge_exe", "clean_env", "k6_capture", "k6lab", "store_run"]


@dataclass
class Capture:
    """A real k6 run: its JSON output and its own --summary-export."""

    results: Path
    summary: Path

    def summary_metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = json.loads(self.summary.read_text(encoding="utf-8"))["metrics"]
        return metrics

    def values(self, metric: str, **tags: str) -> list[float]:
        """Every value of ``metric`` whose tags contain ``tags``."""
        found = []
        with self.results.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if record["type"] != "Point" or record["metric"] != metric:
                    continue
                point_tags = record["data"].get("tags") or {}
                if all(point_tags.get(k) == v for k, v in tags.items()):
                    found.append(float(record["data"]["value"]))
        return found


def k6_capture(folder: Path, name: str, script: Path = MIX, **env: str) -> Capture:
    """Run k6 (bounded) against the loopback server; its results and summary under ``folder``."""
    results, summary = folder / f"{name}.json", folder / f"{name}-summary.json"
    with k6lab.serve() as base_url:
        done = subprocess.run(
            [
                *k6lab.k6_run_args(),
                "--quiet",
                "--out",
                f"json={results}",
                "--summary-export",
                str(summary),
                str(script),
            ],
            env={**k6lab.k6_env(base_url), **env},
            capture_output=True,
            timeout=K6_TIMEOUT,
            check=False,
        )
    assert done.returncode in (0, 99), done.stderr[-2000:]  # 99: a threshold failed (wanted)
    return Capture(results, summary)


def store_run(results: Path, store: Path) -> None:
    """``k6mcp-bridge RESULTS -p store -o store.path=STORE`` (the console script)."""
    done = subprocess.run(
        [bridge_exe(), "-q", str(results), "-p", "store", "-o", f"store.path={store}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert done.returncode in (0, 99), done.stderr[-2000:]


def k6_percentile(values: list[float], p: float) -> float:
    """k6's interpolated percentile of exact values."""
    ordered = sorted(values)
    i = p * (len(ordered) - 1)
    lo = math.floor(i)
    return ordered[lo] + (ordered[math.ceil(i)] - ordered[lo]) * (i - lo)
