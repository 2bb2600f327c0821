"""``CsvDecoder``: k6 CSV to MCP messages, console text and precise rejections."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import logging
import math
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conftest import K6_SAMPLES, Run
from k6mcp_bridge.decode.csv_rows import CsvDecoder
from k6mcp_bridge.decode.csv_values import decode_pairs, detect_format, parse_time
from k6mcp_bridge.decode.json_lines import JsonDecoder, Rejection
from k6mcp_bridge.decode.metric_typing import FALLBACK_TYPE
from k6mcp_bridge.input.lines import LineSplitter
from k6mcp_bridge.k6.builtin_metrics import BUILTIN_METRICS
from k6mcp_bridge.messages import MetricMessage, PointMessage
from k6mcp_bridge.samples import Decoded, PointRecord, messages_of

CSV_SAMPLES = sorted(K6_SAMPLES.glob("csv-*.csv*"))
FORMATS = ("unix", "unix_milli", "unix_micro", "unix_nano", "rfc3339", "rfc3339_nano")
RESOLUTION = {
    "unix": timedelta(seconds=1),
    "unix_milli": timedelta(milliseconds=1),
    "unix_micro": timedelta(microseconds=1),
    "unix_nano": timedelta(microseconds=1),  # read to the microsecond
    "rfc3339": timedelta(seconds=1),
    "rfc3339_nano": timedelta(microseconds=1),
}
HEADER = (
    "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,"
    "name,proto,scenario,service,status,subproto,tls_version,url,extra_tags,metadata"
)
COLUMNS = HEADER.split(",")
UTC = timezone.utc


def decode_bytes(data: bytes, chunk_size: int = 65536, **options: Any) -> Run:
    """Decode like the pipeline: chunks through a LineSplitter into the decoder."""
    splitter = LineSplitter(options.pop("max_line")) if "max_line" in options else LineSplitter()
    console: list[bytes] = []
    rejections: list[Rejection] = []
    run = Run(CsvDecoder(console.append, rejections.append, **options), [], console, rejections)
    for start in range(0, len(data), chunk_size):
        run.decoder.decode(splitter.feed(data[start : start + chunk_size]), run.records)
    run.decoder.finish(splitter.finish(), run.records)
    return run


def sample_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def stdlib_rows(data: bytes) -> list[dict[str, str]]:
    """The rows of a CSV file as the standard library reads them (``newline=''``)."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def make_csv(*rows: list[str], header: str = HEADER, line_end: str = "\n") -> bytes:
    """A CSV file written by the csv module, quoting as k6's encoding/csv does."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(header.split(","))
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def row(
    metric: str = "http_reqs", time: str = "1795543202", value: str = "1.000000", **tags: str
) -> list[str]:
    """A row under :data:`HEADER`; ``tags`` fill the named columns (``extra_tags`` too)."""
    cells = dict.fromkeys(COLUMNS, "")
    cells.update(metric_name=metric, timestamp=time, metric_value=value, **tags)
    return [cells[name] for name in COLUMNS]


# --- every real capture ---------------------------------------------------------------------


@pytest.mark.parametrize("path", CSV_SAMPLES, ids=[p.name for p in CSV_SAMPLES])
def test_every_sample_decodes_completely(path: Path) -> None:
    data = sample_bytes(path)
    rows = stdlib_rows(data)
    run = decode_bytes(data)
    assert run.rejections == []
    assert run.console == []
    assert len(rows) > 0
    assert len(run.points) == len(rows)
    assert run.decoder.lineno == data.count(b"\n")
    for point, expected in zip(run.points, rows, strict=True):
        assert point.data.metric == expected["metric_name"]
        assert point.data.value == float(expected["metric_value"])
        assert point.data.time.tzinfo is not None
        columns = {k: v for k, v in expected.items() if k not in ("extra_tags", "metadata")}
        for name, value in columns.items():
            if name not in ("metric_name", "timestamp", "metric_value") and value:
                assert point.data.tags is not None
                assert point.data.tags[name] == value
    # one metric message per metric, just before its first point
    seen: set[str] = set()
    for message in run.messages:
        if isinstance(message, MetricMessage):
            assert message.data.name not in seen
            seen.add(message.data.name)
        else:
            assert message.data.metric in seen
    assert seen == {r["metric_name"] for r in rows}


@pytest.mark.parametrize("chunk_size", [7, 100, 4096])
def test_same_result_however_the_input_is_chunked(chunk_size: int) -> None:
    for name in ("csv-weird-tags-metadata.csv", "csv-full-2vus-default-unix.csv"):
        data = (K6_SAMPLES / name).read_bytes()
        assert decode_bytes(data, chunk_size).messages == decode_bytes(data).messages


def test_built_in_metrics_get_k6s_types_and_custom_ones_the_fallback() -> None:
    run = decode_bytes((K6_SAMPLES / "csv-full-2vus-default-unix.csv").read_bytes())
    kinds = {m.data.name: (m.data.type, m.data.contains) for m in run.metrics}
    assert kinds["http_req_duration"] == ("trend", "time")
    assert kinds["data_sent"] == ("counter", "data")
    assert kinds["checks"] == ("rate", "default")
    assert kinds["vus"] == ("gauge", "default")
    assert kinds["my_counter"] == (FALLBACK_TYPE, "default")
    for metric in run.metrics:
        assert metric.data.thresholds == []
        assert metric.data.submetrics is None
    # the same metrics as k6's own Metric records in its JSON output of the same script
    json_run = JsonDecoder(lambda line: None, lambda rejection: None)
    messages: list[Decoded] = []
    json_run.decode((K6_SAMPLES / "json-full-2vus.jsonl").read_bytes().splitlines(), messages)
    for message in messages:
        if isinstance(message, MetricMessage) and message.data.name in BUILTIN_METRICS:
            name = message.data.name
            assert kinds[name] == (message.data.type, message.data.contains)


# --- time formats --------------------------------------------------------------------------


def independent_time(text: str, fmt: str) -> datetime:
    """What k6 meant by ``text`` in ``fmt``, to the microsecond, computed without the bridge."""
    if fmt.startswith("unix"):
        number = int(text)
        per_second = {"unix": 1, "unix_milli": 10**3, "unix_micro": 10**6, "unix_nano": 10**9}
        seconds, fraction = divmod(number, per_second[fmt])
        micros = fraction * 10**6 // per_second[fmt]
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)
    match = re.fullmatch(r"(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert match is not None, text
    digits = (match[2] or "").ljust(6, "0")[:6]
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.fromisoformat(f"{match[1]}.{digits}{zone}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_time_format_is_recognised_without_a_flag(fmt: str) -> None:
    data = (K6_SAMPLES / f"csv-timeFormat-{fmt}.csv").read_bytes()
    rows = stdlib_rows(data)
    run = decode_bytes(data)
    assert run.rejections == []
    times = [p.data.time for p in run.points]
    assert times == [independent_time(r["timestamp"], fmt) for r in rows]
    assert all(t.utcoffset() == timedelta(0) for t in times)
    resolution = RESOLUTION[fmt]
    if resolution >= timedelta(milliseconds=1):
        assert all(t.microsecond % (resolution // timedelta(microseconds=1)) == 0 for t in times)
    else:
        assert any(t.microsecond % 1000 for t in times), "sub-millisecond digits are kept"


def test_time_formats_of_consecutive_runs_agree_within_their_resolution() -> None:
    """The six captures are six short runs made one after the other (see their timestamps).

    Each value is k6's time truncated to its format's resolution, so a run's first time plus
    its resolution is later than the previous run's last time. A format read at the wrong
    scale (milliseconds as seconds, nanoseconds as microseconds) breaks this by years.
    """
    spans = []
    for fmt in FORMATS:
        run = decode_bytes((K6_SAMPLES / f"csv-timeFormat-{fmt}.csv").read_bytes())
        times = [p.data.time for p in run.points]
        spans.append((fmt, min(times), max(times)))
    for (_, _, previous_last), (fmt, first, _) in itertools.pairwise(spans):
        assert first + RESOLUTION[fmt] > previous_last, fmt
    assert spans[-1][2] - spans[0][1] < timedelta(seconds=2)


def test_kolkata_rfc3339_nano_keeps_the_zone() -> None:
    data = (K6_SAMPLES / "csv-TZ-Asia-Kolkata-rfc3339_nano.csv").read_bytes()
    rows = stdlib_rows(data)
    run = decode_bytes(data)
    assert run.rejections == []
    assert all(r["timestamp"].endswith("+05:30") for r in rows)
    for point, expected in zip(run.points, rows, strict=True):
        assert point.data.time.utcoffset() == timedelta(hours=5, minutes=30)
        assert point.data.time == independent_time(expected["timestamp"], "rfc3339_nano")
    assert '"time":"2026-11-24T23:30:46.014679+05:30"' in run.points[0].model_dump_json()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1795543422", datetime(2026, 11, 24, 18, 3, 42, tzinfo=UTC)),
        ("1795543422869", datetime(2026, 11, 24, 18, 3, 42, 869000, tzinfo=UTC)),
        ("1795543422910983", datetime(2026, 11, 24, 18, 3, 42, 910983, tzinfo=UTC)),
        ("1795543422945717311", datetime(2026, 11, 24, 18, 3, 42, 945717, tzinfo=UTC)),
        ("1795543422945717999", datetime(2026, 11, 24, 18, 3, 42, 945717, tzinfo=UTC)),
        ("2026-11-24T18:03:43.031062797Z", datetime(2026, 11, 24, 18, 3, 43, 31062, tzinfo=UTC)),
        ("2026-11-24T23:30:46+05:30", datetime(2026, 11, 24, 18, 0, 46, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-11-24T18:03:42", "2026-11-24", "-5", "1.5", "1e9", "٣"]
)
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


# --- values, tags and metadata --------------------------------------------------------------


def test_plus_minus_inf() -> None:
    run = decode_bytes((K6_SAMPLES / "csv-plus-minus-Inf.csv").read_bytes())
    assert run.rejections == []
    values = [p.data.value for p in run.points if p.data.metric == "inf_trend"]
    assert values == [math.inf, -math.inf]
    assert '"value":"Infinity"' in run.points[0].model_dump_json()


def json_points(name: str) -> list[PointMessage]:
    messages: list[Decoded] = []
    decoder = JsonDecoder(lambda line: None, lambda rejection: None)
    decoder.decode((K6_SAMPLES / name).read_bytes().splitlines(), messages)
    decoder.finish(None, messages)
    return [m for m in messages_of(messages, points=True) if isinstance(m, PointMessage)]


def test_weird_tags_and_metadata_match_k6s_json_of_the_same_script() -> None:
    """A quoted multi-line ``extra_tags`` field; ``&``, ``=``, quotes, unicode, empty tag."""
    data = (K6_SAMPLES / "csv-weird-tags-metadata.csv").read_bytes()
    run = decode_bytes(data)
    assert run.rejections == []
    assert run.decoder.multiline == 1
    assert run.decoder.lineno == 7
    expected = json_points("json-weird-tags-metadata.jsonl")
    got = [(p.data.metric, p.data.tags, p.data.metadata) for p in run.points]
    assert got == [(p.data.metric, p.data.tags, p.data.metadata) for p in expected]
    assert got[0][1] is not None
    assert got[0][1]["nl"] == "line1\nline2"
    assert got[0][2] == {"m&k": "v=1&x"}


def tag_sets(points: list[PointMessage]) -> Counter[Any]:
    return Counter(
        (
            p.data.metric,
            tuple(sorted((p.data.tags or {}).items())),
            tuple(sorted((p.data.metadata or {}).items())),
        )
        for p in points
    )


def test_full_capture_has_the_same_tags_as_k6s_json_of_the_same_script() -> None:
    """Two runs of one script: every point's tags (group rule included) and metadata agree,
    except the one tag value k6's encoding makes ambiguous: ``my tag=a,b&c=d``."""
    run = decode_bytes((K6_SAMPLES / "csv-full-2vus-default-unix.csv").read_bytes())
    expected = []
    ambiguous = 0
    for point in json_points("json-full-2vus.jsonl"):
        tags = dict(point.data.tags or {})  # a copy: messages are read-only
        if tags.get("my tag") == "a,b&c=d":
            ambiguous += 1
            tags.update({"my tag": "a,b", "c": "d"})  # what any reader makes of it
            point = point.model_copy(update={"data": point.data.model_copy(update={"tags": tags})})
        expected.append(point)
    assert ambiguous > 0
    assert tag_sets(run.points) == tag_sets(expected)
    # vus/vus_max come from outside any VU: no group tag, in JSON and here
    assert all("group" not in (p.data.tags or {}) for p in run.points if p.data.metric == "vus")
    assert all(
        (p.data.tags or {}).get("group") == "" for p in run.points if p.data.metric == "iterations"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("testid=run-1", {"testid": "run-1"}),
        ("vu=1&iter=0", {"vu": "1", "iter": "0"}),
        ("empty=&b=2", {"empty": "", "b": "2"}),
        ("k=v=1", {"k": "v=1"}),
        ("u=a&&q=1", {"u": "a&", "q": "1"}),
        ("team=performance & reliability&x=1", {"team": "performance & reliability", "x": "1"}),
        ("m&k=v=1&x", {"m&k": "v=1&x"}),
        ("a=1&a=2", {"a": "1&a=2"}),
        ("url=/p?x=1&y=2", {"url": "/p?x=1", "y": "2"}),  # the documented limit
        ("no pair", {"no pair": ""}),
    ],
)
def test_decode_pairs(text: str, expected: dict[str, str]) -> None:
    assert decode_pairs(text) == expected


