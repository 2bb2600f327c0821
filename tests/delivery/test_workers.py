"""The delivery engine as a user meets it: a plugin that hangs, raises, is slow or loses its
output, and inputs with no k6 record. Real installed test plugins, the real console script,
a real k6 capture (8,502 lines)."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import K6_SAMPLES, ROOT, PluginDir, bridge_exe, k6_stream, records, write_dist
from k6mcp_bridge import Message, Plugin, PointMessage
from k6mcp_bridge.aggregate.stage import Aggregation, AggregationSettings
from k6mcp_bridge.config import Settings
from k6mcp_bridge.delivery.pipeline import Pipeline
from k6mcp_bridge.delivery.workers import Batch, Worker
from k6mcp_bridge.input.source import Source
from k6mcp_bridge.k6.thresholds import parse_cli_threshold
from k6mcp_bridge.messages import MetricMessage
from k6mcp_bridge.plugin import RunResult, Stats

CAPTURE = K6_SAMPLES / "json-medium-rate-excerpt.jsonl"
RECORDS = len(CAPTURE.read_bytes().splitlines())


def run_bridge(
    plugin_dir: PluginDir, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bridge_exe(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=plugin_dir.env(**env),
        stdin=subprocess.DEVNULL,
    )


def test_a_hung_plugin_is_cut_off_after_the_timeout_and_the_others_get_everything(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    proc = run_bridge(
        plugin_dir,
        str(CAPTURE),
        *("-p", "hang", "-p", "jsonl", "-o", f"jsonl.path={out}", "--plugin-timeout", "2"),
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 70, proc.stderr
    assert len(records(out.read_text())) == RECORDS  # 100% of the records, in a fresh file
    assert elapsed < 2 + 8, f"took {elapsed:.1f} s"
    assert "plugin 'hang'" in proc.stderr
    assert "hung: process_batch on messages #2001-#3000 has not returned" in proc.stderr
    assert re.search(r"plugin hang +hung +3,000 messages +[2-9]\.\d\d s", proc.stderr)
    assert "Traceback" not in proc.stderr


def test_a_hang_in_finish_is_cut_off_too(plugin_dir: PluginDir, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    proc = run_bridge(
        plugin_dir,
        str(CAPTURE),
        *("-p", "hang", "-o", "hang.at=0", "-o", "hang.in_finish=true", "--plugin-timeout", "1"),
        *("-p", "jsonl", "-o", f"jsonl.path={out}"),
    )
    assert proc.returncode == 70, proc.stderr
    assert time.monotonic() - started < 1 + 8
    assert "hung: finish has not returned" in proc.stderr
    assert len(records(out.read_text())) == RECORDS  # jsonl's own finish ran: file complete


def test_a_raising_plugin_exits_70_and_the_others_get_everything(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    proc = run_bridge(
        plugin_dir, str(CAPTURE), *("-p", "boom", "-p", "jsonl", "-o", f"jsonl.path={out}")
    )
    assert proc.returncode == 70, proc.stderr
    assert len(records(out.read_text())) == RECORDS
    assert "plugin 'boom'" in proc.stderr and "boom on the third point" in proc.stderr
    assert re.search(r"plugin boom +failed", proc.stderr)


def test_a_slow_but_live_plugin_gets_everything_and_the_run_exits_0(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    out, record = tmp_path / "out.jsonl", tmp_path / "slow.record"
    proc = run_bridge(
        plugin_dir,
        str(CAPTURE),
        *("-p", "recorder", "-o", f"recorder.record={record}", "-o", "recorder.delay=0.005"),
        *("-p", "jsonl", "-o", f"jsonl.path={out}"),
        K6MCP_BRIDGE_BATCH_SIZE="100",
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in record.read_text().splitlines()]
    keys = [key for e in events if e["event"] == "batch" for key in e["keys"]]
    assert len(keys) == RECORDS
    assert len(records(out.read_text())) == RECORDS
    assert re.search(r"plugin recorder +ok +8,50\d messages +0\.[4-9]\d s", proc.stderr)


def test_a_plugin_whose_output_fails_exits_70(plugin_dir: PluginDir) -> None:
    proc = run_bridge(plugin_dir, str(CAPTURE), "-p", "jsonl", "-o", "jsonl.path=/dev/full")
    assert proc.returncode == 70, proc.stderr
    assert "plugin 'jsonl'" in proc.stderr and "No space left on device" in proc.stderr


def test_an_input_with_no_k6_record_exits_65_and_says_what_was_read(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello from a text file\nsecond line\nthird line\n")
    proc = run_bridge(plugin_dir, str(text), "--no-passthrough")
    assert proc.returncode == 65, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "no k6 record" in line]
    assert said == [
        f"k6mcp-bridge: error: no k6 record in {text}: 3 lines read, the first: "
        "'hello from a text file' (is it k6's --out json or csv output?)"
    ]


def test_an_empty_input_exits_65(plugin_dir: PluginDir, tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    proc = run_bridge(plugin_dir, str(empty))
    assert proc.returncode == 65, proc.stderr
    assert f"no k6 record in {empty}: the input was empty" in proc.stderr


def test_stdout_closed_under_jsonl_is_one_line_and_no_traceback(plugin_dir: PluginDir) -> None:
    """``k6mcp-bridge FILE -p jsonl | head -1``: the reader goes away after one line."""
    proc = subprocess.Popen(
        [bridge_exe(), str(CAPTURE), "-p", "jsonl", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=plugin_dir.env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 70
    assert json.loads(first)["type"] == "metric"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("k6mcp-bridge: error")]
    assert len(errors) == 1, stderr
    assert "plugin 'jsonl'" in errors[0] and "Broken pipe" in errors[0]


def test_the_readme_lists_every_exit_status() -> None:
    from k6mcp_bridge.errors import ExitStatus

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| code | meaning |") :]
    for status in ExitStatus:
        assert f"| {status.value} |" in table, status


# --- subscriptions, in process --------------------------------------------------------------------


class Typed(Plugin):
    """Records the type of every message it receives."""

    name = "typed"

    def __init__(self) -> None:
        super().__init__()
        self.types: list[str] = []

    def process_batch(self, messages: Sequence[Message]) -> None:
        self.types += [m.type for m in messages]


class PointsOnly(Typed):
    name = "points-only"
    accepts = frozenset({"point"})


class SnapshotsOnly(Typed):
    name = "snapshots-only"
    accepts = frozenset({"metrics", "threshold"})


def replay(plugins: list[Plugin]) -> Pipeline:
    stage = Aggregation(AggregationSettings(thresholds=(parse_cli_threshold("m:count>5"),)))
    pipeline = Pipeline(plugins, Settings(batch_size=4), aggregation=stage)
    pipeline.run(Source("mem", io.BytesIO(k6_stream(10)).read, None, False, lambda: None))
    return pipeline


def test_each_plugin_gets_only_the_message_types_it_accepts() -> None:
    everything, points, snapshots = Typed(), PointsOnly(), SnapshotsOnly()
    replay([everything, points, snapshots])
    assert Counter(everything.types) == {"metric": 1, "point": 10, "metrics": 1, "threshold": 1}
    assert points.types == ["point"] * 10
    assert snapshots.types == ["metrics", "threshold"]


def test_one_frozen_point_object_is_shared_by_every_plugin_that_wants_points() -> None:
    class Keeping(Typed):
        name = "keeping"
        accepts = frozenset({"point"})

        def __init__(self) -> None:
            super().__init__()
            self.kept: list[Message] = []

        def process_batch(self, messages: Sequence[Message]) -> None:
            self.kept += messages

    first, second = Keeping(), Keeping()
    replay([first, second])
    assert len(first.kept) == 10
    assert all(a is b for a, b in zip(first.kept, second.kept, strict=True))
    point = first.kept[0]
    assert isinstance(point, PointMessage)
    with pytest.raises(ValidationError):
        point.data.value = 99.0  # type: ignore[misc]  # frozen


def test_accepts_with_an_unknown_type_is_a_load_error_that_plugins_shows(
    tmp_path: Path,
) -> None:
    source = """
