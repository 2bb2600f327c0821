"""The NATS tests' parts: a real ``nats-server`` with JetStream, the bridge as a process (a
publisher, a merger), and the comparisons of merged summary exports and of stored time buckets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from k6mcp_bridge.aggregate.buckets import Bucket

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / "tests") not in sys.path:  # the core's test parts (k6lab, reportlab, storelab)
    sys.path.insert(0, str(ROOT / "tests"))
SCRIPT = ROOT / "tests" / "k6_scripts" / "segments.js"
NEEDS_SERVER = pytest.mark.skipif(
    shutil.which("nats-server") is None, reason="needs nats-server (Debian package nats-server)"
)
"""``pytestmark`` of the modules that start one."""


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


@contextmanager
def serving(directory: Path) -> Iterator[NatsServer]:
    """A started :class:`NatsServer` in ``directory``, stopped at the end."""
    nats = NatsServer(directory)
    nats.start()
    try:
        yield nats
    finally:
        nats.stop()


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


def merge_nats(
    server: NatsServer, run: str, export: Path, *args: str, script: Path = SCRIPT
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            bridge_exe(),
            "merge",
            "--nats",
            server.url,
            "--run",
            run,
            "--script",
            str(script),
            "--summary-export",
            str(export),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def start_runner(
    server: NatsServer,
    base_url: str,
    script: Path,
    run: str,
    index: int,
    *k6_args: str,
    address: str = "",
) -> list[subprocess.Popen[bytes]]:
    """Real k6 running segment ``index`` of ``script`` (``k6lab.SEGMENTS``) with ``--out json=-``
    piped into a bridge with ``-p nats`` (instance ``runner.INDEX``, interval 0.3 s): ``[k6,
    bridge]``, both started; the bridge's stderr is a pipe."""
    import k6lab

    command = [*k6lab.k6_run_args(address), "--quiet", "--out", "json=-", *k6_args]
    command += [*k6lab.segment_args(k6lab.SEGMENTS[index]), str(script)]
    k6 = subprocess.Popen(
        command, env=k6lab.k6_env(base_url), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    options = [f"url={server.url}", f"run={run}", f"instance=runner.{index}", "interval=0.3"]
    runner = [bridge_exe(), "-", "--no-passthrough", "-p", "nats"]
    runner += [f"-onats.{option}" for option in options]
    publisher = subprocess.Popen(runner, stdin=k6.stdout, stderr=subprocess.PIPE, env=env())
    assert k6.stdout is not None
    k6.stdout.close()
    return [k6, publisher]


def kill_left(processes: Sequence[subprocess.Popen[Any]]) -> None:
    """Kill (and reap) those of ``processes`` still running: a test that failed half-way."""
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def store_whole(segments: Sequence[Path], store: Path) -> None:
    """One bridge over every sample of ``segments`` (their files joined) with ``-p store``: the
    run store of the whole test as one stream, to hold a merged run's buckets to."""
    joined = store.with_suffix(".joined.json")
    joined.write_bytes(b"".join(segment.read_bytes() for segment in segments))
    done = bridge(str(joined), "--no-passthrough", "-p", "store", "-o", f"store.path={store}")
    assert done.returncode == 99, done.stderr[-3000:]


BucketKey = tuple[str, str, int]
"""A metric, its tags (JSON) and a bucket start."""
Stored = dict[tuple[str, str, int, int], Bucket]
"""(metric, tags as JSON, start, width) → the bucket."""


def stored_buckets(store: Path, run: str = "latest") -> Stored:
    """Every bucket of a stored run (read with the store's query API): (metric, tags, start,
    width) → bucket."""
    from k6mcp_bridge.store.query import Store

    with Store(store) as opened:
        found = opened.run(run)
        return {
            (metric, json.dumps(tags, sort_keys=True), start, width): bucket
            for metric, _, tags, start, width, bucket in opened.buckets(found.id)
        }


def at_width(buckets: Stored, width: int) -> dict[BucketKey, Bucket]:
    """``buckets`` merged into buckets ``width`` wide (a width of the ladder)."""
    merged: dict[BucketKey, Bucket] = {}
    for (metric, tags, start, _), bucket in buckets.items():
        key = (metric, tags, start - start % width)
        into = merged.setdefault(key, Bucket(bucket.type))
        into.merge(bucket)
    return merged


def assert_same_buckets(ours: Path, theirs: Path, run: str = "latest") -> int:
    """Run ``run`` of the store ``ours`` has the time buckets of the newest run of ``theirs``,
    per series and bucket start at their common width: counts, min, max and rate passes
    exactly, sums to float rounding (added in another order), trend percentiles within the
    sketch's 1% (its bins add up exactly, so they are equal). A gauge's ``last`` is left out:
    the latest sample of a bucket is by time across runners, by stream order in one stream.
    The number of buckets compared."""
    mine, whole = stored_buckets(ours, run), stored_buckets(theirs)
    width = max(key[3] for key in [*mine, *whole])
    mine_at, whole_at = at_width(mine, width), at_width(whole, width)
    assert sorted(mine_at) == sorted(whole_at)
    for key, bucket in whole_at.items():
        got = mine_at[key]
        exact = (got.count, got.min, got.max, got.nonzero)
        assert exact == (bucket.count, bucket.min, bucket.max, bucket.nonzero), key
        assert got.sum == pytest.approx(bucket.sum, rel=1e-12), key
        if bucket.type == "trend":
            for p in (0.5, 0.9, 0.95, 0.99):
                assert got.percentile(p) == pytest.approx(bucket.percentile(p), rel=0.01), key
    return len(whole_at)


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


def assert_like_the_whole_run(merged: dict[str, Any], whole: dict[str, Any]) -> None:
    """The deterministic metrics of ``merged`` (a summary export) equal k6's export of the whole
    run: counts, sums, min and max exactly, percentiles within 1%; every verdict the same."""
    assert verdicts(merged) == verdicts(whole)
    for name in ("done", "work", "odd", "iterations", "http_reqs", "checks"):
        for key, value in whole["metrics"][name].items():
            if key in ("thresholds", "rate"):
                continue
            rel = 0.01 if key in ("med", "p(90)", "p(95)") else 1e-12
            assert merged["metrics"][name][key] == pytest.approx(value, rel=rel), (name, key)