def test_empty_columns_are_absent_tags_but_group_is_the_root_group() -> None:
    data = make_csv(
        row("http_reqs", status="200", extra_tags="suite=samples"),
        row("vus", extra_tags="suite=samples"),
        row("http_reqs", group="::g", metadata="trace_id=t-1"),
    )
    run = decode_bytes(data)
    assert [p.data.tags for p in run.points] == [
        {"status": "200", "group": "", "suite": "samples"},
        {"suite": "samples"},
        {"group": "::g"},
    ]
    assert [p.data.metadata for p in run.points] == [None, None, {"trace_id": "t-1"}]


def test_without_a_group_column_there_is_no_group_tag() -> None:
    data = (K6_SAMPLES / "csv-systemtags-status-vu-only.csv").read_bytes()
    run = decode_bytes(data)
    assert run.points
    for point in run.points:
        assert point.data.tags is not None
        assert "group" not in point.data.tags
        assert point.data.metadata is not None and "vu" in point.data.metadata


def test_hostile_quoting_round_trips() -> None:
    hostile = [
        row(name='a "quoted", name', url='http://h/p?a=1,2&b="3"', status="200"),
        row(error='line one\nline two, with comma\n"and quotes"', error_code="1000"),
        row("checks", check="status is 200, really?", group="::a, b"),
        row("http_reqs", url='"', extra_tags='q="x,y"&nl=1\n2'),
        row('odd "metric", name\non two lines', error="crlf\r\ninside"),
    ]
    for line_end in ("\n", "\r\n"):
        run = decode_bytes(make_csv(*hostile, line_end=line_end), chunk_size=5)
        assert run.rejections == []
        assert len(run.points) == len(hostile)
        tags = [p.data.tags or {} for p in run.points]
        newline = "\n"  # the csv module writes a line break inside a field as it is
        assert tags[0]["name"] == 'a "quoted", name'
        assert tags[0]["url"] == 'http://h/p?a=1,2&b="3"'
        assert tags[1]["error"] == f'line one{newline}line two, with comma{newline}"and quotes"'
        assert tags[2]["check"] == "status is 200, really?"
        assert tags[2]["group"] == "::a, b"
        assert tags[3]["url"] == '"'
        assert tags[3]["q"] == '"x,y"'
        assert tags[3]["nl"] == f"1{newline}2"
        assert run.points[4].data.metric == 'odd "metric", name\non two lines'
        assert tags[4]["error"] == "crlf\r\ninside"
        assert run.decoder.multiline == 3  # rows 2, 4 and 5 span several lines


