"""Types for metrics that a format names without defining them.

k6's CSV output carries no ``Metric`` records, nor does seed-style HTTP data
(``{"type": "metrics", "data": {"vus": 10}}``): a metric's definition is made before its first
point. k6's built-in metrics have their type from :data:`~..k6.builtin_metrics.BUILTIN_METRICS`;
others from the ``metric_types`` setting (``--metric-type NAME=TYPE``, ``contains``
``"default"``); anything else is a :data:`FALLBACK_TYPE`, with one warning per metric.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, get_args

from ..k6.builtin_metrics import BUILTIN_METRICS
from ..messages import MetricMessage, MetricType, ValueKind

log = logging.getLogger("k6mcp_bridge.input")

FALLBACK_TYPE: Final[MetricType] = "trend"
"""The type of a custom metric nobody typed. A trend keeps every value, so count, sum (count times
mean), min, max, last and the distribution all survive; calling a gauge a counter would add
up levels, and calling a trend a gauge would keep only its last value."""

TYPE_CHOICES = "|".join(get_args(MetricType))


class MetricTyping:
    """Makes the ``metric`` message of a metric the input names but does not define.

    ``untyped`` says why the input has no types, for the warning (``"k6's CSV output does not
    carry metric types"``). Raises ValueError for a ``metric_types`` value that is no type."""

    def __init__(self, metric_types: Mapping[str, MetricType], untyped: str) -> None:
        self._metric_types = dict(metric_types)
        self._untyped = untyped
        self._warned: set[str] = set()
        for name, kind in self._metric_types.items():
            if kind not in get_args(MetricType):
                raise ValueError(f"metric type {name}={kind}: expected one of {TYPE_CHOICES}")
            builtin = BUILTIN_METRICS.get(name)
            if builtin is not None and builtin[0] != kind:
                log.warning(
                    "metric type %s=%s ignored: %r is a k6 built-in metric, always a %s",
                    name,
                    kind,
                    name,
                    builtin[0],
                )

    def message(self, name: str) -> MetricMessage:
        """The definition of metric ``name``."""
        known = BUILTIN_METRICS.get(name)
        if known is not None:
            kind, contains = known
        elif name in self._metric_types:
            kind, contains = self._metric_types[name], "default"
        else:
            kind, contains = FALLBACK_TYPE, "default"
            if name not in self._warned:
                self._warned.add(name)
                log.warning(
                    "metric %r: %s and this is not a k6 built-in metric, so it is treated as "
                    "a %s; set its type with --metric-type %s=%s or in the configuration file",
                    name,
                    self._untyped,
                    FALLBACK_TYPE,
                    name,
                    TYPE_CHOICES,
                )
        return _metric_message(name, kind, contains)


def _metric_message(name: str, kind: MetricType, contains: ValueKind) -> MetricMessage:
    data = {"name": name, "type": kind, "contains": contains, "submetrics": None}
    return MetricMessage.model_validate({"data": data})
