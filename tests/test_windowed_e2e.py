"""End to end: a windowed threshold catches a half-second latency spike in a real k6 run that
the same threshold over the whole run lets pass."""

from __future__ import annotations

import json
import re
from pathlib import Path

import k6lab
from conftest import ROOT, bridge_exe

SCRIPT = ROOT / "tests" / "k6_scripts" / "latency_spike.js"


def test_a_spike_fails_the_one_second_window_and_passes_the_whole_run(tmp_path: Path) -> None:
    messages = tmp_path / "messages.jsonl"
    bridge = k6lab.run_k6_into(
        [
            bridge_exe(),
            "--threshold",
            "http_req_duration:p(95)<30 over 1s",
            "--threshold",
            "http_req_duration:p(95)<30",
            "-p",
            "summary",
            "-p",
            "jsonl",
            "-o",
            f"jsonl.path={messages}",
        ],
        SCRIPT,
        "--quiet",
    )
    stderr = bridge.stderr.decode("utf-8", errors="replace")
    assert bridge.returncode == 99, stderr[-3000:]

    final = {
        m["data"]["threshold"]: m["data"]
        for m in map(json.loads, messages.read_text().splitlines())
        if m["type"] == "threshold" and m["data"]["final"]
    }
    whole, windowed = final["p(95)<30"], final["p(95)<30 over 1s"]
    assert whole["ok"] is True
    assert whole["observed"] < 30
    assert windowed["ok"] is False
    window = windowed["window"]
    assert window["over_s"] == 1.0
    assert window["windows"] >= 5
    first = window["first_failure"]
    assert first["observed"] >= 30
    assert window["worst"]["observed"] >= first["observed"]
    # the spike is 4 s into a 10 s test: the failing window lies inside the run, one second long
    assert first["end"] > first["start"]

    # the summary shows both verdicts and the failing window
    assert re.search(r"✓ 'p\(95\)<30' p\(95\)=", stderr)
    assert re.search(r"✗ 'p\(95\)<30 over 1s' p\(95\)=\d", stderr)
    assert re.search(r"(first failing|first and worst failing) window \d{4}-\d\d-\d\dT", stderr)
