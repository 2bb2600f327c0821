"""``JsonDecoder``: k6 JSON lines to MCP messages, console text and precise rejections."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import K6_SAMPLES, ROOT, Run
from k6mcp_bridge.decode.json_lines import JsonDecoder, Rejection
from k6mcp_bridge.input.lines import LineSplitter, Overlong
from k6mcp_bridge.messages import PointMessage

SAMPLES = K6_SAMPLES
REPO_SAMPLES = ROOT / "sample_outputs"

FULL = SAMPLES / "json-full-2vus.jsonl"
CORRUPTED = SAMPLES / "stdout-json-dash-NO-quiet-CORRUPTED.txt"
REPO_STDOUT = REPO_SAMPLES / "k6-json-stdout.txt"
INF = SAMPLES / "json-plus-minus-Inf-INVALID.jsonl"
KOLKATA = SAMPLES / "json-TZ-Asia-Kolkata.jsonl"
WEIRD = SAMPLES / "json-weird-tags-metadata.jsonl"

TEN_MB = 10 * 1024 * 1024
PROGRESS = (
    b"running (01.0s), 1/1 VUs, 3 complete and 0 interrupted iterations",
    b"default   [  17% ]",
)


def new_run() -> Run:
    console: list[bytes] = []
    rejections: list[Rejection] = []
    decoder = JsonDecoder(console.append, rejections.append)
    return Run(decoder, [], console, rejections)


def decode_lines(*batches: list[bytes], tail: bytes | None = None) -> Run:
    """Decode each batch with one ``decode`` call, then ``finish(tail)``."""
    run = new_run()
    for batch in batches:
        run.decoder.decode(batch, run.records)
    run.decoder.finish(tail, run.records)
    return run


def decode_bytes(data: bytes, chunk_size: int = 4096) -> Run:
    """Decode a whole capture the way the pipeline does: chunks, LineSplitter, decoder."""
    run = new_run()
    splitter = LineSplitter()
    for start in range(0, len(data), chunk_size):
        run.decoder.decode(splitter.feed(data[start : start + chunk_size]), run.records)
    run.decoder.finish(splitter.finish(), run.records)
    return run


def file_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data.split(b"\n")[:-1]


def first_line(path: Path, needle: bytes) -> bytes:
    return next(line for line in file_lines(path) if needle in line)


METRIC_LINE = first_line(FULL, b'"type":"Metric"')
POINT_LINE = first_line(FULL, b'"type":"Point"')
OTHER_POINT_LINE = next(
    line for line in file_lines(FULL) if b'"type":"Point"' in line and line != POINT_LINE
)


def point(value: str = "1", time: str = "2026-11-24T18:00:02.718169658Z", **extra: Any) -> bytes:
    """A k6 Point line; ``value`` is inserted verbatim (so ``+Inf`` stays bare)."""
    data = {"time": time, "value": "@VALUE@", "tags": {"group": "", "scenario": "default"}}
    data.update(extra)
    text = json.dumps({"metric": "m", "type": "Point", "data": data}, separators=(",", ":"))
    return text.replace('"@VALUE@"', value).encode()


# --- real captures -----------------------------------------------------------------------------


def test_every_point_and_metric_of_a_file_capture_is_decoded() -> None:
    lines = file_lines(FULL)
    run = decode_lines(lines)
    assert run.rejections == []
    assert run.console == []
    assert len(run.points) == sum(b'"type":"Point"' in line for line in lines)
    assert len(run.metrics) == sum(b'"type":"Metric"' in line for line in lines)
    assert run.decoder.lineno == len(lines)
    # same content and order as the standard library's reading of the same (valid) JSON
    expected = [json.loads(line) for line in lines]
    for message, record in zip(run.messages, expected, strict=True):
        if isinstance(message, PointMessage):
            assert record["type"] == "Point"
            assert message.data.metric == record["metric"]
            assert message.data.value == record["data"]["value"]
            assert message.data.tags == record["data"]["tags"]
            assert message.data.metadata == record["data"].get("metadata")
        else:
            assert record["type"] == "Metric"
            assert message.data.name == record["data"]["name"] == record["metric"]
            assert message.data.type == record["data"]["type"]
            assert message.data.contains == record["data"]["contains"]


@pytest.mark.parametrize("chunk_size", [1 << 20, 4096, 97])
def test_same_result_however_the_file_is_chunked(chunk_size: int) -> None:
    data = FULL.read_bytes()
    assert decode_bytes(data, chunk_size).messages == decode_lines(file_lines(FULL)).messages


def test_weird_tags_and_metadata_survive() -> None:
    lines = file_lines(WEIRD)
    run = decode_lines(lines)
    assert run.rejections == []
    records = [json.loads(line) for line in lines]
    assert len(run.records) == len(records)
    for message, record in zip(run.messages, records, strict=True):
        if isinstance(message, PointMessage):
            assert message.data.tags == record["data"]["tags"]
            assert message.data.metadata == record["data"].get("metadata")


_PROGRESS_OR_BLANK = re.compile(rb"^(running \(|default\s|\s*$)")


def records_in_console_capture(data: bytes) -> int:
    """Count the k6 records in a ``--out json=-`` capture without a JSON decoder.

    k6's progress lines (``running (…)``, ``default [ … ]``) and blank lines are removed and
    the rest is joined without newlines, which puts the record halves that progress output
    separated back together; then each record's ``"type":"Metric"``/``"type":"Point"`` is counted.
    """
    kept = [line for line in data.split(b"\n") if not _PROGRESS_OR_BLANK.match(line)]
    joined = b"".join(kept)
    return joined.count(b'"type":"Metric"') + joined.count(b'"type":"Point"')


def point_values_in_console_capture(data: bytes) -> list[float]:
    kept = [line for line in data.split(b"\n") if not _PROGRESS_OR_BLANK.match(line)]
    return [float(v) for v in re.findall(rb'"value":([-+0-9.eE]+)[,}]', b"".join(kept))]


@pytest.mark.parametrize("path", [CORRUPTED, REPO_STDOUT], ids=["shared", "repo"])
def test_stdout_capture_with_split_records_is_fully_recovered(path: Path) -> None:
    data = path.read_bytes()
    run = decode_bytes(data)
    assert run.rejections == [], [r.describe() for r in run.rejections]
    assert len(run.records) == records_in_console_capture(data)
    assert [m.data.value for m in run.points] == point_values_in_console_capture(data)
    assert run.decoder.rejoined > 0
    assert run.console, "the banner, progress and summary lines are console text"
    assert any(b"running (" in line for line in run.console)
    input_lines = set(data.split(b"\n"))
    assert all(line in input_lines for line in run.console)
    assert not any(b'"type":"Point"' in line for line in run.console)


def test_the_corrupted_capture_counts_match_the_substring_count() -> None:
    data = CORRUPTED.read_bytes()
    run = decode_bytes(data)
    assert len(run.records) == data.count(b'"type":"Metric"') + data.count(b'"type":"Point"')
    assert len(run.metrics) == data.count(b'"type":"Metric"')


def test_indented_summary_braces_are_console_not_rejections() -> None:
    data = REPO_STDOUT.read_bytes()
    indented = [line for line in data.split(b"\n") if re.match(rb"^\s+\{", line)]
    assert any(b"{ expected_response:true }" in line for line in indented)
    run = decode_bytes(data)
    assert run.rejections == []
    for line in indented:
        assert line in run.console


# --- values and timestamps ---------------------------------------------------------------------


def test_plus_minus_inf_become_float_infinities() -> None:
    lines = file_lines(INF)
    run = decode_lines(lines)
    assert run.rejections == []
    points = [line for line in lines if b'"type":"Point"' in line]
    assert len(run.points) == len(points)
    for message, line in zip(run.points, points, strict=True):
        if b'"value":+Inf' in line:
            assert message.data.value == math.inf
        elif b'"value":-Inf' in line:
            assert message.data.value == -math.inf
        else:
            assert message.data.value == json.loads(line)["data"]["value"]
    assert any(m.data.value == math.inf for m in run.points)
    assert any(m.data.value == -math.inf for m in run.points)


@pytest.mark.parametrize("value", ["+Inf", "-Inf"])
def test_inf_text_inside_strings_is_not_altered(value: str) -> None:
    tags = {"note": '"value":+Inf,', "other": '"value":-Inf}', "plain": "value:+Inf"}
    metadata = {"m": '{"value":+Inf}'}
    line = point(value=value, tags=tags, metadata=metadata)
    assert b'\\"value\\":+Inf' in line  # the tag text is really in the line
    run = decode_lines([line])
    assert run.rejections == []
    (message,) = run.points
    assert message.data.value == (math.inf if value == "+Inf" else -math.inf)
    assert message.data.tags == tags
    assert message.data.metadata == metadata


def test_inf_text_inside_strings_of_a_valid_line_is_not_altered() -> None:
    tags = {"note": '"value":+Inf,'}
    run = decode_lines([point(value="3", tags=tags)])
    assert run.rejections == []
    assert run.points[0].data.tags == tags
    assert run.points[0].data.value == 3


_TIME = re.compile(rb'"time":"([0-9-]+T[0-9:]+)(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})"')


def expected_time(line: bytes) -> datetime:
    """The line's timestamp parsed by hand, truncated to microseconds."""
    match = _TIME.search(line)
    assert match is not None
    base, fraction, zone = (part.decode() if part else "" for part in match.groups())
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    if zone == "Z":
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micro, tzinfo=tz)


