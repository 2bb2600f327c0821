"""A merged run (``k6mcp-bridge merge``) delivered to plugins, live while the runners run.

The plugins get ``start`` once; then, each time the merger learns a newer state of some runner
(:meth:`MergedFeed.update`), the definitions not sent yet (``metric``), the merged numbers as a
``metrics`` snapshot over every runner's newest state, and a ``threshold`` message per verdict
that changed; at the end (:meth:`MergedFeed.finish`) the final snapshot, every verdict, and
``finish`` with the final numbers. No ``window`` is sent: a state holds each series over the
whole run, not its time buckets. Each plugin runs on its own worker, as in a run of the bridge
(a plugin that raises or hangs is cut off, the others go on).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

from .. import __version__
from ..aggregate.aggregator import ThresholdResult
from ..aggregate.merge import judge, merge
from ..aggregate.stage import AggregationSettings
from ..aggregate.state import RunState
from ..aggregate.verdicts import Verdicts
from ..config import Settings
from ..messages import AnyMessage, MetricMessage, MetricsMessage, MetricsSnapshot
from ..plugin import Plugin, PluginReport, RunInfo, RunResult, Stats, Status
from .workers import Worker, send_all


class MergedFeed:
    """Plugins fed with one merged run (see the module)."""

    def __init__(
        self,
        plugins: Sequence[Plugin],
        settings: Settings,
        aggregation: AggregationSettings,
        source: str,
        on_abort: Callable[[ThresholdResult], None] | None = None,
    ) -> None:
        """``on_abort``: called once, when a threshold with ``abortOnFail`` fails on the merged
        run."""
        self._aggregation = aggregation
        self._workers = [Worker(plugin, settings.plugin_timeout) for plugin in plugins]
        self._defined: set[str] = set()
        then = "stopping the runners" if on_abort else "the runners go on (see --stop-runner)"
        self._verdicts = Verdicts(on_abort, then)
        self._started = time.monotonic()
        self.updates = 0
        """Snapshots sent while the runners ran."""
        self.reports: tuple[PluginReport, ...] = ()
        self.states: list[RunState] = []
        """The states of the last update."""
        script = settings.script
        info = RunInfo(
            source,
            datetime.now(timezone.utc),
            __version__,
            script=None if script is None else str(script),
        )
        for worker in self._workers:
            worker.start(info)

    def update(self, states: Sequence[RunState]) -> None:
        """The merged run of ``states`` (every runner's newest so far) to the plugins."""
        self.states = list(states)
        self._send(states, final=False)
        self.updates += 1
        for worker in self._workers:
            worker.check()

    def finish(self, states: Sequence[RunState], status: Status = "completed") -> MetricsSnapshot:
        """The final numbers of ``states`` to the plugins, then their ``finish``; the final
        snapshot."""
        snapshot = self._send(states, final=True)
        for worker in self._workers:
            worker.sync()
        elapsed = time.monotonic() - self._started
        reports = tuple(worker.report() for worker in self._workers)
        result = RunResult(status, Stats(), elapsed, snapshot, reports)
        for worker in self._workers:
            worker.finish(result)
        for worker in self._workers:
            worker.wait()
        self.reports = tuple(worker.report() for worker in self._workers)
        return snapshot

    def _send(self, states: Sequence[RunState], *, final: bool) -> MetricsSnapshot:
        merged = merge(states)
        settings = self._aggregation
        snapshot, results = judge(
            merged, settings.thresholds, settings.trend_stats, settings.time_unit, final=final
        )
        messages: list[AnyMessage] = [
            MetricMessage(data=metric)
            for name, metric in merged.metrics.items()
            if name not in self._defined
        ]
        self._defined.update(merged.metrics)
        messages.append(MetricsMessage(data=snapshot))
        messages += self._verdicts.messages(results, final=final)
        send_all(self._workers, messages, 0)
        return snapshot

    @property
    def failed(self) -> bool:
        """A plugin failed or hung (``merge`` then exits 70)."""
        return any(report.state != "ok" for report in self.reports)
