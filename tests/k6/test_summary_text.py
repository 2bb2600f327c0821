"""The end-of-test text summary against what k6 v1.1.0 printed for the same runs.

k6's stdout around the summary also holds its banner, the scenario header and the progress
lines (``running (..)``, ``default ✓ [ 100% ]``): those are not the summary and are not
compared. Everything from the first section title (``  █ THRESHOLDS`` or ``  █ TOTAL
RESULTS``) to the last blank line before the final progress line is compared as text, every
character, trailing spaces included.

Counter rates divide by k6's test-run duration, which the stream does not carry: it is taken
from the same run's ``--summary-export`` where there is one (exact to the nanosecond), else
from the rates k6 printed (the middle of the interval that reproduces all of them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import K6_SAMPLES, K6_STDOUT, SAMPLES
from k6_summaries import K6Run, build, export_duration, run_k6
from k6mcp_bridge.k6.humanize import collation_key, humanize
from k6mcp_bridge.k6.summary_text import render
from k6mcp_bridge.messages import MetricsSnapshot, MetricSummary

SCRIPTS = K6_SAMPLES / "scripts"
_RATE_LINE = re.compile(r"^\s+\S+?\.+: (\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)/s\s*$")


def k6_summary(stdout: str) -> str:
    """k6's summary in its stdout: first section title up to the final progress line."""
    lines = stdout.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("  █ "))
    ends = [i for i, line in enumerate(lines) if line.startswith("running (") and i > start]
    return "".join(lines[start : ends[-1] if ends else len(lines)])


def duration_from_text(stdout: str) -> float:
    """A test-run duration that gives every ``count rate/s`` line k6 printed."""
    low, high = 0.0, float("inf")
    for line in stdout.splitlines():
        match = _RATE_LINE.match(line)
        if match:
            count, shown = float(match[1]), match[2]
            half = 0.5 * 10.0 ** -len(shown.partition(".")[2])
            low = max(low, count / (float(shown) + half))
            high = min(high, count / (float(shown) - half))
    assert low < high
    return (low + high) / 2


def assert_same_summary(stream: Path, script: Path, stdout: str, duration_s: float) -> str:
    built = build(stream, script, duration_s)
    ours = render(built.snapshot, checks=built.tree.checks(), observed=built.observed)
    assert ours.startswith("\n\n  █ ") and ours.endswith("\n\n\n\n")
    assert ours.strip("\n") == k6_summary(stdout).strip("\n")
    return ours


TEXT_CASES = {
    # stream, k6's stdout, script
    "full-2vus": ("json-full-2vus.jsonl", "stdout-full-default-summary.txt", "full.js"),
    "threshold-fail": (
        "json-threshold-fail-exit99.jsonl",
        "stdout-threshold-fail.txt",
        "thr-fail.js",
    ),
    "json-dash-quiet": (
        "stdout-json-dash-quiet-with-summary.txt",
        "stdout-json-dash-quiet-with-summary.txt",
        "small.js",
    ),
    "json-dash-no-quiet": (
        "stdout-json-dash-no-quiet-small.txt",
        "stdout-json-dash-no-quiet-small.txt",
        "small.js",
    ),
}


@pytest.mark.parametrize("case", TEXT_CASES)
def test_summary_is_k6s_text(case: str) -> None:
    stream, stdout_file, script = TEXT_CASES[case]
    stdout = (K6_SAMPLES / stdout_file).read_text()
    assert_same_summary(K6_SAMPLES / stream, SCRIPTS / script, stdout, duration_from_text(stdout))


def test_full_run_with_k6s_exact_duration() -> None:
    k6 = json.loads((K6_SAMPLES / "summary-export-full.json").read_text())
    stdout = (K6_SAMPLES / "stdout-full-default-summary.txt").read_text()
    duration = export_duration(k6["metrics"])
    assert_same_summary(K6_SAMPLES / "json-full-2vus.jsonl", SCRIPTS / "full.js", stdout, duration)


def test_sample_outputs_stdout_with_split_records() -> None:
    """``--out json=-`` without ``-q``: the JSON, cut by progress lines, and the summary."""
    stdout = K6_STDOUT.read_text()
    ours = assert_same_summary(K6_STDOUT, SAMPLES / "script.js", stdout, duration_from_text(stdout))
    assert "    ✗ even iteration\n      ↳  50% — ✓ 4 / ✗ 4\n" in ours


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> K6Run:
    return run_k6(tmp_path_factory.mktemp("live"))


def test_live_run_summary(live: K6Run) -> None:
    """Failing checks, setup/teardown checks, a time counter (``31.5s 16m13s/s``), p(99.9)."""
    duration = export_duration(json.loads(live.export.read_text())["metrics"])
    ours = assert_same_summary(live.stream, live.script, live.stdout, duration)
    assert "    ✓ setup ok\n    ✓ prepared\n" in ours
    assert "✓ 'p(99.9)<1000' p(99.9)=" in ours


def test_colors_do_not_move_columns() -> None:
    stdout = (K6_SAMPLES / "stdout-threshold-fail.txt").read_text()
    built = build(
        K6_SAMPLES / "json-threshold-fail-exit99.jsonl",
        SCRIPTS / "thr-fail.js",
        duration_from_text(stdout),
    )
    plain = render(built.snapshot, observed=built.observed)
    colored = render(built.snapshot, observed=built.observed, color=True)
    assert "\x1b[31m✗\x1b[0m" in colored and "\x1b[1mTOTAL RESULTS\x1b[0m" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == plain


