"""k6 threshold expressions, parsed and evaluated exactly as k6 v1.1.0 does.

Grammar (``metrics/thresholds_parser.go``)::

    threshold := <method> <op> <number>        (each part trimmed of white space)
    method    := count | rate | value | avg | min | max | med | p(<number>)
    op        := <= | < | >= | > | === | == | !=

The operators are looked for in that order and the first one found splits the text; a single
``=`` is none of them. Numbers are Go ``strconv.ParseFloat`` literals (``1e3``, ``0x1p-2``,
``1_000``, ``Inf``; no units: ``500ms`` is an error), read by :mod:`.go_literals`. Each metric
type allows its own methods (``count`` is not valid on a trend). Metric keys may select a
submetric, ``name{tag:value,...}``, parsed like k6's ``AddSubmetric``: split on ``,``, each
part on its first ``:``, spaces then quotes trimmed, so ``group:::home`` is ``group`` =
``::home``.

Where k6 is looser than it looks, this module is stricter and says so in the error: ``p(N)``
outside 0..100 (or NaN) parses in k6 but crashes it once the trend has two values. k6 also
accepts a bare ``p`` as the method and evaluates it as ``p(0)``; so does this module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError
from ..messages import MetricType, ThresholdSpec
from .go_literals import go_format_float, parse_go_duration, parse_go_float, parse_k6_duration

OPERATORS = ("<=", "<", ">=", ">", "===", "==", "!=")
"""In k6's scan order: the first one found in the expression splits it."""
METHODS = ("value", "count", "rate", "avg", "min", "med", "max", "p")
SUPPORTED_METHODS: dict[MetricType, tuple[str, ...]] = {
    "counter": ("count", "rate"),
    "gauge": ("value",),
    "rate": ("rate",),
    "trend": ("avg", "min", "max", "med", "p"),
}
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What Go's ``strings.TrimSpace`` trims (``unicode.IsSpace``)."""


class ThresholdError(ConfigError):
    """A threshold k6 would reject (k6 exits 104 for these)."""


# --- Metric keys (``name`` or ``name{tag:value,...}``) ------------------------------------------


def parse_metric_key(key: str) -> tuple[str, tuple[tuple[str, str], ...], str]:
    """``(metric, selector tags, k6's name for the sink)`` for a threshold's metric key.

    Follows k6's ``ParseMetricName`` checks and ``AddSubmetric`` parsing: the name is
    ``metric{<trimmed selector>}`` and a repeated tag keeps its last value.
    """
    opening, closing = key.find("{"), key.rfind("}")
    if opening < 0 and closing < 0:
        return key, (), key
    problem = None
    if opening < 0 or closing < 0:
        problem = "has unmatched opening/close curly brace"
    elif closing < opening:
        problem = "closing curly brace appears before opening one"
    elif closing != len(key) - 1:
        problem = "lacks a closing curly brace in its last position"
    else:
        for part in key[opening + 1 : closing].split(","):
            if ":" not in part or not part.split(":", 1)[1]:
                problem = f"tag expression {part!r} is malformed (expected tag:value)"
                break
    if problem is not None:
        raise ThresholdError(f"invalid metric '{key}' in threshold definitions: {problem}")
    name, selector = key[:opening], key[opening + 1 : closing].strip(_GO_SPACE)
    tags: dict[str, str] = {}
    for part in selector.split(","):
        if part:
            tag, _, value = part.partition(":")
            tags[tag.strip(_GO_SPACE).strip("\"'")] = value.strip(_GO_SPACE).strip("\"'")
    return name, tuple(tags.items()), f"{name}{{{selector}}}"


