"""Request bodies of ``--listen`` → records: each kind of item, its errors, and the same values
as a replay of the same k6 lines."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from conftest import ROOT, Run
from k6mcp_bridge.addresses import is_loopback, parse_address
from k6mcp_bridge.decode.json_lines import JsonDecoder
from k6mcp_bridge.messages import MetricMessage, PointMessage
from k6mcp_bridge.receive.bodies import BodyReader, Parcel, body_kind
from k6mcp_bridge.samples import PointRecord, messages_of

CAPTURE = ROOT / "tests" / "data" / "k6-samples" / "json-full-2vus.jsonl"


def replayed(raw: bytes) -> Run:
    """What the stream decoder makes of the same lines (the reference)."""
    run = Run(JsonDecoder(lambda line: None, lambda rejection: None))
    run.decoder.decode(raw.splitlines(), run.records)
    return run


def seed(data: object) -> bytes:
    return json.dumps({"type": "metrics", "data": data}).encode()


def test_seed_entries_are_points_of_the_named_metrics_typed_as_k6_types_them() -> None:
    reader = BodyReader({})
    before = datetime.now(timezone.utc)
    first = reader.read(seed({"vus": 10, "iterations": 100}), "json")
    second = reader.read(seed({"vus": 12, "iterations": 100}), "json")
    after = datetime.now(timezone.utc)

    definitions = [r for r in first.records if isinstance(r, MetricMessage)]
    assert [(d.data.name, d.data.type, d.data.contains) for d in definitions] == [
        ("vus", "gauge", "default"),
        ("iterations", "counter", "default"),
    ]
    assert all(isinstance(r, PointRecord) for r in second.records)  # defined once
    points = [r for p in (first, second) for r in p.records if isinstance(r, PointRecord)]
    assert [(p.metric, p.value, p.tags) for p in points] == [
        ("vus", 10.0, None),
        ("iterations", 100.0, None),
        ("vus", 12.0, None),
        ("iterations", 100.0, None),
    ]
    assert points[0].time == points[1].time  # one request, one arrival time
    assert all(before <= p.time <= after for p in points)
    assert first.answer() == {"accepted": 4, "recomputed": 0, "rejected": 0}


def test_a_custom_seed_metric_is_a_trend_unless_typed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="k6mcp_bridge")
    untyped = BodyReader({}).read(seed({"cart_size": 3}), "json").records[0]
    typed = BodyReader({"cart_size": "gauge"}).read(seed({"cart_size": 3}), "json").records[0]
    assert isinstance(untyped, MetricMessage) and isinstance(typed, MetricMessage)
    assert (untyped.data.type, typed.data.type) == ("trend", "gauge")
    assert "--metric-type cart_size=" in caplog.text


def test_bad_seed_entries_are_named_and_the_good_ones_still_delivered() -> None:
    parcel = BodyReader({}).read(
        seed({"vus": 3, "x": 1, "bad-name": 2, "level": "high", "flag": True, "huge": 10**400}),
        "json",
    )
    assert [r.metric for r in parcel.records if isinstance(r, PointRecord)] == ["vus"]
    errors = parcel.answer()["errors"]
    assert [e["field"] for e in errors] == [
        "data.x",
        "data.bad-name",
        "data.level",
        "data.flag",
        "data.huge",
    ]
    assert "invalid metric name 'x'" in errors[0]["reason"]
    assert "a number is expected (got 'high')" in errors[2]["reason"]
    assert "a finite number" in errors[4]["reason"]
    assert "index" not in errors[0] and "line" not in errors[0]  # one object: the body itself


def test_ndjson_of_a_real_capture_gives_what_the_stream_decoder_gives() -> None:
    raw = CAPTURE.read_bytes()
    lines = raw.splitlines()
    reader = BodyReader({})
    parcels = [
        reader.read(b"\n".join(lines[i : i + 37]), "ndjson") for i in range(0, len(lines), 37)
    ]
    got = [r for p in parcels for r in p.records]
    assert not [p for p in parcels if p.problems]
    assert messages_of(got, points=True) == replayed(raw).messages
    assert sum(p.items for p in parcels) == len(lines)


def test_a_bad_ndjson_line_is_named_by_its_line_and_field() -> None:
    lines = CAPTURE.read_bytes().splitlines()[:4]
    record = json.loads(lines[1])
    record["data"]["value"] = "x"
    bad_value = json.dumps(record).encode()
    body = b"\n".join([lines[0], b"", bad_value, b"not json", lines[2], b'{"type":"Event"}'])
    parcel = BodyReader({}).read(body + b"\n", "ndjson")

    assert len(parcel.records) == 2  # line 1 and line 5
    errors = parcel.answer()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(3, "data.value"), (4, None), (6, "type")]
    assert "invalid JSON" in errors[1]["reason"]
    assert "unknown type 'Event'" in errors[2]["reason"]
    described = parcel.problems[0].rejection(7).describe()
    assert described.startswith("request 7, line 3: field data.value:")


def test_mcp_envelopes_one_or_an_array_become_the_same_records() -> None:
    reference = replayed(CAPTURE.read_bytes())
    envelopes = [m.model_dump(mode="json") for m in reference.messages]
    array = BodyReader({}).read(json.dumps(envelopes).encode(), "json")
    assert messages_of(array.records, points=True) == reference.messages
    one = BodyReader({}).read(json.dumps(envelopes[1]).encode(), "json")
    assert messages_of(one.records, points=True) == reference.messages[1:2]


def test_an_infinite_point_envelope_round_trips() -> None:
    point = PointMessage.model_validate(
        {"data": {"metric": "m", "time": "2026-01-01T00:00:00Z", "value": float("-inf")}}
    )
    parcel = BodyReader({}).read(point.model_dump_json().encode(), "json")
    assert messages_of(parcel.records, points=True) == [point]


def test_bad_array_items_are_named_by_index() -> None:
    good = {"type": "point", "data": {"metric": "m", "time": "2026-01-01T00:00:00Z", "value": 1}}
    no_time = {"type": "point", "data": {"metric": "m", "value": 1}}
    body = json.dumps([good, no_time, 5, good]).encode()
    parcel = BodyReader({}).read(body, "json")
    assert len(parcel.records) == 2
    assert [(e["index"], e["field"]) for e in parcel.answer()["errors"]] == [
        (1, "data.time"),
        (2, "type"),
    ]
    assert parcel.problems[0].rejection(1).describe().startswith("request 1, item 1:")


def test_snapshots_verdicts_and_windows_are_checked_but_not_passed_on() -> None:
    snapshot = {
        "type": "metrics",
        "data": {
            "time": None,
            "final": True,
            "test_run_duration_ms": 1.0,
            "metrics": {},
            "root_group": {"name": "", "path": "", "id": "d41d8cd98f00b204e9800998ecf8427e"},
        },
    }
    parcel = BodyReader({}).read(json.dumps(snapshot).encode(), "json")
    assert (parcel.records, parcel.recomputed, parcel.problems) == ([], 1, [])
    del snapshot["data"]["final"]  # type: ignore[attr-defined]
    broken = BodyReader({}).read(json.dumps(snapshot).encode(), "json")
    assert [(e["field"], e["reason"]) for e in broken.answer()["errors"]] == [
        ("data.final", "metrics envelope: Field required")
    ]


def test_invalid_json_is_an_error_of_the_body() -> None:
    parcel = BodyReader({}).read(b"[1, 2", "json")
    assert parcel.items == 1 and not parcel.records
    assert parcel.answer()["errors"][0]["reason"].startswith("invalid JSON")


def test_the_answer_lists_at_most_a_hundred_errors() -> None:
    parcel = BodyReader({}).read(b"\n".join([b"nope"] * 130), "ndjson")
    answer = parcel.answer()
    assert (answer["rejected"], len(answer["errors"]), answer["more_errors"]) == (130, 100, 30)


def test_an_empty_parcel_is_an_idle_tick() -> None:
    assert not Parcel(0)
    assert BodyReader({}).read(b"\n\n", "ndjson").items == 0


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("application/json", "json"),
        ("Application/JSON; charset=utf-8", "json"),
        ("application/x-ndjson", "ndjson"),
        ("application/jsonl", "ndjson"),
        ("text/plain", None),
        ("", None),
        (None, None),
    ],
)
def test_content_types(header: str | None, kind: str | None) -> None:
    assert body_kind(header) == kind


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5000", ("127.0.0.1", 5000)),
        (":5000", ("127.0.0.1", 5000)),
        ("5000", ("127.0.0.1", 5000)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_address(text, "--listen") == address


def test_loopback_addresses() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "10.0.0.1", "::", "example.org")] == [False] * 4
