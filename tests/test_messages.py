"""MCP messages: round trips through MESSAGE_ADAPTER, infinities, time zones, schema."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from conftest import K6_SAMPLES, ROOT
from k6mcp_bridge.decode.json_lines import JsonDecoder, Rejection
from k6mcp_bridge.messages import (
    MESSAGE_ADAPTER,
    AnyMessage,
    Metric,
    MetricMessage,
    Point,
    PointMessage,
    ThresholdSpec,
    json_schema,
)
from k6mcp_bridge.samples import Decoded, messages_of

SAMPLES = K6_SAMPLES
REPO_SAMPLES = ROOT / "sample_outputs"

CAPTURES = [
    SAMPLES / "json-full-2vus.jsonl",
    SAMPLES / "json-plus-minus-Inf-INVALID.jsonl",
    SAMPLES / "json-weird-tags-metadata.jsonl",
    SAMPLES / "json-TZ-Asia-Kolkata.jsonl",
    SAMPLES / "json-threshold-abortOnFail.jsonl",
    REPO_SAMPLES / "k6-run.json",
]


def decode(lines: list[bytes]) -> list[AnyMessage]:
    """Decode k6 lines into the messages plugins get; any rejection or console line fails."""
    out: list[Decoded] = []
    rejected: list[Rejection] = []
    console: list[bytes] = []
    decoder = JsonDecoder(console.append, rejected.append)
    decoder.decode(lines, out)
    decoder.finish(None, out)
    assert rejected == [], [r.describe() for r in rejected]
    assert console == []
    return messages_of(out, points=True)


def capture_lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def no_bare_constants(text: str) -> Any:
    """``json.loads`` that refuses the non-standard ``Infinity``/``NaN`` tokens."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_round_trip_through_the_adapter(path: Path) -> None:
    lines = capture_lines(path)
    messages = decode(lines)
    assert len(messages) == len(lines)
    for message in messages:
        dumped = MESSAGE_ADAPTER.dump_json(message)
        as_json = no_bare_constants(dumped.decode())
        assert as_json["type"] == ("metric" if isinstance(message, MetricMessage) else "point")
        back = MESSAGE_ADAPTER.validate_json(dumped)
        assert type(back) is type(message)
        assert back == message
        assert MESSAGE_ADAPTER.validate_python(as_json) == message


def test_dumped_point_is_the_flat_mcp_shape() -> None:
    line = next(line for line in capture_lines(CAPTURES[0]) if b'"type":"Point"' in line)
    (message,) = decode([line])
    record = json.loads(line)
    dumped = json.loads(MESSAGE_ADAPTER.dump_json(message))
    assert dumped["type"] == "point"
    assert dumped["data"]["metric"] == record["metric"]
    assert dumped["data"]["value"] == record["data"]["value"]
    assert dumped["data"]["tags"] == record["data"]["tags"]
    assert "data" not in dumped["data"]


# --- infinities --------------------------------------------------------------------------------


def test_infinities_dump_as_strings_and_come_back() -> None:
    lines = capture_lines(SAMPLES / "json-plus-minus-Inf-INVALID.jsonl")
    points = [m for m in decode(lines) if isinstance(m, PointMessage)]
    infinite = [m for m in points if math.isinf(m.data.value)]
    expected_count = sum(b'"value":+Inf' in line or b'"value":-Inf' in line for line in lines)
    assert len(infinite) == expected_count > 0
    for message in infinite:
        dumped = MESSAGE_ADAPTER.dump_json(message).decode()
        value = no_bare_constants(dumped)["data"]["value"]
        assert value == ("Infinity" if message.data.value > 0 else "-Infinity")
        assert MESSAGE_ADAPTER.validate_json(dumped).data.value == message.data.value


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_point_built_in_python(value: float) -> None:
    when = datetime(2026, 11, 24, 18, 0, 2, 718169, tzinfo=timezone.utc)
    message = PointMessage(data=Point(metric="m", time=when, value=value))
    dumped = MESSAGE_ADAPTER.dump_json(message)
    assert no_bare_constants(dumped.decode())["data"]["value"] in ("Infinity", "-Infinity")
    assert MESSAGE_ADAPTER.validate_json(dumped).data.value == value


# --- timestamps --------------------------------------------------------------------------------


