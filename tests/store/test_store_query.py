"""The query API and the `runs`/`query` commands: windows, groups, steps, caps, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import K6_SAMPLES
from k6mcp_bridge.store.query import MAX_LIMIT
from storelab import cli, k6_values, query_json, store_file

SAMPLE = K6_SAMPLES / "json-full-2vus.jsonl"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "s.db"
    store_file(SAMPLE, path)
    return path


def test_group_by_gives_one_series_per_value_sorted_by_count(store: Path) -> None:
    result = query_json(store, "http_req_duration", "--group-by", "name", "--stat", "count")
    counts = {s["tags"]["name"]: s["values"]["count"] for s in result["series"]}
    expected: dict[str, int] = {}
    for tags, values in k6_values(SAMPLE, "http_req_duration").items():
        name = dict(tags)["name"]
        expected[name] = expected.get(name, 0) + len(values)
    assert counts == expected
    ordered = [s["values"]["count"] for s in result["series"]]
    assert ordered == sorted(ordered, reverse=True)
    assert result["truncated"] is False
    assert all("points" not in s for s in result["series"])


def test_limit_truncates(store: Path) -> None:
    result = query_json(store, "http_req_duration", "--group-by", "name", "--limit", "1")
    assert len(result["series"]) == 1 and result["truncated"] is True


def test_default_stats_follow_the_metric_type(store: Path) -> None:
    assert list(query_json(store, "http_reqs")["series"][0]["values"]) == ["count", "rate"]
    assert list(query_json(store, "vus")["series"][0]["values"]) == ["value"]
    assert "p(95)" in query_json(store, "http_req_duration")["series"][0]["values"]


def test_windows_count_back_from_the_last_bucket(store: Path) -> None:
    whole = query_json(store, "http_reqs", "--stat", "count")
    last = query_json(store, "http_reqs", "--window", "2s", "--stat", "count", "--stat", "rate")
    assert last["as_of"] == whole["as_of"] == last["window"]["end"]
    assert last["window"]["start"] == "2026-11-24T18:00:05Z"
    [series] = last["series"]
    assert 0 < series["values"]["count"] < whole["series"][0]["values"]["count"]
    assert series["values"]["rate"] == series["values"]["count"] / 2
    head = query_json(store, "http_reqs", "--since", "0s", "--until", "3s", "--stat", "count")
    absolute = query_json(
        store,
        "http_reqs",
        *("--since", "2026-11-24T18:00:02Z", "--until", "2026-11-24T18:00:05Z", "--stat", "count"),
    )
    assert head["series"] == absolute["series"]
    assert head["window"] == {"start": "2026-11-24T18:00:02Z", "end": "2026-11-24T18:00:05Z"}
    total = head["series"][0]["values"]["count"] + series["values"]["count"]
    assert total == whole["series"][0]["values"]["count"]


def test_step_gives_points_that_add_up(store: Path) -> None:
    result = query_json(store, "http_reqs", "--step", "1s", "--stat", "count")
    [series] = result["series"]
    points = series["points"]
    assert [p["start"][-9:] for p in points][:2] == ["18:00:02Z", "18:00:03Z"]
    assert all(p["end"] > p["start"] for p in points)
    assert sum(p["values"]["count"] for p in points) == series["values"]["count"]


def test_the_table_output(store: Path) -> None:
    done = cli("query", "http_req_duration", "--store", str(store), "--group-by", "name")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run ") and "(finished)" in lines[0]
    assert lines[1].split() == ["name", "count", "avg", "min", "med", "p(90)", "p(95)", "max"]
    runs = cli("runs", "--store", str(store))
    assert runs.stdout.splitlines()[0].split()[:2] == ["ID", "STATE"]
    assert "finished" in runs.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no metric 'nope' in run "),
        (["http_reqs", "--stat", "p(95)"], "valid: count, rate"),
        (["http_reqs", "--run", "19990101T000000.000Z-000000"], "runs: latest, "),
        (["http_reqs", "--tag", "colour=red"], "tags: error_code, expected_response, group"),
        (["http_reqs", "--tag", "name=nope"], "name: home, "),
        (["http_reqs", "--tag", "name"], "expected K=V"),
        (["http_reqs", "--group-by", "colour"], "has no tag 'colour'"),
        (["http_reqs", "--window", "0s"], "window '0s' must be longer than 0"),
        (["http_reqs", "--window", "-5s"], "must be longer than 0"),
        (["http_reqs", "--window", "ten"], "window 'ten' is not a duration"),
        (["http_reqs", "--step", "1x"], "step '1x' is not a duration"),
        (["http_reqs", "--since", "yesterday"], "since 'yesterday' is neither a duration"),
        (["http_reqs", "--since", "3s", "--until", "1s"], "the window is empty"),
        (["http_reqs", "--window", "1s", "--since", "1s"], "either a window or since/until"),
        (["http_reqs", "--limit", str(MAX_LIMIT + 1)], f"between 1 and {MAX_LIMIT}"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(store: Path, args: list[str], message: str) -> None:
    done = cli("query", *args, "--store", str(store))
    assert done.returncode == 2, done.stdout
    [line] = done.stderr.splitlines()
    assert message in line
