"""What k6 v1.1.0 itself knows about its built-in metrics.

Formats that carry no metric definitions (k6's CSV output) take the type and the value kind
of a built-in metric from here. Source: ``metrics/builtin.go`` at k6 v1.1.0
(``RegisterBuiltinMetrics``), also listed in ``docs/k6-formats.md`` §3. Metrics that
k6's optional modules register themselves (``browser_*``, ``grpc_streams*``, extensions) are
not built-ins and are not listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ..messages import MetricType, ValueKind

_COUNTER: tuple[MetricType, ValueKind] = ("counter", "default")
_GAUGE: tuple[MetricType, ValueKind] = ("gauge", "default")
_RATE: tuple[MetricType, ValueKind] = ("rate", "default")
_TIME_TREND: tuple[MetricType, ValueKind] = ("trend", "time")
_DATA_COUNTER: tuple[MetricType, ValueKind] = ("counter", "data")

BUILTIN_METRICS: Mapping[str, tuple[MetricType, ValueKind]] = MappingProxyType(
    {
        "vus": _GAUGE,
        "vus_max": _GAUGE,
        "iterations": _COUNTER,
        "iteration_duration": _TIME_TREND,
        "dropped_iterations": _COUNTER,
        "checks": _RATE,
        "group_duration": _TIME_TREND,
        "http_reqs": _COUNTER,
        "http_req_failed": _RATE,
        "http_req_duration": _TIME_TREND,
        "http_req_blocked": _TIME_TREND,
        "http_req_connecting": _TIME_TREND,
        "http_req_tls_handshaking": _TIME_TREND,
        "http_req_sending": _TIME_TREND,
        "http_req_waiting": _TIME_TREND,
        "http_req_receiving": _TIME_TREND,
        "ws_sessions": _COUNTER,
        "ws_msgs_sent": _COUNTER,
        "ws_msgs_received": _COUNTER,
        "ws_ping": _TIME_TREND,
        "ws_session_duration": _TIME_TREND,
        "ws_connecting": _TIME_TREND,
        "grpc_req_duration": _TIME_TREND,
        "data_sent": _DATA_COUNTER,
        "data_received": _DATA_COUNTER,
    }
)
"""Built-in metric name → ``(type, contains)``."""

EMITTED_OUTSIDE_VUS: frozenset[str] = frozenset({"vus", "vus_max", "dropped_iterations"})
"""Built-ins that k6 emits outside any VU, so their samples never carry a ``group`` tag.

``vus``/``vus_max`` come from the engine's 1 s ticker and ``dropped_iterations`` from the
executors, tagged with the test-wide tags (plus ``scenario`` for the latter). Every other
sample is emitted by a VU, whose tags always include ``group`` (``""`` for the root group)
when the ``group`` system tag is enabled (obs: ``k6-samples/json-full-2vus.jsonl``).
"""
