"""Windowed thresholds: ``http_req_duration:p(99)<300 over 5m``, judged on trailing windows.

At every bucket close the expression is evaluated on the buckets of the trailing ``over``
seconds (the series of the metric whose tags hold the selector, merged), once the run has lasted
that long; it fails if any window failed. A run shorter than the window is judged on the whole
run at the end. The resolution is the bucket width: a window shorter than the current width
(after a long run climbed the ladder) is the last bucket. Percentiles come from the buckets'
sketches (within 1%); counts, sums, min, max, rates and gauge values are exact. A counter's
``rate`` divides by the span the window covers.

A sample that arrives after its bucket closed (``late``) is merged into that bucket if the
bucket is still inside the current window; windows already judged are not judged again.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..k6.thresholds import Threshold
from ..messages import ThresholdWindow, WindowedFailure
from .aggregator import ThresholdResult
from .buckets import Bucket
from .rollups import Closed, Key, utc


@dataclass
class _Judged:
    start: float
    end: float
    observed: float | None


@dataclass
class _State:
    threshold: Threshold
    recent: deque[tuple[int, int, Bucket]] = field(default_factory=deque)
    whole: Bucket | None = None
    windows: int = 0
    first_failure: _Judged | None = None
    worst: _Judged | None = None
    last: _Judged | None = None


class WindowedThresholds:
    """The windowed thresholds of a run, fed with every closed bucket."""

    def __init__(self, thresholds: Sequence[Threshold]) -> None:
        self._states = [_State(threshold) for threshold in thresholds]
        self.first_time: float | None = None
        """The run's first sample time (Unix seconds): windows count from there."""

    def __bool__(self) -> bool:
        return bool(self._states)

    def on_close(self, closed: Closed) -> None:
        for state in self._states:
            bucket = _merged(state.threshold, closed.buckets.items())
            if bucket is not None:
                if state.whole is None:
                    state.whole = Bucket(bucket.type)
                state.whole.merge(bucket)
            if closed.late:
                if bucket is not None:
                    for start, _, held in state.recent:
                        if start == closed.start:
                            held.merge(bucket)
                continue
            if bucket is not None:
                state.recent.append((closed.start, closed.end, bucket))
            self._judge(state, closed.end)

    def _judge(self, state: _State, end: int) -> None:
        over = state.threshold.over_s or 0.0
        recent = state.recent
        while recent and recent[0][0] < end - over and len(recent) > 1:
            recent.popleft()
        if recent and recent[0][1] <= end - over:  # the one bucket left is older than the window
            recent.popleft()
        if self.first_time is None or end - self.first_time < over or not recent:
            return
        start = recent[0][0]
        window = Bucket(recent[0][2].type)
        for _, _, bucket in recent:
            window.merge(bucket)
        self._record(state, start, end, window)

    def _record(self, state: _State, start: float, end: float, window: Bucket) -> None:
        threshold = state.threshold
        observed = window.stat(threshold.stat, end - start)
        ok, _ = threshold.evaluate({} if observed is None else {threshold.stat: observed})
        judged = _Judged(start, end, observed)
        state.windows += 1
        state.last = judged
        if not ok and state.first_failure is None:
            state.first_failure = judged
        if _worse(threshold, judged, state.worst):
            state.worst = judged

    def results(self, *, final: bool) -> list[ThresholdResult]:
        """Every windowed threshold's verdict now, observed in its worst window; at the end, one
        whose run was shorter than its window is judged on the whole run."""
        results = []
        for state in self._states:
            threshold = state.threshold
            if final and state.windows == 0 and state.whole is not None and state.recent:
                first = state.recent[0][0]
                self._record(state, first, state.recent[-1][1], state.whole)
                state.windows = 0
            evaluated = state.last is not None or final
            ok = state.first_failure is None
            shown = state.worst or state.last
            observed = shown.observed if shown is not None else None
            abort = threshold.should_abort(ok, 0.0 if shown is None else shown.end)
            results.append(
                ThresholdResult(
                    threshold, threshold.key, ok, observed, evaluated, abort, _window(state)
                )
            )
        return results


def _merged(threshold: Threshold, buckets: Iterable[tuple[Key, Bucket]]) -> Bucket | None:
    """The threshold's (sub)metric in one closed bucket: its series that hold the selector."""
    selector = set(threshold.tags)
    merged: Bucket | None = None
    for (metric, pairs), bucket in buckets:
        if metric != threshold.metric or not selector.issubset(pairs):
            continue
        if merged is None:
            merged = Bucket(bucket.type)
        merged.merge(bucket)
    return merged


def _worse(threshold: Threshold, judged: _Judged, worst: _Judged | None) -> bool:
    """Is ``judged`` further on the failing side of the threshold than ``worst``?"""
    if judged.observed is None:
        return False
    if worst is None or worst.observed is None:
        return True
    if math.isnan(judged.observed):
        return False
    if threshold.op in ("<", "<="):
        return judged.observed > worst.observed
    if threshold.op in (">", ">="):
        return judged.observed < worst.observed
    return False


def _window(state: _State) -> ThresholdWindow:
    return ThresholdWindow(
        over_s=state.threshold.over_s or 0.0,
        windows=state.windows,
        first_failure=_failure(state.first_failure),
        worst=_failure(state.worst),
    )


def _failure(judged: _Judged | None) -> WindowedFailure | None:
    if judged is None:
        return None
    return WindowedFailure(start=utc(judged.start), end=utc(judged.end), observed=judged.observed)