from k6mcp_bridge import Plugin

class Wrong(Plugin):
    name = "wrong"
    accepts = {"points"}

    def process_data(self, message):
        pass

class Text(Plugin):
    name = "text"
    accepts = "point"

    def process_data(self, message):
        pass
"""
    entry_points = {"wrong": "k6t_wrong:Wrong", "text": "k6t_wrong:Text"}
    write_dist(tmp_path, "k6t-wrong", "0.1", {"k6t_wrong": source}, entry_points)
    listing = subprocess.run(
        [bridge_exe(), "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=PluginDir(tmp_path).env(),
    )
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    for name, shown in (("wrong", "{'points'}"), ("text", "'point'")):
        assert rows[name]["error"] == (
            f"k6t_wrong:{name.title()}.accepts must be a set of message types "
            f"(metric, point, metrics, threshold, window), not {shown}"
        )
    assert rows["summary"]["accepts"] == ["metric"]
    assert rows["jsonl"]["accepts"] is None


def test_a_second_ctrl_c_while_waiting_for_a_slow_plugin_still_finishes_it(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    """The first SIGINT stops reading; waiting for a slow plugin to drain its queue, the second
    drops the batches it has not taken, and every plugin still gets ``finish``."""
    record = tmp_path / "slow.record"
    proc = subprocess.Popen(
        [
            bridge_exe(),
            str(CAPTURE),
            "-p",
            "recorder",
            "-o",
            f"recorder.record={record}",
            "-o",
            "recorder.delay=1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=plugin_dir.env(K6MCP_BRIDGE_BATCH_SIZE="100"),
    )
    try:
        deadline = time.monotonic() + 30
        while not record.exists() and time.monotonic() < deadline:  # started
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        second = time.monotonic()
        assert proc.wait(timeout=30) == 130
        assert time.monotonic() - second < 3, "the queued batches were not dropped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = [json.loads(line) for line in record.read_text().splitlines()]
    assert events[-1]["event"] == "finish" and events[-1]["status"] == "interrupted"
    batches = sum(e["event"] == "batch" for e in events)
    assert 0 < batches < RECORDS // 100


def test_a_run_stopped_by_max_errors_still_exits_70_when_a_plugin_failed(
    plugin_dir: PluginDir, tmp_path: Path
) -> None:
    """The precedence holds for a run that stopped on an error: 70 outranks --max-errors' 65."""
    data = tmp_path / "bad-at-the-end.jsonl"
    data.write_bytes(k6_stream(20) + b'{"type":"Point","metric":"m","data":{"time":"x"}}\n')
    proc = run_bridge(plugin_dir, str(data), "-p", "boom", "--max-errors", "1")
    assert "stopped after 1 rejected lines" in proc.stderr
    assert proc.returncode == 70, proc.stderr


