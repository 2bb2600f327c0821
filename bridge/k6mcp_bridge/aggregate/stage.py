"""The pipeline's aggregation stage: k6's numbers, snapshots and threshold verdicts, live.

Every delivered batch goes through the :class:`~.aggregator.Aggregator` and the group tree
first; every ``snapshot_interval`` seconds of *stream* time (sample time stamps, not the wall
clock, so a replay snapshots like the live run) the stage adds a ``metrics`` message and a
``threshold`` message per changed verdict; at the end, a final snapshot and every verdict.

The test-run duration a counter's rate divides by is not in k6's stream. The stage uses
``--test-duration`` when given, else the span from the earliest to the latest sample time:
k6 counts from just before ``setup()`` to just after ``teardown()``, so the span is short by
the time before the first sample and after the last one (a few milliseconds when setup and
teardown do not idle: under 0.1% of a 10 s test; a setup that sleeps 1.5 s is missed whole).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from socket import gethostname

from ..k6.group_tree import GroupTree
from ..k6.thresholds import Threshold
from ..messages import (
    AnyMessage,
    MetricsMessage,
    MetricsSnapshot,
    TimeUnit,
)
from ..samples import Decoded
from .aggregator import Aggregator, ThresholdResult
from .merge import define, merge, restore, tree_of
from .rollups import DEFAULT_MAX_SERIES, Rollups
from .snapshot import snapshot_from
from .state import RunState, StateKeeper, write_state
from .verdicts import Verdicts
from .windowed import WindowedThresholds

log = logging.getLogger("k6mcp_bridge")


@dataclass(frozen=True)
class AggregationSettings:
    trend_stats: str | Sequence[str] = "avg,min,med,max,p(90),p(95)"
    """``--summary-trend-stats`` syntax, or the list of a script's ``summaryTrendStats``."""
    time_unit: TimeUnit | None = None
    """k6's ``summaryTimeUnit``, carried by every snapshot for the text summary."""
    bounded: bool = False
    snapshot_interval: float = 10.0
    """Seconds of stream time between two ``metrics`` messages; 0: only the final one."""
    test_duration: float | None = None
    thresholds: Sequence[Threshold] = field(default_factory=tuple)
    """Thresholds from outside the stream (``--threshold``, ``--script``)."""
    windows: bool = False
    """Send ``window`` messages (some plugin accepts them)."""
    max_series: int = DEFAULT_MAX_SERIES
    """Tag sets per metric in the rollups before the rest fold into ``(other)``."""
    state_export: Path | None = None
    """Write the run's mergeable state here at every snapshot and at the end."""
    state_instance: str = ""
    """The name of this instance in the state (default: host and state file)."""
    keep_state: bool = False
    """Keep the run's mergeable state even without ``state_export`` (a checkpoint holds it)."""