@pytest.mark.parametrize("path", [FULL, KOLKATA], ids=["utc", "kolkata"])
def test_timestamps_are_aware_keep_microseconds_and_offset(path: Path) -> None:
    lines = [line for line in file_lines(path) if b'"type":"Point"' in line]
    run = decode_lines(lines)
    assert len(run.points) == len(lines)
    for message, line in zip(run.points, lines, strict=True):
        want = expected_time(line)
        got = message.data.time
        assert got.tzinfo is not None
        assert got == want
        assert got.microsecond == want.microsecond
        assert got.utcoffset() == want.utcoffset()
    assert any(m.data.time.microsecond for m in run.points)


def test_kolkata_offset_is_kept() -> None:
    run = decode_lines([line for line in file_lines(KOLKATA) if b"+05:30" in line])
    assert run.points
    assert {m.data.time.utcoffset() for m in run.points} == {timedelta(hours=5, minutes=30)}


def test_nine_digit_fraction_is_truncated_to_microseconds() -> None:
    run = decode_lines([point(time="2026-11-24T23:30:46.014679241+05:30")])
    assert run.points[0].data.time == datetime(
        2026, 11, 24, 23, 30, 46, 14679, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )


# --- bad lines ---------------------------------------------------------------------------------

BAD_LINES = [
    pytest.param(b'{"metric": x}', None, "invalid JSON", id="broken-json"),
    pytest.param(
        b'{"type":"Sample","data":{},"metric":"m"}', "type", "'Sample'", id="unknown-type"
    ),
    pytest.param(b'{"foo":1}', "type", "type", id="no-type"),
    pytest.param(
        b'{"metric":"m","type":"Point","data":{"value":1,"tags":{"a":"b"}}}',
        "data.time",
        "missing",
        id="missing-time",
    ),
    pytest.param(point(value='"abc"'), "data.value", "'abc'", id="value-not-a-number"),
    pytest.param(
        point(tags={"status": 200}), "data.tags.status", "valid string", id="tag-value-number"
    ),
    pytest.param(
        point(time="2026-11-24T18:00:02.5"), "data.time", "timezone", id="naive-timestamp"
    ),
    pytest.param(
        point().replace(b'"m"', b'"m\xff"'), None, "invalid JSON", id="invalid-utf8-record"
    ),
    pytest.param(b"progress \xff\xfe text", None, "UTF-8", id="invalid-utf8-console"),
    pytest.param(point().replace(b'"m"', b'"m\x00"'), None, "invalid JSON", id="nul-in-record"),
    pytest.param(b"running (01.0s)\x00 1/1 VUs", None, "NUL", id="nul-in-console"),
]


