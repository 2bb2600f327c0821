"""End to end: one real k6 v1.1.0 run written as JSON and as CSV at once gives the same points.

k6 writes both outputs from the same samples, so the bridge's ``point`` messages from the two
files must be the same multiset of (metric, time, value, tags, metadata), at the precision the
CSV carries: values to six decimals (``%f``) and times to the time format's resolution.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import k6lab
from conftest import ROOT
from k6mcp_bridge.decode.csv_rows import CsvDecoder
from k6mcp_bridge.decode.json_lines import JsonDecoder, Rejection
from k6mcp_bridge.input.lines import LineSplitter
from k6mcp_bridge.messages import AnyMessage, MetricMessage, MetricType, PointMessage
from k6mcp_bridge.samples import Decoded, messages_of

SCRIPT = ROOT / "sample_outputs" / "script.js"
K6_TIMEOUT_S = 120
CUSTOM_TYPES: dict[str, MetricType] = {
    "items_seen": "counter",
    "last_item_count": "gauge",
    "even_iteration": "rate",
    "items_wait": "trend",
    "think_step": "gauge",
}
"""The script's custom metrics, as ``--metric-type`` would give them."""
AMBIGUOUS = {("my tag", "a,b&c=d"): {"my tag": "a,b", "c": "d"}}
"""The script's one tag value that k6's unescaped ``extra_tags`` (``my tag=a,b&c=d``) makes
indistinguishable from two tags; what the CSV says is what any reader gets."""


def decode(path: Path, decoder: JsonDecoder | CsvDecoder) -> list[AnyMessage]:
    """Decode a file as the pipeline does (64 KiB chunks, a LineSplitter, the decoder), into
    the messages plugins get."""
    messages: list[Decoded] = []
    splitter = LineSplitter()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(65536), b""):
            decoder.decode(splitter.feed(chunk), messages)
    decoder.finish(splitter.finish(), messages)
    return messages_of(messages, points=True)


def read_both(json_path: Path, csv_path: Path) -> tuple[list[AnyMessage], list[AnyMessage]]:
    problems: list[Rejection | bytes] = []
    from_json = decode(json_path, JsonDecoder(problems.append, problems.append))
    csv_decoder = CsvDecoder(problems.append, problems.append, metric_types=CUSTOM_TYPES)
    from_csv = decode(csv_path, csv_decoder)
    assert problems == []
    return from_json, from_csv


def point_keys(
    messages: list[AnyMessage], resolution: timedelta, *, as_csv: bool = False
) -> Counter[tuple[Any, ...]]:
    keys: Counter[tuple[Any, ...]] = Counter()
    for message in messages:
        if not isinstance(message, PointMessage):
            continue
        point = message.data
        tags = dict(point.tags or {})
        for (name, value), replacement in AMBIGUOUS.items():
            if as_csv and tags.get(name) == value:
                del tags[name]
                tags.update(replacement)
        keys[
            (
                point.metric,
                truncate(point.time, resolution),
                round(point.value, 6),
                tuple(sorted(tags.items())),
                tuple(sorted((point.metadata or {}).items())),
            )
        ] += 1
    return keys


def truncate(time: datetime, resolution: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=time.tzinfo)
    return time - (time - epoch) % resolution


def run_k6(tmp_path: Path, time_format: str | None, *outputs: str) -> bytes:
    """Run the sample script against the loopback server; return k6's stdout."""
    with k6lab.serve() as base_url:
        env = k6lab.k6_env(base_url)
        env.pop("K6_CSV_TIME_FORMAT", None)
        if time_format is not None:
            env["K6_CSV_TIME_FORMAT"] = time_format
        args = [arg for output in outputs for arg in ("--out", output)]
        proc = subprocess.run(
            [*k6lab.k6_run_args(), *args, str(SCRIPT)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=K6_TIMEOUT_S,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc.stdout


@pytest.mark.parametrize(
    ("time_format", "resolution"),
    [
        ("rfc3339_nano", timedelta(microseconds=1)),
        ("unix_nano", timedelta(microseconds=1)),
        (None, timedelta(seconds=1)),  # k6's default: unix seconds
    ],
    ids=["rfc3339_nano", "unix_nano", "default"],
)
def test_one_run_as_json_and_as_csv_gives_the_same_points(
    tmp_path: Path, time_format: str | None, resolution: timedelta
) -> None:
    json_path, csv_path = tmp_path / "run.json", tmp_path / "run.csv"
    run_k6(tmp_path, time_format, f"json={json_path}", f"csv={csv_path}")
    from_json, from_csv = read_both(json_path, csv_path)

    expected = point_keys(from_json, resolution, as_csv=True)
    got = point_keys(from_csv, resolution)
    assert sum(got.values()) == sum(expected.values()) > 100
    assert got == expected
    ambiguous = sum(
        1
        for m in from_json
        if isinstance(m, PointMessage) and (m.data.tags or {}).get("my tag") == "a,b&c=d"
    )
    assert ambiguous > 0, "the script no longer has the ambiguous tag: update AMBIGUOUS"
    if resolution < timedelta(seconds=1):  # the exact times, not only truncated alike
        assert sorted(p.data.time for p in from_csv if isinstance(p, PointMessage)) == sorted(
            p.data.time for p in from_json if isinstance(p, PointMessage)
        )

    # metric messages: the same metrics, each before its first point, with k6's types
    json_metrics = {m.data.name: m.data for m in from_json if isinstance(m, MetricMessage)}
    csv_metrics = {m.data.name: m.data for m in from_csv if isinstance(m, MetricMessage)}
    assert csv_metrics.keys() == json_metrics.keys()
    for name, metric in json_metrics.items():
        assert csv_metrics[name].type == metric.type
        if name not in CUSTOM_TYPES:
            assert csv_metrics[name].contains == metric.contains


def test_csv_on_stdout_with_k6s_console_output(tmp_path: Path) -> None:
    """``--out csv=-`` without ``-q``: banner, header, console lines, rows and the summary share
    stdout; every row arrives, the rest is console text, nothing is rejected."""
    json_path = tmp_path / "run.json"
    script = tmp_path / "small.js"
    script.write_text(
        "import http from 'k6/http';\n"
        "export const options = { iterations: 3 };\n"
        "export default function () { http.get(`${__ENV.BASE_URL}/`); }\n",
        encoding="utf-8",
    )
    with k6lab.serve() as base_url:
        proc = subprocess.run(
            [*k6lab.k6_run_args(), "--out", "csv=-", "--out", f"json={json_path}", str(script)],
            cwd=tmp_path,
            env=k6lab.k6_env(base_url),
            capture_output=True,
            timeout=K6_TIMEOUT_S,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    stdout_path = tmp_path / "stdout.txt"
    stdout_path.write_bytes(proc.stdout)

    console: list[bytes] = []
    rejections: list[Rejection] = []
    from_csv = decode(stdout_path, CsvDecoder(console.append, rejections.append))
    assert rejections == []
    assert any(b"Grafana" in line for line in console)  # the banner, before the header
    assert any(b"execution: local" in line for line in console)  # after the header
    assert any(b"http_reqs" in line for line in console)  # the end-of-test summary
    from_json = decode(json_path, JsonDecoder(lambda line: None, lambda rejection: None))
    second = timedelta(seconds=1)
    assert point_keys(from_csv, second) == point_keys(from_json, second)
    assert sum(point_keys(from_csv, second).values()) >= 3 * 9
