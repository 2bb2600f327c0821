"""A run's mergeable state: what ``--state-export`` writes and ``k6mcp-bridge merge`` reads.

The state is cumulative: the metric definitions (``Metric`` records, their thresholds and
submetrics included) and one whole-run :class:`~.buckets.Bucket` per series (a metric and one
tag set: the rollups' closed buckets added up), with the earliest and latest sample time. Every
write carries a sequence number and says whether it is the last (``final``): a merger keeps the
highest ``seq`` of each instance, so a state read twice, or an older one read after a newer
one, never counts twice. Format: ``docs/state-format.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from ..files import write_atomically
from ..messages import Metric, MetricMessage, SeriesRollup, Tags, Window
from ..samples import Decoded
from .buckets import Bucket
from .rollups import Closed, Key

log = logging.getLogger("k6mcp_bridge")

FORMAT = "k6mcp-bridge/state"
VERSION = 1


class RunState(BaseModel):
    """One instance's cumulative state (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")

    format: Literal["k6mcp-bridge/state"] = "k6mcp-bridge/state"
    version: Literal[1] = 1
    instance: str
    """Who wrote it: ``--state-instance``, else the input's name."""
    seq: int
    """Grows at every write, across restarts too (milliseconds since the epoch, or one more
    than the last): the highest is the newest."""
    final: bool
    first_time: AwareDatetime | None
    last_time: AwareDatetime | None
    metrics: list[Metric]
    series: list[SeriesRollup]


class StateKeeper:
    """Adds up the rollups' closed buckets per series and keeps the definitions.

    Fed by the aggregation stage (:meth:`add`, closed buckets) or by a plugin from the
    ``window`` messages it receives (:meth:`add_window`: the same buckets in message form; a
    ``late`` window holds only the samples that came after its bucket closed, so it adds too)."""

    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.seq = 0
        self._metrics: dict[str, Metric] = {}
        self._totals: dict[Key, Bucket] = {}
        self._tags: dict[Key, Tags] = {}

    def define(self, batch: Iterable[Decoded]) -> None:
        for record in batch:
            if type(record) is MetricMessage:
                self.add_metric(record.data)

    def add_metric(self, metric: Metric) -> None:
        self._metrics.setdefault(metric.name, metric)

    def add(self, closed: Closed, tags: Mapping[Key, Tags]) -> None:
        """A closed bucket of the rollups, whose series have the ``tags`` given."""
        for key, bucket in closed.buckets.items():
            self._add(key, tags[key], bucket)

    def add_window(self, window: Window) -> None:
        for rollup in window.series:
            key = (rollup.metric, tuple(sorted(rollup.tags.items())))
            self._add(key, rollup.tags, Bucket.from_model(rollup))

    def _add(self, key: Key, tags: Tags, bucket: Bucket) -> None:
        total = self._totals.get(key)
        if total is None:
            total = self._totals[key] = Bucket(bucket.type)
            self._tags[key] = tags
        total.merge(bucket)

    def restore(self, state: RunState) -> None:
        """Continue from ``state`` (a run resumed from its checkpoint): its definitions and
        totals, and a ``seq`` that goes on growing from its."""
        for metric in state.metrics:
            self.add_metric(metric)
        for rollup in state.series:
            key = (rollup.metric, tuple(sorted(rollup.tags.items())))
            self._add(key, rollup.tags, Bucket.from_model(rollup))
        self.seq = max(self.seq, state.seq)

    def with_open(
        self, pending: Iterable[Mapping[Key, Bucket]], tags: Mapping[Key, Tags]
    ) -> StateKeeper:
        """A copy holding ``pending`` too (the rollups' open buckets, whose series have the
        ``tags`` given): the state of every sample so far, not only of the closed buckets."""
        copy = StateKeeper(self.instance)
        copy.seq = self.seq
        copy._metrics = dict(self._metrics)
        for key, total in self._totals.items():
            copy._add(key, self._tags[key], total)
        for buckets in pending:
            for key, bucket in buckets.items():
                copy._add(key, tags[key], bucket)
        return copy

    @property
    def empty(self) -> bool:
        return not self._totals and not self._metrics

    def state(self, first: datetime | None, last: datetime | None, *, final: bool) -> RunState:
        self.seq = max(self.seq + 1, time.time_ns() // 1_000_000)
        return RunState(
            instance=self.instance,
            seq=self.seq,
            final=final,
            first_time=first,
            last_time=last,
            metrics=list(self._metrics.values()),
            series=[
                bucket.to_model(key[0], self._tags[key]) for key, bucket in self._totals.items()
            ],
        )


def write_state(path: Path, state: RunState) -> None:
    """Write ``state`` atomically: a reader sees the old file or the new one, never a part."""
    write_atomically(path, state.model_dump_json().encode("utf-8"))


def saved_state(data: bytes) -> RunState | None:
    """The state a checkpoint holds; None (and a warning) when it is not one."""
    try:
        return RunState.model_validate_json(data)
    except ValidationError as exc:
        log.warning(
            "the checkpoint's run state cannot be read (%s): this run's state starts again "
            "from the checkpoint",
            _first_error(exc),
        )
        return None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    return f"{where}: {first['msg']}"


def read_state(path: Path) -> RunState:
    """A state file; ConfigError naming the file and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    try:
        return RunState.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(
            f"{path} is not a k6mcp-bridge state file ({FORMAT} v{VERSION}): {_first_error(exc)}"
        ) from None
