"""The report plugin on synthetic runs: escaping, CSP, the live rewrite, the grid, the vendored
uPlot; and the page in headless Chromium."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from k6mcp_bridge.messages import MetricsMessage, ThresholdMessage, ThresholdVerdict, WindowMessage
from k6mcp_bridge.plugin import RunInfo, RunResult, Stats
from k6mcp_bridge.reports.html_page import csp, json_for_script, sha256_source
from k6mcp_bridge.reports.html_report import HARD_CAP, ReportConfig, ReportPlugin
from k6mcp_bridge.reports.timeline import MAX_POINTS, Timeline
from reportlab import T0, render, snapshot, window

VENDOR = Path(__file__).resolve().parents[2] / "bridge" / "k6mcp_bridge" / "reports" / "vendor"


def data_of(page: str, element: str = "data") -> dict:  # type: ignore[type-arg]
    match = re.search(rf'<script type="application/json" id="{element}">(.*?)</script>', page, re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def report(tmp_path: Path, seconds: int = 3, interval: float = 60.0) -> tuple[Path, ReportPlugin]:
    path = tmp_path / "k6-report.html"
    plugin = ReportPlugin(ReportConfig(path=str(path), interval=interval))
    plugin.start(RunInfo("test-source", T0, "0.0-test", script="hostile.js"))
    verdict = ThresholdVerdict(
        metric="http_req_duration", threshold="p(95)<500", ok=False, observed=612.25
    )
    plugin.process_batch([WindowMessage(data=window(s)) for s in range(seconds)])
    plugin.process_batch([ThresholdMessage(data=verdict), MetricsMessage(data=snapshot())])
    return path, plugin


def finish(plugin: ReportPlugin) -> None:
    plugin.finish(RunResult("completed", Stats(), 3.0, metrics=snapshot()))


def test_vendored_uplot_matches_its_recorded_hashes() -> None:
    lines = (VENDOR / "uplot" / "VERSION").read_text().splitlines()
    assert re.fullmatch(r"uplot \d+\.\d+\.\d+", lines[0])
    recorded = dict(reversed(line.split()[1:]) for line in lines if line.startswith("sha256 "))
    assert set(recorded) == {"LICENSE", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in recorded.items():
        assert hashlib.sha256((VENDOR / "uplot" / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in (VENDOR / "uplot" / "LICENSE").read_text()


def test_json_in_a_script_cannot_close_it() -> None:
    text = json_for_script({"name": "</script><script>alert(1)</script>\u2028\u2029&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text)["name"] == "</script><script>alert(1)</script>\u2028\u2029&"


def test_the_page_is_escaped_and_its_policy_hashes_its_inline_scripts(tmp_path: Path) -> None:
    path, plugin = report(tmp_path)
    finish(plugin)
    page = path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the tables: html.escape
    assert page.count("<script>") == 2  # uPlot and report.js, nothing else executable
    inline = re.findall(r"<script>(.*?)</script>", page, re.S)
    policy = csp()
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    for source in inline:
        assert sha256_source(source) in policy
    assert " src=" not in page and "<link" not in page and "@import" not in page
    assert re.findall(r' href="([^"]*)"', page) == ["#"]  # the download link, set on click
    data = data_of(page)
    assert {c["id"] for c in data["charts"]} >= {"load", "latency", "errors", "checks", "ep-rate"}
    assert data["x"] == [int((T0 + timedelta(seconds=s)).timestamp()) for s in range(3)]
    assert data_of(page, "summary")["metrics"]["http_req_duration"]["thresholds"] == {
        "p(95)<500": {"ok": False},
        "avg<1000": {"ok": True},
    }
    assert "p(95)=612.25ms" in page


def test_the_live_page_refreshes_and_the_final_one_does_not(tmp_path: Path) -> None:
    path, plugin = report(tmp_path, interval=0.05)
    time.sleep(0.06)
    plugin.process_batch([WindowMessage(data=window(3))])
    live = path.read_text(encoding="utf-8")
    assert '<meta http-equiv="refresh" content="1">' in live
    assert 'id="in-progress"' in live
    finish(plugin)
    final = path.read_text(encoding="utf-8")
    assert 'http-equiv="refresh"' not in final and "in-progress" not in final
    assert [p.name for p in tmp_path.iterdir()] == ["k6-report.html"]  # no temp file left


def test_a_ten_hour_run_keeps_at_most_max_points_per_series() -> None:
    timeline = Timeline()
    for second in range(0, 10 * 3600, 10):
        timeline.add(window(second, width=10))
    assert timeline.width == 30  # 10 h / 30 s = 1,200 slots
    assert len(timeline.slots()) <= MAX_POINTS
    assert all(len(slots) <= MAX_POINTS for slots in timeline.series.values())
    total = timeline.total("http_reqs")
    assert total is not None and total.sum == 4 * 3600  # merging lost nothing


def test_many_endpoints_fold_into_other_and_stay_under_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    plugin = ReportPlugin(ReportConfig(path=str(path)))
    plugin.start(RunInfo("test-source", T0, "0.0-test"))
    for second in range(0, 7200, 2):
        plugin.process_batch(
            [WindowMessage(data=window(second, width=2, name=f"/e/{second % 60}"))]
        )
    finish(plugin)
    size = path.stat().st_size
    assert size < 1_000_000 < HARD_CAP
    data = data_of(path.read_text(encoding="utf-8"))
    (rates,) = [c for c in data["charts"] if c["id"] == "ep-rate"]
    assert len(rates["series"]) == 21 and rates["series"][-1]["label"] == "(other)"
    assert len(data["x"]) <= MAX_POINTS


def test_in_chromium_the_charts_draw_names_are_text_and_nothing_is_loaded(tmp_path: Path) -> None:
    path, plugin = report(tmp_path, seconds=1)  # one bucket still draws
    finish(plugin)
    shown = render(path, tmp_path / "shot.png")
    assert shown.console == [] and shown.violations == [] and shown.alerts == []
    assert shown.requests == [path.resolve().as_uri()]
    expected = {c["id"]: len(c["series"]) for c in data_of(path.read_text())["charts"]}
    assert {c["id"].removeprefix("chart-"): c["series"] for c in shown.charts} == expected
    assert all(c["points"] == 1 and c["drawn"] == "true" and c["canvases"] for c in shown.charts)
    assert "<script>alert(1)</script>" in shown.text  # the hostile check name, as text
    assert (tmp_path / "shot.png").stat().st_size > 10_000


def test_past_the_soft_cap_the_buckets_widen_until_the_data_fits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from k6mcp_bridge.reports import html_report

    monkeypatch.setattr(html_report, "SOFT_CAP", 20_000)
    path, plugin = report(tmp_path, seconds=600)
    finish(plugin)
    data = data_of(path.read_text(encoding="utf-8"))
    assert len(json_for_script(data)) <= 20_000
    assert data["width"] > 1 and len(data["x"]) == 600 // data["width"]
    assert f"{data['width']} s" in path.read_text(encoding="utf-8")  # the header says so
