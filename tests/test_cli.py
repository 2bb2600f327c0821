"""The command line, in-process (CliRunner) and as the installed console script."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import k6lab
from conftest import (
    K6_RUN,
    K6_RUN_GZ,
    K6_STDOUT,
    bridge_exe,
    clean_env,
    k6_stream,
    point_line,
    records,
)
from k6mcp_bridge import __version__
from k6mcp_bridge.cli import app
from k6mcp_bridge.messages import MESSAGE_ADAPTER

runner = CliRunner()
RUN_LINES = len(K6_RUN.read_bytes().splitlines())
RUN_POINTS = K6_RUN.read_bytes().count(b'"type":"Point"')
RUN_METRICS = K6_RUN.read_bytes().count(b'"type":"Metric"')


def lines_read(stderr: str) -> int:
    found = re.search(r"lines read\s+(\d+)", stderr)
    assert found, stderr[-2000:]
    return int(found[1])


def jsonl(text: str) -> list[dict[str, object]]:
    return records(text)


# --- SOURCE forms ---------------------------------------------------------------------------------


def test_bare_form_is_run() -> None:
    bare = runner.invoke(app, [str(K6_RUN)])
    explicit = runner.invoke(app, ["run", str(K6_RUN)])
    assert bare.exit_code == explicit.exit_code == 0, bare.stderr
    assert lines_read(bare.stderr) == lines_read(explicit.stderr) == RUN_LINES
    assert bare.stdout == explicit.stdout == ""  # data goes to stdout only from a plugin


def test_bare_form_with_options_before_the_source() -> None:
    result = runner.invoke(app, ["-p", "jsonl", "--no-passthrough", str(K6_RUN)])
    assert result.exit_code == 0, result.stderr
    assert len(records(result.stdout)) == RUN_LINES


@pytest.mark.parametrize("args", [[], ["-"], ["run"], ["run", "-"]])
def test_stdin_with_no_source_or_dash(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "-p", "jsonl"], input=K6_RUN.read_bytes())
    assert result.exit_code == 0, result.stderr
    assert len(records(result.stdout)) == RUN_LINES


def test_gzip_on_stdin_is_detected_by_its_bytes() -> None:
    result = runner.invoke(app, ["-p", "jsonl", "-"], input=K6_RUN_GZ.read_bytes())
    assert result.exit_code == 0, result.stderr
    messages = jsonl(result.stdout)
    assert sum(m["type"] == "point" for m in messages) == RUN_POINTS


def test_gzip_file_with_a_plain_name(tmp_path: Path) -> None:
    renamed = tmp_path / "results.txt"
    shutil.copy(K6_RUN_GZ, renamed)
    result = runner.invoke(app, [str(renamed), "-p", "jsonl"])
    assert result.exit_code == 0, result.stderr
    assert len(records(result.stdout)) == RUN_LINES


def test_a_file_named_like_a_subcommand_works_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(K6_RUN, tmp_path / "plugins")
    monkeypatch.chdir(tmp_path)
    dotted = runner.invoke(app, ["./plugins"])
    assert dotted.exit_code == 0, dotted.stderr
    assert lines_read(dotted.stderr) == RUN_LINES
    explicit = runner.invoke(app, ["run", "plugins"])
    assert explicit.exit_code == 0, explicit.stderr
    assert lines_read(explicit.stderr) == RUN_LINES


def test_no_source_and_stdin_a_terminal_prints_a_hint_and_exits_2(bridge: str) -> None:
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [bridge],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        os.close(slave)
        slave = -1
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
            pytest.fail("the bridge sat waiting on a terminal instead of printing a hint")
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 2
    text = err.decode()
    assert "k6 run --out json=- script.js | k6mcp-bridge" in text
    assert len(text.splitlines()) <= 10  # short
    assert "Traceback" not in text
    assert out == b""


# --- exit codes -----------------------------------------------------------------------------------


def test_clean_run_exits_0() -> None:
    result = runner.invoke(app, [str(K6_RUN)])
    assert result.exit_code == 0
    assert re.search(r"rejected lines\s+0", result.stderr)


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-results.json"
    result = runner.invoke(app, [str(missing)])
    assert "no-such-results.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.exit_code == 2


def test_unknown_plugin_exits_2_and_lists_installed() -> None:
    result = runner.invoke(app, ["-p", "nosuchplugin", str(K6_RUN)])
    assert result.exit_code == 2
    assert "nosuchplugin" in result.stderr
    assert "jsonl" in result.stderr  # the installed ones are listed
    assert "lines read" not in result.stderr  # nothing ran


@pytest.mark.parametrize("option", ["jsonl", "jsonl.path", "path=x", ".path=x", "jsonl.=x"])
def test_bad_o_syntax_exits_2(option: str) -> None:
    result = runner.invoke(app, ["-p", "jsonl", "-o", option, str(K6_RUN)])
    assert result.exit_code == 2
    assert "NAME.KEY=VALUE" in result.stderr
    assert result.stdout == ""


def test_o_for_a_plugin_not_enabled_exits_2_with_a_hint(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["-o", f"jsonl.path={out}", str(K6_RUN)])
    assert result.exit_code == 2
    assert "-p jsonl" in result.stderr
    assert not out.exists()


def test_rejected_lines_exit_65_and_every_good_line_is_delivered() -> None:
    bad = b'{"metric":"m","type":"Point","data":{"time":"2026-11-25T08:00:00Z","value":"fast"}}'
    data = k6_stream(2) + bad + b"\n" + point_line(3) + b"\n"
    result = runner.invoke(app, ["-p", "jsonl", "-"], input=data)
    assert result.exit_code == 65
    assert [m["data"]["value"] for m in jsonl(result.stdout)[1:]] == [1.0, 2.0, 3.0]
    assert "line 4" in result.stderr
    assert "value" in result.stderr
    assert re.search(r"rejected lines\s+1", result.stderr)


# --- dead letter and error limits -----------------------------------------------------------------

BAD_LINES = [
    b'{"metric":"m","type":"Bogus","data":{}}',
    b"\xff\xfe not UTF-8 \x80 at all",
    b'{"metric":"m","type":"Point","data":{"time":"2026-11-25T08:00:00Z","value":"fast"}}',
    b'{"metric":"\xc3\x28","type":"Point","data":{"time":"2026-11-25T08:00:00Z","value":1}}',
    b"a NUL \x00 in the middle",
    b'{"metric":"m","type":"Point","data":{"time":"2026-11-25T08:00:00","value":1}}',
]


def mixed_input() -> tuple[bytes, list[int], int]:
    """Good and bad lines interleaved: the data, the bad line numbers, the good count."""
    good = k6_stream(len(BAD_LINES) + 1).splitlines()
    lines, numbers = [good[0]], []
    for bad, ok in zip(BAD_LINES, good[1:], strict=False):
        lines += [ok, bad]
        numbers.append(len(lines))
    lines += good[len(BAD_LINES) + 1 :]
    return b"".join(line + b"\n" for line in lines), numbers, len(good)


def test_dead_letter_gets_every_rejected_line_byte_for_byte(tmp_path: Path) -> None:
    data, numbers, good = mixed_input()
    dead = tmp_path / "dead.bin"
    result = runner.invoke(app, ["-p", "jsonl", "--dead-letter", str(dead), "-"], input=data)
    assert result.exit_code == 65, result.stderr
    assert dead.read_bytes() == b"".join(line + b"\n" for line in BAD_LINES)
    assert len(jsonl(result.stdout)) == good
    for number in numbers:
        assert f"line {number}" in result.stderr
    assert "Traceback" not in result.stderr


def test_dead_letter_from_the_console_script(tmp_path: Path, bridge: str) -> None:
    data, _, good = mixed_input()
    source, dead, out = tmp_path / "mixed.json", tmp_path / "dead.bin", tmp_path / "out.jsonl"
    source.write_bytes(data)
    proc = subprocess.run(
        [bridge, str(source), "--dead-letter", str(dead), "-p", "jsonl", "-o", f"jsonl.path={out}"],
        capture_output=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 65, proc.stderr.decode(errors="replace")
    assert dead.read_bytes() == b"".join(line + b"\n" for line in BAD_LINES)
    assert len(records(out.read_text())) == good
    assert b"Traceback" not in proc.stderr


def test_max_errors_stops_after_n_rejections(tmp_path: Path) -> None:
    data, _, _ = mixed_input()
    dead = tmp_path / "dead.bin"
    args = ["-p", "jsonl", "--max-errors", "2", "--dead-letter", str(dead), "-"]
    result = runner.invoke(app, args, input=data)
    assert result.exit_code == 65
    assert dead.read_bytes() == BAD_LINES[0] + b"\n" + BAD_LINES[1] + b"\n"
    assert "max-errors" in result.stderr
    assert re.search(r"rejected lines\s+2\b", result.stderr)
    # the good lines before the second rejection all arrived
    values = [m["data"]["value"] for m in jsonl(result.stdout) if m["type"] == "point"]
    assert values[:2] == [1.0, 2.0]
    assert "stopped" in result.stderr


def test_dead_letter_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--dead-letter", str(tmp_path / "no" / "dir" / "dead"), str(K6_RUN)]
    )
    assert result.exit_code == 2
    assert "dead" in result.stderr


# --- console passthrough --------------------------------------------------------------------------


def test_k6_console_output_is_passed_through_to_stderr() -> None:
    result = runner.invoke(app, ["-"], input=K6_STDOUT.read_bytes())
    assert result.exit_code == 0, result.stderr[-2000:]
    assert "TOTAL RESULTS" in result.stderr
    assert "execution: local" in result.stderr
    assert "running (04.0s)" in result.stderr
    assert result.stdout == ""
    assert re.search(r"rejected lines\s+0", result.stderr)
    console = re.search(r"console lines\s+(\d+)", result.stderr)
    assert console
    assert int(console[1]) > 20


def test_no_passthrough_hides_k6_console_output() -> None:
    result = runner.invoke(app, ["--no-passthrough", "-"], input=K6_STDOUT.read_bytes())
    assert result.exit_code == 0
    assert "default ✓ [" not in result.stderr  # k6's own end-of-run line
    assert "execution: local" not in result.stderr
    assert "running (0" not in result.stderr
    assert "lines read" in result.stderr  # the summary plugin still reports


def test_console_script_passes_k6_summary_through(bridge: str) -> None:
    proc = subprocess.run(
        [bridge, "-p", "jsonl"],
        input=K6_STDOUT.read_bytes(),
        capture_output=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    assert b"TOTAL RESULTS" in proc.stderr
    assert "█ THRESHOLDS".encode() in proc.stderr
    points = sum(json.loads(line)["type"] == "point" for line in proc.stdout.splitlines())
    # records k6 tore apart with console text are rejoined, so no point is lost
    assert points >= K6_STDOUT.read_bytes().count(b'"type":"Point"')
    assert b"Traceback" not in proc.stderr


# --- the jsonl plugin through the CLI -------------------------------------------------------------


def test_jsonl_to_stdout_is_valid_json_lines_one_per_record() -> None:
    result = runner.invoke(app, ["-p", "jsonl", str(K6_RUN)])
    assert result.exit_code == 0, result.stderr
    messages = jsonl(result.stdout)
    assert sum(m["type"] == "point" for m in messages) == RUN_POINTS
    assert sum(m["type"] == "metric" for m in messages) == RUN_METRICS
    for line in result.stdout.splitlines():
        MESSAGE_ADAPTER.validate_json(line)  # valid MCP messages, read back


def test_jsonl_path_option_writes_to_the_file(tmp_path: Path) -> None:
    out = tmp_path / "messages.jsonl"
    result = runner.invoke(app, ["-p", "jsonl", "-o", f"jsonl.path={out}", str(K6_RUN_GZ)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    messages = jsonl(out.read_text())
    assert sum(m["type"] == "point" for m in messages) == RUN_POINTS


def test_console_script_jsonl_count_matches_points(bridge: str) -> None:
    proc = subprocess.run(
        [bridge, str(K6_RUN), "-p", "jsonl"],
        capture_output=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert sum(json.loads(x)["type"] == "point" for x in proc.stdout.splitlines()) == RUN_POINTS


# --- other commands -------------------------------------------------------------------------------


def test_schema_is_json() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert isinstance(schema, dict)
    text = json.dumps(schema)
    assert "point" in text
    assert "metric" in text


def test_plugins_lists_the_builtins() -> None:
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line}
    assert rows["summary"][1:4] == ["yes", "k6mcp-bridge", __version__]
    assert rows["jsonl"][1:4] == ["no", "k6mcp-bridge", __version__]


def test_plugins_json_lists_the_builtins() -> None:
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name, enabled in (("summary", True), ("jsonl", False)):
        row = rows[name]
        assert row["distribution"] == "k6mcp-bridge"
        assert row["version"] == __version__
        assert row["enabled"] is enabled
        assert row["error"] is None
        assert row["description"]


def test_plugins_json_marks_p_enabled_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("K6MCP_BRIDGE_PLUGINS", "jsonl")
    rows = {r["name"]: r for r in json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)}
    assert rows["jsonl"]["enabled"] is True
    assert rows["summary"]["enabled"] is False


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_console_script_and_module_report_the_version(bridge: str) -> None:
    for command in ([bridge, "--version"], [sys.executable, "-m", "k6mcp_bridge", "--version"]):
        proc = subprocess.run(command, capture_output=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        assert __version__ in proc.stdout.decode()


def test_help_mentions_the_bare_form() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.stdout
    assert "plugins" in result.stdout
    assert "schema" in result.stdout


# --- live pipes -----------------------------------------------------------------------------------


class LineReader:
    """Reads lines from a pipe with a deadline, without blocking past it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def readline(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.eof:
                return None
            if select.select([self.fd], [], [], left)[0]:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    self.eof = True
                self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line


def start_bridge(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [bridge_exe(), "-p", "jsonl", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=clean_env(),
        )
    return proc, errors


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None and not stream.closed:
            stream.close()


def test_live_pipe_delivers_each_line_promptly(tmp_path: Path) -> None:
    lines = k6_stream(6).splitlines(keepends=True)
    proc, _ = start_bridge(tmp_path)
    assert proc.stdin is not None
    assert proc.stdout is not None
    reader = LineReader(proc.stdout.fileno())
    latencies = []
    try:
        for index, line in enumerate(lines):
            written = time.monotonic()
            proc.stdin.write(line)
            proc.stdin.flush()
            # the pipe stays open: the message must come out before the writer is done
            got = reader.readline(timeout=15 if index == 0 else 3)
            while got is not None and json.loads(got)["type"] == "window":  # a closed bucket
                got = reader.readline(timeout=3)
            assert got is not None, f"line {index + 1} was not delivered while the pipe was open"
            latencies.append(time.monotonic() - written)
            message = json.loads(got)
            if index:
                assert message["data"]["value"] == float(index)
            time.sleep(max(0.0, 0.3 - (time.monotonic() - written)))
        proc.stdin.close()
        assert proc.wait(timeout=15) == 0
        rest = []
        while (got := reader.readline(timeout=1)) is not None:
            rest.append(json.loads(got)["type"])
        assert "metrics" in rest  # the final snapshot...
        assert not {"metric", "point"} & set(rest)  # ...and no record held back
    finally:
        stop(proc)
    assert max(latencies[1:]) < 2.0, latencies


def test_first_sigint_on_a_pipe_drains_the_writer_and_exits_130(tmp_path: Path) -> None:
    lines = k6_stream(6).splitlines(keepends=True)
    proc, errors = start_bridge(tmp_path)
    assert proc.stdin is not None
    assert proc.stdout is not None
    reader = LineReader(proc.stdout.fileno())
    received = []
    try:
        proc.stdin.write(b"".join(lines[:3]))
        proc.stdin.flush()
        for _ in range(3):  # the bridge is running and has its Ctrl-C handler installed
            got = reader.readline(timeout=15)
            assert got is not None
            received.append(json.loads(got))
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 5
        while b"interrupted" not in errors.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"interrupted" in errors.read_bytes(), "the bridge did not notice the SIGINT"
        assert proc.poll() is None, "the bridge stopped before the writer closed the pipe"
        for line in lines[3:]:  # k6 writes its last samples after the Ctrl-C
            proc.stdin.write(line)
            proc.stdin.flush()
            time.sleep(0.1)
        proc.stdin.close()
        returncode = proc.wait(timeout=15)
        while (got := reader.readline(timeout=2)) is not None:
            received.append(json.loads(got))
    finally:
        stop(proc)
    assert returncode == 130, errors.read_text(errors="replace")
    points = [m["data"]["value"] for m in received if m["type"] == "point"]
    assert points == [float(i) for i in range(1, 7)]
    assert b"Traceback" not in errors.read_bytes()
    assert b"summary (interrupted" in errors.read_bytes()


def test_wait_pid_must_be_a_real_process_id(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-f", str(tmp_path / "r.json"), "--wait-pid", "0"])
    assert result.exit_code == 2


def test_following_a_named_pipe_is_a_clear_error(tmp_path: Path) -> None:
    fifo = tmp_path / "k6.pipe"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["-f", str(fifo)])
    assert result.exit_code == 2
    assert "not a regular file" in result.stderr


def test_what_the_summary_leaves_out_is_said() -> None:
    lines = K6_RUN.read_bytes().splitlines(keepends=True)
    no_definition = b"".join(
        line for line in lines if b'"Metric","data":{"name":"items_seen"' not in line
    )
    result = runner.invoke(app, ["--threshold", "itms_seen:count>0", "-"], input=no_definition)
    assert "points of 'items_seen' are not in the summary" in result.stderr
    assert "thresholds on 'itms_seen': no such metric" in result.stderr


def test_a_script_k6_inspect_rejects_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    script = tmp_path / "broken.js"
    script.write_text("export const options = { vus: 1,, };\nexport default function () {}\n")
    k6_dir = os.path.dirname(k6lab.k6_binary())
    done = subprocess.run(
        [bridge_exe(), str(K6_RUN), "--script", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PATH=os.pathsep.join([k6_dir, os.environ.get("PATH", "")])),
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"k6mcp-bridge: error: --script {script}: k6 inspect failed: "
        f"GoError: file://{script}: Line 1:35 Unexpected token ,"
    ]
