"""Threshold expressions, metric keys and Go literals, parsed as k6 v1.1.0 parses them."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from conftest import K6_SAMPLES, SAMPLES
from k6lab import k6_binary
from k6mcp_bridge.k6.go_literals import (
    go_format_float,
    parse_go_duration,
    parse_go_float,
    parse_k6_duration,
)
from k6mcp_bridge.k6.thresholds import (
    Threshold,
    ThresholdError,
    parse_cli_threshold,
    parse_expression,
    parse_metric_key,
    parse_threshold,
    thresholds_for,
    thresholds_from_options,
)
from k6mcp_bridge.messages import MetricMessage, ThresholdSpec

SCRIPTS = K6_SAMPLES / "scripts"


def inspect_thresholds(script: Path) -> dict[str, list[object]]:
    """The ``thresholds`` of ``k6 inspect``: submetric keys included, unlike the stream."""
    out = subprocess.run(
        [k6_binary(), "inspect", str(script)], capture_output=True, check=True, timeout=60
    ).stdout
    thresholds: dict[str, list[object]] = json.loads(out)["thresholds"]
    return thresholds


def stream_threshold_items() -> list[tuple[str, str | ThresholdSpec]]:
    """Every threshold of every Metric record in the JSON samples."""
    found = []
    for path in [*K6_SAMPLES.glob("*.jsonl"), SAMPLES / "k6-run.json"]:
        for line in path.read_bytes().splitlines():
            if line.startswith(b'{"type":"Metric"'):
                data = json.loads(line)["data"]
                for item in data["thresholds"]:
                    spec = item if isinstance(item, str) else ThresholdSpec.model_validate(item)
                    found.append((data["name"], spec))
    return found


# --- Go literals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500", 500.0),
        ("0.01", 0.01),
        (".5", 0.5),
        ("5.", 5.0),
        ("+5", 5.0),
        ("-2.5e3", -2500.0),
        ("1E-3", 0.001),
        ("1_000.5", 1000.5),
        ("0x1p-2", 0.25),
        ("0X1.8P1", 3.0),
        ("Inf", math.inf),
        ("-infinity", -math.inf),
        ("1e-400", 0.0),  # underflow is not an error in Go
    ],
)
def test_go_float_literals(text: str, value: float) -> None:
    assert parse_go_float(text) == value


def test_go_nan_literal() -> None:
    assert math.isnan(parse_go_float("NaN")) and math.isnan(parse_go_float("nan"))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("500ms", "invalid syntax"),
        ("", "invalid syntax"),
        (" 5", "invalid syntax"),
        ("1e", "invalid syntax"),
        ("_1", "invalid syntax"),
        ("1__0", "invalid syntax"),
        ("1_", "invalid syntax"),
        ("0x1", "invalid syntax"),  # a hex mantissa needs a p exponent
        ("+nan", "invalid syntax"),
        ("infx", "invalid syntax"),
        ("1.2.3", "invalid syntax"),
        ("1e400", "value out of range"),
        ("0x1p2000", "value out of range"),
    ],
)
def test_go_float_errors_say_what_go_says(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f'parsing "{text}": {reason}')):
        parse_go_float(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (95.0, "95"),
        (99.9, "99.9"),
        (0.0001, "0.0001"),
        (1e-05, "1e-05"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (12.5, "12.5"),
        (0.0, "0"),
    ],
)
def test_go_percent_g_formatting(value: float, text: str) -> None:
    assert go_format_float(value) == text


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("10s", 10 * 10**9),
        ("1m30s", 90 * 10**9),
        ("500ms", 5 * 10**8),
        ("1.5h", 5400 * 10**9),
        ("-2s", -2 * 10**9),
        ("0", 0),
        ("1h2m3.5s", 3723_500_000_000),
        ("3\u00b5s", 3000),
    ],
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid duration"),
        ("10", "missing unit"),
        ("1x", 'unknown unit "x"'),
        ("s", "invalid duration"),
        ("1.s.", "invalid duration"),
    ],
)
def test_go_duration_errors(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_go_duration(text)


def test_k6_durations_take_days_and_bare_milliseconds() -> None:
    assert parse_k6_duration("10s") == 10.0
    assert parse_k6_duration("1d12h") == 1.5 * 86400
    assert parse_k6_duration("1500") == 1.5  # a bare number is milliseconds in k6
    for bad in ("1x", "Inf", "NaN", "d", "1.5d"):
        with pytest.raises(ValueError):
            parse_k6_duration(bad)


# --- expressions ---------------------------------------------------------------------------------

DOCS_EXAMPLES = {
    # k6 docs (Using k6 > Thresholds, options reference) and their common variants
    "http_req_failed": ["rate<0.01", "rate<=0.01"],
    "http_req_duration": ["p(95)<200", "p(90) < 400", "p(95) < 800", "p(99.9) < 2000"],
    "http_req_duration{type:API}": ["p(95)<500"],
    "http_req_duration{type:staticContent}": ["p(95)<200"],
    "http_req_duration{group:::individualRequests}": ["avg < 400"],
    "group_duration{group:::batchRequests}": ["avg < 200"],
    "checks{myTag:hola}": ["rate>0.9"],
    "iteration_duration{scenario:default}": ["max>=0"],
    "http_reqs{container_group:testcontainers}": ["count>=1"],
    "RTT": ["p(99)<300", "p(70)<250", "avg<200", "med<150", "min<100"],
    "Content OK": ["rate>0.95"],
    "ContentSize": ["value<4000"],
    "Errors": ["count<100"],
    "data_sent": ["count>2.50"],
    "vus": ["value==2", "value===2", "value!=3"],
}


def test_every_threshold_in_the_samples_and_the_k6_docs_parses() -> None:
    items: list[tuple[str, str | ThresholdSpec]] = stream_threshold_items()
    for script in ["full.js", "hs.js", "small.js", "thr-abort.js", "thr-fail.js", "thr-fmt.js"]:
        for key, entries in inspect_thresholds(SCRIPTS / script).items():
            items += [
                (key, e if isinstance(e, str) else ThresholdSpec.model_validate(e)) for e in entries
            ]
    items += [(key, e) for key, entries in DOCS_EXAMPLES.items() for e in entries]
    items.append(("http_req_duration", ThresholdSpec(threshold="p(99) < 10", abort_on_fail=True)))
    assert len(items) > 50
    for key, item in items:
        (threshold,) = thresholds_for(key, [item])
        assert threshold.source == (item if isinstance(item, str) else item.threshold)


@pytest.mark.parametrize(
    ("source", "parsed"),
    [
        ("p(95)<500", ("p", 0.95, "<", 500.0)),
        ("p(99.9) <= 1000", ("p", 99.9 / 100, "<=", 1000.0)),
        (" rate < 0.01 ", ("rate", None, "<", 0.01)),
        ("count>=100", ("count", None, ">=", 100.0)),
        ("avg>200", ("avg", None, ">", 200.0)),
        ("med===1", ("med", None, "===", 1.0)),
        ("min==0", ("min", None, "==", 0.0)),
        ("max!=0", ("max", None, "!=", 0.0)),
        ("value<1e3", ("value", None, "<", 1000.0)),
        ("p<5", ("p", 0.0, "<", 5.0)),  # k6 reads a bare p as p(0)
        ("count<-Inf", ("count", None, "<", -math.inf)),
    ],
)
def test_expressions(source: str, parsed: tuple[str, float | None, str, float]) -> None:
    assert parse_expression(source) == parsed


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("p(95)=500", ["p(95)=500", "malformed threshold expression", "a single '='"]),
        ("count = 100", ["count = 100", "malformed threshold expression"]),  # thr-bad3.js
        ("p(95)<500ms", ["p(95)<500ms", "'500ms' is not a number", "without units"]),
        ("p(95)<", ["p(95)<", "'' is not a number"]),
        ("p95<500", ["p95<500", "unknown aggregation method 'p95'"]),
        ("mean<5", ["mean<5", "unknown aggregation method 'mean'", "p(N)"]),
        ("p( 95)<5", ["malformed percentile value in 'p( 95)'"]),  # k6 does not trim inside
        ("p(101)<5", ["'p(101)' is outside 0..100"]),
        ("p(NaN)<5", ["'p(NaN)' is outside 0..100"]),
    ],
)
def test_bad_expressions_are_named_in_clear_errors(source: str, words: list[str]) -> None:
    with pytest.raises(ThresholdError) as caught:
        parse_threshold("http_req_duration", source)
    message = str(caught.value)
    assert "http_req_duration" in message
    for word in words:
        assert word in message


def test_operators_are_scanned_in_k6s_order() -> None:
    # "<" comes before "==" in the scan: the first operator of the list that occurs splits
    with pytest.raises(ThresholdError, match="unknown aggregation method 'count=='"):
        parse_expression("count==<5")
    with pytest.raises(ThresholdError, match="the right hand side '=5' is not a number"):
        parse_expression("count<==5")  # "<=" splits first
    with pytest.raises(ThresholdError, match="unknown aggregation method 'count='"):
        parse_expression("count=>5")  # "=>" is no operator; ">" splits
    assert parse_expression("value===2")[2] == "==="  # "===" is scanned before "=="


def test_method_must_suit_the_metric_type_with_k6s_message() -> None:
    stderr = (K6_SAMPLES / "stderr-invalid-thresholds-exit104.txt").read_text()
    with pytest.raises(ThresholdError) as caught:
        parse_threshold("http_reqs", "p(95)<100", metric_type="counter")  # thr-bad.js
    assert (
        "unsupported aggregation method p on metric of type counter. "
        "supported aggregation methods for this metric are: count, rate"
    ) in str(caught.value)
    assert "unsupported aggregation method p on metric of type counter" in stderr
    with pytest.raises(
        ThresholdError, match="unsupported aggregation method count on metric of type trend"
    ):
        parse_threshold("http_req_duration", "count>100", metric_type="trend")
    with pytest.raises(ThresholdError, match="are: value"):
        parse_threshold("vus", "rate>1", metric_type="gauge")
    with pytest.raises(ThresholdError, match="are: rate"):
        parse_threshold("checks", "count>1", metric_type="rate")
    assert parse_threshold("http_reqs", "rate>1", metric_type="counter").method == "rate"


# --- metric keys and the command line ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name", "tags", "sink_key"),
    [
        ("http_req_duration", "http_req_duration", (), "http_req_duration"),
        ("http_reqs{status:200}", "http_reqs", (("status", "200"),), "http_reqs{status:200}"),
        (
            "group_duration{group:::home group}",
            "group_duration",
            (("group", "::home group"),),
            "group_duration{group:::home group}",
        ),
        (
            "m{ \"status\" : '200' , kind:a}",
            "m",
            (("status", "200"), ("kind", "a")),
            "m{\"status\" : '200' , kind:a}",
        ),
        ("m{a:1,a:2}", "m", (("a", "2"),), "m{a:1,a:2}"),  # the last value of a tag wins
        ("m{url:http://x:1/}", "m", (("url", "http://x:1/"),), "m{url:http://x:1/}"),
    ],
)
def test_metric_keys_parse_like_k6s_add_submetric(
    key: str, name: str, tags: tuple[tuple[str, str], ...], sink_key: str
) -> None:
    assert parse_metric_key(key) == (name, tags, sink_key)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("m{a}", "tag expression 'a' is malformed"),
        ("m{a:}", "tag expression 'a:' is malformed"),
        ("m{a:b,}", "tag expression '' is malformed"),
        ("m{}", "is malformed"),
        ("m{a:b}x", "lacks a closing curly brace in its last position"),
        ("m}a:b{", "closing curly brace appears before opening one"),
        ("m{a:b", "unmatched opening/close curly brace"),
    ],
)
def test_bad_metric_keys(key: str, problem: str) -> None:
    with pytest.raises(ThresholdError, match=re.escape(f"invalid metric '{key}'")) as caught:
        parse_metric_key(key)
    assert problem in str(caught.value)


def test_command_line_thresholds_split_after_the_selector() -> None:
    plain = parse_cli_threshold("http_req_duration:p(95)<500")
    assert (plain.key, plain.source, plain.tags) == ("http_req_duration", "p(95)<500", ())
    selected = parse_cli_threshold("http_req_duration{group:::api:items}:p(99) < 300")
    assert selected.key == "http_req_duration{group:::api:items}"
    assert selected.tags == (("group", "::api:items"),)
    assert (selected.source, selected.percentile) == ("p(99) < 300", 0.99)
    for bad in ("p(95)<500", ":p(95)<5", "m{a:b}p(95)<5", "m{a:b}"):
        with pytest.raises(ThresholdError, match=re.escape(f"invalid --threshold {bad!r}")):
            parse_cli_threshold(bad)


def test_thresholds_of_a_metric_record_keep_abort_settings() -> None:
    line = next(
        line
        for line in (K6_SAMPLES / "json-full-2vus.jsonl").read_text().splitlines()
        if '"name":"http_req_duration"' in line
    )
    message = MetricMessage.model_validate(json.loads(line) | {"type": "metric"})
    metric = message.data
    first, second = thresholds_for(metric.name, metric.thresholds, metric.type)
    assert (first.source, first.abort_on_fail, first.delay_abort_eval) == ("p(95)<500", False, None)
    assert (second.source, second.abort_on_fail, second.delay_abort_eval) == ("avg<200", True, 10.0)


def test_thresholds_from_k6_inspect_include_submetrics() -> None:
    thresholds = thresholds_from_options(inspect_thresholds(SCRIPTS / "full.js"))
    keys = {(t.key, t.source) for t in thresholds}
    assert ("http_req_duration{status:200}", "max<1000") in keys
    assert ("my_counter{kind:a}", "count>0") in keys
    assert len(thresholds) == 10
    with pytest.raises(ThresholdError, match="malformed threshold expression"):
        thresholds_from_options(inspect_thresholds(SCRIPTS / "thr-bad3.js"))


# --- evaluation ----------------------------------------------------------------------------------


def threshold(source: str, **extra: object) -> Threshold:
    return parse_threshold("m", source, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("source", "observed", "ok"),
    [
        ("avg<200", 199.9, True),
        ("avg<200", 200.0, False),
        ("avg<=200", 200.0, True),
        ("count>1", 1.0, False),
        ("count>=1", 1.0, True),
        ("value==2", 2.0, True),
        ("value===2", 2.5, False),
        ("value!=2", 2.5, True),
        ("avg<200", math.nan, False),
        ("avg!=200", math.nan, True),
        ("max<Inf", math.inf, False),
    ],
)
def test_evaluate_compares_like_go(source: str, observed: float, ok: bool) -> None:
    t = threshold(source)
    result, value = t.evaluate({t.stat: observed})
    assert result is ok
    assert value is observed


def test_a_missing_value_passes_as_an_empty_rate_does_in_k6() -> None:
    assert threshold("rate>0.99").evaluate({}) == (True, None)


def test_percentile_thresholds_read_their_own_stat() -> None:
    t = threshold("p(99.9)<5")
    assert t.stat == "p(99.9)"
    assert t.evaluate({"p(99.9)": 4.0, "p(99)": 9.0}) == (True, 4.0)
    assert threshold("p<1").stat == "p(0)"


def test_abort_waits_for_delay_abort_eval_strictly() -> None:
    t = threshold("max<1", abort_on_fail=True, delay_abort_eval="3s")
    assert not t.should_abort(False, 2.0)
    assert not t.should_abort(False, 3.0)  # k6: grace period < duration
    assert t.should_abort(False, 4.0)
    assert not t.should_abort(True, 4.0)
    assert threshold("max<1", abort_on_fail=True).should_abort(False, 0.0)
    assert not threshold("max<1").should_abort(False, 100.0)
    with pytest.raises(ThresholdError, match="bad delayAbortEval '3 s'"):
        threshold("max<1", abort_on_fail=True, delay_abort_eval="3 s")