@pytest.mark.parametrize(("bad", "field_name", "reason_part"), BAD_LINES)
def test_bad_line_gives_one_rejection_and_neighbours_survive(
    bad: bytes, field_name: str | None, reason_part: str
) -> None:
    good = [METRIC_LINE, POINT_LINE, OTHER_POINT_LINE]
    run = decode_lines([good[0], good[1], bad, good[2]])
    assert len(run.rejections) == 1, [r.describe() for r in run.rejections]
    (rejection,) = run.rejections
    assert rejection.lineno == 3
    assert rejection.field == field_name
    assert reason_part in rejection.reason
    assert rejection.raw == (bad,)
    assert run.messages == decode_lines(good).messages
    assert run.console == []
    description = rejection.describe()
    assert "line 3" in description
    if field_name:
        assert field_name in description


def test_line_numbers_continue_across_decode_calls() -> None:
    run = decode_lines([METRIC_LINE, POINT_LINE], [b"", b"text"], [b'{"metric": x}', POINT_LINE])
    assert [r.lineno for r in run.rejections] == [5]
    assert run.console == [b"", b"text"]
    assert len(run.records) == 3
    assert run.decoder.lineno == 6


def test_rejection_describe_names_line_field_and_shows_raw() -> None:
    bad = point(value='"abc"')
    run = decode_lines([POINT_LINE, bad])
    text = run.rejections[0].describe()
    assert text.startswith("line 2:")
    assert "data.value" in text
    assert "metric" in text  # the raw text, when short, is shown


