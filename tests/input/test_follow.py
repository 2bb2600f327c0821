"""Following a results file (issue 3): real k6, a writer the test controls, checkpoints.

The bridge runs as the installed console script on real files, with the ``jsonl`` plugin on
stdout (a file) and the ``recorder`` test plugin (which notes every start, batch and finish).
Every written point is unique (its value is a sequence number), so a lost or replayed line
shows. Every wait is bounded by ``WAIT``; every process and thread is ended by the test.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from watchdog.observers.polling import PollingObserver

import k6lab
from conftest import K6_SAMPLES, ROOT, PluginDir, bridge_exe, metric_line, point_line
from k6mcp_bridge.errors import TruncatedInput
from k6mcp_bridge.input import follower as follower_module
from k6mcp_bridge.input.checkpoint import identify
from k6mcp_bridge.input.follower import Follower, resume_position

SCRIPT = ROOT / "sample_outputs" / "script.js"
WAIT = 20.0
"""The longest any one wait may take: generous for a loaded machine, still catches a hang."""
HEADER = metric_line() + b"\n"
BAD = b'{"metric":"m","type":"Point","data":{"time":"2026-11-25T08:00:00Z","value":"fast"}}\n'
TORN = b'{"metric":"m","type":"Point","data":{"ti'

T = TypeVar("T")


# --- the file a test writes -----------------------------------------------------------------------


def points(first: int, count: int) -> bytes:
    """``count`` Point lines valued ``first``, ``first + 1``, ... (unique within a test)."""
    return b"".join(point_line(float(v), second=v) + b"\n" for v in range(first, first + count))


def values(first: int, count: int) -> list[float]:
    return [float(v) for v in range(first, first + count)]


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as stream:
        stream.write(data)


def replace(path: Path, data: bytes) -> None:
    """Write a new file beside ``path``, then rename it over ``path`` (another inode)."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def wait_for(
    what: str, check: Callable[[], T | None], detail: Callable[[], str] = str, timeout: float = WAIT
) -> T:
    """Poll ``check`` until it returns something other than None (or False); fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got is not None and got is not False:
            return got
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{detail()}")
        time.sleep(0.02)


# --- the bridge as a process ----------------------------------------------------------------------


def complete_lines(path: Path) -> list[bytes]:
    """The newline-terminated lines of a file another process is still writing."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].splitlines()


def runs_of(events: Sequence[dict[str, Any]]) -> list[list[float]]:
    """The point values the recorder got, one list per run (start ... finish)."""
    runs: list[list[float]] = []
    current: list[float] | None = None
    for event in events:
        if event["event"] == "start":
            assert current is None, f"start again before finish: {events}"
            current = []
        elif event["event"] == "batch":
            assert current is not None, "a batch outside a run"
            current += [key for key in event["keys"] if not isinstance(key, str)]
        elif event["event"] == "finish":
            assert current is not None, "finish without start"
            runs.append(current)
            current = None
    assert current is None, "the last run was started but never finished"
    return runs


class Bridge:
    """``k6mcp-bridge -f TARGET -p jsonl -p recorder ...``; stdout and stderr go to files."""

    def __init__(
        self, directory: Path, name: str, target: Path, args: Sequence[str], env: dict[str, str]
    ) -> None:
        self.name = name
        self.out = directory / f"{name}.stdout"
        self.err = directory / f"{name}.stderr"
        self.record = directory / f"{name}.record"
        command = [bridge_exe(), "-f", str(target), "-p", "jsonl", "-p", "recorder"]
        command += ["-o", f"recorder.record={self.record}", *args]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
            )

    def stderr(self) -> str:
        return self.err.read_text(encoding="utf-8", errors="replace")

    def tail(self) -> str:
        return f"--- {self.name} stderr ---\n{self.stderr()[-3000:]}"

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in complete_lines(self.out)]

    def points(self) -> list[float]:
        return [m["data"]["value"] for m in self.messages() if m["type"] == "point"]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in complete_lines(self.record)]

    def runs(self) -> list[list[float]]:
        return runs_of(self.events())

    def recorded_points(self) -> list[float]:
        return [value for run in runs_of_partial(self.events()) for value in run]

    def wait_started(self) -> None:
        """Until plugins got ``start``: the follower has its start position and its watch."""
        wait_for(
            f"{self.name} to start a run",
            lambda: any(e["event"] == "start" for e in self.events()) or None,
            self.tail,
        )

    def wait_points(self, count: int) -> list[float]:
        def enough() -> list[float] | None:
            got = self.points()
            return got if len(got) >= count else None

        return wait_for(f"{count} points from {self.name}", enough, self.tail)

    def wait_log(self, text: str) -> None:
        wait_for(f"{text!r} from {self.name}", lambda: text in self.stderr() or None, self.tail)

    def running(self) -> bool:
        return self.proc.poll() is None

    def finish(self, timeout: float = WAIT) -> int:
        """The exit code, once it has stopped by itself."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.name} did not stop within {timeout:g} s\n{self.tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a test may have stopped it
            self.proc.kill()
        self.proc.wait(timeout=10)


def runs_of_partial(events: Sequence[dict[str, Any]]) -> list[list[float]]:
    """Like :func:`runs_of`, for a bridge that was killed (its last run has no finish)."""
    closed = list(events)
    if sum(e["event"] == "start" for e in closed) > sum(e["event"] == "finish" for e in closed):
        closed.append({"event": "finish"})
    return runs_of(closed)


Spawn = Callable[..., Bridge]


@pytest.fixture
def spawn(tmp_path: Path, plugin_dir: PluginDir) -> Iterator[Spawn]:
    """Start a bridge following a file: ``spawn(path, *args, **environment)``; all are reaped."""
    started: list[Bridge] = []

    def start(target: Path, *args: str, **env: str) -> Bridge:
        bridge = Bridge(tmp_path, f"bridge{len(started) + 1}", target, args, plugin_dir.env(**env))
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.kill()


@pytest.fixture(params=["inotify", "poll"])
def watching(request: pytest.FixtureRequest) -> list[str]:
    """Run the test with watchdog's native observer, then with ``--poll``."""
    return ["--poll"] if request.param == "poll" else []