def point_payload(time: Any) -> dict[str, Any]:
    return {"type": "point", "data": {"metric": "m", "time": time, "value": 1}}


@pytest.mark.parametrize(
    "naive", ["2026-11-24T18:00:02.5", "2026-11-24T18:00:02", datetime(2026, 11, 24, 18, 0, 2)]
)
def test_naive_timestamp_is_rejected(naive: Any) -> None:
    with pytest.raises(ValidationError) as excinfo:
        MESSAGE_ADAPTER.validate_python(point_payload(naive))
    assert any("time" in error["loc"] for error in excinfo.value.errors())


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2026-11-24T18:00:02.5Z", timedelta(0)),
        ("2026-11-24T23:30:46.014679241+05:30", timedelta(hours=5, minutes=30)),
        ("2026-11-24T13:00:02-05:00", timedelta(hours=-5)),
    ],
)
def test_aware_timestamps_keep_their_offset_through_a_round_trip(
    text: str, offset: timedelta
) -> None:
    message = MESSAGE_ADAPTER.validate_python(point_payload(text))
    assert isinstance(message, PointMessage)
    assert message.data.time.utcoffset() == offset
    back = MESSAGE_ADAPTER.validate_json(MESSAGE_ADAPTER.dump_json(message))
    assert back.data.time == message.data.time
    assert back.data.time.utcoffset() == offset


# --- forward compatibility ---------------------------------------------------------------------


def test_unknown_fields_in_k6_records_are_ignored() -> None:
    metric = json.loads(next(iter(capture_lines(CAPTURES[0]))))
    assert metric["type"] == "Metric"
    metric["tainted"] = False
    metric["data"]["sub"] = {"x": 1}
    metric["data"]["newField"] = [1, 2]
    point = {
        "metric": metric["metric"],
        "type": "Point",
        "extra": True,
        "data": {"time": "2026-11-24T18:00:02Z", "value": 1, "tags": {}, "future": {"a": 1}},
    }
    lines = [json.dumps(metric).encode(), json.dumps(point).encode()]
    metric_message, point_message = decode(lines)
    assert isinstance(metric_message, MetricMessage)
    assert metric_message.data.name == metric["data"]["name"]
    assert isinstance(point_message, PointMessage)
    assert point_message.data.value == 1
    for message in (metric_message, point_message):
        dumped = MESSAGE_ADAPTER.dump_json(message).decode()
        for unknown in ("tainted", "sub", "newField", "extra", "future"):
            assert f'"{unknown}"' not in dumped


def test_unknown_fields_in_mcp_messages_are_ignored() -> None:
    payload = point_payload("2026-11-24T18:00:02Z")
    payload["version"] = 2
    payload["data"]["unit"] = "ms"
    message = MESSAGE_ADAPTER.validate_python(payload)
    assert isinstance(message, PointMessage)
    assert "unit" not in MESSAGE_ADAPTER.dump_json(message).decode()


def test_unknown_message_type_is_rejected() -> None:
    payload = point_payload("2026-11-24T18:00:02Z")
    payload["type"] = "histogram"
    with pytest.raises(ValidationError):
        MESSAGE_ADAPTER.validate_python(payload)


# --- thresholds --------------------------------------------------------------------------------


def metric_lines_with_object_thresholds() -> list[bytes]:
    lines = [
        line
        for path in CAPTURES
        for line in capture_lines(path)
        if b'"type":"Metric"' in line and b'"abortOnFail"' in line
    ]
    assert lines, "no capture has a threshold in object form"
    return lines


def test_object_thresholds_parse_into_threshold_specs() -> None:
    lines = metric_lines_with_object_thresholds()
    for line, message in zip(lines, decode(lines), strict=True):
        assert isinstance(message, MetricMessage)
        raw = json.loads(line)["data"]["thresholds"]
        assert len(message.data.thresholds) == len(raw)
        for parsed, original in zip(message.data.thresholds, raw, strict=True):
            if isinstance(original, str):
                assert parsed == original
            else:
                assert isinstance(parsed, ThresholdSpec)
                assert parsed.threshold == original["threshold"]
                assert parsed.abort_on_fail is original["abortOnFail"]
                assert parsed.delay_abort_eval == original["delayAbortEval"]