_TEN_MB_LINES = [
    pytest.param(lambda: b"{" + b"x" * TEN_MB, id="broken-json"),
    pytest.param(lambda: point(value='"' + "9" * TEN_MB + 'x"'), id="huge-bad-value"),
    pytest.param(lambda: point(tags={"k": 1, "pad": "p" * TEN_MB}), id="huge-record-bad-tag"),
    pytest.param(lambda: b"x" * TEN_MB + b"\x00", id="huge-binary-console"),
    pytest.param(
        lambda: b'{"type":"' + b"T" * TEN_MB + b'","data":{},"metric":"m"}',
        id="huge-unknown-type",
    ),
    pytest.param(lambda: point(tags={"k" * TEN_MB: 1}), id="huge-tag-key"),
]


@pytest.mark.parametrize("make", _TEN_MB_LINES)
def test_ten_megabyte_bad_line_is_one_short_rejection(make: Any) -> None:
    bad: bytes = make()
    assert len(bad) > TEN_MB
    run = decode_lines([POINT_LINE, bad, OTHER_POINT_LINE])
    assert len(run.rejections) == 1
    (rejection,) = run.rejections
    assert rejection.lineno == 2
    assert rejection.raw == (bad,)
    assert len(run.points) == 2
    description = rejection.describe()
    assert "line 2" in description
    length = len(description)
    assert length < 1000, description[:200]


def test_ten_megabyte_valid_record_is_decoded() -> None:
    tags = {"big": "v" * TEN_MB}
    data = POINT_LINE + b"\n" + point(tags=tags) + b"\n"
    run = decode_bytes(data, chunk_size=1 << 20)
    assert run.rejections == []
    assert run.points[1].data.tags == tags


def test_overlong_line_rejection_states_size_and_the_real_limit() -> None:
    limit = max(len(POINT_LINE), len(OTHER_POINT_LINE)) + 10  # the good lines fit
    size = 10 * limit
    data = POINT_LINE + b"\n" + b"{" + b"x" * (size - 1) + b"\n" + OTHER_POINT_LINE + b"\n"
    run = new_run()
    splitter = LineSplitter(max_line=limit)
    for start in range(0, len(data), 10):
        run.decoder.decode(splitter.feed(data[start : start + 10]), run.records)
    run.decoder.finish(splitter.finish(), run.records)
    assert len(run.points) == 2
    (rejection,) = run.rejections
    assert rejection.lineno == 2
    assert str(size) in rejection.reason
    stated = re.findall(r"(\d+)-byte limit", rejection.reason)
    assert all(int(n) == limit for n in stated), (rejection.reason, limit)
    assert len(rejection.describe()) < 1000


