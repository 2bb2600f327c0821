"""Follow latency: from a line appended to a results file to a plugin receiving it.

Usage:

    python benchmarks/follow_latency.py [--lines 10000] [--rate 1000] [--mode inotify poll]

For each mode it starts the installed ``k6mcp-bridge -f FILE -p jsonl`` (the ``jsonl`` plugin
writes every message to the bridge's stdout, flushed per batch), appends ``--lines`` Point lines
at a steady ``--rate`` per second, one ``write(2)`` each, and reads the bridge's stdout as it
arrives. Each point's value is its sequence number; the append time of every sequence number is
kept in this process, so latency = time read here - time appended here (one clock, no
cross-process skew). The bridge stops with ``--idle-timeout``. Prints p50, p90, p99 and max.
Target (issue 3): p99 ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench_tools import bridge_command

METRIC = (
    b'{"type":"Metric","data":{"name":"m","type":"counter","contains":"default",'
    b'"thresholds":[],"submetrics":null},"metric":"m"}\n'
)
TIMEOUT = 120.0


def point(seq: int) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return (
        b'{"metric":"m","type":"Point","data":{"time":"%s.123456789Z","value":%d,'
        b'"tags":{"group":"","scenario":"default"}}}\n' % (stamp.encode(), seq)
    )


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, round(p / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def measure(mode: str, lines: int, rate: float, directory: Path) -> list[float]:
    path = directory / f"results-{mode}.json"
    path.write_bytes(METRIC)
    args = ["-f", str(path), "-p", "jsonl", "--idle-timeout", "2", "--log-level", "ERROR"]
    if mode == "poll":
        args.append("--poll")
    env = {k: v for k, v in os.environ.items() if not k.startswith("K6MCP_BRIDGE_")}
    bridge = subprocess.Popen(
        [*bridge_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert bridge.stdout is not None
    received: dict[int, float] = {}
    ready = threading.Event()

    def read() -> None:
        assert bridge.stdout is not None
        for line in bridge.stdout:
            now = time.monotonic()
            message = json.loads(line)
            if message["type"] == "metric":
                ready.set()  # the bridge is following: the Metric line came through
            elif message["type"] == "point":
                received[int(message["data"]["value"])] = now

    reader = threading.Thread(target=read, name="bridge-reader")
    reader.start()
    appended: dict[int, float] = {}
    try:
        if not ready.wait(TIMEOUT):
            raise RuntimeError("the bridge did not start following")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            start = time.monotonic()
            for seq in range(1, lines + 1):
                due = start + (seq - 1) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                data = point(seq)
                appended[seq] = time.monotonic()
                os.write(fd, data)
        finally:
            os.close(fd)
        bridge.wait(timeout=TIMEOUT)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait(timeout=10)
        reader.join(timeout=TIMEOUT)
        bridge.stdout.close()
    missing = lines - len(received)
    if missing:
        raise RuntimeError(f"{mode}: {missing} of {lines} points never arrived")
    return sorted(received[seq] - appended[seq] for seq in appended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="lines per second")
    parser.add_argument("--mode", nargs="+", default=["inotify", "poll"])
    options = parser.parse_args()
    print(f"{options.lines} point lines appended at {options.rate:g}/s, one write(2) each")
    print(f"{'mode':8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory(prefix="k6mcp-follow-") as directory:
        for mode in options.mode:
            latencies = measure(mode, options.lines, options.rate, Path(directory))
            row = [percentile(latencies, p) * 1000 for p in (50, 90, 99)] + [latencies[-1] * 1000]
            print(f"{mode:8} " + " ".join(f"{value:8.1f}" for value in row))


if __name__ == "__main__":
    main()