# --- bad rows ---------------------------------------------------------------------------------


def test_each_bad_row_is_one_rejection_and_the_rest_arrives() -> None:
    good = "http_reqs,1795543202,{v},,,,,,,,,,,,,,,,"
    lines = [
        HEADER,  # 1
        good.format(v="1.000000"),  # 2
        "http_reqs,1795543202,2.000000,,,",  # 3: too few columns
        good.format(v="3.000000") + ",extra",  # 4: too many columns
        good.format(v="fast"),  # 5: not a number
        good.format(v="NaN"),  # 6: NaN
        good.format(v="4.000000").replace("1795543202", "yesterday"),  # 7: bad timestamp
        good.format(v="5.000000").replace("1795543202", "2026-11-24T18:03:42"),  # 8: no zone
        good.format(v="6.000000").replace("http_reqs", ""),  # 9: empty metric name
        'http_reqs,1795543202,7.000000,"a"b,,,,,,,,,,,,,,,',  # 10: malformed quoting
        good.format(v="8.000000"),  # 11
        'http_reqs,1795543202,9.000000,"multi',  # 12-13: a multi-line record, 3 columns short
        'line",,,,,,,,,,,',
        "garbage",  # 14: a metric-like name alone
        good.format(v="10.000000"),  # 15
    ]
    data = "\n".join(lines).encode() + b"\n"
    run = decode_bytes(data)
    assert [p.data.value for p in run.points] == [1.0, 8.0, 10.0]
    found = [(r.lineno, r.field) for r in run.rejections]
    assert found == [
        (3, None),
        (4, None),
        (5, "metric_value"),
        (6, "metric_value"),
        (7, "timestamp"),
        (8, "timestamp"),
        (9, "metric_name"),
        (10, None),
        (12, None),
        (14, None),
    ]
    by_line = {r.lineno: r for r in run.rejections}
    assert "6 columns where the header has 19" in by_line[3].reason
    assert "'fast'" in by_line[5].reason
    assert "NaN" in by_line[6].reason
    assert "'yesterday'" in by_line[7].reason
    assert "timezone" in by_line[8].reason
    assert "malformed CSV" in by_line[10].reason
    assert by_line[12].raw == (lines[11].encode(), lines[12].encode())
    for rejection in run.rejections:
        if rejection.lineno != 12:
            assert rejection.raw == (lines[rejection.lineno - 1].encode(),)
    assert run.console == []
    assert run.decoder.lineno == len(lines)