class Sleeper:
    """A process to ``--wait-pid`` on, ended (and reaped, or left a zombie) by the test."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["sleep", "600"])
        self.pid = self.proc.pid

    def end(self, reap: bool = True) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        if reap:
            self.proc.wait(timeout=10)


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    process = Sleeper()
    yield process
    process.end()


# --- real k6 --------------------------------------------------------------------------------------


def start_gated_k6(out: str, base_url: str) -> subprocess.Popen[bytes]:
    """k6 behind a shell that waits for a line on stdin, then execs k6 (so the PID is k6's)."""
    gate = ["sh", "-c", 'read -r go && exec "$@"', "k6-gate"]
    return subprocess.Popen(
        [*gate, *k6lab.k6_run_args(), "--out", out, str(SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=k6lab.k6_env(base_url),
    )


def run_gated_k6(k6: subprocess.Popen[bytes]) -> int:
    assert k6.stdin is not None
    k6.stdin.write(b"go\n")
    k6.stdin.close()
    try:
        return k6.wait(timeout=120)
    finally:
        if k6.poll() is None:
            k6.kill()
            k6.wait(timeout=10)


def k6_point_counts(data: bytes) -> Counter[str]:
    return Counter(
        json.loads(line)["metric"] for line in data.splitlines() if b'"type":"Point"' in line
    )


def bridge_point_counts(bridge: Bridge) -> Counter[str]:
    return Counter(m["data"]["metric"] for m in bridge.messages() if m["type"] == "point")


def test_real_k6_json_file_followed_from_before_it_exists_until_wait_pid(
    tmp_path: Path, spawn: Spawn
) -> None:
    results = tmp_path / "results.json"
    with k6lab.serve() as base_url:
        k6 = start_gated_k6(f"json={results}", base_url)
        try:
            bridge = spawn(results, "--wait-pid", str(k6.pid))
            bridge.wait_log(f"waiting for {results} to be created")
            assert not results.exists()  # the bridge started first: the file is absent
        finally:
            k6_code = run_gated_k6(k6)
        assert k6_code == 0
        code = bridge.finish(60)
    assert code == 0, bridge.tail()
    expected = k6_point_counts(results.read_bytes())
    assert sum(expected.values()) > 100
    assert bridge_point_counts(bridge) == expected
    assert len(bridge.runs()) == 1
    assert sum(len(run) for run in bridge.runs()) == sum(expected.values())
    assert "rejected lines   0" in bridge.stderr()
    assert "Traceback" not in bridge.stderr()


def test_real_k6_gzip_file_followed_from_before_it_exists(tmp_path: Path, spawn: Spawn) -> None:
    """k6 creates the .gz file empty and writes all of it when it exits (k6-formats.md)."""
    results = tmp_path / "results.json.gz"
    with k6lab.serve() as base_url:
        k6 = start_gated_k6(f"json={results}", base_url)
        try:
            bridge = spawn(results, "--wait-pid", str(k6.pid))
            bridge.wait_log(f"waiting for {results} to be created")
        finally:
            k6_code = run_gated_k6(k6)
        assert k6_code == 0
        code = bridge.finish(60)
    expected = k6_point_counts(gzip.decompress(results.read_bytes()))
    assert sum(expected.values()) > 100
    assert bridge_point_counts(bridge) == expected, bridge.tail()
    assert "rejected lines   0" in bridge.stderr()
    assert code == 0, bridge.tail()
    assert bridge.stderr().count("is gzip") == 1


# --- a writer the test controls -------------------------------------------------------------------


def test_a_file_created_after_the_bridge_starts_is_read_from_its_first_line(
    tmp_path: Path, spawn: Spawn, sleeper: Sleeper
) -> None:
    results = tmp_path / "results.json"
    bridge = spawn(results, "--wait-pid", str(sleeper.pid))
    bridge.wait_log("to be created")
    results.write_bytes(HEADER + points(1, 3))
    bridge.wait_points(3)
    append(results, points(4, 3))
    bridge.wait_points(6)
    sleeper.end()
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 6)]
    assert bridge.messages()[0]["type"] == "metric"


def test_torn_lines_are_held_until_their_newline(
    tmp_path: Path, spawn: Spawn, watching: list[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 3))
    bridge = spawn(results, "--idle-timeout", "2", *watching)
    bridge.wait_points(3)
    value = 4
    for cut in (40, 1, len(point_line(4.0))):  # mid-record, after "{", just before the newline
        line = point_line(float(value), second=value) + b"\n"
        append(results, line[:cut])
        time.sleep(0.8)  # longer than the batch wait and the follower's safety-net wait
        assert bridge.points() == values(1, value - 1), "part of a line was delivered"
        append(results, line[cut:])
        bridge.wait_points(value)
        value += 1
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(1, 6)
    assert bridge.runs() == [values(1, 6)]
    assert "rejected lines   0" in bridge.stderr()


def test_growth_after_an_idle_period_is_delivered_promptly(
    tmp_path: Path, spawn: Spawn, watching: list[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 3))
    bridge = spawn(results, *watching)
    bridge.wait_points(3)
    time.sleep(2.5)  # idle: several safety-net waits and idle ticks pass
    written = time.monotonic()
    append(results, points(4, 3))
    bridge.wait_points(6)
    latency = time.monotonic() - written
    bridge.proc.send_signal(signal.SIGTERM)
    assert bridge.finish() == 143, bridge.tail()
    assert bridge.points() == values(1, 6)
    assert latency < 2.0


def test_replacement_by_rename_finishes_the_run_and_starts_another(
    tmp_path: Path, spawn: Spawn, watching: list[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    bridge = spawn(results, "--idle-timeout", "2", *watching)
    bridge.wait_points(5)
    append(results, points(6, 2))  # the old file's last lines, just before a k6 rerun
    replace(results, HEADER + points(101, 5))
    bridge.wait_points(12)
    append(results, points(106, 3))
    bridge.wait_points(15)
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 7), values(101, 8)]
    assert bridge.points() == values(1, 7) + values(101, 8)
    assert "was replaced" in bridge.stderr()


def summaries(stderr: str) -> list[tuple[int, int, int]]:
    """(records, metric, point) of each summary the built-in summary plugin printed."""
    found = re.findall(r"records\s+(\d+) \((\d+) metric, (\d+) point\)", stderr)
    return [(int(a), int(b), int(c)) for a, b, c in found]


def test_each_run_has_its_own_summary(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    bridge = spawn(results, "--idle-timeout", "1.5")
    bridge.wait_points(5)
    replace(results, HEADER + points(101, 3))
    bridge.wait_points(8)
    assert bridge.finish() == 0, bridge.tail()
    assert [e["messages"] for e in bridge.events() if e["event"] == "finish"] == [6, 4]
    assert summaries(bridge.stderr()) == [(6, 1, 5), (4, 1, 3)]


CSV_STATUS = b"metric_name,timestamp,metric_value,status,extra_tags,metadata\n"
CSV_METHOD = b"metric_name,timestamp,metric_value,method,status,extra_tags,metadata\n"


def csv_rows(first: int, count: int, method: bool = False) -> bytes:
    """k6 CSV rows of http_reqs valued ``first``, ``first + 1``, ..."""
    tags = "GET,200" if method else "200"
    return "".join(
        f"http_reqs,{1795543400 + v},{v:.6f},{tags},,vu=1\n" for v in range(first, first + count)
    ).encode()


def test_csv_followed_and_replaced_reads_the_new_header(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.csv"
    results.write_bytes(CSV_STATUS + csv_rows(1, 5))
    bridge = spawn(results, "--idle-timeout", "2")
    bridge.wait_points(5)
    replace(results, CSV_METHOD + csv_rows(101, 3, method=True))
    bridge.wait_points(8)
    append(results, csv_rows(104, 2, method=True))
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 5), values(101, 5)]
    tags = [m["data"]["tags"] for m in bridge.messages() if m["type"] == "point"]
    assert tags == [{"status": "200"}] * 5 + [{"method": "GET", "status": "200"}] * 5
    assert "rejected lines   0" in bridge.stderr()


def test_replacement_by_delete_and_create(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    bridge = spawn(results, "--idle-timeout", "2")
    bridge.wait_points(5)
    results.unlink()
    time.sleep(0.7)  # the path names nothing for a while: the bridge keeps the old file open
    assert bridge.running()
    results.write_bytes(HEADER + points(101, 5))
    bridge.wait_points(10)
    append(results, points(106, 2))
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 5), values(101, 7)]
    assert "was replaced" in bridge.stderr()


