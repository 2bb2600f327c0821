"""End to end with real k6: one run through `-p junit -p report`, checked against k6's own
`--summary-export`, the JUnit schema and headless Chromium; and a real capture stretched to two
hours, replayed through the bridge."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import junitparser
import pytest
import xmlschema

import k6lab
from conftest import K6_SAMPLES, ROOT, bridge_exe
from k6mcp_bridge.reports.html_report import HARD_CAP
from reportlab import chart_json, render

SCRIPT = ROOT / "tests" / "k6_scripts" / "report_mix.js"
SCHEMA = xmlschema.XMLSchema(ROOT / "tests" / "data" / "junit-10.xsd")
HOSTILE = "<script>alert(1)</script> \"q\" 's' \u2028 \x01 &amp;"


@dataclass
class Run:
    junit: Path
    html: Path
    export: dict[str, Any]
    returncode: int
    stderr: str
    live: list[str]


@pytest.fixture(scope="module")
def k6_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("reports")
    junit, html, export = folder / "TEST-k6.xml", folder / "k6-report.html", folder / "k6.json"
    with k6lab.serve() as base_url:
        k6 = subprocess.Popen(
            [*k6lab.k6_run_args(), "--quiet", "--out", "json=-", "--summary-export", str(export),
             str(SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=k6lab.k6_env(base_url),
        )  # fmt: skip
        bridge = subprocess.Popen(
            [bridge_exe(), "--script", str(SCRIPT), "-p", "junit", "-o", f"junit.path={junit}",
             "-p", "report", "-o", f"report.path={html}", "-o", "report.interval=1"],
            stdin=k6.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert k6.stdout is not None
        k6.stdout.close()
        live = []  # the page as a browser polling it during the run would read it
        deadline = time.monotonic() + 120
        while bridge.poll() is None and time.monotonic() < deadline:
            if html.exists():
                live.append(html.read_text(encoding="utf-8"))
            time.sleep(0.2)
        _, err = bridge.communicate(timeout=60)
        assert k6.wait(timeout=60) == 99  # k6 itself: thresholds crossed
    stderr = err.decode("utf-8", errors="replace")
    return Run(junit, html, json.loads(export.read_text()), bridge.returncode, stderr, live)


def test_junit_matches_k6s_own_verdicts(k6_run: Run) -> None:
    assert k6_run.returncode == 99, k6_run.stderr[-3000:]
    SCHEMA.validate(str(k6_run.junit))
    root = ET.parse(k6_run.junit).getroot()
    suite = root.find("testsuite[@name='k6.thresholds']")
    assert suite is not None
    outcomes = {}
    for case in suite.findall("testcase"):
        outcome = [child.tag for child in case if child.tag != "system-out"]
        outcomes[case.get("name")] = outcome[0] if outcome else "passed"

    script_thresholds = {
        f"{metric}: {source}"
        for metric, sources in re.findall(
            r"^\s+'?([\w{}:]+)'?: \[([^\]]*)\]", SCRIPT.read_text(), re.MULTILINE
        )
        for source in re.findall(r"'([^']*)'", sources)
    }
    assert set(outcomes) == script_thresholds and len(outcomes) == 8
    k6_failed = {
        f"{metric}: {source}"
        for metric, values in k6_run.export["metrics"].items()
        for source, crossed in values.get("thresholds", {}).items()
        if crossed
    }
    assert {name for name, outcome in outcomes.items() if outcome == "failure"} == k6_failed
    assert k6_failed == {
        "checks: rate>0.5",
        "http_req_duration: avg<1",
        "http_req_duration{name:slow}: p(95)<50",
        "http_req_failed: rate<0.01",
    }
    # k6 passes a threshold whose submetric never had a sample; the report says skipped
    assert outcomes["http_req_duration{name:never}: p(95)<100"] == "skipped"

    checks = {
        (case.get("classname"), case.get("name")): case
        for case in root.findall("testsuite[@name='k6.checks']/testcase")
    }
    shown_hostile = HOSTILE.replace("\x01", "\\x01")
    assert set(checks) == {
        ("::shop", "items status 200"),
        ("::shop::checkout", "slow under 50ms"),
        ("::shop::checkout", "missing is 200"),
        ("(root)", shown_hostile),
    }
    failure = checks[("::shop::checkout", "missing is 200")].find("failure")
    assert failure is not None
    assert re.fullmatch(r"0 of (\d+) passed \(0\.00%\)", failure.get("message", ""))
    assert checks[("::shop", "items status 200")].find("failure") is None
    parsed = junitparser.JUnitXml.fromfile(str(k6_run.junit))
    assert sum(suite.failures for suite in parsed) == 6


def test_the_html_report_is_rewritten_whole_while_k6_runs(k6_run: Run) -> None:
    assert k6_run.live, "the page was never seen during the run"
    for page in k6_run.live:  # every read saw a whole page (temp file + rename)
        assert page.startswith("<!doctype html>") and page.endswith("</html>\n")
    live = ['<meta http-equiv="refresh" content="1">' in page for page in k6_run.live]
    assert live[0], "no live version of the page was seen during the run"
    assert live == sorted(live, reverse=True)  # live versions, then only the final one
    banners = ['id="in-progress"' in page for page in k6_run.live]
    assert banners == live


def test_html_report_draws_in_chromium_without_any_request(k6_run: Run, tmp_path: Path) -> None:
    page = k6_run.html.read_text(encoding="utf-8")
    assert 'http-equiv="refresh"' not in page and len(page.encode()) < 1_000_000
    data = chart_json(k6_run.html)
    points = len(data["x"])
    assert 4 <= points <= 7  # a 4 s run in 1 s buckets
    shown = render(k6_run.html, tmp_path / "report.png")
    assert shown.console == [] and shown.violations == [] and shown.alerts == []
    assert shown.requests == [k6_run.html.resolve().as_uri()]
    series = {chart["id"].removeprefix("chart-"): chart["series"] for chart in shown.charts}
    assert series == {
        "load": 2,  # requests/s, VUs
        "latency": 4 + 5,  # p50/p90/p95/p99 and the 5 thresholds on http_req_duration
        "errors": 2,  # the error rate, and status 404 per second
        "checks": 1,
        "ep-rate": 4,  # items, slow, missing and the hostile name
        "ep-p95": 4,
        "ep-err": 4,
        "trend-7": 4,  # the custom trend think_time: avg, p(50), p(95), max
    }
    assert {chart["points"] for chart in shown.charts} == {points}
    assert all(chart["drawn"] == "true" for chart in shown.charts)
    assert "<script>alert(1)</script>" in shown.text
    assert "p(95)=" in shown.text and "✗" in shown.text


def stretched(source: Path, target: Path, factor: float) -> None:
    """``source``'s k6 JSON with every time stretched ``factor`` times from its first one."""
    first: datetime | None = None
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            record = json.loads(line)
            if record["type"] == "Point":
                when = datetime.fromisoformat(record["data"]["time"][:26].rstrip("Z") + "+00:00")
                first = first or when
                record["data"]["time"] = (first + (when - first) * factor).isoformat()
            out.write(json.dumps(record) + "\n")


def test_a_replayed_two_hour_run_gives_a_valid_report_within_the_cap(tmp_path: Path) -> None:
    capture = tmp_path / "two-hours.jsonl"
    stretched(K6_SAMPLES / "json-full-2vus.jsonl", capture, 7200 / 4.1)
    html, junit = tmp_path / "r.html", tmp_path / "TEST-k6.xml"
    done = subprocess.run(
        [bridge_exe(), str(capture), "-p", "report", "-o", f"report.path={html}",
         "-p", "junit", "-o", f"junit.path={junit}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 99), done.stderr[-3000:]
    size = html.stat().st_size
    assert size < HARD_CAP and size < 1_000_000
    SCHEMA.validate(str(junit))
    shown = render(html)
    assert shown.console == [] and shown.violations == []
    assert shown.requests == [html.resolve().as_uri()]
    assert shown.charts and all(chart["drawn"] == "true" for chart in shown.charts)
    points = {chart["points"] for chart in shown.charts}
    assert len(points) == 1 and 10 <= points.pop() <= 1200
    assert re.search(r"duration\s+(1h59m|2h0m)", shown.text)