def test_unclosed_quote_at_the_end_rejects_only_its_line() -> None:
    data = make_csv(row(value="1.000000")) + b'http_reqs,1795543202,"2.0\n'
    data += "\n".join(",".join(row(value=f"{v}.000000")) for v in (3, 4)).encode()
    run = decode_bytes(data)  # the last line has no newline: the tail
    assert [p.data.value for p in run.points] == [1.0, 3.0, 4.0]
    assert [(r.lineno, r.field) for r in run.rejections] == [(3, None)]
    assert "ended inside a quoted field" in run.rejections[0].reason
    assert run.decoder.lineno == 5


def test_a_stray_quote_holds_at_most_max_record_lines() -> None:
    good = [",".join(row(value=f"{v}.000000")) for v in range(1, 6)]
    lines = [HEADER, good[0], 'http_reqs,1795543202,"stray', *good[1:]]
    run = decode_bytes("\n".join(lines).encode() + b"\n", max_record_lines=3)
    assert [p.data.value for p in run.points] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [r.lineno for r in run.rejections] == [3]
    assert "not closed within 3 lines" in run.rejections[0].reason


def test_binary_and_overlong_lines_are_rejected() -> None:
    long_row = ",".join(row(url="x" * 300))
    data = make_csv(row(value="1.000000")) + b"http_reqs,\xff\xfe\n" + long_row.encode() + b"\n"
    data += ",".join(row(value="2.000000")).encode() + b"\n"
    run = decode_bytes(data, max_line=200)
    assert [p.data.value for p in run.points] == [1.0, 2.0]
    assert [r.lineno for r in run.rejections] == [3, 4]
    assert "not UTF-8" in run.rejections[0].reason
    assert "over the 200-byte limit" in run.rejections[1].reason


