"""`k6mcp-bridge report --store`: a report rebuilt from the run store equals the live one; and a
baseline run from the store drawn over a run and compared in its tables."""

from __future__ import annotations

from pathlib import Path

from conftest import K6_SAMPLES
from reportlab import chart_json, render
from storelab import cli, runs_json

SAMPLE = K6_SAMPLES / "json-full-2vus.jsonl"


def test_a_report_rebuilt_from_the_store_equals_the_live_one(tmp_path: Path) -> None:
    store, live, rebuilt = tmp_path / "runs.db", tmp_path / "live.html", tmp_path / "re.html"
    done = cli(str(SAMPLE), "-p", "store", "-o", f"store.path={store}",
               "-p", "report", "-o", f"report.path={live}")  # fmt: skip
    assert done.returncode in (0, 99), done.stderr[-2000:]
    (run,) = runs_json(store)
    done = cli("report", "--store", str(store), "--run", run["id"], "-o", str(rebuilt))
    assert done.returncode == 0, done.stderr
    assert f"run {run['id']}" in done.stdout
    assert chart_json(rebuilt) == chart_json(live)
    page = rebuilt.read_text(encoding="utf-8")
    assert 'id="thresholds"' in page and 'http-equiv="refresh"' not in page

    unknown = cli("report", "--store", str(store), "--run", "nope", "-o", str(tmp_path / "x"))
    assert unknown.returncode == 2
    assert "no run 'nope'" in unknown.stderr and run["id"] in unknown.stderr


def test_a_baseline_run_is_drawn_over_the_run_and_compared(tmp_path: Path) -> None:
    store, html = tmp_path / "runs.db", tmp_path / "r.html"
    assert cli(str(SAMPLE), "-p", "store", "-o", f"store.path={store}").returncode in (0, 99)
    (baseline,) = runs_json(store)
    base = f"report.baseline={baseline['id']}"
    done = cli(str(SAMPLE), "-p", "report", "-o", f"report.path={html}",
               "-o", f"report.store={store}", "-o", base)  # fmt: skip
    assert done.returncode in (0, 99), done.stderr[-2000:]
    charts = {chart["id"]: chart["series"] for chart in chart_json(html)["charts"]}
    overlays = {
        chart_id: [s["label"] for s in series if s.get("baseline")]
        for chart_id, series in charts.items()
    }
    assert overlays["load"] == ["requests/s (baseline)"]
    assert overlays["latency"] == ["p(95) (baseline)"]
    assert overlays["errors"] == ["error rate % (baseline)"]
    # the same capture: the baseline's p(95) line is this run's, slot for slot
    (p95,) = [s for s in charts["latency"] if s["label"] == "p(95)"]
    (before,) = [s for s in charts["latency"] if s["label"] == "p(95) (baseline)"]
    assert before["values"] == p95["values"]
    page = html.read_text(encoding="utf-8")
    assert page.count("vs baseline") == 2  # the threshold and the endpoint tables
    assert baseline["id"] in page
    shown = render(html)
    assert shown.console == [] and shown.violations == []

    missing = cli(str(SAMPLE), "-p", "report", "-o", f"report.path={tmp_path / 'm.html'}",
                  "-o", f"report.store={store}", "-o", "report.baseline=nope")  # fmt: skip
    assert missing.returncode == 70  # the report plugin fails at start, the run goes on
    assert "no run 'nope'" in missing.stderr
