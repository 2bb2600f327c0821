"""The tools on real k6 runs, through the real MCP client (in-memory transport, both the
2026-07-28 protocol and the legacy 2025-11-25 initialize handshake).

One module-wide store holds two real k6 runs of ``k6/mix.js``: a fast one (``/sleep?ms=20``)
and a slow one (``/sleep?ms=200``, the latest), each with k6's own ``--summary-export``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp_types import CallToolResult

from k6mcp_bridge.store.query import Store
from k6mcp_bridge_mcp import tools
from k6mcp_bridge_mcp.server import build_server
from mcplab import Capture, k6_capture, k6_percentile, store_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Capture, Capture]]:
    folder = tmp_path_factory.mktemp("mcp-runs")
    store = folder / "runs.db"
    fast = k6_capture(folder, "fast", SLOW_MS="20")
    store_run(fast.results, store)
    slow = k6_capture(folder, "slow", SLOW_MS="200")
    store_run(slow.results, store)
    yield store, fast, slow


def call_all(
    store: Path, calls: list[tuple[str, dict[str, Any]]], mode: str = "auto"
) -> list[CallToolResult]:
    """Each tool call in one session of the real client, in order."""

    async def go() -> list[CallToolResult]:
        async with Client(build_server(store), mode=mode) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def data(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    assert text.startswith(f"run {result.structured_content['run_id']} (")
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


def run_ids(store: Path) -> tuple[str, str]:
    with Store(store) as opened:
        slow, fast = (run.id for run in opened.runs())
    return fast, slow


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_both_protocols_list_read_only_tools(runs: Any, mode: str) -> None:
    store = runs[0]

    async def go() -> tuple[str, list[Any]]:
        async with Client(build_server(store), mode=mode) as client:
            listed = await client.list_tools()
            return client.protocol_version, listed.tools

    version, listed = anyio.run(go)
    assert version == ("2026-07-28" if mode == "auto" else "2025-11-25")
    names = {tool.name for tool in listed}
    assert names == {
        "list_runs", "get_summary", "list_metrics", "list_tag_values", "query_metric",
        "get_thresholds", "top_errors", "slowest_endpoints", "compare_runs",
    }  # fmt: skip
    for tool in listed:
        assert tool.annotations is not None and tool.annotations.read_only_hint is True
    [result] = call_all(store, [("list_runs", {})], mode)
    assert [row["run_state"] for row in data(result)["runs"]] == ["finished", "finished"]


def test_summary_equals_k6s_summary_export(runs: Any) -> None:
    store, fast, slow = runs
    fast_id, _ = run_ids(store)
    latest, first = call_all(store, [("get_summary", {}), ("get_summary", {"run_id": fast_id})])
    for result, capture in ((latest, slow), (first, fast)):
        summary = data(result)
        assert summary["run_state"] == "finished" and summary["final"] is True
        exported = capture.summary_metrics()
        assert set(summary["metrics"]) == set(exported)
        for name, metric in summary["metrics"].items():
            values, theirs = metric["values"], dict(exported[name])
            failed = theirs.pop("thresholds", {})  # k6's export: true means it failed
            assert {
                src: not state["ok"] for src, state in (metric["thresholds"] or {}).items()
            } == (failed), name
            if metric["type"] == "counter":
                assert values["count"] == theirs["count"], name
            elif metric["type"] == "rate":
                assert (values["passes"], values["fails"]) == (theirs["passes"], theirs["fails"])
            elif metric["type"] == "trend":
                assert set(values) == set(theirs), name
                for stat, value in values.items():
                    assert value == pytest.approx(theirs[stat], rel=1e-9, abs=1e-12), (name, stat)
            else:
                assert values["value"] == theirs["value"], name


def test_query_metric_exact_count_and_p95_within_one_percent(runs: Any) -> None:
    store, _, slow = runs
    [result] = call_all(
        store,
        [
            (
                "query_metric",
                {
                    "metric": "http_req_duration",
                    "tags": {"name": "slow"},
                    "stats": ["count", "p(95)"],
                },
            )
        ],
    )
    answer = data(result)
    [series] = answer["series"]
    exact = slow.values("http_req_duration", name="slow")
    assert series["values"]["count"] == len(exact) > 0
    expected = k6_percentile(exact, 0.95)
    assert abs(series["values"]["p(95)"] - expected) <= 0.01 * expected
    assert answer["run_state"] == "finished" and answer["as_of"] is not None


def test_top_errors_and_slowest_endpoints_rank_the_culprits_first(runs: Any) -> None:
    store, _, slow = runs
    errors, endpoints = call_all(store, [("top_errors", {}), ("slowest_endpoints", {})])
    found = data(errors)
    first = found["errors"][0]
    assert (first["status"], first["endpoint"]) == ("404", "missing")
    assert first["count"] == len(slow.values("http_reqs", name="missing"))
    assert first["share"] == pytest.approx(first["count"] / len(slow.values("http_reqs")))
    assert first["first_seen"] <= first["last_seen"]
    ranked = data(endpoints)["endpoints"]
    assert ranked[0]["endpoint"] == "slow" and ranked[0]["method"] == "GET"
    assert ranked[0]["p(95)"] >= 200
    missing = next(row for row in ranked if row["endpoint"] == "missing")
    assert missing["error_rate"] == 1.0


def test_compare_runs_shows_the_slowdown_and_the_flipped_threshold(runs: Any) -> None:
    store = runs[0]
    fast_id, slow_id = run_ids(store)
    [result] = call_all(
        store, [("compare_runs", {"baseline_run_id": fast_id, "metrics": ["http_req_duration"]})]
    )
    answer = data(result)
    assert answer["run_id"] == slow_id and answer["baseline"]["run_id"] == fast_id
    p95 = next(row for row in answer["changes"] if row["stat"] == "p(95)")
    assert p95["candidate"] > 2 * p95["baseline"] and p95["change_pct"] > 100
    assert answer["thresholds_changed"] == [
        {
            "metric": "http_req_duration",
            "threshold": "p(95)<150",
            "baseline_ok": True,
            "candidate_ok": False,
        }
    ]


def test_thresholds_tag_values_metrics_and_steps(runs: Any) -> None:
    store, _, slow = runs
    thresholds, values, metrics, stepped = call_all(
        store,
        [
            ("get_thresholds", {"history": True}),
            ("list_tag_values", {"metric": "http_reqs", "tag": "name"}),
            ("list_metrics", {}),
            ("query_metric", {"metric": "http_reqs", "stats": ["count"], "step_s": 1, "limit": 1}),
        ],
    )
    rows = {row["threshold"]: row for row in data(thresholds)["thresholds"]}
    assert rows["p(95)<150"]["ok"] is False and rows["p(95)<150"]["first_failure"] is not None
    assert rows["p(95)<150"]["changes"]
    assert rows["rate<0.5"]["ok"] is True
    counted = {row["value"]: row["count"] for row in data(values)["values"]}
    assert counted["missing"] == len(slow.values("http_reqs", name="missing"))
    assert {"name": "http_req_duration", "type": "trend", "contains": "time"} in data(metrics)[
        "metrics"
    ]
    [series] = data(stepped)["series"]
    assert sum(point["values"]["count"] for point in series["points"]) == series["values"]["count"]


def test_lists_are_capped_and_say_so(runs: Any) -> None:
    store = runs[0]
    listed, grouped = call_all(
        store,
        [
            ("list_runs", {"limit": 1}),
            ("query_metric", {"metric": "http_req_duration", "group_by": ["name"], "limit": 2}),
        ],
    )
    assert len(data(listed)["runs"]) == 1 and data(listed)["truncated"] is True
    assert len(data(grouped)["series"]) == 2 and data(grouped)["truncated"] is True
    assert "truncated" in listed.content[0].text  # type: ignore[union-attr]


def test_bad_arguments_are_tool_errors_naming_the_choices(runs: Any) -> None:
    store = runs[0]
    results = call_all(
        store,
        [
            ("get_summary", {"run_id": "nope"}),
            ("query_metric", {"metric": "http_req_duraton"}),
            ("query_metric", {"metric": "http_req_duration", "tags": {"nam": "x"}}),
            ("query_metric", {"metric": "http_req_duration", "stats": ["p95"]}),
            ("query_metric", {"metric": "http_req_duration", "window_s": 0}),
            ("top_errors", {"window_s": -5}),
            ("list_tag_values", {"metric": "http_reqs", "tag": "nope"}),
            ("slowest_endpoints", {"stat": "rate"}),
            ("list_runs", {"limit": 0}),
            ("list_runs", {"state": "done"}),
        ],
    )
    texts = [error_text(result) for result in results]
    assert "no run 'nope'" in texts[0] and "latest" in texts[0]
    assert "http_req_duration" in texts[1] and "http_reqs" in texts[1]
    assert "no tag 'nam'" in texts[2] and "name" in texts[2]
    assert "p95" in texts[3]
    assert "window_s 0" in texts[4] and "window_s -5" in texts[5]
    assert "no tag 'nope'" in texts[6] and "status" in texts[6]
    assert "rate" in texts[7] and "p(N)" in texts[7]
    assert "limit 0" in texts[8] and str(tools.MAX_LIMIT) in texts[8]
    assert "state 'done'" in texts[9] and "finished" in texts[9]


def test_a_missing_store_is_a_clean_error_and_the_server_goes_on(tmp_path: Path) -> None:
    store = tmp_path / "later.db"

    async def go() -> list[CallToolResult]:
        async with Client(build_server(store)) as client:
            first = await client.call_tool("list_runs", {})
            again = await client.call_tool("get_summary", {})
            store.write_bytes(b"not sqlite at all, just some bytes" * 100)
            corrupt = await client.call_tool("get_summary", {})
            return [first, again, corrupt]

    first, again, corrupt = anyio.run(go)
    assert "no such file" in error_text(first) and str(store) in error_text(first)
    assert "no such file" in error_text(again)
    assert "not a k6mcp-bridge store" in error_text(corrupt)


def test_resources_and_prompt(runs: Any) -> None:
    store = runs[0]
    _, slow_id = run_ids(store)

    async def go() -> tuple[Any, ...]:
        async with Client(build_server(store)) as client:
            listed = await client.read_resource("k6://runs")
            summary = await client.read_resource(f"k6://runs/{slow_id}/summary")
            thresholds = await client.read_resource(f"k6://runs/{slow_id}/thresholds")
            prompt = await client.get_prompt("diagnose_run", {"run_id": slow_id})
            return listed, summary, thresholds, prompt

    listed, summary, thresholds, prompt = anyio.run(go)
    assert slow_id in listed.contents[0].text
    assert '"http_req_duration"' in summary.contents[0].text
    assert "p(95)<150" in thresholds.contents[0].text
    text = prompt.messages[0].content.text
    assert slow_id in text and "top_errors" in text and "slowest_endpoints" in text
