"""The tools as pure functions over a :class:`~k6mcp_bridge.store.query.Store`: JSON-ready dicts.

No MCP here: ``server`` wraps each function as a tool, the tests and ``benchmarks/mcp_tools.py``
call them directly; the per-endpoint tools (``top_errors``, ``slowest_endpoints``) are in
:mod:`.endpoints`. Every result carries ``run_id``, ``run_state`` (running, finished,
interrupted, stale) and ``as_of`` (the end of the run's latest bucket, stream time). A list is
cut at ``limit`` (default 20, at most :data:`MAX_LIMIT`) and says ``truncated`` when it was.
Bad arguments raise :class:`~k6mcp_bridge.errors.ConfigError` naming the valid choices, a store
that cannot be read :class:`~k6mcp_bridge.errors.StoreError`.

Exactness: counts, sums, min, max and rates come from the store's buckets and are exact;
percentiles come from the buckets' sketches (≤ 1% relative error); first/last-seen times are
bucket boundaries (1 s buckets, wider in long runs). ``get_summary`` and ``compare_runs`` read
the run's metrics snapshot (the final one once the run ended), which is what k6's end-of-test
summary and ``--summary-export`` are made from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.store.query import RunSummary, Store

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
"""The hard cap of every list (the store's own cap on series)."""
RUN_STATES = ("any", "running", "finished", "interrupted", "stale")


def valid_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"limit {limit} must be between 1 and {MAX_LIMIT}")
    return limit


