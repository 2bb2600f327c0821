"""The MCP server: the tools of ``tools`` (read-only), three resources and one prompt.

Each tool opens the store for the one call (read-only: it never blocks a writer, sees every
delivery committed so far, and a store that appears later is found), runs its function of
``tools`` and returns the dict as structured content with a compact text rendering of it. A
bad argument or an unreadable store is a tool error (``isError``) whose text names the problem
and the valid choices; the server itself never stops on one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from k6mcp_bridge import __version__
from k6mcp_bridge.errors import BridgeError
from k6mcp_bridge.store.query import Store

from . import endpoints, tools

INSTRUCTIONS = """\
k6 load-test runs, live and finished, from a k6mcp-bridge run store. Start with list_runs or
get_summary (run_id "latest" is the newest running run, else the newest run). Then:
query_metric for a metric over a window (window_s counts back from the run's last sample) or by
tag; top_errors and slowest_endpoints to find what fails or is slow; get_thresholds for pass/fail;
compare_runs against an earlier run. Every result says run_state (running, finished,
interrupted, stale) and as_of: a running run's numbers are so far."""

READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

_HEAD = ("run_id", "run_state", "as_of")

RunId = Annotated[
    str, Field(description='A run id, or "latest" (the newest running run, else the newest).')
]
Limit = Annotated[int, Field(description=f"Rows at most (hard cap {tools.MAX_LIMIT}).")]
Window = Annotated[
    float | None,
    Field(description="Only the last WINDOW_S seconds before the run's last sample (> 0)."),
]


def render(data: dict[str, Any]) -> str:
    """A compact text form: a header line, then one line per scalar or list row (JSON)."""
    head = f"run {data.get('run_id')} ({data.get('run_state')}) as of {data.get('as_of')}"
    lines = [head]
    for key, value in data.items():
        if key in _HEAD:
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{key}: {len(value)}")
            lines += ["  " + _compact(row) for row in value]
        elif isinstance(value, dict) and key == "metrics":
            lines.append(f"{key}:")
            lines += [f"  {name}: {_compact(body)}" for name, body in value.items()]
        else:
            lines.append(f"{key}: {_compact(value)}")
    if data.get("truncated"):
        lines.append(f"(truncated: raise limit, up to {tools.MAX_LIMIT})")
    return "\n".join(lines)


def _compact(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build_server(
    store_path: Path | None = None, status: Callable[[], str | None] | None = None
) -> MCPServer:
    """The server over the store at ``store_path`` (default: the store's default path).
    ``status``: what ``--follow`` has to say (an error), added to a failing call's text."""

    def call(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> CallToolResult:
        try:
            with Store(store_path) as store:
                data = fn(store, *args, **kwargs)
        except BridgeError as exc:
            note = status() if status is not None else None
            raise ToolError(str(exc) + (f" ({note})" if note else "")) from None
        return CallToolResult(
            content=[TextContent(type="text", text=render(data))], structured_content=data
        )

    server = MCPServer(
        "k6mcp-bridge",
        title="k6 runs (k6mcp-bridge)",
        instructions=INSTRUCTIONS,
        version=__version__,
        log_level="WARNING",
    )
    tool = server.tool

    @tool(annotations=READ_ONLY)
    def list_runs(
        state: Annotated[
            str, Field(description="any, running, finished, interrupted or stale.")
        ] = "any",
        limit: Limit = tools.DEFAULT_LIMIT,
    ) -> CallToolResult:
        """The runs in the store, newest first: id, source, script, start/end, state, duration,
        HTTP requests, failed thresholds."""
        return call(tools.list_runs, state, limit)

    @tool(annotations=READ_ONLY)
    def get_summary(run_id: RunId = "latest", metrics: list[str] | None = None) -> CallToolResult:
        """k6's end-of-test summary data (handleSummary shape) of a run so far: per metric its
        type, contains, values (count, rate, avg, med, p(95)...) and thresholds; checks by group."""
        return call(tools.get_summary, run_id, metrics)

    @tool(annotations=READ_ONLY)
    def list_metrics(run_id: RunId = "latest") -> CallToolResult:
        """The metrics of a run: name, type (counter, gauge, rate, trend), contains."""
        return call(tools.list_metrics, run_id)

    @tool(annotations=READ_ONLY)
    def list_tag_values(
        metric: str, tag: str, run_id: RunId = "latest", limit: Limit = 50
    ) -> CallToolResult:
        """The values a tag (name, url, status, method, scenario...) takes on a metric, each with
        its sample count, most first."""
        return call(tools.list_tag_values, metric, tag, run_id, limit)

    @tool(annotations=READ_ONLY)
    def query_metric(
        metric: str,
        run_id: RunId = "latest",
        stats: Annotated[
            list[str],
            Field(description="k6's names: count, rate, avg, min, med, max, p(N), value."),
        ] = ["count", "avg", "p(95)"],  # noqa: B006 (pydantic copies it)
        window_s: Window = None,
        start_s: Annotated[float | None, Field(description="Seconds from the run's start.")] = None,
        end_s: Annotated[float | None, Field(description="Seconds from the run's start.")] = None,
        tags: Annotated[
            dict[str, str],
            Field(description='Keep series with these tags, e.g. {"name": "login"}.'),
        ] = {},  # noqa: B006
        group_by: Annotated[
            list[str], Field(description="One series per value of these tags.")
        ] = [],  # noqa: B006
        step_s: Annotated[
            float | None, Field(description="Also points, one per STEP_S seconds.")
        ] = None,
        limit: Limit = tools.DEFAULT_LIMIT,
    ) -> CallToolResult:
        """k6's stats of one metric over a window of a run, filtered by tags, grouped by tags,
        optionally as a time series (step_s). Counts are exact, percentiles within 1%."""
        return call(
            tools.query_metric,
            metric,
            run_id,
            stats,
            window_s,
            start_s,
            end_s,
            tags,
            group_by,
            step_s,
            limit,
        )

    @tool(annotations=READ_ONLY)
    def get_thresholds(run_id: RunId = "latest", history: bool = False) -> CallToolResult:
        """Every threshold (windowed ones too): expression, ok, observed value, abortOnFail, the
        time it first failed; with history, every change of its verdict."""
        return call(tools.get_thresholds, run_id, history)

    @tool(annotations=READ_ONLY)
    def top_errors(
        run_id: RunId = "latest", window_s: Window = None, limit: Limit = 10
    ) -> CallToolResult:
        """Failed HTTP requests grouped by status, endpoint (name tag, else url) and error_code:
        count, share of all requests, first and last seen."""
        return call(endpoints.top_errors, run_id, window_s, limit)

    @tool(annotations=READ_ONLY)
    def slowest_endpoints(
        run_id: RunId = "latest",
        stat: Annotated[
            str, Field(description="Rank by this trend stat, e.g. p(95), p(99), avg, max.")
        ] = "p(95)",
        window_s: Window = None,
        min_count: Annotated[
            int, Field(description="Leave out endpoints with fewer requests.")
        ] = 20,
        limit: Limit = 10,
    ) -> CallToolResult:
        """http_req_duration per endpoint (name tag, else url) and method, slowest first: count,
        avg, med, p(95), p(99), max (ms) and the error rate."""
        return call(endpoints.slowest_endpoints, run_id, stat, window_s, min_count, limit)

    @tool(annotations=READ_ONLY)
    def compare_runs(
        baseline_run_id: str,
        candidate_run_id: RunId = "latest",
        metrics: list[str] | None = None,
        limit: Limit = tools.DEFAULT_LIMIT,
    ) -> CallToolResult:
        """Two runs side by side: per metric and stat the baseline, the candidate and the change in
        %, biggest change first; and every threshold whose verdict differs."""
        return call(tools.compare_runs, baseline_run_id, candidate_run_id, metrics, limit)

    def read(fn: Callable[..., dict[str, Any]], *args: Any) -> str:
        try:
            with Store(store_path) as store:
                return json.dumps(fn(store, *args), indent=1)
        except BridgeError as exc:
            raise ResourceError(str(exc)) from None

    @server.resource("k6://runs", name="runs", mime_type="application/json")
    def runs_resource() -> str:
        """The runs in the store (as list_runs)."""
        return read(tools.list_runs, "any", tools.MAX_LIMIT)

    @server.resource("k6://runs/{run_id}/summary", name="run summary", mime_type="application/json")
    def summary_resource(run_id: str) -> str:
        """A run's summary (as get_summary)."""
        return read(tools.get_summary, run_id)

    @server.resource(
        "k6://runs/{run_id}/thresholds", name="run thresholds", mime_type="application/json"
    )
    def thresholds_resource(run_id: str) -> str:
        """A run's thresholds with their history (as get_thresholds)."""
        return read(tools.get_thresholds, run_id, True)

    @server.prompt()
    def diagnose_run(run_id: str = "latest") -> str:
        """Diagnose a k6 run: what fails, what is slow, since when, and why it matters."""
        return (
            f"Diagnose the k6 run {run_id!r} with the k6 tools. 1. get_summary and get_thresholds: "
            "is it running or finished, which thresholds fail? 2. top_errors: which endpoint "
            "fails, with which status, since when? 3. slowest_endpoints: which endpoint is slow "
            "(p(95), p(99))? 4. For the worst endpoint, query_metric http_req_duration with "
            'tags {"name": ...}, step_s 10, to see when it got slow. 5. If an earlier run of '
            "the same script exists (list_runs), compare_runs against it. Answer with the "
            "findings, the numbers behind them (and run_state/as_of), and what to look at next."
        )

    return server