def test_truncation_finishes_the_run_and_reads_the_new_content_from_byte_0(
    tmp_path: Path, spawn: Spawn
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 20))
    bridge = spawn(results, "--idle-timeout", "2")
    bridge.wait_points(20)
    inode = results.stat().st_ino
    with results.open("wb") as stream:  # k6 reruns with os.Create: same inode, shorter
        stream.write(HEADER + points(101, 3))
    assert results.stat().st_ino == inode
    bridge.wait_points(23)
    append(results, points(104, 2))
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 20), values(101, 5)]
    assert "was truncated" in bridge.stderr()
    assert "rejected lines   0" in bridge.stderr()


def test_truncation_and_regrowth_past_the_offset_in_one_wakeup_is_a_rewrite(
    tmp_path: Path, spawn: Spawn
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    bridge = spawn(results, "--idle-timeout", "2")
    bridge.wait_points(5)
    old_size = results.stat().st_size
    bridge.proc.send_signal(signal.SIGSTOP)  # the bridge looks again only after all of it
    try:
        with results.open("wb") as stream:
            stream.write(HEADER + points(101, 20))
        assert results.stat().st_size > old_size
    finally:
        bridge.proc.send_signal(signal.SIGCONT)
    bridge.wait_points(25)
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.runs() == [values(1, 5), values(101, 20)]
    assert bridge.points() == values(1, 5) + values(101, 20)
    assert "was rewritten" in bridge.stderr()
    assert "rejected lines   0" in bridge.stderr()


def test_from_end_skips_what_is_there_and_numbers_lines_truly(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    bridge = spawn(results, "--from-end", "--idle-timeout", "2")
    bridge.wait_started()
    append(results, points(6, 3) + BAD + points(9, 1))  # the bad line is line 1 + 5 + 3 + 1
    assert bridge.finish() == 65, bridge.tail()
    assert bridge.points() == values(6, 4)
    assert bridge.runs() == [values(6, 4)]
    assert "line 10:" in bridge.stderr()
    assert "rejected lines   1" in bridge.stderr()
    # the metric definitions before the start are given again, so the points can be typed
    assert [m["data"]["name"] for m in bridge.messages() if m["type"] == "metric"] == ["m"]


def test_from_end_on_a_csv_file_reads_the_new_rows_with_its_header(
    tmp_path: Path, spawn: Spawn
) -> None:
    results = tmp_path / "results.csv"
    results.write_bytes(CSV_STATUS + csv_rows(1, 5))
    bridge = spawn(results, "--from-end", "--idle-timeout", "2")
    bridge.wait_started()
    append(results, csv_rows(6, 3))
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(6, 3)
    assert "console lines    0" in bridge.stderr()


def test_idle_timeout_stops_with_exit_0_only_after_that_long_without_growth(
    tmp_path: Path, spawn: Spawn
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 2))
    bridge = spawn(results, "--idle-timeout", "1.5")
    bridge.wait_points(2)
    for value in range(3, 9):  # growth every 0.5 s for 3 s keeps it going
        time.sleep(0.5)
        assert bridge.running(), bridge.tail()
        append(results, points(value, 1))
    last = time.monotonic()
    assert bridge.finish() == 0, bridge.tail()
    elapsed = time.monotonic() - last
    assert 1.4 <= elapsed < 1.5 + 5, elapsed
    assert bridge.points() == values(1, 8)
    assert "--idle-timeout" in bridge.stderr()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_drains_what_was_written_finishes_plugins_and_exits_as_documented(
    tmp_path: Path, spawn: Spawn, signum: int, code: int
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 10))
    bridge = spawn(results)
    bridge.wait_points(10)
    append(results, points(11, 500))
    bridge.proc.send_signal(signum)
    assert bridge.finish() == code, bridge.tail()
    assert bridge.points() == values(1, 510)
    assert bridge.runs() == [values(1, 510)]
    assert [e["status"] for e in bridge.events() if e["event"] == "finish"] == ["interrupted"]
    assert "summary (interrupted" in bridge.stderr()
    assert "Traceback" not in bridge.stderr()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_while_waiting_for_the_file_exits_as_documented(
    tmp_path: Path, spawn: Spawn, signum: int, code: int
) -> None:
    results = tmp_path / "results.json"
    bridge = spawn(results)
    bridge.wait_log("to be created")
    bridge.proc.send_signal(signum)
    assert bridge.finish() == code, bridge.tail()
    assert "Traceback" not in bridge.stderr()


