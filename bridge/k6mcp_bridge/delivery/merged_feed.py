"""A merged run (``k6mcp-bridge merge``) delivered to plugins, live while the runners run.

The plugins get ``start`` once; then, each time the merger learns a newer state of some runner
(:meth:`MergedFeed.update`), the definitions not sent yet (``metric``), the merged numbers as a
``metrics`` snapshot over every runner's newest state, and a ``threshold`` message per verdict
that changed; at the end (:meth:`MergedFeed.finish`) the final snapshot, every verdict, and
``finish`` with the final numbers. Each plugin runs on its own worker, as in a run of the bridge
(a plugin that raises or hangs is cut off, the others go on).

A state holds each series over the whole run, not its time buckets: those come from the runners'
own ``window`` messages (:meth:`MergedFeed.windows`, ``merge --nats`` reads them as they come).
Each runner's buckets of one time slot add up to the slot of the whole test, so they go on as
they are, with one change: a window whose span overlaps one sent before (another runner's
bucket of the same slot, or a runner's ``late`` one) is marked ``late`` ("merge it into the
first"), so that a plugin sees at most one window per slot that is not late, as from a single
run. Widths follow the rollups' ladder (each divides the next): a runner that moved to a wider
width than another (a long run) sends windows that hold the other's narrower ones, which are then
late too; the store and the report merge them into the wider bucket. ``final`` is cleared: a
runner's last windows are not the merged run's.
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
from ..messages import (
    AnyMessage,
    MetricMessage,
    MetricsMessage,
    MetricsSnapshot,
    Window,
    WindowMessage,
)
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
        self._slots = Slots()
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

    def windows(self, windows: Sequence[Window]) -> None:
        """Runners' windows to the plugins (see the module: late when their slot was sent)."""
        messages: list[AnyMessage] = []
        for window in windows:
            late = self._slots.seen(int(window.start.timestamp()), window.width_s)
            if late != window.late or window.final:
                window = window.model_copy(update={"late": late or window.late, "final": False})
            messages.append(WindowMessage(data=window))
        send_all(self._workers, messages, 0)
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


class Slots:
    """The time slots of the windows sent so far: ``(start, width)``, each start a multiple of
    its width, the widths from a ladder in which each divides the next."""

    def __init__(self) -> None:
        self._starts: dict[int, set[int]] = {}
        """width → the starts sent with it."""

    def seen(self, start: int, width: int) -> bool:
        """Note the slot; True when it overlaps one noted before."""
        overlaps = False
        for known, starts in self._starts.items():
            if known >= width:
                overlaps = start - start % known in starts
            else:
                overlaps = any(s in starts for s in range(start, start + width, known))
            if overlaps:
                break
        self._starts.setdefault(width, set()).add(start)
        return overlaps