def test_a_batch_with_nothing_for_a_plugin_is_not_queued_and_counts_once_the_queue_is_done() -> (
    None
):
    release = threading.Event()

    class Blocking(Typed):
        name = "blocking"
        calls = 0

        def process_batch(self, messages: Sequence[Message]) -> None:
            self.calls += 1
            release.wait(10)
            if messages[0].data.name == "bad":  # type: ignore[union-attr]
                raise ValueError("bad")

    metric = MetricMessage.model_validate(
        {"data": {"name": "m", "type": "counter", "contains": "default"}}
    )
    plugin = Blocking()
    worker = Worker(plugin, timeout=30)
    worker.send(Batch([metric], 10))
    worker.send(Batch([], 20))
    worker.send(Batch([], 30))
    assert worker.records_done == 0  # the first batch is still being processed
    release.set()
    worker.sync()
    assert (plugin.calls, worker.records_done) == (1, 30)

    bad = metric.model_copy(update={"data": metric.data.model_copy(update={"name": "bad"})})
    worker.send(Batch([bad], 40))
    worker.send(Batch([], 50))
    worker.sync()
    assert worker.state == "failed"
    assert worker.records_done == 30  # not the failed batch, nor what came after it
    worker.finish(RunResult("completed", Stats(), 0.0, None, ()))
    worker.wait()
