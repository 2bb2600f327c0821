"""One verdict across runners: a real k6 test run whole, and split into three execution
segments whose bridges write ``--state-export``; ``k6mcp-bridge merge`` of the three states
equals the whole run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import k6lab
from conftest import ROOT
from storelab import cli as bridge

SCRIPT = ROOT / "tests" / "k6_scripts" / "segments.js"
DETERMINISTIC = ("done", "work", "odd", "iterations", "http_reqs", "checks")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("merge")
    with k6lab.serve() as base_url:
        whole_code, codes = k6lab.run_whole_and_segments(base_url, SCRIPT, tmp)
    assert codes == [99, 99, 99]  # `done: count>=90` fails on every runner alone
    states = []
    for index in range(3):
        state = tmp / f"state{index}.json"
        ran = bridge(
            str(tmp / f"segment{index}.json"), "--no-passthrough", "--state-export", str(state)
        )
        assert ran.returncode == 99, ran.stderr[-2000:]
        states.append(str(state))
    merged = bridge(
        "merge", *states, "--script", str(SCRIPT), "--summary-export", str(tmp / "merged.json")
    )
    joined = tmp / "joined.json"
    joined.write_bytes(b"".join((tmp / f"segment{i}.json").read_bytes() for i in range(3)))
    bridge(
        str(joined),
        "--no-passthrough",
        "--script",
        str(SCRIPT),
        "--summary-export",
        str(tmp / "joined-summary.json"),
    )
    return {
        "whole_code": whole_code,
        "merged": merged,
        "k6": json.loads((tmp / "k6.json").read_text()),
        "export": json.loads((tmp / "merged.json").read_text()),
        "joined": json.loads((tmp / "joined-summary.json").read_text()),
        "states": states,
    }


def test_the_merged_verdicts_and_exit_code_are_the_whole_runs(runs: dict[str, Any]) -> None:
    assert runs["whole_code"] == 99  # work: max<50 fails
    assert runs["merged"].returncode == 99, runs["merged"].stderr
    k6_verdicts = {
        (name, source): failed
        for name, metric in runs["k6"]["metrics"].items()
        for source, failed in (metric.get("thresholds") or {}).items()
    }
    merged = {
        (name, source): failed
        for name, metric in runs["export"]["metrics"].items()
        for source, failed in (metric.get("thresholds") or {}).items()
    }
    assert merged == k6_verdicts
    assert merged[("done", "count>=90")] is False  # passes: only the whole test gets there
    assert merged[("work", "max<50")] is True
    assert "merged 3 instances" in runs["merged"].stderr
    assert "✓ 'count>=90'" in runs["merged"].stdout


def test_deterministic_numbers_equal_k6s_own_export_of_the_whole_run(runs: dict[str, Any]) -> None:
    for name in DETERMINISTIC:
        ours, theirs = runs["export"]["metrics"][name], runs["k6"]["metrics"][name]
        for key, value in theirs.items():
            if key in ("thresholds", "rate"):
                continue  # a counter's per-second rate depends on each run's duration
            if key in ("p(90)", "p(95)", "med"):
                assert ours[key] == pytest.approx(value, rel=0.01), (name, key)
            else:
                assert ours[key] == pytest.approx(value, rel=1e-12), (name, key)
    assert runs["export"]["root_group"] == runs["k6"]["root_group"]


def test_every_number_equals_one_bridge_over_all_the_samples(runs: dict[str, Any]) -> None:
    joined = runs["joined"]["metrics"]
    merged = runs["export"]["metrics"]
    assert set(merged) == set(joined)
    for name, metric in joined.items():
        for key, value in metric.items():
            if key == "thresholds":
                assert merged[name][key] == value, name
            elif key in ("med", "p(90)", "p(95)"):
                assert merged[name][key] == pytest.approx(value, rel=0.01), (name, key)
            elif name in ("vus", "vus_max"):
                continue  # summed across runners, where one stream holds each runner's
            else:
                assert merged[name][key] == pytest.approx(value, rel=1e-9), (name, key)


def test_a_state_read_twice_counts_once(runs: dict[str, Any], tmp_path: Path) -> None:
    twice = bridge(
        "merge", *runs["states"], runs["states"][0], "--summary-export", str(tmp_path / "m.json")
    )
    assert "merged 3 instances" in twice.stderr
    export = json.loads((tmp_path / "m.json").read_text())
    assert export["metrics"]["done"]["count"] == 90


def test_a_file_that_is_not_a_state_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"type":"Point"}')
    done = bridge("merge", str(bad))
    assert done.returncode == 2
    assert f"{bad} is not a k6mcp-bridge state file" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_state_that_cannot_be_written_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "no such folder" / "state.json"
    done = bridge(
        str(ROOT / "sample_outputs" / "k6-run.json"),
        "--no-passthrough",
        "--state-export",
        str(target),
    )
    assert done.returncode == 2
    assert f"cannot write the state to {target}" in done.stderr


def test_the_merged_run_goes_to_the_plugins_given(runs: dict[str, Any], tmp_path: Path) -> None:
    from k6mcp_bridge.store.query import Store

    store = tmp_path / "runs.db"
    done = bridge("merge", *runs["states"], "-p", "store", "-o", f"store.path={store}")
    assert done.returncode == 99, done.stderr
    with Store(store) as stored:
        [run] = stored.runs()
        final = stored.snapshot(run.id, "final")
        verdicts = {(v["metric"], v["threshold"]): v["ok"] for v in stored.verdicts(run.id)}
    assert run.state == "finished"
    assert final is not None and final["final"]
    for name in DETERMINISTIC:  # the numbers of the merge's own summary export
        exported = runs["export"]["metrics"][name]
        shared = exported.keys() & final["metrics"][name]["values"].keys()
        assert shared, name
        for key in shared:
            value = final["metrics"][name]["values"][key]
            assert exported[key] == pytest.approx(value, rel=1e-12), (name, key)
    assert verdicts[("done", "count>=90")] is True
    alone = bridge("merge", *runs["states"], "-o", f"store.path={store}")
    assert alone.returncode == 2
    assert "add -p store" in alone.stderr