def test_out_keeps_the_messages_decoded_before_a_callback_raises() -> None:
    class Stop(Exception):
        pass

    def stop(rejection: Rejection) -> None:
        raise Stop(rejection.lineno)

    decoder = CsvDecoder(lambda line: None, stop)
    data = make_csv(row(value="1.000000"), row(value="x"), row(value="3.000000"))
    out: list[Decoded] = []
    with pytest.raises(Stop):
        decoder.decode(data.splitlines(), out)
    assert [m.value for m in out if isinstance(m, PointRecord)] == [1.0]
    assert decoder.lineno == 3


# --- headers and console text -----------------------------------------------------------------


def test_a_second_header_is_read_again_and_metrics_are_announced_again() -> None:
    first = (K6_SAMPLES / "csv-systemtags-status-vu-only.csv").read_bytes()
    second = (K6_SAMPLES / "csv-timeFormat-unix.csv").read_bytes()
    run = decode_bytes(first + second)
    assert run.rejections == []
    assert len(run.points) == len(stdlib_rows(first)) + len(stdlib_rows(second))
    names = [m.data.name for m in run.metrics]
    assert names.count("http_reqs") == 2
    # columns of the second header: the status-only header has no "method" column
    assert "method" not in (run.points[0].data.tags or {})
    assert (run.points[-1].data.tags or {}).get("scenario") == "default"


