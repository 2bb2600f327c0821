"""The MCP messages: the public contract between the bridge and its plugins.

Every message is a ``{"type": ..., "data": ...}`` envelope:

========== ====================== =========================
``type``   ``data`` model          made from
========== ====================== =========================
``metric`` :class:`Metric`         a k6 ``Metric`` record
``point``  :class:`Point`          a k6 ``Point`` record
``metrics``:class:`MetricsSnapshot`the aggregation (snapshots)
``threshold``:class:`ThresholdVerdict` threshold evaluation
``window`` :class:`Window`         the rollups (closed time buckets)
========== ====================== =========================

The data models accept two shapes: the flat MCP shape they serialise to (so a
``jsonl`` file can be read back with :data:`MESSAGE_ADAPTER`) and k6's own record
shape, where most fields sit one level down under ``data``. The second is what
lets the decoder validate a k6 line straight into a message in one pydantic call
(see ``decoder.py``).

Models are strict about what k6 guarantees (types, required fields, a time zone on
every timestamp) and ignore fields a newer k6 may add. Timestamps keep microsecond
precision (k6 writes nanoseconds; pydantic truncates to microseconds). Infinite
values, which k6 writes as bare ``+Inf``/``-Inf``, serialise as the strings
``"Infinity"``/``"-Infinity"`` and are accepted back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    AliasPath,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
)

MetricType = Literal["counter", "gauge", "rate", "trend"]
ValueKind = Literal["default", "time", "data"]
TimeUnit = Literal["s", "ms", "us"]
"""k6's ``summaryTimeUnit``: the one unit of every time in the text summary."""
TIME_UNITS: tuple[TimeUnit, ...] = get_args(TimeUnit)
Tags = dict[str, str]


def _k6_field(name: str, *, default: Any = ...) -> Any:
    """A field read from ``data.<name>`` in a k6 record, or ``<name>`` in an MCP message."""
    alias = AliasChoices(AliasPath("data", name), name)
    return Field(default, validation_alias=alias)


_NUMBER_OR_INFINITY = {
    "anyOf": [{"type": "number"}, {"type": "string", "enum": ["Infinity", "-Infinity"]}]
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, ser_json_inf_nan="strings")


class ThresholdSpec(_Model):
    """A threshold in k6's object form: ``{threshold, abortOnFail, delayAbortEval}``."""

    threshold: str
    abort_on_fail: bool = Field(
        False, validation_alias=AliasChoices("abortOnFail", "abort_on_fail")
    )
    delay_abort_eval: str | None = Field(
        None, validation_alias=AliasChoices("delayAbortEval", "delay_abort_eval")
    )


class Submetric(_Model):
    """A submetric k6 registered before the run, e.g. ``http_req_duration{status:200}``."""

    name: str
    suffix: str
    tags: Tags | None = None


class Metric(_Model):
    """A metric's definition. k6 sends it once, just before the metric's first point."""

    name: str = _k6_field("name")
    type: MetricType = _k6_field("type")
    contains: ValueKind = _k6_field("contains")
    thresholds: list[str | ThresholdSpec] = _k6_field("thresholds", default=[])
    submetrics: list[Submetric] | None = _k6_field("submetrics", default=None)


class Point(_Model):
    """One sample: ``metric`` is always the parent metric's name, never a submetric's."""

    metric: str
    time: AwareDatetime = _k6_field("time")
    value: Annotated[float, WithJsonSchema(_NUMBER_OR_INFINITY)] = _k6_field("value")
    tags: Tags | None = _k6_field("tags", default=None)
    metadata: Tags | None = _k6_field("metadata", default=None)


class MetricMessage(_Model):
    type: Literal["metric"] = "metric"
    data: Metric


class PointMessage(_Model):
    type: Literal["point"] = "point"
    data: Point


Number = Annotated[float, WithJsonSchema(_NUMBER_OR_INFINITY)]


class WindowedFailure(_Model):
    """One trailing window of a windowed threshold (``p(95)<30 over 1s``) and its value."""

    start: AwareDatetime
    end: AwareDatetime
    observed: Number | None


class ThresholdWindow(_Model):
    """How a windowed threshold fared: the window length, the first failing window and the
    worst one (``None`` while none failed)."""

    over_s: float
    """The window length in seconds (``over 1s``)."""
    windows: int
    """Windows evaluated so far (0: the run is shorter than the window; judged on the whole run)."""
    first_failure: WindowedFailure | None = None
    worst: WindowedFailure | None = None


class ThresholdState(_Model):
    ok: bool
    observed: Number | None = None
    """The value compared (``None`` when there is none, e.g. an empty rate)."""
    window: ThresholdWindow | None = None
    """For a windowed threshold (``... over DURATION``): its windows."""


class MetricSummary(_Model):
    """One metric's numbers, as in k6's ``handleSummary(data).metrics[name]``."""

    type: MetricType
    contains: ValueKind
    values: dict[str, Number]
    """counter: count, rate · gauge: value, min, max · rate: rate, passes, fails ·
    trend: the summary trend stats (avg, min, med, max, p(90), p(95) by default)."""
    thresholds: dict[str, ThresholdState] | None = None
    """Each threshold's source text → its verdict (``ok: true`` means it passed)."""