def test_no_checks_no_thresholds_and_a_time_unit() -> None:
    metric = MetricSummary(
        type="trend", contains="time", values={"avg": 1.5, "p(99)": 1234.5678, "count": 3.0}
    )
    snapshot = MetricsSnapshot(
        time=None,
        final=True,
        test_run_duration_ms=1000.0,
        metrics={"http_req_duration": metric, "group_duration": metric},
        root_group={"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e"},
        summary_time_unit="s",
    )
    assert render(snapshot) == (
        "\n\n  █ TOTAL RESULTS \n\n    HTTP\n"
        "    http_req_duration....................: "
        "avg=0.00s p(99)=1.23s count=3\n\n\n\n"
    )


# What k6 v1.1.0's own summary.js (humanizeValue, run in k6) printed for these values.
HUMANIZED = {
    ("trend", "time", None): [
        (0, "0s"),
        (0.0000004, "0ns"),
        (0.0005, "500ns"),
        (-3, "-3000000ns"),
        (0.41858, "418.58µs"),
        (0.99999, "999.99µs"),
        (1, "1ms"),
        (2.692604090909091, "2.69ms"),
        (22.046109, "22.04ms"),
        (999.999, "999.99ms"),
        (1000, "1s"),
        (1234.5678, "1.23s"),
        (59999.999, "59.99s"),
        (60000, "1m0s"),
        (61234.5, "1m1s"),
        (3723000, "1h2m3s"),
        (7323456.7, "2h2m3s"),
        (172800001, "48h0m0s"),
        (float("nan"), "NaNhNaNmNaNs"),
        (float("inf"), "InfinityhNaNmNaNs"),
    ],
    ("trend", "time", "s"): [(1.23456, "0.00s"), (1234.5678, "1.23s")],
    ("trend", "time", "ms"): [(1.23456, "1.23ms")],
    ("trend", "time", "us"): [(1.23456, "1234.56µs")],
    ("counter", "data", None): [
        (0, "0 B"),
        (5, "5 B"),
        (9.5, "9.5 B"),
        (10, "10 B"),
        (591, "591 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (11669, "12 kB"),
        (2853.1948211580357, "2.9 kB"),
        (633.77, "634 B"),
        (1e6, "1.0 MB"),
        (999999, "1000 kB"),
        (1.5e9, "1.5 GB"),
        (2.5e12, "2.5 TB"),
        (99950, "100 kB"),
    ],
    ("trend", "default", None): [
        (0, "0"),
        (3.912170463495464, "3.91217"),
        (13.692596622234124, "13.692597"),
        (1e21, "1e+21"),
        (2.500000000000003e20, "250000000000000300000"),
        (-3, "-3"),
        (617283.75, "617283.75"),
        (1e-7, "0"),
        (5e-7, "0"),
        (123456.1234565, "123456.123457"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
    ("rate", "default", None): [
        (0, "0.00%"),
        (1, "100.00%"),
        (0.48484848484848486, "48.48%"),
        (0.99999, "99.99%"),
        (0.123456, "12.34%"),
        (2 / 3, "66.66%"),
        (float("nan"), "NaN%"),
    ],
}


@pytest.mark.parametrize("kind", HUMANIZED, ids=str)
def test_humanize_like_k6(kind: tuple[str, str, str | None]) -> None:
    metric_type, contains, unit = kind
    metric = MetricSummary(type=metric_type, contains=contains, values={})  # type: ignore[arg-type]
    assert [humanize(value, metric, unit) for value, _ in HUMANIZED[kind]] == [
        shown for _, shown in HUMANIZED[kind]
    ]


def test_names_sort_like_k6s_locale_compare() -> None:
    """The order k6 v1.1.0's ``localeCompare`` gave these names and characters."""
    names = [
        "_a", "0a", "9", "a", "A", "a_", "a__", "a_1", "a_b", "a-", "a:", "a..", "a{", "a}",
        "a0", "a1", "a10", "a2", "ab", "aB", "AB", "ÄB", "alpha", "b", "B", "data_received",
        "data_sent", "e", "é", "f", "http_req_duration", "http_req_failed", "http_reqs",
        "iteration_duration", "iterations", "my metric", "my_metric", "my_Metric", "my-metric",
        "my.metric", "mymetric", "vus", "vus_max", "x", "x_y", "x{ b}", "x{a:1}", "x{A:1}",
        "x{a:2}", "x{b}", "Zeta",
    ]  # fmt: skip
    assert sorted(reversed(names), key=collation_key) == names
    ascii_order = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789aAbBcCdDeEfFgGhHiIjJkKlLmMnNoOpP"
    assert sorted(ascii_order, key=collation_key) == list(ascii_order)


def test_check_list_from_the_root_group_alone() -> None:
    """Without the tree's list, the root group's checks (merged by name, subgroups first)."""
    k6 = json.loads((K6_SAMPLES / "summary-export-full.json").read_text())
    built = build(
        K6_SAMPLES / "json-full-2vus.jsonl", SCRIPTS / "full.js", export_duration(k6["metrics"])
    )
    with_tree = render(built.snapshot, checks=built.tree.checks(), observed=built.observed)
    assert render(built.snapshot, observed=built.observed) == with_tree