def test_threshold_spec_forms() -> None:
    spec = ThresholdSpec.model_validate(
        {"threshold": "count>0", "abortOnFail": True, "delayAbortEval": None}
    )
    assert (spec.threshold, spec.abort_on_fail, spec.delay_abort_eval) == ("count>0", True, None)
    assert ThresholdSpec.model_validate({"threshold": "rate>0"}).abort_on_fail is False
    metric = Metric.model_validate(
        {
            "name": "c",
            "type": "counter",
            "contains": "default",
            "thresholds": [
                {"threshold": "count>0", "abortOnFail": True, "delayAbortEval": "10s"},
                "count<10",
            ],
        }
    )
    first, second = metric.thresholds
    assert isinstance(first, ThresholdSpec)
    assert first.delay_abort_eval == "10s"
    assert second == "count<10"
    message = MetricMessage(data=metric)
    assert MESSAGE_ADAPTER.validate_json(MESSAGE_ADAPTER.dump_json(message)) == message


# --- JSON Schema -------------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def schema_errors(instance: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    """A small JSON Schema checker: the keywords pydantic emits for these models."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(instance, root["$defs"][name], root)
    errors: list[str] = []
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(instance, _JSON_TYPES[k])
            and not (isinstance(instance, bool) and k in ("number", "integer"))
            for k in kinds
        )
        if not ok:
            return [f"{instance!r:.60} is not of type {kinds}"]
    if "const" in schema and instance != schema["const"]:
        errors.append(f"{instance!r:.60} != const {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{instance!r:.60} not in {schema['enum']}")
    if "anyOf" in schema and all(schema_errors(instance, s, root) for s in schema["anyOf"]):
        errors.append(f"{instance!r:.60} matches none of anyOf")
    if "oneOf" in schema:
        branches = [schema_errors(instance, s, root) for s in schema["oneOf"]]
        matches = branches.count([])
        if matches != 1:
            closest = min(branches, key=len)  # the branch the instance was meant for
            errors.append(f"matches {matches} of oneOf; closest: {closest}")
    if isinstance(instance, dict):
        errors += [f"missing {key}" for key in schema.get("required", []) if key not in instance]
        properties = schema.get("properties", {})
        extra_schema = schema.get("additionalProperties", True)
        for key, value in instance.items():
            if key in properties:
                errors += [f"{key}: {e}" for e in schema_errors(value, properties[key], root)]
            elif extra_schema is False:
                errors.append(f"unexpected property {key}")
            elif isinstance(extra_schema, dict):
                errors += [f"{key}: {e}" for e in schema_errors(value, extra_schema, root)]
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += [f"[{index}]: {e}" for e in schema_errors(item, schema["items"], root)]
    return errors


def test_json_schema_describes_both_message_kinds() -> None:
    schema = json_schema()
    text = json.dumps(schema)  # plain JSON: no Python-only values
    assert json.loads(text) == schema
    assert "oneOf" in schema or "anyOf" in schema or "discriminator" in schema
    assert '"metric"' in text
    assert '"point"' in text
    if "discriminator" in schema:
        assert schema["discriminator"]["propertyName"] == "type"
        assert set(schema["discriminator"]["mapping"]) == {
            "metric",
            "point",
            "metrics",
            "threshold",
            "window",
        }
    assert isinstance(schema.get("title"), str)


def test_schema_checker_rejects_bad_messages() -> None:
    """The checker used below can fail: bad messages do not pass it."""
    schema = json_schema()
    good = point_payload("2026-11-24T18:00:02Z")
    assert schema_errors(good, schema, schema) == []
    assert schema_errors({**good, "type": "histogram"}, schema, schema)
    assert schema_errors({"type": "point", "data": {"metric": "m", "value": 1}}, schema, schema)
    bad_tags = {"type": "point", "data": {**good["data"], "tags": {"status": 200}}}
    assert schema_errors(bad_tags, schema, schema)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_dumped_message_matches_the_json_schema(path: Path) -> None:
    """The schema is for tools outside Python: what the bridge writes must satisfy it."""
    schema = json_schema()
    failures = []
    for message in decode(capture_lines(path)):
        instance = json.loads(MESSAGE_ADAPTER.dump_json(message))
        errors = schema_errors(instance, schema, schema)
        if errors:
            failures.append((instance["data"].get("value"), errors[:2]))
    assert failures == []