def test_console_text_around_csv_on_stdout() -> None:
    """``k6 run --out csv=-``: banner, header, console, rows, progress, summary."""
    console = [
        "",
        "         /\\      Grafana   /‾‾/  ",
        " / __________ \\  |_|\\_\\  \\_____/ ",
        "     execution: local",
        "running (01.0s), 1/1 VUs, 3 complete and 0 interrupted iterations",
        "default   [  17% ] 1 VUs  1.0s/6s",
        "main ✓ [ 100% ] 2 VUs  4s",
        "  █ TOTAL RESULTS ",
        "    iterations.............................: 2   13214.665636/s",
        '    ✗ he said "hi',
    ]
    lines = [console[0], console[1], console[2], HEADER, console[3]]
    lines += [",".join(row(value="1.000000")), console[4], console[5], console[6]]
    lines += [",".join(row(value="2.000000")), console[0], console[7], console[8], console[9]]
    run = decode_bytes("\n".join(lines).encode() + b"\n")
    assert run.rejections == []
    assert [p.data.value for p in run.points] == [1.0, 2.0]
    assert run.console == [line.encode() for line in lines if line in console]


def test_input_without_a_header_is_console_text_and_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = (K6_SAMPLES / "json-weird-tags-metadata.jsonl").read_bytes()
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge.input"):
        run = decode_bytes(data)
    assert run.messages == []
    assert run.rejections == []
    assert run.console == data.splitlines()
    assert "no k6 CSV header (metric_name,timestamp,metric_value,...) in 10 lines" in caplog.text


def test_a_byte_order_mark_before_the_header_is_ignored() -> None:
    run = decode_bytes(b"\xef\xbb\xbf" + make_csv(row(value="1.000000")))
    assert run.rejections == []
    assert run.console == []
    assert [p.data.value for p in run.points] == [1.0]


# --- metric types ---------------------------------------------------------------------------


