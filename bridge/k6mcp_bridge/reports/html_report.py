"""``report``: one self-contained, offline HTML file with the run's time series.

It subscribes to ``metric``, ``metrics``, ``threshold`` and ``window`` (never ``point``): the
windows go onto a :class:`~.timeline.Timeline`, the latest snapshot and the threshold messages
give the tables. While the run goes on, the file is rewritten every ``interval`` seconds (a
temporary file in the same folder, then a rename, so a reader never sees half a page) with a
refresh tag and an "in progress" banner; ``finish`` writes the final version without them.

Size: the charts' data is bounded by construction (see :mod:`.html_data`); if it still exceeds
:data:`SOFT_CAP` the grid moves up the ladder (fewer, wider buckets) until it fits, so the file
stays under :data:`HARD_CAP`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..aggregate.rollups import LADDER
from ..messages import Message, MetricsSnapshot
from ..plugin import Plugin, RunInfo, RunResult
from . import html_sections as sections
from .from_store import StoredRun, load
from .html_data import chart_data, endpoint_rows, error_rows
from .html_page import json_for_script, page
from .junit import write_report
from .timeline import Timeline

SOFT_CAP = 2_500_000
"""Bytes of chart data past which the grid is coarsened."""
HARD_CAP = 3_000_000
"""The most the file may weigh (checked by the tests)."""


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = "k6-report.html"
    """The HTML file."""
    interval: float = Field(5.0, gt=0)
    """Seconds between two rewrites of the live page."""
    baseline: str | None = None
    """A run id in the run store (or ``latest``) drawn over this run and compared in the
    endpoint and threshold tables."""
    store: str | None = None
    """The run store the baseline is read from (default: the store's default path)."""


def handle_summary(snapshot: MetricsSnapshot | None) -> dict[str, Any]:
    """The snapshot in ``handleSummary(data)``'s shape (metrics, root_group, state)."""
    if snapshot is None:
        return {}
    dumped = snapshot.model_dump(mode="json")
    metrics = {}
    for key, metric in dumped["metrics"].items():
        entry = {"type": metric["type"], "contains": metric["contains"], "values": metric["values"]}
        if metric.get("thresholds"):
            entry["thresholds"] = {s: {"ok": t["ok"]} for s, t in metric["thresholds"].items()}
        metrics[key] = entry
    return {
        "metrics": metrics,
        "root_group": dumped["root_group"],
        "state": {"testRunDurationMs": snapshot.test_run_duration_ms},
    }


def render(
    timeline: Timeline,
    snapshot: MetricsSnapshot | None,
    info: sections.Header,
    breaches: dict[tuple[str, str], sections.Breach],
    baseline: StoredRun | None = None,
) -> str:
    """The whole page."""
    before = baseline.timeline if baseline is not None else None
    data = chart_data(timeline, snapshot, before)
    while len(json_for_script(data)) > SOFT_CAP and timeline.width < LADDER[-1]:
        timeline.regrid(LADDER[LADDER.index(timeline.width) + 1])
        data = chart_data(timeline, snapshot, before)
    info.width_s = timeline.width
    versus = baseline.snapshot if baseline is not None else None
    top = "\n".join(
        [
            sections.header(info, baseline.run.id if baseline is not None else None),
            sections.thresholds(snapshot, breaches, versus),
            sections.checks(snapshot),
        ]
    )
    bottom = "\n".join(
        [
            sections.endpoints(endpoint_rows(timeline, info.duration_s, before)),
            sections.errors(error_rows(timeline)),
            sections.metrics(snapshot),
            sections.download(),
        ]
    )
    title = f"k6 report: {info.script or info.source}"
    return page(
        title=title,
        top=top,
        bottom=bottom,
        data=data,
        summary=handle_summary(snapshot),
        refresh_s=None if not info.live else max(1.0, info.refresh_s),
    )


def header_for(
    timeline: Timeline,
    snapshot: MetricsSnapshot | None,
    *,
    source: str,
    script: str | None,
    version: str,
    live: bool,
    status: str | None = None,
    now: datetime | None = None,
) -> sections.Header:
    start = (
        datetime.fromtimestamp(timeline.first, timezone.utc) if timeline.first is not None else None
    )
    end = snapshot.time if snapshot is not None and snapshot.time else now
    if end is None and timeline.end is not None:
        end = datetime.fromtimestamp(timeline.end, timezone.utc)
    max_vus = None
    if snapshot is not None:
        for name in ("vus_max", "vus"):
            if name in snapshot.metrics:
                max_vus = snapshot.metrics[name].values.get("max")
                break
    return sections.Header(
        source=source,
        script=script,
        start=start,
        end=end,
        duration_s=snapshot.test_run_duration_ms / 1000 if snapshot else 0.0,
        max_vus=max_vus,
        width_s=timeline.width,
        bridge_version=version,
        live=live,
        status=status,
    )


def rebuild(store: Path | str | None, run: str, path: Path, baseline: str | None = None) -> str:
    """Write the report of run ``run`` (an id or ``latest``) from the store; its id."""
    stored = load(store, run)
    before = load(store, baseline) if baseline is not None else None
    header = header_for(
        stored.timeline,
        stored.snapshot,
        source=stored.run.source,
        script=stored.run.script,
        version=stored.run.bridge_version,
        live=False,
        status=None if stored.run.state == "finished" else stored.run.state,
    )
    text = render(stored.timeline, stored.snapshot, header, stored.breaches, before)
    write_report(path, text.encode("utf-8"))
    return stored.run.id


class ReportPlugin(Plugin):
    name = "report"
    description = "Writes an offline HTML report with time series (option path, k6-report.html)"
    Config = ReportConfig
    config: ReportConfig
    accepts = frozenset({"metric", "metrics", "threshold", "window"})

    def __init__(self, config: BaseModel | None = None) -> None:
        super().__init__(config)
        self._reset(None)

    def _reset(self, run_info: RunInfo | None) -> None:
        self._info = run_info
        self.timeline = Timeline()
        self._snapshot: MetricsSnapshot | None = None
        self._breaches: dict[tuple[str, str], sections.Breach] = {}
        self._now: datetime | None = None
        self._written = time.monotonic()
        self._baseline: StoredRun | None = None

    def start(self, run_info: RunInfo) -> None:
        self._reset(run_info)
        if self.config.baseline is not None:
            self._baseline = load(self.config.store, self.config.baseline)

    def process_batch(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.type == "window":
                self.timeline.add(message.data)
                end = message.data.end
                self._now = end if self._now is None else max(self._now, end)
            elif message.type == "metrics":
                self._snapshot = message.data
                if message.data.time is not None:
                    self._now = message.data.time
            elif message.type == "threshold":
                verdict = message.data
                breach = self._breaches.setdefault(
                    (verdict.metric, verdict.threshold), sections.Breach()
                )
                breach.abort_on_fail = verdict.abort_on_fail
                if not verdict.ok and breach.first_failed is None:
                    breach.first_failed = self._now
        if time.monotonic() - self._written >= self.config.interval:
            self.write(live=True)

    def write(self, *, live: bool, status: str | None = None) -> None:
        info = self._info
        header = header_for(
            self.timeline,
            self._snapshot,
            source=info.source if info else "?",
            script=info.script if info else None,
            version=info.bridge_version if info else "?",
            live=live,
            status=status,
            now=self._now,
        )
        header.refresh_s = self.config.interval
        text = render(self.timeline, self._snapshot, header, self._breaches, self._baseline)
        write_report(Path(self.config.path), text.encode("utf-8"))
        self._written = time.monotonic()

    def finish(self, result: RunResult) -> None:
        if result.metrics is not None:
            self._snapshot = result.metrics
        self.write(live=False, status=result.status)