class Check(_Model):
    name: str
    path: str
    id: str
    passes: int
    fails: int


class Group(_Model):
    """A ``group()`` and its checks, as in k6's ``handleSummary(data).root_group``."""

    name: str
    path: str
    id: str
    groups: list[Group] = []
    checks: list[Check] = []


class MetricsSnapshot(_Model):
    """Every metric's cumulative numbers at a moment of the stream (k6's summary data)."""

    time: AwareDatetime | None
    """The stream time of the snapshot: the latest sample time seen."""
    final: bool
    """True for the snapshot taken at the end of the stream."""
    test_run_duration_ms: float
    """The duration counter rates divide by (an estimate: see the README)."""
    metrics: dict[str, MetricSummary]
    root_group: Group
    checks: list[Check] = []
    """Every check, merged by name across groups, first seen first (k6's summary list)."""
    summary_time_unit: TimeUnit | None = None
    """k6's ``summaryTimeUnit`` for the text summary; ``None``: k6's automatic units."""


class MetricsMessage(_Model):
    type: Literal["metrics"] = "metrics"
    data: MetricsSnapshot


class ThresholdVerdict(_Model):
    metric: str
    """The (sub)metric, e.g. ``http_req_duration{status:200}``."""
    threshold: str
    """The expression as written, e.g. ``p(95)<500``."""
    ok: bool
    observed: Number | None
    """The value compared; ``None`` when k6 has none (e.g. an empty rate)."""
    abort_on_fail: bool = False
    final: bool = False
    window: ThresholdWindow | None = None
    """For a windowed threshold (``... over DURATION``): its windows."""


class ThresholdMessage(_Model):
    type: Literal["threshold"] = "threshold"
    data: ThresholdVerdict


class Sketch(_Model):
    """A trend's values in one bucket, as DDSketch's logarithmic mapping: a positive value ``v``
    counts in bin ``ceil(log(v) / log(gamma))``, ``gamma = (1 + alpha) / (1 - alpha)``; a
    negative one in the same bin of ``negative``. Bins of equal ``alpha`` add up exactly."""

    alpha: float = 0.01
    """The relative error of any quantile read from it."""
    positive: dict[int, int] = {}
    negative: dict[int, int] = {}
    zeros: int = 0
    pos_inf: int = 0
    neg_inf: int = 0


class SeriesRollup(_Model):
    """One series (a metric and one tag set) in one time bucket. Two of them merge exactly:
    counts and sums add, min and max take the extremes, sketch bins add, a gauge keeps the
    later ``last``."""

    metric: str
    type: MetricType
    tags: Tags
    """The series' tag set; ``(other)`` as a value marks the series that folds what the
    cardinality cap (``max_series``) left out."""
    count: int
    """Samples in the bucket."""
    sum: Number
    min: Number
    max: Number
    nonzero: int | None = None
    """Rates: the samples that are not 0 (k6's passes)."""
    last: Number | None = None
    """Gauges: the last value in stream order..."""
    last_time: AwareDatetime | None = None
    """...and its sample time."""
    sketch: Sketch | None = None
    """Trends: the distribution (≤ 1% relative error on any quantile)."""


class Window(_Model):
    """A closed time bucket: every series that had samples in ``[start, end)``.

    Bucket starts are multiples of ``width_s`` since the Unix epoch. Widths come from a ladder in
    which each divides the next (1, 2, 10, 30, 60, 300, 600, 1800, 3600 s); a long run moves up
    it so that it keeps about 1,200 buckets, and later buckets are wider. ``late`` marks a bucket
    sent again with only the samples that arrived after it closed: merge it into the first."""

    start: AwareDatetime
    end: AwareDatetime
    width_s: int
    series: list[SeriesRollup]
    late: bool = False
    final: bool = False
    """Sent at the end of the stream (the last buckets close then, however recent)."""


class WindowMessage(_Model):
    type: Literal["window"] = "window"
    data: Window


AnyMessage = MetricMessage | PointMessage | MetricsMessage | ThresholdMessage | WindowMessage
MESSAGE_TYPES: tuple[str, ...] = ("metric", "point", "metrics", "threshold", "window")
"""Every message ``type``, for :attr:`~k6mcp_bridge.Plugin.accepts`."""
Message = Annotated[AnyMessage, Field(discriminator="type")]
"""Any MCP message; discriminated on ``type``."""

MESSAGE_ADAPTER: TypeAdapter[AnyMessage] = TypeAdapter(Message, config=_Model.model_config)
"""Validates MCP messages, e.g. one line of the ``jsonl`` plugin's output."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an MCP message, for tools outside Python."""
    schema = MESSAGE_ADAPTER.json_schema(mode="serialization")
    schema["title"] = "k6mcp-bridge MCP message"
    return schema
