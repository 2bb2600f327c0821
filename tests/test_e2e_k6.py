"""End to end: a real k6 v1.1.0 against a loopback server, piped into the installed bridge."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import k6lab
from conftest import ROOT, bridge_exe

SCRIPT = ROOT / "sample_outputs" / "script.js"
_FRACTION = re.compile(r"\.(\d{1,6})\d*")


def point_key(metric: str, time: str, value: Any, tags: Any) -> tuple[Any, ...]:
    """A point's identity at the bridge's precision: the time to the microsecond."""
    micro = _FRACTION.sub(lambda m: "." + m[1].ljust(6, "0"), time.replace("Z", "+00:00"))
    if "." not in micro:
        micro = re.sub(r"(:\d\d)([+-])", r"\1.000000\2", micro, count=1)
    return metric, micro, float(value), tuple(sorted((tags or {}).items()))


def points_in(path: Path, kind: str, split: Callable[[Any], tuple[str, Any]]) -> Counter[Any]:
    """The points of a JSON-lines file, as a multiset of :func:`point_key`."""
    points: Counter[tuple[Any, ...]] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["type"] == kind:
            metric, data = split(record)
            points[point_key(metric, data["time"], data["value"], data["tags"])] += 1
    return points


def k6_points(path: Path) -> Counter[Any]:
    """Points of k6's own file, read with the standard library (no ±Inf in this script)."""
    return points_in(path, "Point", lambda record: (record["metric"], record["data"]))


def bridge_points(path: Path) -> Counter[Any]:
    return points_in(path, "point", lambda message: (message["data"]["metric"], message["data"]))


def test_k6_piped_into_the_bridge_delivers_every_point(tmp_path: Path) -> None:
    reference = tmp_path / "k6.json"
    messages = tmp_path / "messages.jsonl"
    bridge = k6lab.run_k6_into(
        [bridge_exe(), "-p", "jsonl", "-o", f"jsonl.path={messages}"],
        SCRIPT,
        "--out",
        f"json={reference}",
    )
    stderr = bridge.stderr.decode("utf-8", errors="replace")
    assert bridge.returncode == 0, stderr[-3000:]

    expected = k6_points(reference)
    got = bridge_points(messages)
    assert sum(got.values()) == sum(expected.values()) > 0
    assert got == expected

    # k6's own console output reaches the user through the bridge's stderr
    assert "execution: local" in stderr  # the banner
    assert re.search(r"^\s+http_reqs\.+: \d+", stderr, re.MULTILINE)  # the end-of-test summary
    assert "✗ even iteration" in stderr
    assert "rejected lines   0" in stderr