# --- Thresholds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """One threshold on one metric or submetric."""

    metric: str
    """The (parent) metric's name."""
    tags: tuple[tuple[str, str], ...]
    """The submetric selector, in the order written; empty for the metric itself."""
    key: str
    """k6's name for the sink: ``metric`` or ``metric{selector}``."""
    source: str
    """The expression exactly as written: k6's key for it in summaries."""
    method: str
    """``count``, ``rate``, ``value``, ``avg``, ``min``, ``max``, ``med`` or ``p``."""
    percentile: float | None
    """For ``p(N)``: ``N / 100``."""
    op: str
    value: float
    abort_on_fail: bool = False
    delay_abort_eval: float | None = None
    """Seconds of test-run time before a failure may abort the test (None: at once)."""
    over_s: float | None = None
    """A windowed threshold (``p(95)<30 over 1s``, the bridge's own): the window in seconds."""

    @property
    def stat(self) -> str:
        """The aggregated value's name, as k6 writes it: ``p(95)``, ``avg``..."""
        if self.method != "p":
            return self.method
        return f"p({go_format_float(100 * (self.percentile or 0.0))})"

    def check_type(self, metric_type: MetricType) -> None:
        """Raise ThresholdError when the method is not one the metric type supports."""
        supported = SUPPORTED_METHODS[metric_type]
        if self.method not in supported:
            names = ", ".join("p(N)" if m == "p" else m for m in supported)
            raise ThresholdError(
                f'invalid threshold "{self.source}" applied on metric {self.key}; reason: '
                f"unsupported aggregation method {self.method} on metric of type "
                f"{metric_type}. supported aggregation methods for this metric are: {names}"
            )

    def evaluate(self, sink_values: Mapping[str, float]) -> tuple[bool, float | None]:
        """``(ok, observed)`` against the sink's values keyed by :attr:`stat`.

        A missing value (an empty rate sink) passes, as in k6.
        """
        observed = sink_values.get(self.stat)
        if observed is None:
            return True, None
        ok = _COMPARE[self.op](observed, self.value)
        return ok, observed

    def should_abort(self, ok: bool, test_run_duration_s: float) -> bool:
        """k6's rule: a failed ``abortOnFail`` threshold aborts once ``delayAbortEval`` passed."""
        if ok or not self.abort_on_fail:
            return False
        return self.delay_abort_eval is None or self.delay_abort_eval < test_run_duration_s


