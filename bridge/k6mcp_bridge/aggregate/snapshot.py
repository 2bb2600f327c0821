"""The ``metrics`` snapshot: an aggregator's numbers and verdicts plus the group tree, as one
:class:`~.messages.MetricsSnapshot` (k6's ``handleSummary(data)`` in MCP form).

:func:`snapshot_from` is what the pipeline calls at every snapshot interval and at the end;
:func:`~.summary_export.export` and :func:`~.summary_text.render` take its result.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..k6.group_tree import GroupTree, k6_id
from ..messages import Group, MetricsSnapshot, MetricSummary, ThresholdState, TimeUnit
from .aggregator import Aggregator, ThresholdResult


def snapshot_from(
    aggregator: Aggregator,
    tree: GroupTree | None,
    duration_s: float,
    *,
    final: bool,
    results: Sequence[ThresholdResult] | None = None,
    time_unit: TimeUnit | None = None,
) -> MetricsSnapshot:
    """Every metric and submetric k6's summary would show, in :meth:`Aggregator.metrics`
    order, with its values (counter rates divide by ``duration_s``) and, for those with
    thresholds, each threshold's verdict keyed by its source. ``results`` are the verdicts to
    report (default: :meth:`Aggregator.evaluate_thresholds` now; during the run an
    unevaluated threshold reports ``ok``). Without a ``tree`` the root group is empty.
    ``time_unit``: k6's ``summaryTimeUnit``, for the text summary."""
    if results is None:
        results = aggregator.evaluate_thresholds(duration_s, final=final)
    verdicts: dict[str, dict[str, ThresholdState]] = {}
    for result in results:
        verdicts.setdefault(result.metric, {})[result.threshold.source] = ThresholdState(
            ok=result.ok, observed=result.observed, window=result.window
        )
    metrics = {
        info.name: MetricSummary(
            type=info.type,
            contains=info.contains,
            values=aggregator.values(info.name, duration_s),
            thresholds=verdicts.get(info.name),
        )
        for info in aggregator.metrics()
    }
    root = tree.root() if tree is not None else Group(name="", path="", id=k6_id(""))
    return MetricsSnapshot(
        time=aggregator.last_time,
        final=final,
        test_run_duration_ms=duration_s * 1000.0,
        metrics=metrics,
        root_group=root,
        checks=tree.checks() if tree is not None else [],
        summary_time_unit=time_unit,
    )