class Aggregation:
    """Feeds the aggregator and says when to send snapshots and verdicts."""

    def __init__(
        self,
        settings: AggregationSettings,
        on_abort: Callable[[ThresholdResult], None] | None = None,
        restored: RunState | None = None,
    ) -> None:
        """``restored``: the state a checkpoint held (a resumed run): the numbers go on from it,
        trends in bounded mode (their values are not in a state, their sketches are)."""
        self.settings = settings
        self.restored = restored
        bounded = settings.bounded or restored is not None
        self.aggregator = Aggregator(settings.trend_stats, bounded, keep=GroupTree.METRICS)
        windowed = [t for t in settings.thresholds if t.over_s is not None]
        for threshold in settings.thresholds:
            if threshold.over_s is None:
                self.aggregator.add_threshold(threshold)
            else:
                self.aggregator.add_submetric(threshold)
        self.windowed = WindowedThresholds(windowed)
        self.rollups: Rollups | None = None
        keep = settings.state_export is not None or settings.keep_state
        if settings.windows or windowed or keep:
            self.rollups = Rollups(self.aggregator.type_of, settings.max_series)
        self.state_failed = False
        """A write of ``state_export`` failed (the run exits 2)."""
        self.keeper: StateKeeper | None = None
        if keep:
            export = settings.state_export
            default = gethostname() if export is None else f"{gethostname()}:{export}"
            self.keeper = StateKeeper(settings.state_instance or default)
        self.groups = GroupTree()
        self.kept: list[Decoded] = []
        """The last batch's ``Metric`` messages and group tree points (:meth:`Aggregator.add`):
        all that plugins that want no points get of it."""
        if restored is not None:
            self._restore(restored)
        self.final: MetricsSnapshot | None = None
        self._verdicts = Verdicts(on_abort, "k6 aborts the test")
        self._next: datetime | None = None
        self._interval = timedelta(seconds=settings.snapshot_interval)

    def _restore(self, state: RunState) -> None:
        merged = merge([state])
        define(self.aggregator, merged)
        restore(self.aggregator, merged)
        tree_of(merged, self.groups)
        if self.keeper is not None:
            self.keeper.restore(state)
        log.info(
            "the run goes on from the checkpoint's state: %d series, samples up to %s",
            len(state.series),
            state.last_time,
        )

    @property
    def keeps_state(self) -> bool:
        """The run's mergeable state is kept (:meth:`durable_state` answers)."""
        return self.keeper is not None

    def durable_state(self) -> bytes:
        """The state of every sample aggregated so far, open buckets included, as JSON: what a
        checkpoint saves with the offset those samples end at."""
        keeper, rollups = self.keeper, self.rollups
        assert keeper is not None and rollups is not None
        whole = keeper.with_open(rollups.pending(), rollups.tags)
        first, last = self.aggregator.first_time, self.aggregator.last_time
        state = whole.state(first, last, final=False)
        keeper.seq = whole.seq
        return state.model_dump_json().encode("utf-8")

    @property
    def duration_s(self) -> float:
        given = self.settings.test_duration
        return given if given is not None else self.aggregator.sample_span_s

    def add(self, batch: Sequence[Decoded]) -> list[AnyMessage]:
        """Aggregate ``batch``; return the messages to deliver after it (maybe none)."""
        self.kept = self.aggregator.add(batch)
        self.groups.add(self.kept)
        last = self.aggregator.last_time
        messages = self._windows(final=False, batch=batch)
        if not self._interval or last is None:
            return messages
        if self._next is None:
            first = self.aggregator.first_time or last
            self._next = first + self._interval
        if last < self._next:
            return messages
        while self._next <= last:
            self._next += self._interval
        return messages + self._report(final=False)

    def _windows(self, *, final: bool, batch: Sequence[Decoded] = ()) -> list[AnyMessage]:
        """The buckets the batch closed, as ``window`` messages (when wanted), and the windowed
        thresholds whose verdict they changed."""
        rollups = self.rollups
        if rollups is None:
            return []
        if batch:
            rollups.add(batch)
            if self.keeper is not None:
                self.keeper.define(batch)
        closed = rollups.close(self.aggregator.last_time, final=final)
        if not closed:
            return []
        windowed = self.windowed
        if windowed and self.aggregator.first_time is not None:
            windowed.first_time = self.aggregator.first_time.timestamp()
        messages: list[AnyMessage] = []
        for bucket in closed:
            windowed.on_close(bucket)
            if self.keeper is not None:
                self.keeper.add(bucket, rollups.tags)
            if self.settings.windows:
                messages.append(rollups.message(bucket))
        if windowed and not final:
            messages += self._verdicts.messages(windowed.results(final=False), final=False)
        return messages

    def finish(self) -> list[AnyMessage]:
        """The final snapshot and every threshold's final verdict; says what was left out."""
        aggregator = self.aggregator
        for name, count in aggregator.untyped_points.items():
            log.warning(
                "%d points of %r are not in the summary: no Metric record defined it "
                "(was the stream started mid-run?)",
                count,
                name,
            )
        for problem in aggregator.problems:
            log.warning("threshold ignored: %s", problem)
        for name in aggregator.unknown_threshold_metrics():
            log.warning("thresholds on %r: no such metric in the stream (k6 rejects them)", name)
        return self._windows(final=True) + self._report(final=True)

    def _report(self, *, final: bool) -> list[AnyMessage]:
        duration = self.duration_s
        results = self.aggregator.evaluate_thresholds(duration, final=final)
        results += self.windowed.results(final=final)
        messages = self._verdicts.messages(results, final=final)
        snapshot = snapshot_from(
            self.aggregator,
            self.groups,
            duration,
            final=final,
            results=results,
            time_unit=self.settings.time_unit,
        )
        if final:
            self.final = snapshot
        messages.insert(0, MetricsMessage(data=snapshot))
        self._export_state(final)
        return messages

    def _export_state(self, final: bool) -> None:
        path, keeper = self.settings.state_export, self.keeper
        if path is None or keeper is None:
            return
        first, last = self.aggregator.first_time, self.aggregator.last_time
        try:
            write_state(path, keeper.state(first, last, final=final))
        except OSError as exc:
            log.error("cannot write the state to %s: %s", path, exc.strerror or exc)
            self.state_failed = True


def failed_thresholds(snapshot: MetricsSnapshot) -> list[str]:
    """``metric: expression`` of every threshold that failed in ``snapshot``."""
    return [
        f"{name}: {source}"
        for name, summary in snapshot.metrics.items()
        for source, state in (summary.thresholds or {}).items()
        if not state.ok
    ]