@pytest.mark.parametrize("stop", ["idle-timeout", "wait-pid"])
def test_a_partial_last_line_when_following_stops_is_rejected_with_its_number(
    tmp_path: Path, spawn: Spawn, sleeper: Sleeper, stop: str
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 3) + TORN)
    args = ["--idle-timeout", "1"] if stop == "idle-timeout" else ["--wait-pid", str(sleeper.pid)]
    bridge = spawn(results, *args)
    bridge.wait_points(3)
    if stop == "wait-pid":
        time.sleep(0.5)
        sleeper.end()
    assert bridge.finish() == 65, bridge.tail()
    assert bridge.points() == values(1, 3)
    assert "line 5:" in bridge.stderr()
    assert "rejected lines   1" in bridge.stderr()
    assert [e["rejected"] for e in bridge.events() if e["event"] == "finish"] == [1]


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_wait_pid_drains_what_was_written_before_the_process_ended(
    tmp_path: Path, spawn: Spawn, sleeper: Sleeper, reap: bool
) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 3))
    bridge = spawn(results, "--wait-pid", str(sleeper.pid))
    bridge.wait_points(3)
    time.sleep(0.5)
    assert bridge.running()
    append(results, points(4, 2000))  # k6's last flush, then it exits
    sleeper.end(reap=reap)  # a zombie has exited too: its parent just has not reaped it
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(1, 2003)
    assert "--wait-pid" in bridge.stderr()