def test_fallback_type_warns_once_per_metric(caplog: pytest.LogCaptureFixture) -> None:
    rows = [row(name, value=f"{v}.000000") for v in range(3) for name in ("hits", "level")]
    data = make_csv(*rows, row("http_reqs"))
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge.input"):
        run = decode_bytes(data)
    warnings = [r.getMessage() for r in caplog.records if r.name == "k6mcp_bridge.input"]
    assert len(warnings) == 2
    for name, warning in zip(("hits", "level"), warnings, strict=True):
        assert f"'{name}'" in warning
        assert f"--metric-type {name}=counter|gauge|rate|trend" in warning
        assert "configuration file" in warning
    kinds = {m.data.name: m.data.type for m in run.metrics}
    assert kinds == {"hits": FALLBACK_TYPE, "level": FALLBACK_TYPE, "http_reqs": "counter"}


def test_metric_types_name_custom_metrics(caplog: pytest.LogCaptureFixture) -> None:
    data = make_csv(row("hits"), row("level"), row("http_reqs"))
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge.input"):
        run = decode_bytes(data, metric_types={"hits": "counter", "level": "gauge"})
    assert caplog.records == []
    kinds = {m.data.name: (m.data.type, m.data.contains) for m in run.metrics}
    assert kinds["hits"] == ("counter", "default")
    assert kinds["level"] == ("gauge", "default")


def test_metric_types_cannot_change_a_built_in(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge.input"):
        run = decode_bytes(make_csv(row("http_reqs")), metric_types={"http_reqs": "gauge"})
    assert run.metrics[0].data.type == "counter"
    assert "http_reqs=gauge ignored" in caplog.text


def test_an_unknown_metric_type_is_refused() -> None:
    types: Any = {"x": "histogram"}
    with pytest.raises(ValueError, match=re.escape("x=histogram: expected one of counter|gauge")):
        CsvDecoder(lambda line: None, lambda rejection: None, metric_types=types)


# --- format detection -----------------------------------------------------------------------


@pytest.mark.parametrize("path", CSV_SAMPLES, ids=[p.name for p in CSV_SAMPLES])
def test_detect_csv_samples(path: Path) -> None:
    assert detect_format(sample_bytes(path)[:65536]) == "csv"


@pytest.mark.parametrize(
    "name",
    [
        "json-full-2vus.jsonl",
        "json-plus-minus-Inf-INVALID.jsonl",
        "stdout-json-dash-NO-quiet-CORRUPTED.txt",
        "stdout-json-dash-no-quiet-small.txt",
    ],
)
def test_detect_json_and_json_with_console_text(name: str) -> None:
    assert detect_format((K6_SAMPLES / name).read_bytes()[:65536]) == "json"


def test_detect_needs_enough_bytes() -> None:
    banner = b"\n         /\\      Grafana   /\xe2\x80\xbe\xe2\x80\xbe/  \n"
    assert detect_format(b"") is None
    assert detect_format(b"metric_na") is None
    assert detect_format(banner) is None
    assert detect_format(banner + HEADER.encode()[:40]) == "csv"
    assert detect_format(banner + b'{"metric"') == "json"
    assert detect_format(banner, at_end=True) == "json"
    assert detect_format(b"\xef\xbb\xbf" + HEADER.encode() + b"\n") == "csv"
    assert detect_format(b"hello\n" * 20000) == "json"


def test_a_nul_byte_rejects_its_row_and_the_others_arrive() -> None:
    header = b"metric_name,timestamp,metric_value,extra_tags,metadata\n"
    data = (
        header
        + b"vus,1795543202,1.000000,,\nv\x00us,1795543202,2.000000,,\nvus,1795543203,3.000000,,\n"
    )
    run = decode_bytes(data)
    assert [p.data.value for p in run.points] == [1.0, 3.0]
    assert [(r.lineno, r.reason) for r in run.rejections] == [
        (3, "binary data: a NUL byte at column 2")
    ]


def test_an_empty_timestamp_is_rejected_in_the_first_row_too() -> None:
    """The time cache starts with text no stamp equals: a first row with no time is no 1970."""
    run = decode_bytes(make_csv(row(time=""), row(), row(time="")))
    assert [p.data.time.year for p in run.points] == [2026]
    assert [(r.lineno, r.field) for r in run.rejections] == [(2, "timestamp"), (4, "timestamp")]
