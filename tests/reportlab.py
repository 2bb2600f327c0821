"""Helpers for the report tests: synthetic windows and snapshots, and a headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from k6mcp_bridge.aggregate.buckets import Bucket
from k6mcp_bridge.messages import (
    Check,
    Group,
    MetricsSnapshot,
    MetricSummary,
    MetricType,
    SeriesRollup,
    ThresholdState,
    Window,
)

HOSTILE = "<script>alert(1)</script> \"q\" 's' \u2028 \x01 &amp;"
T0 = datetime(2026, 11, 25, 8, 0, 0, tzinfo=timezone.utc)


def chart_json(path: Path) -> dict[str, Any]:
    """The charts' data a report page holds (its ``<script type="application/json" id="data">``)."""
    page = path.read_text(encoding="utf-8")
    match = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def rollup(metric: str, kind: MetricType, values: Iterable[float], **tags: str) -> SeriesRollup:
    bucket = Bucket(kind)
    bucket.add_values(list(values), T0)
    return bucket.to_model(metric, tags)


def window(second: int, width: int = 1, name: str = HOSTILE, failed: int = 1) -> Window:
    """One bucket of a small HTTP test: 4 requests to ``name`` (``failed`` of them 500s)."""
    start = T0 + timedelta(seconds=second)
    ok, bad = 4 - failed, failed
    series = [
        rollup("http_reqs", "counter", [1] * ok, name=name, status="200"),
        rollup("http_reqs", "counter", [1] * bad, name=name, status="500"),
        rollup("http_req_duration", "trend", [10, 20, 30][:ok] + [0] * 0, name=name, status="200"),
        rollup("http_req_duration", "trend", [500] * bad, name=name, status="500"),
        rollup("http_req_failed", "rate", [0] * ok, name=name, status="200"),
        rollup("http_req_failed", "rate", [1] * bad, name=name, status="500", error_code="1500"),
        rollup("checks", "rate", [1, 1, 0], check=HOSTILE),
        rollup("vus", "gauge", [2]),
    ]
    series = [s for s in series if s.count]
    return Window(start=start, end=start + timedelta(seconds=width), width_s=width, series=series)


def snapshot(*, failed_threshold: bool = True) -> MetricsSnapshot:
    check = Check(name=HOSTILE, path=f"::{HOSTILE}::{HOSTILE}", id="c1", passes=2, fails=1)
    inner = Group(name=HOSTILE, path=f"::{HOSTILE}", id="g1", checks=[check])
    root = Group(name="", path="", id="g0", groups=[inner])
    key = f"http_req_duration{{name:{HOSTILE}}}"
    return MetricsSnapshot(
        time=T0 + timedelta(seconds=3),
        final=True,
        test_run_duration_ms=3000,
        metrics={
            "http_req_duration": MetricSummary(
                type="trend",
                contains="time",
                values={"avg": 112.5, "p(95)": 612.25, "max": 700},
                thresholds={
                    "p(95)<500": ThresholdState(ok=not failed_threshold, observed=612.25),
                    "avg<1000": ThresholdState(ok=True, observed=112.5),
                },
            ),
            key: MetricSummary(
                type="trend",
                contains="time",
                values={"avg": 20.0, "p(95)": 30.0},
                thresholds={"p(95)<50": ThresholdState(ok=True, observed=30.0)},
            ),
            "http_req_duration{name:never}": MetricSummary(
                type="trend",
                contains="time",
                values={"avg": 0.0, "p(95)": 0.0},
                thresholds={"p(95)<100": ThresholdState(ok=True, observed=0.0)},
            ),
            "checks": MetricSummary(
                type="rate", contains="default", values={"rate": 2 / 3, "passes": 2, "fails": 1}
            ),
        },
        root_group=root,
        checks=[check],
    )


# --- the browser --------------------------------------------------------------------------------


def chromium() -> str:
    """Debian's Chromium (``.ci/run`` installs it); skipped outside CI when it is missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: .ci/run installs the Debian package chromium")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@dataclass
class Rendered:
    charts: list[dict[str, Any]]
    """Each chart container's id and data-series / data-points / data-drawn."""
    text: str
    """document.body.innerText."""
    alerts: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    """Console messages and page errors (a CSP violation is logged here)."""
    requests: list[str] = field(default_factory=list)
    """Every URL the page asked for (the page itself included)."""
    violations: list[str] = field(default_factory=list)
    """securitypolicyviolation events seen by the page."""
    html: str = ""


def render(path: Path, screenshot: Path | None = None) -> Rendered:
    """Open ``path`` in headless Chromium (no network, no sandbox), wait for the charts."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            out = Rendered([], "")
            page.on("console", lambda m: out.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: out.console.append(f"pageerror: {e}"))
            page.on("request", lambda r: out.requests.append(r.url))
            page.on("dialog", lambda d: (out.alerts.append(d.message), d.dismiss()))
            page.add_init_script(
                "window.__violations = [];"
                "document.addEventListener('securitypolicyviolation', e =>"
                " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            page.goto(path.resolve().as_uri())
            page.wait_for_selector("body[data-ready=true]", timeout=10_000)
            page.wait_for_timeout(300)
            out.charts = page.eval_on_selector_all(
                ".chart",
                "els => els.map(e => ({id: e.id, series: +e.dataset.series,"
                " points: +e.dataset.points, drawn: e.dataset.drawn,"
                " canvases: e.querySelectorAll('canvas').length}))",
            )
            out.text = page.inner_text("body")
            out.violations = page.evaluate("window.__violations")
            out.html = page.content()
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            return out
        finally:
            browser.close()