# --- gzip -----------------------------------------------------------------------------------------


def gzip_results(count: int) -> bytes:
    return gzip.compress(HEADER + points(1, count))


def test_gzip_followed_is_read_once_complete(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json.gz"
    whole = gzip_results(2000)
    results.write_bytes(whole[: len(whole) // 2])
    bridge = spawn(results)
    bridge.wait_log("is gzip")
    time.sleep(1.5)
    assert bridge.points() == []  # nothing from the half-written stream
    assert bridge.running()
    append(results, whole[len(whole) // 2 :])
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(1, 2000)
    assert bridge.stderr().count("is gzip") == 1


def test_gzip_that_k6_created_empty_is_read_once_complete(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json.gz"
    results.write_bytes(b"")  # k6 creates it at the start and writes it all at exit
    bridge = spawn(results, "--idle-timeout", "5")
    bridge.wait_log("is empty: waiting")  # format unknown until the first bytes
    time.sleep(1)
    append(results, gzip_results(2000))
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(1, 2000)
    assert "rejected lines   0" in bridge.stderr()


def test_half_written_gzip_when_wait_pid_fires_delivers_no_garbage(
    tmp_path: Path, spawn: Spawn, sleeper: Sleeper
) -> None:
    results = tmp_path / "results.json.gz"
    whole = gzip_results(5000)
    results.write_bytes(whole[: len(whole) // 2])
    bridge = spawn(results, "--wait-pid", str(sleeper.pid))
    bridge.wait_log("is gzip")
    sleeper.end()  # k6 was killed: the gzip stream stays unfinished
    assert bridge.finish() == 65, bridge.tail()
    got = bridge.points()
    assert got == values(1, len(got))  # whole records, in order, and nothing else
    assert "ends early" in bridge.stderr()


# --- checkpoint and resume ------------------------------------------------------------------------


class SteadyWriter:
    """Appends ``per_write`` points every ``pause`` s in a thread until ``total`` are written."""

    def __init__(self, path: Path, total: int, per_write: int, pause: float) -> None:
        self.path, self.total, self.per_write, self.pause = path, total, per_write, pause
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="steady-writer")

    def __enter__(self) -> SteadyWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WAIT)

    def _write(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, HEADER)
            while self.written < self.total and not self._stop.is_set():
                count = min(self.per_write, self.total - self.written)
                os.write(fd, points(self.written + 1, count))
                self.written += count
                self._stop.wait(self.pause)
        finally:
            os.close(fd)

    def wait_done(self) -> None:
        self._thread.join(timeout=WAIT * 3)
        assert not self._thread.is_alive(), "the writer did not finish"
        assert self.written == self.total


def duplicates(delivered: list[float]) -> int:
    return sum(count - 1 for count in Counter(delivered).values())


@pytest.mark.parametrize(
    ("per_write", "pause", "delay"),
    [(5, 0.2, 0.0), (2, 0.02, 0.0), (2, 0.02, 0.2)],
    ids=["slow-writer", "steady-writer", "slow-plugin"],
)
def test_kill_9_and_restart_with_the_checkpoint_loses_nothing_and_repeats_at_most_a_batch(
    tmp_path: Path, spawn: Spawn, per_write: int, pause: float, delay: float
) -> None:
    """With a slow plugin (the recorder, ``delay`` seconds a batch, far behind jsonl), the
    checkpoint holds what *every* live plugin has processed: the slow one loses nothing."""
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    batch = 50
    total = 200 if pause > 0.1 else 600
    args = ["--checkpoint", str(state), "-o", f"recorder.delay={delay}"]
    with SteadyWriter(results, total, per_write, pause) as writer:
        first = spawn(results, *args, K6MCP_BRIDGE_BATCH_SIZE=str(batch))
        wait_for(
            "the first bridge to get 100 points",
            lambda: len(first.recorded_points()) >= 100 or None,
            first.tail,
        )
        time.sleep(0.4)
        assert writer.written < total, "the writer should still be writing"
        first.proc.kill()
        first.proc.wait(timeout=10)
        second = spawn(results, *args, "--idle-timeout", "1.5", K6MCP_BRIDGE_BATCH_SIZE=str(batch))
        writer.wait_done()
        assert second.finish() == 0, second.tail()
    before, after = first.recorded_points(), second.recorded_points()
    assert len(before) >= 100
    assert sorted(set(before) | set(after)) == values(1, total), "a line was lost"
    assert duplicates(before) == duplicates(after) == 0
    repeated = duplicates(before + after)
    assert repeated <= batch, f"{repeated} points delivered twice (batch size {batch})"
    assert "resuming" in second.stderr()


def saved_count(checkpoint: Path) -> int:
    """The samples of ``m`` in the run state a checkpoint holds (0 while it holds none)."""
    try:
        saved = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return 0
    return sum(s["count"] for s in saved.get("state", {}).get("series", []) if s["metric"] == "m")


def test_kill_9_and_restart_with_the_checkpoint_counts_every_sample_once_in_the_state(
    tmp_path: Path, spawn: Spawn
) -> None:
    """The checkpoint holds the run state after exactly the records before its offset: resumed
    from it, the state export and the summary count every sample once, although the plugins
    get the records after the offset again (at-least-once)."""
    results, checkpoint = tmp_path / "results.json", tmp_path / "checkpoint.json"
    export, summary = tmp_path / "state.json", tmp_path / "summary.json"
    total = 600
    args = ["--checkpoint", str(checkpoint), "--state-export", str(export)]
    args += ["--summary-export", str(summary)]
    with SteadyWriter(results, total, 2, 0.02) as writer:
        first = spawn(results, *args, K6MCP_BRIDGE_BATCH_SIZE="50")
        wait_for("a state in the checkpoint", lambda: saved_count(checkpoint) >= 100, first.tail)
        time.sleep(0.3)
        first.proc.kill()
        first.proc.wait(timeout=10)
        at_kill = saved_count(checkpoint)
        assert writer.written < total, "the writer should still be writing"
        second = spawn(results, *args, "--idle-timeout", "1.5", K6MCP_BRIDGE_BATCH_SIZE="50")
        writer.wait_done()
        assert second.finish() == 0, second.tail()
    assert 100 <= at_kill < total
    assert "the run goes on from the checkpoint's state" in second.stderr()
    assert sorted(set(first.recorded_points() + second.recorded_points())) == values(1, total)
    state = json.loads(export.read_text())
    [series] = [s for s in state["series"] if s["metric"] == "m"]
    assert series["count"] == total
    assert series["sum"] == sum(values(1, total))
    assert series["min"] == 1.0 and series["max"] == float(total)
    assert json.loads(summary.read_text())["metrics"]["m"]["count"] == sum(values(1, total))
    assert json.loads(checkpoint.read_text())["offset"] == results.stat().st_size
    assert saved_count(checkpoint) == total


def test_clean_stop_and_restart_repeats_nothing_and_numbers_lines_truly(
    tmp_path: Path, spawn: Spawn
) -> None:
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    results.write_bytes(HEADER + points(1, 50))
    first = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert first.finish() == 0, first.tail()
    assert first.points() == values(1, 50)
    append(results, points(51, 20) + BAD + points(71, 5))  # the bad line is line 1 + 70 + 1
    second = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert second.finish() == 65, second.tail()
    assert second.points() == values(51, 25)
    assert second.runs() == [values(51, 25)]
    assert "line 72:" in second.stderr()
    assert "resuming" in second.stderr()
    assert "(line 51)" in second.stderr()
    assert json.loads(state.read_text())["offset"] == results.stat().st_size


def test_a_csv_file_resumes_after_a_clean_stop_with_its_header(
    tmp_path: Path, spawn: Spawn
) -> None:
    results, state = tmp_path / "results.csv", tmp_path / "state.json"
    results.write_bytes(CSV_STATUS + csv_rows(1, 5))
    first = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert first.finish() == 0, first.tail()
    assert first.points() == values(1, 5)
    saved = json.loads(state.read_text())
    assert saved["identity"]["first_sample"] == hashlib.sha256(csv_rows(1, 1)[:-1]).hexdigest()
    append(results, csv_rows(6, 3))
    second = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert second.finish() == 0, second.tail()
    assert second.points() == values(6, 3)
    tags = [m["data"]["tags"] for m in second.messages() if m["type"] == "point"]
    assert tags == [{"status": "200"}] * 3
    assert "rejected lines   0" in second.stderr()


def test_a_checkpoint_that_cannot_be_written_is_a_usage_error(tmp_path: Path, spawn: Spawn) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER + points(1, 5))
    state = tmp_path / "no" / "such" / "dir" / "state.json"
    bridge = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert bridge.finish() == 2, bridge.tail()
    assert str(state.parent) in bridge.stderr()
    assert "Traceback" not in bridge.stderr()


def test_the_checkpoint_is_json_with_the_files_identity_and_offset(
    tmp_path: Path, spawn: Spawn
) -> None:
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    results.write_bytes(HEADER)  # no Point yet: the identity's sample comes later
    bridge = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1.5")
    bridge.wait_started()
    append(results, points(1, 10))
    bridge.wait_points(10)
    assert bridge.finish() == 0, bridge.tail()
    saved = json.loads(state.read_text(encoding="utf-8"))
    info = results.stat()
    run_state = saved.pop("state")  # the run's state after the records before the offset
    assert run_state["format"] == "k6mcp-bridge/state"
    assert [(s["metric"], s["count"], s["sum"]) for s in run_state["series"]] == [("m", 10, 55.0)]
    assert saved == {
        "identity": {
            "device": info.st_dev,
            "inode": info.st_ino,
            "first_sample": hashlib.sha256(point_line(1.0, second=1)).hexdigest(),
        },
        "offset": info.st_size,
    }
    assert [p.name for p in tmp_path.glob(f"*{state.name}*")] == [state.name]  # no temp left


def test_the_checkpoint_follows_the_file_that_replaced_the_first(
    tmp_path: Path, spawn: Spawn
) -> None:
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    results.write_bytes(HEADER + points(1, 5))
    first = spawn(results, "--checkpoint", str(state), "--idle-timeout", "2")
    first.wait_points(5)
    replace(results, HEADER + points(101, 5))
    first.wait_points(10)
    assert first.finish() == 0, first.tail()
    assert json.loads(state.read_text())["identity"]["inode"] == results.stat().st_ino
    append(results, points(106, 3))
    second = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert second.finish() == 0, second.tail()
    assert second.points() == values(106, 3)


@pytest.mark.parametrize("how", ["replaced", "rewritten in place"])
def test_a_checkpoint_for_another_file_starts_over_and_says_so(
    tmp_path: Path, spawn: Spawn, how: str
) -> None:
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    results.write_bytes(HEADER + points(1, 5))
    first = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert first.finish() == 0, first.tail()
    rerun = HEADER + points(101, 20)  # longer: the old offset lies inside the new file
    if how == "replaced":
        replace(results, rerun)
    else:
        results.write_bytes(rerun)  # same inode, another first sample
    second = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert second.finish() == 0, second.tail()
    assert second.points() == values(101, 20)
    assert "starting over" in second.stderr()
    assert json.loads(state.read_text())["offset"] == results.stat().st_size


def matching_identity(path: Path) -> dict[str, Any]:
    fd = os.open(path, os.O_RDONLY)
    try:
        found = identify(fd)
    finally:
        os.close(fd)
    return {"device": found.device, "inode": found.inode, "first_sample": found.first_sample}


CORRUPT: dict[str, Callable[[Path], bytes]] = {
    "not JSON": lambda _: b"{this is not json",
    "empty": lambda _: b"",
    "not UTF-8": lambda _: b"\xff\xfe\x00",
    "a list": lambda _: b"[]",
    "no identity": lambda _: b'{"offset": 10}',
    "identity not an object": lambda _: b'{"identity": 5, "offset": 10}',
    "identity missing fields": lambda _: b'{"identity": {"device": 1}, "offset": 10}',
    "offset not a number": lambda path: json.dumps(
        {"identity": matching_identity(path), "offset": "ten"}
    ).encode(),
    "negative offset": lambda path: json.dumps(
        {"identity": matching_identity(path), "offset": -100}
    ).encode(),
    "a state that is not a run state": lambda path: json.dumps(
        {"identity": matching_identity(path), "offset": 0, "state": {"format": "x"}}
    ).encode(),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
def test_a_corrupt_checkpoint_is_reported_and_ignored(
    tmp_path: Path, spawn: Spawn, kind: str
) -> None:
    results, state = tmp_path / "results.json", tmp_path / "state.json"
    results.write_bytes(HEADER + points(1, 5))
    state.write_bytes(CORRUPT[kind](results))
    bridge = spawn(results, "--checkpoint", str(state), "--idle-timeout", "1")
    assert bridge.finish() == 0, bridge.tail()
    assert bridge.points() == values(1, 5)
    assert "warning:" in bridge.stderr()
    assert "checkpoint" in bridge.stderr()
    assert "Traceback" not in bridge.stderr()
    # and it was replaced by a good one
    assert json.loads(state.read_text())["offset"] == results.stat().st_size


# --- the Follower in this process -----------------------------------------------------------------


class Consumer:
    """Reads every run of a Follower in a thread: the bytes per run, and what ended it."""

    def __init__(self, follower: Follower) -> None:
        self.follower = follower
        self.runs: list[bytearray] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="follower-consumer")

    def __enter__(self) -> Consumer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.follower.stop("the test is over")
        self._thread.join(timeout=WAIT)
        assert not self._thread.is_alive(), "the follower did not stop"

    def _consume(self) -> None:
        runs = self.follower.runs()
        try:
            for run in runs:
                data = bytearray()
                self.runs.append(data)
                try:
                    for chunk in run.chunks():
                        data += chunk
                finally:
                    run.close()
        except BaseException as exc:
            self.error = exc
        finally:
            runs.close()

    def join(self) -> None:
        self._thread.join(timeout=WAIT)
        assert not self._thread.is_alive(), "the follower did not stop by itself"

    def data(self) -> bytes:
        return b"".join(self.runs)

    def wait_data(self, size: int) -> bytes:
        def enough() -> bytes | None:
            got = self.data()
            return got if len(got) >= size else None

        return wait_for(f"{size} bytes from the follower", enough)


@pytest.mark.parametrize("start", ["magic only", "empty"])
def test_follower_reads_a_gzip_file_once_it_is_complete(tmp_path: Path, start: str) -> None:
    plain = HEADER + points(1, 3000)
    whole = gzip.compress(plain)
    path = tmp_path / "results.json.gz"
    cut = 2 if start == "magic only" else 0
    path.write_bytes(whole[:cut])
    with Consumer(Follower(path, poll=True, idle_timeout=5)) as consumer:
        for piece in (whole[cut : len(whole) // 2], whole[len(whole) // 2 :]):
            time.sleep(0.7)
            assert consumer.data() == b""
            append(path, piece)
        consumer.join()
    assert consumer.error is None
    assert consumer.data() == plain


def test_follower_never_delivers_garbage_from_a_half_written_gzip(tmp_path: Path) -> None:
    plain = HEADER + points(1, 20000)
    whole = gzip.compress(plain)
    path = tmp_path / "results.json.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with Consumer(Follower(path, poll=True)) as consumer:
        time.sleep(1.2)
        assert consumer.data() == b""
        consumer.follower.stop("k6 was killed")
        consumer.join()
    assert isinstance(consumer.error, TruncatedInput)
    got = consumer.data()
    assert got and plain.startswith(got)  # a prefix of the real content, nothing else


def test_follower_resumes_at_an_offset_with_the_metric_lines_before_it(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    head = HEADER + points(1, 3) + metric_line("n") + b"\n" + points(4, 2)
    path.write_bytes(head + points(6, 2))
    fd = os.open(path, os.O_RDONLY)
    try:
        position = resume_position(fd, len(head))
    finally:
        os.close(fd)
    assert position.offset == len(head)
    assert position.lineno == 7
    assert position.preamble == (metric_line(), metric_line("n"))


class _NoInotify(PollingObserver):
    def start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


class _Mortal(PollingObserver):
    made: list[_Mortal] = []  # noqa: RUF012

    def __init__(self) -> None:
        super().__init__(timeout=0.1)
        _Mortal.made.append(self)


def test_follower_polls_with_a_warning_when_the_native_observer_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(follower_module, "Observer", _NoInotify)
    path = tmp_path / "results.json"
    path.write_bytes(HEADER)
    with caplog.at_level(logging.INFO, "k6mcp_bridge"), Consumer(Follower(path)) as consumer:
        consumer.wait_data(len(HEADER))
        append(path, points(1, 3))
        assert consumer.wait_data(len(HEADER + points(1, 3))) == HEADER + points(1, 3)
    assert "inotify limit reached" in caplog.text
    assert "polling instead" in caplog.text


def test_follower_polls_with_a_warning_when_the_observer_dies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _Mortal.made.clear()
    monkeypatch.setattr(follower_module, "Observer", _Mortal)
    path = tmp_path / "results.json"
    path.write_bytes(HEADER)
    with caplog.at_level(logging.INFO, "k6mcp_bridge"), Consumer(Follower(path)) as consumer:
        consumer.wait_data(len(HEADER))
        native = _Mortal.made[0]
        native.stop()
        native.join(timeout=WAIT)
        wait_for("the watcher's death to be noticed", lambda: "watcher stopped" in caplog.text)
        append(path, points(1, 3))
        assert consumer.wait_data(len(HEADER + points(1, 3))) == HEADER + points(1, 3)
    assert "polling instead" in caplog.text


def test_follow_needs_a_file_path(bridge: str) -> None:
    proc = subprocess.run(
        [bridge, "-f", "-"], capture_output=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 2
    assert b"--follow needs a file path" in proc.stderr


@pytest.mark.parametrize("flag", ["--from-end", "--poll", "--idle-timeout=1", "--wait-pid=1"])
def test_follow_flags_need_follow(bridge: str, tmp_path: Path, flag: str) -> None:
    results = tmp_path / "results.json"
    results.write_bytes(HEADER)
    proc = subprocess.run(
        [bridge, flag, str(results)], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert b"goes with --follow" in proc.stderr


def test_abort_on_fail_signals_the_k6_process(tmp_path: Path, spawn: Spawn) -> None:
    """An abortOnFail threshold crossed (past its delayAbortEval): SIGINT to --wait-pid."""
    results = tmp_path / "results.json"
    results.write_bytes((K6_SAMPLES / "json-threshold-abortOnFail.jsonl").read_bytes())
    k6 = subprocess.Popen(["sleep", "600"])  # stands in for k6: SIGINT ends it
    try:
        args = ["--wait-pid", str(k6.pid), "--abort-on-fail", "--snapshot-interval", "1"]
        bridge = spawn(results, *args)
        assert k6.wait(timeout=WAIT) == -signal.SIGINT
        assert bridge.finish() == 99, bridge.tail()
    finally:
        if k6.poll() is None:
            k6.kill()
            k6.wait()
    assert "THRESHOLD CROSSED WITH abortOnFail" in bridge.stderr()
    assert f"sending SIGINT to process {k6.pid}" in bridge.stderr()
