"""The tools that read requests per endpoint: what fails (``top_errors``) and what is slow
(``slowest_endpoints``), over the whole run or its last ``window_s`` seconds.

Pure functions over a :class:`~k6mcp_bridge.store.query.Store`, as in :mod:`.tools` (whose
contract they follow: ``run_id``, ``run_state`` and ``as_of`` in every result, lists cut at
``limit``, bad arguments a ``ConfigError``). Counts and failure shares are exact; the
duration percentiles come from the buckets' sketches (≤ 1% relative error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from k6mcp_bridge.aggregate.buckets import check_stat
from k6mcp_bridge.errors import ConfigError
from k6mcp_bridge.store.query import Group, Store, rfc3339

from .tools import run_head, valid_limit, valid_window


def _endpoint(tags: Mapping[str, str]) -> str:
    return tags.get("name") or tags.get("url") or ""


def top_errors(
    store: Store, run_id: str = "latest", window_s: float | None = None, limit: int = 10
) -> dict[str, Any]:
    """Failed requests grouped by ``status``, ``name`` (else ``url``) and ``error_code``.

    Failed means what k6's ``http_req_failed`` says (a status outside ``expectedStatuses``,
    200-399 by default, or no response): per group its non-zero samples, exact. Without that
    metric (``responseCallback: null``), ``http_reqs`` samples with ``expected_response:false``
    or a status ≥ 400 (or 0: no response) count as failed."""
    valid_window(window_s)
    valid_limit(limit)
    run = store.run(run_id)
    kinds = store.metrics(run.id)

    def key(tags: dict[str, str]) -> tuple[str, str, str]:
        return (tags.get("status", ""), _endpoint(tags), tags.get("error_code", ""))

    failed: list[tuple[tuple[str, str, str], int, float | None, float | None]]

    if "http_req_failed" in kinds:
        metric = "http_req_failed"
        _, window, groups = store.groups(metric, key, run=run.id, window=window_s)
        total = sum(g.bucket.count for g in groups.values())
        failed = [
            (k, g.bucket.nonzero, g.first_nonzero, g.last_nonzero)
            for k, g in groups.items()
            if g.bucket.nonzero
        ]
    elif "http_reqs" in kinds:
        metric = "http_reqs"

        def flagged(tags: dict[str, str]) -> tuple[bool, tuple[str, str, str]]:
            status = tags.get("status", "")
            bad = tags.get("expected_response") == "false" or (
                status.isdigit() and (int(status) >= 400 or int(status) == 0)
            )
            return (bad, key(tags))

        _, window, marked = store.groups(metric, flagged, run=run.id, window=window_s)
        total = int(sum(g.bucket.sum for g in marked.values()))
        failed = [(k[1], int(g.bucket.sum), g.first, g.last) for k, g in marked.items() if k[0]]
    else:
        raise ConfigError(
            f"run {run.id} has neither http_req_failed nor http_reqs: no HTTP request"
        )
    failed.sort(key=lambda row: (-row[1], row[0]))
    rows = [
        {
            "status": status,
            "endpoint": endpoint,
            "error_code": code or None,
            "count": count,
            "share": count / total if total else None,
            "first_seen": rfc3339(first),
            "last_seen": rfc3339(last),
        }
        for (status, endpoint, code), count, first, last in failed[:limit]
    ]
    return {
        **run_head(run),
        "window": window,
        "source_metric": metric,
        "requests": total,
        "failed": sum(row[1] for row in failed),
        "errors": rows,
        "truncated": len(failed) > limit,
    }


def slowest_endpoints(
    store: Store,
    run_id: str = "latest",
    stat: str = "p(95)",
    window_s: float | None = None,
    min_count: int = 20,
    limit: int = 10,
) -> dict[str, Any]:
    """``http_req_duration`` per ``name`` (else ``url``) and ``method``, slowest by ``stat``
    first; endpoints with fewer than ``min_count`` requests in the window are left out."""
    valid_window(window_s)
    valid_limit(limit)
    check_stat(stat, "trend", "http_req_duration")
    if min_count < 0:
        raise ConfigError(f"min_count {min_count} must be 0 or more")
    run = store.run(run_id)

    def key(tags: dict[str, str]) -> tuple[str, str]:
        return (_endpoint(tags), tags.get("method", ""))

    _, window, durations = store.groups("http_req_duration", key, run=run.id, window=window_s)
    failures: dict[tuple[str, str], Group] = {}
    if "http_req_failed" in store.metrics(run.id):
        _, _, failures = store.groups("http_req_failed", key, run=run.id, window=window_s)
    rows: list[dict[str, Any]] = []
    for group_key, group in durations.items():
        bucket = group.bucket
        if bucket.count < max(min_count, 1):
            continue
        endpoint, method = group_key
        failed = failures.get(group_key)
        values = {
            name: bucket.stat(name) for name in ("count", "avg", "med", "p(95)", "p(99)", "max")
        }
        rows.append(
            {
                "endpoint": endpoint,
                "method": method or None,
                **values,
                "stat": bucket.stat(stat),
                "error_rate": failed.bucket.stat("rate") if failed is not None else None,
            }
        )
    rows.sort(key=lambda row: (-(row["stat"] or 0.0), row["endpoint"]))
    return {
        **run_head(run),
        "window": window,
        "ranked_by": stat,
        "endpoints": rows[:limit],
        "truncated": len(rows) > limit,
    }