# --- torn and split records --------------------------------------------------------------------


def cut(line: bytes, after: bytes) -> tuple[bytes, bytes]:
    at = line.index(after) + len(after)
    return line[:at], line[at:]


def test_torn_last_line_at_eof_is_rejected_by_finish() -> None:
    torn = POINT_LINE[: len(POINT_LINE) // 2]
    run = decode_lines([METRIC_LINE, POINT_LINE], tail=torn)
    assert len(run.records) == 2
    (rejection,) = run.rejections
    assert rejection.lineno == 3
    assert rejection.raw == (torn,)
    assert "incomplete" in rejection.reason


def test_torn_complete_line_at_eof_is_rejected_by_finish() -> None:
    torn = POINT_LINE[: len(POINT_LINE) // 2]
    run = new_run()
    run.decoder.decode([POINT_LINE, torn], run.records)
    assert run.rejections == []  # held: its end may still come
    run.decoder.finish(None, run.records)
    assert [(r.lineno, r.raw) for r in run.rejections] == [(2, (torn,))]
    assert len(run.records) == 1


def test_torn_record_followed_by_a_new_record() -> None:
    torn, _ = cut(POINT_LINE, b'"value":')
    run = decode_lines([METRIC_LINE, torn, OTHER_POINT_LINE, POINT_LINE])
    (rejection,) = run.rejections
    assert rejection.lineno == 2
    assert rejection.raw == (torn,)
    assert run.messages == decode_lines([METRIC_LINE, OTHER_POINT_LINE, POINT_LINE]).messages
    assert run.decoder.rejoined == 0


def test_torn_record_then_console_then_new_record() -> None:
    torn, _ = cut(POINT_LINE, b'"time":"')
    run = decode_lines([torn, *PROGRESS, OTHER_POINT_LINE])
    assert [r.lineno for r in run.rejections] == [1]
    assert run.console == list(PROGRESS)
    assert run.messages == decode_lines([OTHER_POINT_LINE]).messages


@pytest.mark.parametrize("after", [b'"data":', b'"tags":', b'"time"', b'"type":"Po'])
def test_split_record_is_rejoined_across_console_lines(after: bytes) -> None:
    head, rest = cut(POINT_LINE, after)
    run = decode_lines([METRIC_LINE, head, *PROGRESS, rest, OTHER_POINT_LINE])
    assert run.rejections == []
    assert run.messages == decode_lines([METRIC_LINE, POINT_LINE, OTHER_POINT_LINE]).messages
    assert run.console == list(PROGRESS)
    assert run.decoder.rejoined == 1


def test_continuation_starting_with_a_brace_is_rejoined() -> None:
    head, rest = cut(POINT_LINE, b'"data":')
    assert rest.startswith(b"{")
    run = decode_lines([head, rest])  # no console text between the halves
    assert run.rejections == []
    assert run.messages == decode_lines([POINT_LINE]).messages
    assert run.decoder.rejoined == 1


SPLIT_LINES = [
    pytest.param(first_line(FULL, b'"type":"Metric","data":{"name":"http_req_duration"'), id="m"),
    pytest.param(first_line(FULL, b"\\u0026"), id="escaped-tag"),
    pytest.param(first_line(KOLKATA, b"e+06"), id="exponent-kolkata"),
    pytest.param(first_line(WEIRD, b'"metadata"'), id="weird-tags"),
    pytest.param(first_line(INF, b'"value":+Inf'), id="plus-inf"),
    pytest.param(first_line(INF, b'"value":-Inf'), id="minus-inf"),
]


@pytest.mark.parametrize("line", SPLIT_LINES)
def test_record_split_at_any_byte_is_rejoined(line: bytes) -> None:
    """k6 cuts its stdout JSON at 4 KiB boundaries, wherever they fall in a record."""
    expected = decode_lines([line]).messages
    assert len(expected) == 1
    failures = []
    for at in range(1, len(line)):
        run = decode_lines([line[:at], *PROGRESS, line[at:], POINT_LINE])
        ok = run.messages[:-1] == expected and not run.rejections
        if not ok or run.console != list(PROGRESS):
            failures.append((at, line[:at][-16:], [r.reason for r in run.rejections]))
    assert failures == []


def test_text_after_a_record_is_rejected_not_read_as_more_keys() -> None:
    """``{"data": LINE}`` would let ``{...},"type":"point"`` validate (the text after the
    record becomes keys of the wrapper): a line is one JSON value or it is rejected."""
    good = point()
    run = decode_lines([good + b',"type":"point"', good + b' {"x":1}', good])
    assert [p.data.value for p in run.points] == [1.0]
    assert [(r.lineno, r.field) for r in run.rejections] == [(1, None), (2, None)]
    assert all("invalid JSON: trailing characters" in r.reason for r in run.rejections)


def test_a_record_whose_line_is_over_the_limit_is_rejected_not_read_from_its_head() -> None:
    """An overlong line stands in as its first bytes: even when they hold a whole record (the
    rest of the line is, say, 64 MiB of spaces), neither fast path may read them."""
    head = POINT_LINE + b" " * (4096 - len(POINT_LINE))
    long_line = Overlong.of(head, 100_000_000, 64 << 20)
    for batch in ([long_line], [POINT_LINE, long_line]):
        run = decode_lines(batch)
        assert len(run.points) == len(batch) - 1
        assert [r.lineno for r in run.rejections] == [len(batch)]
        assert "over the 67108864-byte limit" in run.rejections[0].reason


# --- a batch decoded whole: its JSON values must be its lines ----------------------------------

SPANNING_METRIC = (
    b'{"type":"Metric","data":{"name":"x","type":"trend","contains":"time","thresholds":["a",',
    b'{"threshold":"b"}]}}',
)
"""A definition cut where its continuation starts with ``{``: one JSON value over two lines."""


@pytest.mark.parametrize(
    "lines",
    [
        [POINT_LINE + OTHER_POINT_LINE, b"", POINT_LINE],  # two values on a line, a blank line
        [POINT_LINE + b" " + OTHER_POINT_LINE, b" ", POINT_LINE],
        [*SPANNING_METRIC, POINT_LINE + POINT_LINE],  # one value over two lines, two on one
        [POINT_LINE, b" " + OTHER_POINT_LINE],  # a line led by a space is console text
        [POINT_LINE + b"\r", OTHER_POINT_LINE + b" "],  # trailing whitespace is allowed
        [POINT_LINE, b"\t" + OTHER_POINT_LINE + b"\t"],
    ],
    ids=["two-and-blank", "two-spaced", "spanning", "leading-space", "crlf", "tabs"],
)
def test_a_text_decoded_whole_equals_its_lines_decoded_one_by_one(lines: list[bytes]) -> None:
    """``decode_text`` (the pipeline's usual call: a chunk's lines in one msgspec call, which
    reads JSON values whatever whitespace parts them) gives the records, console lines,
    rejections and line count of the same lines handed over one at a time."""
    whole = new_run()
    whole.decoder.decode_text(b"".join(line + b"\n" for line in lines), whole.records)
    one_by_one = decode_lines(*([line] for line in lines))
    assert whole.messages == one_by_one.messages
    assert whole.console == one_by_one.console
    assert [(r.lineno, r.reason) for r in whole.rejections] == [
        (r.lineno, r.reason) for r in one_by_one.rejections
    ]
    assert whole.decoder.lineno == one_by_one.decoder.lineno == len(lines)


def test_a_clean_text_is_decoded_whole_with_its_line_count() -> None:
    lines = [METRIC_LINE, POINT_LINE, OTHER_POINT_LINE] * 3
    whole = new_run()
    whole.decoder.decode_text(b"".join(line + b"\n" for line in lines), whole.records)
    assert len(whole.records) == whole.decoder.lineno == 9
    assert whole.messages == decode_lines(lines).messages
