"""A run read back from the run store, for ``k6mcp-bridge report --store`` and the baseline.

The store keeps what the report is made of: the buckets (on the same ladder as the windows), the
final (else latest) snapshot and each change of a threshold's verdict with its stream time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..messages import MetricsSnapshot
from ..store.query import RunSummary, Store
from .html_sections import Breach
from .timeline import Timeline


@dataclass
class StoredRun:
    run: RunSummary
    timeline: Timeline
    snapshot: MetricsSnapshot | None
    breaches: dict[tuple[str, str], Breach] = field(default_factory=dict)


def load(store: Path | str | None, ref: str) -> StoredRun:
    """Run ``ref`` (an id or ``latest``) of the store at ``store`` (default: the default path);
    ConfigError naming the runs when there is no such run."""
    with Store(store) as opened:
        run = opened.run(ref)
        timeline = Timeline()
        for metric, kind, tags, start, width, bucket in opened.buckets(run.id):
            timeline.add_bucket(metric, kind, tags, start, start + width, bucket)
        body = opened.snapshot(run.id, "final") or opened.snapshot(run.id, "latest")
        snapshot = MetricsSnapshot.model_validate(body) if body is not None else None
        breaches: dict[tuple[str, str], Breach] = {}
        for verdict in opened.verdicts(run.id):
            breach = breaches.setdefault((verdict["metric"], verdict["threshold"]), Breach())
            breach.abort_on_fail = bool(verdict.get("abort_on_fail"))
            if not verdict["ok"] and breach.first_failed is None and verdict.get("time"):
                breach.first_failed = datetime.fromisoformat(verdict["time"].replace("Z", "+00:00"))
    return StoredRun(run, timeline, snapshot, breaches)
