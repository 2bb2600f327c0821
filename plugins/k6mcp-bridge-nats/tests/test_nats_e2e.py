"""A real nats-server with JetStream and real k6: three execution segments, each replayed into a
bridge with ``-p nats``, merged by ``k6mcp-bridge merge --nats``; the merger killed with -9 and
restarted; the broker stopped mid-run; an instance missing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

import k6lab  # noqa: E402

SCRIPT = ROOT / "tests" / "k6_scripts" / "segments.js"
PACED = Path(__file__).parent / "k6_scripts" / "paced.js"

pytestmark = pytest.mark.skipif(
    shutil.which("nats-server") is None, reason="needs nats-server (Debian package nats-server)"
)


def bridge_exe() -> str:
    beside = Path(sys.executable).parent / "k6mcp-bridge"
    return str(beside) if beside.exists() else "k6mcp-bridge"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("K6MCP_")}


def bridge(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [bridge_exe(), *args], capture_output=True, text=True, timeout=timeout, env=env()
    )


class NatsServer:
    """``nats-server -js`` on a random loopback port, with a store directory; stop and start
    again on the same port and store."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        store, ports = self.directory / "store", self.directory / "ports"
        ports.mkdir(parents=True, exist_ok=True)
        for old in ports.glob("*.ports"):
            old.unlink()
        port = str(self.port) if self.port else "-1"
        self.process = subprocess.Popen(
            [
                "nats-server",
                "-js",
                "-sd",
                str(store),
                "-a",
                "127.0.0.1",
                "-p",
                port,
                "--ports_file_dir",
                str(ports),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "server.log", "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            files = list(ports.glob("*.ports"))
            if files and files[0].read_text().strip():
                url = json.loads(files[0].read_text())["nats"][0]
                self.port = int(url.rsplit(":", 1)[1])
                return
            assert self.process.poll() is None, (self.directory / "server.log").read_text()
            time.sleep(0.05)
        raise AssertionError("nats-server wrote no ports file")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    nats = NatsServer(tmp_path_factory.mktemp("nats"))
    nats.start()
    try:
        yield nats
    finally:
        nats.stop()


def k6(base_url: str, out: Path, *args: str, script: Path = SCRIPT) -> int:
    return k6lab.run_k6_to_file(base_url, script, out, *args)


def publish(server: NatsServer, segment: Path, run: str, instance: str, *extra: str) -> str:
    """Replay ``segment`` into a bridge with ``-p nats``; its stderr."""
    done = bridge(
        str(segment),
        "--no-passthrough",
        "-p",
        "nats",
        "-o",
        f"nats.url={server.url}",
        "-o",
        f"nats.run={run}",
        "-o",
        f"nats.instance={instance}",
        *extra,
    )
    assert done.returncode == 99, done.stderr[-3000:]  # its own `done: count>=90` fails
    assert "final)" in done.stderr, done.stderr[-3000:]
    return done.stderr


def merge_nats(server: NatsServer, run: str, export: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            bridge_exe(),
            "merge",
            "--nats",
            server.url,
            "--run",
            run,
            "--script",
            str(SCRIPT),
            "--summary-export",
            str(export),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


@pytest.fixture(scope="module")
def runs(server: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("nats-runs")
    with k6lab.serve() as base_url:
        whole_code, codes = k6lab.run_whole_and_segments(base_url, SCRIPT, tmp)
        assert codes == [99, 99, 99]
        paced = k6(  # the last segment again, over about 6 s
            base_url, tmp / "paced.json", *k6lab.segment_args(k6lab.SEGMENTS[2]), script=PACED
        )
        assert paced == 99
    segments = [tmp / f"segment{index}.json" for index in range(3)]
    states = []
    for index, segment in enumerate(segments):
        state = tmp / f"state{index}.json"
        publish(server, segment, "ref.run", f"runner.{index}", "--state-export", str(state))
        states.append(str(state))
    merged = merge_nats(server, "ref.run", tmp / "nats.json", "--instances", "3", "--timeout", "30")
    out, err = merged.communicate(timeout=60)
    files = bridge(
        "merge", *states, "--script", str(SCRIPT), "--summary-export", str(tmp / "f.json")
    )
    return {
        "tmp": tmp,
        "segments": segments,
        "states": states,
        "whole_code": whole_code,
        "k6": json.loads((tmp / "k6.json").read_text()),
        "nats_code": merged.returncode,
        "nats_out": out,
        "nats_err": err,
        "nats": json.loads((tmp / "nats.json").read_text()),
        "files_code": files.returncode,
        "files": json.loads((tmp / "f.json").read_text()),
    }


def verdicts(export: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {
        (name, source): failed
        for name, metric in export["metrics"].items()
        for source, failed in (metric.get("thresholds") or {}).items()
    }


def assert_same_export(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """Equal numbers (a counter's rate divides by the span: equal to float rounding)."""
    assert set(ours["metrics"]) == set(theirs["metrics"])
    for name, metric in theirs["metrics"].items():
        for key, value in metric.items():
            if isinstance(value, float):
                assert ours["metrics"][name][key] == pytest.approx(value, rel=1e-12), (name, key)
            else:
                assert ours["metrics"][name][key] == value, (name, key)
    assert ours["root_group"] == theirs["root_group"]


def test_merge_nats_equals_merge_files_and_the_whole_run(runs: dict[str, Any]) -> None:
    assert runs["whole_code"] == 99
    assert runs["nats_code"] == runs["files_code"] == 99, runs["nats_err"][-3000:]
    assert "merged 3 instances: runner.0, runner.1, runner.2" in runs["nats_err"]
    assert_same_export(runs["nats"], runs["files"])
    assert verdicts(runs["nats"]) == verdicts(runs["k6"])
    assert verdicts(runs["nats"])[("done", "count>=90")] is False  # passes on the whole only
    for name in ("done", "work", "odd", "iterations", "http_reqs", "checks"):
        for key, value in runs["k6"]["metrics"][name].items():
            if key in ("thresholds", "rate"):
                continue
            rel = 0.01 if key in ("med", "p(90)", "p(95)") else 1e-12
            assert runs["nats"]["metrics"][name][key] == pytest.approx(value, rel=rel), (name, key)
    assert "✓ 'count>=90'" in runs["nats_out"]


def test_merge_nats_again_gets_the_same_states(server: NatsServer, runs: dict[str, Any]) -> None:
    again = runs["tmp"] / "again.json"
    done = merge_nats(server, "ref.run", again, "--instances", "3", "--timeout", "30")
    _, err = done.communicate(timeout=60)
    assert done.returncode == 99, err
    assert_same_export(json.loads(again.read_text()), runs["nats"])


def test_a_merger_killed_with_9_and_restarted_reaches_the_same_result(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "kill.run", "runner.0")
    publish(server, segments[1], "kill.run", "runner.1")
    export = tmp / "killed.json"
    first = merge_nats(server, "kill.run", export, "--instances", "3", "--timeout", "60")
    time.sleep(3)  # it has taken (and holds) the two states
    assert first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    publish(server, segments[2], "kill.run", "runner.2")
    second = merge_nats(server, "kill.run", export, "--instances", "3", "--timeout", "60")
    _, err = second.communicate(timeout=90)
    assert second.returncode == 99, err[-3000:]
    assert "merged 3 instances" in err
    assert_same_export(json.loads(export.read_text()), runs["nats"])


def slow_feed(source: Path, seconds: float) -> str:
    """A Python one-liner that writes ``source`` to stdout over about ``seconds``."""
    return (
        "import sys,time\n"
        f"lines=open({str(source)!r},'rb').readlines()\n"
        f"pause={seconds}/max(len(lines),1)\n"
        "for n,line in enumerate(lines):\n"
        "    sys.stdout.buffer.write(line)\n"
        "    if n%20==0: sys.stdout.buffer.flush(); time.sleep(pause*20)\n"
    )


def points(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith('{"type":"point"'))


def test_the_broker_stopped_mid_run_costs_the_other_plugins_nothing(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "outage.run", "runner.0")
    publish(server, segments[1], "outage.run", "runner.1")
    paced = tmp / "paced.json"  # the third segment over about 6 s of stream time
    reference = tmp / "reference.jsonl"
    alone = bridge(str(paced), "--no-passthrough", "-p", "jsonl", "-o", f"jsonl.path={reference}")
    assert alone.returncode == 99
    jsonl, state = tmp / "outage.jsonl", tmp / "outage-state.json"
    feeder = subprocess.Popen([sys.executable, "-c", slow_feed(paced, 8.0)], stdout=subprocess.PIPE)
    started = time.monotonic()
    options = {
        "jsonl.path": jsonl,
        "nats.url": server.url,
        "nats.run": "outage.run",
        "nats.instance": "runner.2",
        "nats.interval": "0.3",
        "nats.finish_timeout": "20",
    }
    runner = subprocess.Popen(
        [bridge_exe(), "-", "--no-passthrough", "-p", "nats", "-p", "jsonl"]
        + [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
        + ["--state-export", str(state)],
        stdin=feeder.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert feeder.stdout is not None
    feeder.stdout.close()
    time.sleep(2.0)
    server.stop()
    down_at = points(jsonl)
    time.sleep(4.0)
    while_down = points(jsonl) - down_at
    server.start()
    _, err = runner.communicate(timeout=60)
    feeder.wait(10)
    elapsed = time.monotonic() - started
    assert runner.returncode == 99, err[-3000:]
    assert while_down > 0, "jsonl got nothing while the broker was down"
    assert points(jsonl) == points(reference)
    assert elapsed < 20, elapsed
    assert "nats: disconnected from" in err, err
    assert "final); " in err and "disconnections" in err, err  # and it says so at the end
    export = tmp / "outage.json"
    merged = merge_nats(server, "outage.run", export, "--instances", "3", "--timeout", "30")
    _, merged_err = merged.communicate(timeout=60)
    assert merged.returncode == 99, merged_err[-3000:]
    files = tmp / "outage-files.json"
    from_files = bridge(
        "merge",
        *runs["states"][:2],
        str(state),
        "--script",
        str(SCRIPT),
        "--summary-export",
        str(files),
    )
    assert from_files.returncode == 99, from_files.stderr
    ours = json.loads(export.read_text())
    assert_same_export(ours, json.loads(files.read_text()))
    assert verdicts(ours) == verdicts(runs["k6"])
    for name in ("done", "work", "odd", "iterations", "checks"):
        for key, value in runs["nats"]["metrics"][name].items():
            if key in ("count", "min", "max", "passes", "fails", "avg"):
                assert ours["metrics"][name][key] == value, (name, key)


def test_a_missing_instance_is_named_on_timeout(server: NatsServer, runs: dict[str, Any]) -> None:
    done = bridge(
        "merge", "--nats", server.url, "--run", "ref.run", "--instances", "4", "--timeout", "2"
    )
    assert done.returncode == 75, done.stderr
    assert "1 of 4 instances have not sent a final state (1 never sent any)" in done.stderr
    assert "final: runner.0, runner.1, runner.2" in done.stderr
    assert "Traceback" not in done.stderr
    asyncio.run(publish_unfinished(server.url))
    done = bridge("merge", "--nats", server.url, "--run", "open.run", "--timeout", "2")
    assert done.returncode == 75, done.stderr
    assert "missing the final state of slow.runner" in done.stderr


async def publish_unfinished(url: str) -> None:
    import nats

    from k6mcp_bridge.aggregate.state import RunState
    from k6mcp_bridge_nats.publisher import ensure_stream
    from k6mcp_bridge_nats.subjects import subject

    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_stream(js)
    state = RunState(
        instance="slow.runner",
        seq=1,
        final=False,
        first_time=None,
        last_time=None,
        metrics=[],
        series=[],
    )
    await js.publish(subject("open.run", "slow.runner"), state.model_dump_json().encode())
    await client.close()


def test_no_server_is_one_clear_error() -> None:
    done = bridge("merge", "--nats", "nats://127.0.0.1:1", "--run", "x", "--timeout", "1")
    assert done.returncode == 2, done.stderr
    assert "cannot connect to NATS at nats://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr
