"""``k6mcp-bridge exec -- k6 run …`` with real k6 v1.1.0 against the loopback server.

Every k6 run is bounded (a few seconds). ``TMPDIR`` points into the test's folder, so that the
private pipe's folder can be seen to be removed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

import k6lab
from conftest import ROOT, bridge_exe, clean_env, records
from k6mcp_bridge.decode.csv_rows import CsvDecoder
from k6mcp_bridge.decode.json_lines import Rejection
from k6mcp_bridge.delivery.k6_process import K6Command, K6Process, exit_status, plan
from k6mcp_bridge.errors import ConfigError, ExitStatus
from k6mcp_bridge.messages import MESSAGE_ADAPTER, AnyMessage
from test_csv_e2e import CUSTOM_TYPES, decode, point_keys

SAMPLE_SCRIPT = ROOT / "sample_outputs" / "script.js"
TIMEOUT_S = 60

PASSING = """import http from 'k6/http';
export const options = {
  vus: 2, iterations: 30, thresholds: { http_req_duration: ['p(95)<5000'] },
};
export default function () { http.get(__ENV.BASE_URL + '/'); }
"""
FAILING = PASSING.replace("p(95)<5000", "max<0")
LONG = """import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 1, duration: '20s', THRESHOLDS };
export default function () { http.get(__ENV.BASE_URL + '/slow'); sleep(0.05); }
"""
ABORTING = LONG.replace(
    "THRESHOLDS", "thresholds: { http_req_duration: [{ threshold: 'max<0', abortOnFail: true }] }"
)
SYNTAX_ERROR = "export default function ( {\n"


def script(tmp_path: Path, text: str, name: str = "script.js") -> Path:
    path = tmp_path / name
    path.write_text(text.replace(", THRESHOLDS", ""), encoding="utf-8")
    return path


def k6_command(*args: str) -> list[str]:
    return ["--", *k6lab.k6_run_args(), "-q", *args]


def env_for(base_url: str, tmp: Path) -> dict[str, str]:
    tmp.mkdir(exist_ok=True)
    return clean_env(**{**k6lab.k6_env(base_url), "TMPDIR": str(tmp)})


def exec_bridge(
    tmp_path: Path, bridge_args: list[str], k6_args: list[str]
) -> subprocess.CompletedProcess[bytes]:
    private = tmp_path / "tmp"
    with k6lab.serve() as base_url:
        proc = subprocess.run(
            [bridge_exe(), "exec", *bridge_args, *k6_command(*k6_args)],
            cwd=tmp_path,
            env=env_for(base_url, private),
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    assert list(private.iterdir()) == [], "the private pipe's folder was left behind"
    return proc


def messages(path: Path) -> list[AnyMessage]:
    return [MESSAGE_ADAPTER.validate_json(line) for line in path.read_bytes().splitlines()]


def test_every_point_arrives_on_the_private_pipe_and_k6s_console_is_untouched(
    tmp_path: Path,
) -> None:
    out, own = tmp_path / "m.jsonl", tmp_path / "own.csv"
    proc = exec_bridge(
        tmp_path,
        ["-p", "jsonl", "-o", f"jsonl.path={out}"],
        ["--out", f"csv={own}", str(SAMPLE_SCRIPT)],
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    # k6's end-of-test summary is on its own stdout, which is the bridge's, with no JSON in it
    stdout = proc.stdout.decode()
    assert "http_req_duration" in stdout and "THRESHOLDS" in stdout
    assert not any(line.startswith("{") for line in stdout.splitlines())
    # the same run's own CSV output holds the same points (at CSV's precision)
    problems: list[Rejection | bytes] = []
    from_csv = decode(own, CsvDecoder(problems.append, problems.append, CUSTOM_TYPES))
    assert problems == []
    second = timedelta(seconds=1)
    got = point_keys(messages(out), second, as_csv=True)
    expected = point_keys(from_csv, second)
    assert sum(got.values()) == sum(expected.values()) > 100
    assert got == expected
    # the script's thresholds were read with k6 inspect, as --script does
    assert "p(95)<1000" in proc.stderr.decode()


def test_an_out_json_file_in_the_command_is_followed(tmp_path: Path) -> None:
    out, own = tmp_path / "m.jsonl", tmp_path / "own.json"
    own.write_text('{"stale": "a previous run"}\n', encoding="utf-8")
    proc = exec_bridge(
        tmp_path,
        ["-p", "jsonl", "-o", f"jsonl.path={out}"],
        ["--out", f"json={own}", str(script(tmp_path, PASSING))],
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    got = records(out.read_text(encoding="utf-8"))
    written = [json.loads(line) for line in own.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(written) > 30
    points = [r for r in got if r["type"] == "point"]
    k6_points = [r for r in written if r["type"] == "Point"]
    assert [p["data"]["value"] for p in points] == [p["data"]["value"] for p in k6_points]
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_failing_threshold_exits_99_as_k6_does(tmp_path: Path) -> None:
    proc = exec_bridge(tmp_path, [], [str(script(tmp_path, FAILING))])
    assert proc.returncode == 99, proc.stderr.decode()[-3000:]
    assert "thresholds crossed: http_req_duration" in proc.stderr.decode()


def test_abort_on_fail_stops_k6_when_k6_does_not_judge_thresholds(tmp_path: Path) -> None:
    """With --no-thresholds k6 would run its 20 s: the bridge (the script's thresholds through
    k6 inspect) sends it a SIGINT, as k6 does itself, and exits 99 as k6 would."""
    started = time.monotonic()
    proc = exec_bridge(tmp_path, [], ["--no-thresholds", str(script(tmp_path, ABORTING))])
    elapsed = time.monotonic() - started
    stderr = proc.stderr.decode()
    assert proc.returncode == 99, stderr[-3000:]
    assert "abortOnFail: sending SIGINT to k6" in stderr
    assert elapsed < 15, elapsed
    assert "Traceback" not in stderr


def test_abort_on_fail_that_k6_acts_on_itself_exits_99(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = exec_bridge(tmp_path, [], [str(script(tmp_path, ABORTING))])
    assert proc.returncode == 99, proc.stderr.decode()[-3000:]
    assert time.monotonic() - started < 15


def test_a_syntax_error_gives_k6s_message_and_its_exit_code(tmp_path: Path) -> None:
    proc = exec_bridge(tmp_path, [], [str(script(tmp_path, SYNTAX_ERROR))])
    stderr = proc.stderr.decode()
    assert proc.returncode == 107, stderr  # k6's ScriptException
    assert "Unexpected end of input" in stderr  # k6's own message, on the terminal
    assert "k6 exited with status 107 before writing any sample" in stderr
    assert "Traceback" not in stderr


def test_a_bad_k6_flag_gives_k6s_message_and_its_exit_code(tmp_path: Path) -> None:
    proc = exec_bridge(tmp_path, [], ["--no-such-flag", str(script(tmp_path, PASSING))])
    stderr = proc.stderr.decode()
    assert proc.returncode == 255, stderr
    assert "unknown flag: --no-such-flag" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["k6-not-installed-here", "run", "x.js"], "'k6-not-installed-here' not found"),
        (["k6", "inspect", "x.js"], "exec runs `k6 run …`"),
        (["k6", "run"], "needs one script (no script)"),
        (["k6", "run", "--out", "json=-", "x.js"], "would mix k6's JSON with its console"),
    ],
)
def test_commands_exec_cannot_run_are_one_line_and_exit_2(
    tmp_path: Path, command: list[str], message: str
) -> None:
    proc = subprocess.run(
        [bridge_exe(), "exec", "--", *command],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    stderr = proc.stderr.decode()
    assert proc.returncode == 2, stderr
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_reaches_k6_once_and_both_end(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "m.jsonl"
    private = tmp_path / "tmp"
    with k6lab.serve() as base_url:
        bridge = subprocess.Popen(
            [
                *(bridge_exe(), "exec", "-p", "jsonl", "-o", f"jsonl.path={out}"),
                *k6_command(str(script(tmp_path, LONG))),
            ],
            cwd=tmp_path,
            env=env_for(base_url, private),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a group of its own, as a terminal's foreground job
        )
        try:
            k6_pid = _child(bridge.pid)
            deadline = time.monotonic() + 20
            while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
                time.sleep(0.1)
            os.killpg(bridge.pid, signum)  # what the terminal does on Ctrl-C
            started = time.monotonic()
            stdout, stderr = bridge.communicate(timeout=TIMEOUT_S)
        finally:
            if bridge.poll() is None:
                bridge.kill()
                bridge.wait()
    assert bridge.returncode == status, stderr.decode()[-3000:]
    assert time.monotonic() - started < 10
    assert not Path(f"/proc/{k6_pid}").exists() or _zombie(k6_pid)
    # k6 stopped gracefully (one signal, not two): its summary, and the bridge's whole run
    assert b"http_req_duration" in stdout
    assert b"Traceback" not in stderr
    assert len(records(out.read_text(encoding="utf-8"))) > 10
    assert list(private.iterdir()) == []


def _child(pid: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children")
        found = children.read_text().split() if children.exists() else []
        if found:
            return int(found[0])
        time.sleep(0.05)
    pytest.fail("the bridge started no k6")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


# --- the k6 command line, without k6 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "script_path", "out_file"),
    [
        (["run", "s.js"], "s.js", None),
        (["run", "-u", "2", "--duration=3s", "-e", "A=b", "s.js"], "s.js", None),
        (["run", "-u2", "-o", "json=r.json", "--out", "csv=r.csv", "s.js"], "s.js", "r.json"),
        (["-c", "k6.json", "run", "--out=json=x.json", "s.js", "--vus", "3"], "s.js", "x.json"),
        (["run", "--no-thresholds", "--http-debug=full", "--", "s.js"], "s.js", None),
        (["run", "-"], None, None),
        (["run", "https://example.com/s.js"], None, None),
    ],
)
def test_plan_finds_the_script_and_a_json_output(
    args: list[str], script_path: str | None, out_file: str | None
) -> None:
    command = plan(["k6", *args])
    assert command.script == (None if script_path is None else Path(script_path))
    assert command.out_file == (None if out_file is None else Path(out_file))
    assert command.argv == ("k6", *args)


def test_plan_refuses_two_scripts_and_two_json_outputs() -> None:
    with pytest.raises(ConfigError, match="more than one"):
        plan(["k6", "run", "a.js", "b.js"])
    with pytest.raises(ConfigError, match="more than one --out json"):
        plan(["k6", "run", "-o", "json=a", "-o", "json=b", "a.js"])


@pytest.mark.parametrize(
    ("bridge", "k6", "aborted", "expected"),
    [
        (ExitStatus.OK, 0, False, 0),
        (ExitStatus.THRESHOLD_FAILED, 99, False, 99),
        (ExitStatus.THRESHOLD_FAILED, 0, False, 99),  # the bridge's own --threshold
        (ExitStatus.REJECTED_RECORDS, 107, False, 107),  # k6's script error
        (ExitStatus.OK, 105, False, 105),
        (ExitStatus.THRESHOLD_FAILED, 105, True, 99),  # stopped by the bridge's abortOnFail
        (ExitStatus.PLUGIN_FAILED, 99, False, 70),
        (ExitStatus.INTERRUPTED, 105, False, 130),
        (ExitStatus.TERMINATED, 105, False, 143),
    ],
)
def test_exit_precedence(bridge: ExitStatus, k6: int, aborted: bool, expected: int) -> None:
    assert exit_status(bridge, k6, aborted) == expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
def test_the_private_pipe_is_widened() -> None:
    """k6 writes into a 1 MiB pipe, as into the bridge's stdin (``source.PIPE_SIZE``)."""
    import fcntl

    from k6mcp_bridge.input.source import PIPE_SIZE

    wanted = min(PIPE_SIZE, int(Path("/proc/sys/fs/pipe-max-size").read_text()))
    true = shutil.which("true")
    assert true is not None
    with K6Process(K6Command(("k6", "run", "x.js"), true, None, None)) as k6:
        fd = k6.source().fd
        assert fd is not None
        assert fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) == wanted
