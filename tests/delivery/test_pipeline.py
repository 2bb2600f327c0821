"""The Pipeline on its own: plugin instances defined here, Settings, in-memory and pipe sources."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from conftest import K6_RUN, k6_stream, point_line
from k6mcp_bridge.config import Settings
from k6mcp_bridge.delivery.pipeline import Pipeline
from k6mcp_bridge.errors import PluginFailed, TooManyErrors
from k6mcp_bridge.input.source import Source
from k6mcp_bridge.messages import MetricMessage, PointMessage
from k6mcp_bridge.plugin import Plugin, RunInfo, RunResult

Msg = MetricMessage | PointMessage


def key(message: Msg) -> Any:
    return message.data.value if message.type == "point" else f"metric:{message.data.name}"


def expected_keys(points: int, metric: str = "m") -> list[Any]:
    return [f"metric:{metric}", *[float(i) for i in range(1, points + 1)]]


class Collector(Plugin):
    """Keeps every batch and every call in order."""

    name = "collector"

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.batches: list[list[Any]] = []
        self.result: RunResult | None = None
        self.info: RunInfo | None = None

    def start(self, run_info: RunInfo) -> None:
        self.calls.append("start")
        self.info = run_info

    def process_batch(self, messages: Sequence[Msg]) -> None:
        self.calls.append("batch")
        self.batches.append([key(m) for m in messages])

    def finish(self, result: RunResult) -> None:
        self.calls.append("finish")
        self.result = result

    @property
    def keys(self) -> list[Any]:
        return [k for batch in self.batches for k in batch]


class PerMessage(Plugin):
    """Uses the default process_batch; raises on the Nth point."""

    name = "permessage"

    def __init__(self, fail_on_point: int = 0) -> None:
        super().__init__()
        self.fail_on_point = fail_on_point
        self.points = 0
        self.keys: list[Any] = []
        self.finished = 0

    def process_data(self, message: Msg) -> None:
        if message.type == "point":
            self.points += 1
            if self.points == self.fail_on_point:
                raise ValueError(f"cannot take point {self.points}")
        self.keys.append(key(message))

    def finish(self, result: RunResult) -> None:
        self.finished += 1


class Failing(Plugin):
    """Raises in the method named ``where``."""

    name = "failing"

    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where
        self.batches = 0
        self.first_batch = 0
        self.finished = 0

    def start(self, run_info: RunInfo) -> None:
        if self.where == "start":
            raise OSError("cannot open the database")

    def process_batch(self, messages: Sequence[Msg]) -> None:
        self.batches += 1
        self.first_batch = self.first_batch or len(messages)
        if self.where == "batch":
            raise KeyError("no such column")

    def finish(self, result: RunResult) -> None:
        self.finished += 1
        if self.where == "finish":
            raise RuntimeError("cannot flush")


def memory_source(data: bytes, name: str = "mem") -> Source:
    return Source(name, io.BytesIO(data).read, None, live=False, close=lambda: None)


def run(plugins: Sequence[Plugin], data: bytes, **settings: Any) -> tuple[RunResult, Pipeline]:
    pipeline = Pipeline(plugins, Settings(**settings))
    return pipeline.run(memory_source(data)), pipeline


# --- order, batching, counting --------------------------------------------------------------------


def test_every_message_arrives_in_stream_order_between_start_and_finish() -> None:
    collector = Collector()
    result, _ = run([collector], k6_stream(50))
    assert collector.keys == expected_keys(50)
    assert collector.calls[0] == "start"
    assert collector.calls[-1] == "finish"
    assert collector.calls.count("start") == 1
    assert collector.calls.count("finish") == 1
    assert set(collector.calls[1:-1]) == {"batch"}
    assert result.status == "completed"
    assert result.stats.messages == 51
    assert result.stats.lines == 51
    assert result.stats.rejected == 0
    assert collector.result is result
    assert collector.info is not None
    assert collector.info.source == "mem"
    assert collector.info.started_at.tzinfo is not None


def test_real_k6_file_delivers_one_message_per_line_in_order() -> None:
    data = K6_RUN.read_bytes()
    collector = Collector()
    result, _ = run([collector], data)
    lines = data.splitlines()
    assert result.stats.messages == len(lines) == len(collector.keys)
    points = [k for k in collector.keys if not isinstance(k, str)]
    assert len(points) == data.count(b'"type":"Point"')


@pytest.mark.parametrize("size", [1, 4, 10, 1000])
def test_batches_respect_batch_size_and_keep_stream_order(size: int) -> None:
    collector = Collector()
    run([collector], k6_stream(25), batch_size=size)
    assert collector.keys == expected_keys(25)
    assert all(1 <= len(batch) <= size for batch in collector.batches), [
        len(b) for b in collector.batches
    ]
    # size-based batching: every batch but the last is full
    assert all(len(batch) == size for batch in collector.batches[:-1]), [
        len(b) for b in collector.batches
    ]


def test_each_plugin_sees_the_same_batches() -> None:
    first, second = Collector(), Collector()
    run([first, second], k6_stream(30), batch_size=7)
    assert first.batches == second.batches
    assert first.keys == expected_keys(30)


def test_console_lines_go_to_the_console_stream_and_rejections_to_the_dead_letter() -> None:
    bad = b'{"metric":"m","type":"Bogus","data":{}}'
    data = (
        b"     execution: local\n"
        + k6_stream(2)
        + bad
        + b"\n"
        + point_line(3)
        + b"\nrunning (01.0s), 1/1 VUs\n"
    )
    console, dead = io.BytesIO(), io.BytesIO()
    collector = Collector()
    pipeline = Pipeline([collector], Settings(), console=console, dead_letter=dead)
    result = pipeline.run(memory_source(data))
    assert console.getvalue() == b"     execution: local\nrunning (01.0s), 1/1 VUs\n"
    assert dead.getvalue() == bad + b"\n"
    assert collector.keys == [*expected_keys(2), 3.0]
    assert result.stats.console_lines == 2
    assert result.stats.rejected == 1
    assert result.stats.lines == 7


def test_max_errors_stops_the_run_and_still_finishes_every_plugin() -> None:
    bad = b'{"metric":"m","type":"Bogus","data":{}}\n'
    data = k6_stream(2) + bad + point_line(3) + b"\n" + bad + point_line(4) + b"\n" + bad
    collector = Collector()
    pipeline = Pipeline([collector], Settings(max_errors=2))
    with pytest.raises(TooManyErrors):
        pipeline.run(memory_source(data))
    assert collector.calls[-1] == "finish"
    assert collector.calls.count("finish") == 1
    assert collector.result is not None
    assert collector.result.status == "stopped"
    assert collector.result.stats.rejected == 2
    # everything before the limit was delivered; the line after it was not read
    assert collector.keys[:4] == [*expected_keys(2), 3.0]
    assert 4.0 not in collector.keys


# --- isolation ------------------------------------------------------------------------------------


def test_a_failing_plugin_is_disabled_and_the_others_lose_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the failure is in the middle of a batch: the other plugin still gets that whole batch
    failing, collector = PerMessage(fail_on_point=3), Collector()
    with caplog.at_level(logging.WARNING, logger="k6mcp_bridge"):
        result, _ = run([failing, collector], k6_stream(20), batch_size=5)
    assert result.status == "completed"
    assert collector.keys == expected_keys(20)
    # the failing plugin got messages #1-#3 (metric, points 1 and 2) and nothing after
    assert failing.keys == ["metric:m", 1.0, 2.0]
    assert failing.finished == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "'permessage'" in m and "message #4" in m and "cannot take point 3" in m for m in errors
    ), errors
    assert any("disabled" in r.getMessage() for r in caplog.records)


def test_the_position_counts_messages_across_batches(caplog: pytest.LogCaptureFixture) -> None:
    failing = PerMessage(fail_on_point=12)
    with caplog.at_level(logging.ERROR, logger="k6mcp_bridge"):
        run([failing], k6_stream(20), batch_size=5)
    assert any("message #13" in r.getMessage() for r in caplog.records), caplog.text
    assert failing.keys == expected_keys(11)


def test_a_process_batch_failure_names_the_batch_range(caplog: pytest.LogCaptureFixture) -> None:
    failing, collector = Failing("batch"), Collector()
    with caplog.at_level(logging.ERROR, logger="k6mcp_bridge"):
        run([failing, collector], k6_stream(9), batch_size=4)
    assert failing.batches == 1  # disabled after its first batch
    assert failing.finished == 1
    assert collector.keys == expected_keys(9)
    where = f"messages #1-#{failing.first_batch}"
    assert any("'failing'" in r.getMessage() and where in r.getMessage() for r in caplog.records), (
        caplog.text
    )


def test_a_plugin_that_fails_to_start_gets_no_messages_but_is_finished(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing, collector = Failing("start"), Collector()
    with caplog.at_level(logging.ERROR, logger="k6mcp_bridge"):
        result, _ = run([failing, collector], k6_stream(5))
    assert result.status == "completed"
    assert failing.batches == 0
    assert failing.finished == 1
    assert collector.keys == expected_keys(5)
    assert any(
        "'failing'" in r.getMessage() and "start" in r.getMessage() for r in caplog.records
    ), caplog.text


def test_fail_policy_raises_plugin_failed_and_still_finishes_everyone() -> None:
    failing, collector = PerMessage(fail_on_point=3), Collector()
    pipeline = Pipeline([failing, collector], Settings(plugin_errors="fail", batch_size=2))
    with pytest.raises(PluginFailed) as raised:
        pipeline.run(memory_source(k6_stream(10)))
    assert "permessage" in str(raised.value)
    assert raised.value.exit_status == 70
    assert failing.finished == 1
    assert collector.calls.count("finish") == 1
    assert collector.result is not None
    assert collector.result.status == "stopped"


def test_a_failing_finish_does_not_skip_the_other_finishes() -> None:
    failing, collector = Failing("finish"), Collector()
    result, _ = run([failing, collector], k6_stream(3))
    assert result.status == "completed"
    assert collector.calls.count("finish") == 1
    assert collector.keys == expected_keys(3)


def test_a_failing_finish_under_the_fail_policy_still_finishes_the_others() -> None:
    failing, collector = Failing("finish"), Collector()
    pipeline = Pipeline([failing, collector], Settings(plugin_errors="fail"))
    with pytest.raises(PluginFailed):
        pipeline.run(memory_source(k6_stream(3)))
    assert failing.finished == 1
    assert collector.calls.count("finish") == 1, "finish must always be called"


# --- live sources: batching by time, interrupts ---------------------------------------------------


class Signalling(Collector):
    """Sets ``arrived`` whenever a batch arrives."""

    name = "signalling"

    def __init__(self) -> None:
        super().__init__()
        self.arrived = threading.Condition()

    def process_batch(self, messages: Sequence[Msg]) -> None:
        with self.arrived:
            super().process_batch(messages)
            self.arrived.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: len(self.keys) >= count, timeout)


def pipe_source() -> tuple[Source, int]:
    read_fd, write_fd = os.pipe()
    source = Source(
        "pipe", lambda n: os.read(read_fd, n), read_fd, live=True, close=lambda: os.close(read_fd)
    )
    return source, write_fd


def run_with_writer(pipeline: Pipeline, source: Source, writer: Callable[[], None]) -> RunResult:
    """Run ``pipeline`` on ``source`` while ``writer`` feeds it from a thread; join the thread."""
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        return pipeline.run(source)
    finally:
        thread.join(timeout=30)
        source.close()
        assert not thread.is_alive()


def test_a_slow_trickle_is_delivered_by_time_not_held_for_a_full_batch() -> None:
    plugin = Signalling()
    source, write_fd = pipe_source()
    lines = k6_stream(4).splitlines(keepends=True)
    waited: list[bool] = []

    def writer() -> None:
        try:
            for count, line in enumerate(lines, start=1):
                os.write(write_fd, line)
                # the pipe stays open: only a time-based flush can deliver this line now
                waited.append(plugin.wait_for(count, timeout=5))
        finally:
            os.close(write_fd)

    pipeline = Pipeline([plugin], Settings(batch_size=1000, batch_wait=0.05))
    result = run_with_writer(pipeline, source, writer)
    assert waited == [True] * len(lines)
    assert plugin.keys == expected_keys(4)
    assert len(plugin.batches) == len(lines)  # one batch per trickled line
    assert result.status == "completed"


def test_a_record_split_across_writes_is_joined_on_a_pipe() -> None:
    plugin = Signalling()
    source, write_fd = pipe_source()
    line = point_line(7) + b"\n"

    def writer() -> None:
        try:
            os.write(write_fd, line[:20])
            time.sleep(0.3)  # several idle ticks with half a line held
            os.write(write_fd, line[20:])
        finally:
            os.close(write_fd)

    pipeline = Pipeline([plugin], Settings(batch_wait=0.02))
    result = run_with_writer(pipeline, source, writer)
    assert plugin.keys == [7.0]
    assert result.stats.rejected == 0


def test_interrupted_flag_reads_to_the_end_and_reports_interrupted() -> None:
    plugin = Signalling()
    source, write_fd = pipe_source()
    pipeline = Pipeline([plugin], Settings(batch_wait=0.02))
    lines = k6_stream(4).splitlines(keepends=True)
    ok: list[bool] = []

    def writer() -> None:
        try:
            os.write(write_fd, b"".join(lines[:2]))
            ok.append(plugin.wait_for(2, timeout=5))
            pipeline.interrupted = True  # what the CLI's first Ctrl-C does
            os.write(write_fd, b"".join(lines[2:]))
        finally:
            os.close(write_fd)

    result = run_with_writer(pipeline, source, writer)
    assert ok == [True]
    assert plugin.keys == expected_keys(4)
    assert result.status == "interrupted"
    assert plugin.result is not None
    assert plugin.result.status == "interrupted"


def test_a_plugin_raising_keyboard_interrupt_in_its_thread_is_a_failed_plugin() -> None:
    """Signals land in the reader's thread, never in a plugin's: a KeyboardInterrupt (or
    SystemExit) raised by a plugin is that plugin failing, and the others finish normally."""

    class Interrupting(Collector):
        name = "interrupting"

        def process_batch(self, messages: Sequence[Msg]) -> None:
            super().process_batch(messages)
            raise KeyboardInterrupt

    plugin, other = Interrupting(), Collector()
    pipeline = Pipeline([plugin, other], Settings(batch_size=3))
    result = pipeline.run(memory_source(k6_stream(10)))
    assert result.status == "completed"
    assert plugin.calls == ["start", "batch", "finish"]
    assert other.keys == expected_keys(10)
    assert other.calls[-1] == "finish"
    assert {r.name: r.state for r in pipeline.reports} == {
        "interrupting": "failed",
        "collector": "ok",
    }


def test_a_failure_under_the_fail_policy_never_sends_a_batch_twice() -> None:
    first, failing = Collector(), PerMessage(fail_on_point=7)
    with pytest.raises(PluginFailed):
        run([first, failing], k6_stream(20), batch_size=4, plugin_errors="fail")
    assert first.keys and len(first.keys) == len(set(first.keys))  # none delivered again
    assert failing.finished == 1 and first.calls[-1] == "finish"