def _seconds(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_head(run: RunSummary) -> dict[str, Any]:
    return {"run_id": run.id, "run_state": run.state, "as_of": run.last_time}


def valid_window(window_s: float | None) -> float | None:
    if window_s is not None and not window_s > 0:
        raise ConfigError(f"window_s {window_s:g} must be more than 0 (seconds)")
    return window_s


def _snapshot(store: Store, run: RunSummary) -> dict[str, Any] | None:
    return store.snapshot(run.id, "final") or store.snapshot(run.id, "latest")


def _choices(names: Sequence[str], cut: int = 30) -> str:
    shown = ", ".join(names[:cut])
    return (shown + f" ... ({len(names)} in all)") if len(names) > cut else shown or "none"


def _failed_thresholds(snapshot: Mapping[str, Any] | None) -> list[str]:
    if snapshot is None:
        return []
    return [
        f"{name}: {source}"
        for name, metric in snapshot["metrics"].items()
        for source, state in (metric.get("thresholds") or {}).items()
        if not state["ok"]
    ]


# --- runs and summaries --------------------------------------------------------------------------


def list_runs(store: Store, state: str = "any", limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """The runs, newest first, with their span, request count and failed thresholds."""
    if state not in RUN_STATES:
        raise ConfigError(f"state {state!r} is not one of {', '.join(RUN_STATES)}")
    valid_limit(limit)
    runs = store.runs()
    chosen = [run for run in runs if state in ("any", run.state)]
    rows = []
    for run in chosen[:limit]:
        snapshot = _snapshot(store, run)
        first, last = _seconds(run.first_time), _seconds(run.last_time)
        reqs = (snapshot or {}).get("metrics", {}).get("http_reqs")
        rows.append(
            {
                "run_id": run.id,
                "source": run.source,
                "script": run.script,
                "started_at": run.started_at,
                "ended_at": run.ended_at,
                "run_state": run.state,
                "duration_s": None if first is None or last is None else round(last - first, 3),
                "http_reqs": None if reqs is None else reqs["values"].get("count"),
                "thresholds_failed": _failed_thresholds(snapshot),
            }
        )
    head = run_head(store.run("latest")) if runs else {"run_id": None, "run_state": None}
    head.setdefault("as_of", None)
    return {**head, "runs": rows, "truncated": len(chosen) > limit}


def get_summary(
    store: Store, run_id: str = "latest", metrics: Sequence[str] | None = None
) -> dict[str, Any]:
    """k6's ``handleSummary`` data of the run so far (the final numbers once it ended)."""
    run = store.run(run_id)
    snapshot = _snapshot(store, run)
    if snapshot is None:
        return {**run_head(run), "final": False, "metrics": {}, "root_group": None, "checks": []}
    found: dict[str, Any] = snapshot["metrics"]
    if metrics:
        unknown = [name for name in metrics if name not in found]
        if unknown:
            raise ConfigError(
                f"no metric {unknown[0]!r} in run {run.id}; metrics: {_choices(list(found))}"
            )
        found = {name: found[name] for name in metrics}
    return {
        **run_head(run),
        "final": snapshot["final"],
        "state": {"testRunDurationMs": snapshot["test_run_duration_ms"]},
        "metrics": found,
        "root_group": snapshot["root_group"],
        "checks": snapshot.get("checks", []),
    }


def list_metrics(store: Store, run_id: str = "latest") -> dict[str, Any]:
    run = store.run(run_id)
    rows = [
        {"name": d["name"], "type": d["type"], "contains": d["contains"]}
        for d in store.definitions(run.id)
    ]
    return {**run_head(run), "metrics": rows}


def list_tag_values(
    store: Store, metric: str, tag: str, run_id: str = "latest", limit: int = 50
) -> dict[str, Any]:
    """The values ``tag`` takes on ``metric``, each with its sample count, most first."""
    valid_limit(limit)
    run = store.run(run_id)
    counts = store.tag_values(metric, tag, run=run.id)
    rows = [{"value": value, "count": count} for value, count in counts.items()]
    return {
        **run_head(run),
        "metric": metric,
        "tag": tag,
        "values": rows[:limit],
        "truncated": len(rows) > limit,
    }


def query_metric(
    store: Store,
    metric: str,
    run_id: str = "latest",
    stats: Sequence[str] = ("count", "avg", "p(95)"),
    window_s: float | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    tags: Mapping[str, str] | None = None,
    group_by: Sequence[str] = (),
    step_s: float | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """``k6mcp-bridge query --json``: ``start_s``/``end_s`` count from the run's first sample."""
    valid_window(window_s)
    for name, value in (("start_s", start_s), ("end_s", end_s)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} {value:g} must be 0 or more (seconds from the run's start)")
    if step_s is not None and not step_s > 0:
        raise ConfigError(f"step_s {step_s:g} must be more than 0 (seconds)")
    result = store.query(
        metric,
        run=run_id,
        stats=list(stats),
        tags=dict(tags or {}),
        window=window_s,
        since=None if start_s is None else f"{round(start_s * 1000)}ms",
        until=None if end_s is None else f"{round(end_s * 1000)}ms",
        group_by=list(group_by),
        step=step_s,
        limit=valid_limit(limit),
    )
    return {**result.to_dict(), "metric": metric}


# --- thresholds ----------------------------------------------------------------------------------


def get_thresholds(store: Store, run_id: str = "latest", history: bool = False) -> dict[str, Any]:
    """Every threshold: its latest verdict, the time it first failed, and with ``history`` every
    change. A threshold of the script that was not judged yet has ``ok: null``."""
    run = store.run(run_id)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for verdict in store.verdicts(run.id):
        key = (verdict["metric"], verdict["threshold"])
        window = verdict.get("window")
        row = found.setdefault(
            key,
            {
                "metric": verdict["metric"],
                "threshold": verdict["threshold"],
                "over_s": None if window is None else window["over_s"],
                "first_failure": None,
                "changes": [],
            },
        )
        row.update(
            ok=verdict["ok"],
            observed=verdict["observed"],
            abort_on_fail=verdict["abort_on_fail"],
            final=verdict["final"],
            time=verdict["time"],
        )
        if window is not None and window.get("first_failure") and row["first_failure"] is None:
            row["first_failure"] = window["first_failure"]["end"]
        elif not verdict["ok"] and row["first_failure"] is None:
            row["first_failure"] = verdict["time"]
        row["changes"].append(
            {"time": verdict["time"], "ok": verdict["ok"], "observed": verdict["observed"]}
        )
    for definition in store.definitions(run.id):
        for source in definition["thresholds"]:
            found.setdefault(
                (definition["name"], source),
                {
                    "metric": definition["name"],
                    "threshold": source,
                    "over_s": None,
                    "ok": None,
                    "observed": None,
                    "abort_on_fail": False,
                    "final": False,
                    "time": None,
                    "first_failure": None,
                    "changes": [],
                },
            )
    rows = list(found.values())
    for row in rows:
        if not history:
            del row["changes"]
    return {**run_head(run), "thresholds": rows, "failed": sum(1 for r in rows if r["ok"] is False)}


# --- two runs ------------------------------------------------------------------------------------


def compare_runs(
    store: Store,
    baseline_run_id: str,
    candidate_run_id: str = "latest",
    metrics: Sequence[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Each stat of each metric in both runs' summaries: baseline, candidate, change in %,
    biggest change first; and every threshold whose verdict differs."""
    valid_limit(limit)
    base_run, cand_run = store.run(baseline_run_id), store.run(candidate_run_id)
    base = (_snapshot(store, base_run) or {}).get("metrics", {})
    cand = (_snapshot(store, cand_run) or {}).get("metrics", {})
    common = [name for name in cand if name in base]
    if metrics:
        for name in metrics:
            if name not in common:
                raise ConfigError(
                    f"metric {name!r} is not in both runs; common metrics: {_choices(common)}"
                )
        common = list(metrics)
    rows = []
    for name in common:
        for stat, before in base[name]["values"].items():
            after = cand[name]["values"].get(stat)
            if after is None or before is None:
                continue
            change = (after - before) / abs(before) * 100 if before else None
            rows.append(
                {
                    "metric": name,
                    "stat": stat,
                    "baseline": before,
                    "candidate": after,
                    "change_pct": None if change is None else round(change, 2),
                }
            )
    rows.sort(key=lambda r: (r["change_pct"] is None, -abs(r["change_pct"] or 0.0)))
    flipped = []
    for name in common:
        before_t = base[name].get("thresholds") or {}
        after_t = cand[name].get("thresholds") or {}
        for source in sorted(set(before_t) | set(after_t)):
            was = before_t.get(source, {}).get("ok")
            now = after_t.get(source, {}).get("ok")
            if was != now:
                flipped.append(
                    {"metric": name, "threshold": source, "baseline_ok": was, "candidate_ok": now}
                )
    return {
        **run_head(cand_run),
        "baseline": run_head(base_run),
        "changes": rows[:limit],
        "thresholds_changed": flipped,
        "truncated": len(rows) > limit,
    }