_COMPARE = {
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "===": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _fail(source: str, key: str, reason: str) -> ThresholdError:
    return ThresholdError(f'invalid threshold "{source}" on metric {key}: {reason}')


def parse_expression(source: str, key: str = "?") -> tuple[str, float | None, str, float]:
    """``(method, percentile, op, value)`` of an expression such as ``p(99.9) <= 1000``."""
    for op in OPERATORS:
        if op in source:
            left, right = source.split(op, 1)
            left, right = left.strip(_GO_SPACE), right.strip(_GO_SPACE)
            break
    else:
        raise _fail(
            source,
            key,
            "malformed threshold expression; expected <method> <operator> <number> such as "
            "'p(95)<500', with one of the operators <=, <, >=, >, ===, ==, != "
            "(a single '=' is not an operator)",
        )
    percentile = None
    if left in METHODS:
        method = left
        percentile = 0.0 if left == "p" else None  # k6 reads a bare "p" as p(0)
    elif left.startswith("p(") and left.endswith(")"):
        method = "p"
        try:
            percent = parse_go_float(left[2:-1])
        except ValueError as exc:
            raise _fail(source, key, f"malformed percentile value in {left!r}: {exc}") from None
        if not 0 <= percent <= 100:
            raise _fail(
                source,
                key,
                f"percentile {left!r} is outside 0..100 (k6 parses it, then crashes evaluating it)",
            )
        percentile = percent / 100
    else:
        raise _fail(
            source,
            key,
            f"unknown aggregation method {left!r}; expected one of count, rate, value, avg, "
            "min, max, med or p(N)",
        )
    try:
        value = parse_go_float(right)
    except ValueError as exc:
        raise _fail(
            source,
            key,
            f"the right hand side {right!r} is not a number ({exc}); thresholds take plain "
            "numbers without units: durations are in milliseconds, e.g. 'p(95)<500'",
        ) from None
    return method, percentile, op, value


_OVER = re.compile(r"\s+over\s+(\S+)\s*$")


def split_window(source: str, key: str = "?") -> tuple[str, float | None]:
    """``('p(95)<30', 1.0)`` for ``'p(95)<30 over 1s'`` (a Go duration, > 0); no window:
    ``(source, None)``."""
    match = _OVER.search(source)
    if match is None:
        return source, None
    text = match.group(1)
    try:
        nanoseconds = parse_go_duration(text)
    except ValueError as exc:
        raise _fail(
            source, key, f"bad window {text!r} after 'over': {exc} (Go durations: 30s, 5m, 1h30m)"
        ) from None
    if nanoseconds <= 0:
        raise _fail(source, key, f"the window after 'over' must be longer than 0, not {text!r}")
    return source[: match.start()], nanoseconds / 1e9


def parse_threshold(
    key: str,
    source: str,
    *,
    abort_on_fail: bool = False,
    delay_abort_eval: str | None = None,
    metric_type: MetricType | None = None,
) -> Threshold:
    """A threshold on metric key ``key`` (``name`` or ``name{tag:value}``), validated against
    ``metric_type`` when it is known."""
    metric, tags, sink_key = parse_metric_key(key)
    expression, over_s = split_window(source, sink_key)
    method, percentile, op, value = parse_expression(expression, sink_key)
    delay = None
    if delay_abort_eval is not None:
        try:
            delay = parse_k6_duration(delay_abort_eval)
        except ValueError as exc:
            raise _fail(
                source, sink_key, f"bad delayAbortEval {delay_abort_eval!r}: {exc}"
            ) from None
    threshold = Threshold(
        metric, tags, sink_key, source, method, percentile, op, value, abort_on_fail, delay, over_s
    )
    if metric_type is not None:
        threshold.check_type(metric_type)
    return threshold


def thresholds_for(
    key: str, items: Iterable[str | ThresholdSpec], metric_type: MetricType | None = None
) -> list[Threshold]:
    """The thresholds of one entry of k6's ``options.thresholds`` (strings or objects)."""
    return [
        parse_threshold(key, item, metric_type=metric_type)
        if isinstance(item, str)
        else parse_threshold(
            key,
            item.threshold,
            abort_on_fail=item.abort_on_fail,
            delay_abort_eval=item.delay_abort_eval,
            metric_type=metric_type,
        )
        for item in items
    ]


def thresholds_from_options(
    options: Mapping[str, Iterable[str | Mapping[str, object] | ThresholdSpec]],
) -> list[Threshold]:
    """All thresholds of k6's ``options.thresholds`` (e.g. the ``thresholds`` of
    ``k6 inspect``'s JSON), submetric keys included; metric types are not known there."""
    return [
        threshold
        for key, items in options.items()
        for threshold in thresholds_for(
            key,
            [
                item
                if isinstance(item, str | ThresholdSpec)
                else ThresholdSpec.model_validate(item)
                for item in items
            ],
        )
    ]


def parse_cli_threshold(text: str, metric_type: MetricType | None = None) -> Threshold:
    """``'METRIC:EXPR'`` or ``'METRIC{tag:value}:EXPR'`` (``--threshold``): a selector may
    hold ``:``, so then the split is at the ``:`` right after its closing ``}``."""
    opening, colon = text.find("{"), text.find(":")
    if opening >= 0 and (colon < 0 or opening < colon):
        colon = text.rfind("}") + 1
        if text[colon : colon + 1] != ":":
            colon = -1
    if colon <= 0:
        raise ThresholdError(
            f"invalid --threshold {text!r}: expected METRIC:EXPRESSION or "
            "METRIC{tag:value}:EXPRESSION, e.g. 'http_req_duration:p(95)<500'"
        )
    return parse_threshold(text[:colon], text[colon + 1 :], metric_type=metric_type)
