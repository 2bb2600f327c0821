"""Replay throughput with the ``summary`` plugin (k6's numbers computed live) next to no
plugin, and the bridge's peak RSS for 10M points in exact and bounded mode, in one run.

Usage (after `python benchmarks/generate.py`):

    python benchmarks/aggregation.py [--data-dir benchmarks/data] [--repeat 3]

The 10M points are the custom-metrics file sent ten times through stdin (``cat`` ten times): its
trend ``work`` then holds 2.5M values, ``iteration_duration`` 0.5M.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bridge() -> str:
    return shutil.which("k6mcp-bridge") or str(Path(sys.executable).with_name("k6mcp-bridge"))


def run(args: list[str], plugins: str, stdin_copies: Path | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one bridge run."""
    env = {**os.environ, "K6MCP_BRIDGE_PLUGINS": plugins, "K6MCP_BRIDGE_SNAPSHOT_INTERVAL": "0"}
    started = time.perf_counter()
    feeder = None
    stdin = None
    if stdin_copies is not None:
        feeder = subprocess.Popen(["cat", *[str(stdin_copies)] * 10], stdout=subprocess.PIPE)
        stdin = feeder.stdout
    proc = subprocess.Popen(
        [bridge(), *args], env=env, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if feeder is not None and feeder.stdout is not None:
        feeder.stdout.close()
    assert proc.stderr is not None
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if feeder is not None:
        feeder.wait()
    assert proc.returncode in (0, 99), err[-2000:]
    return time.perf_counter() - started, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = [args.data_dir / "custom.jsonl", args.data_dir / "http.jsonl"]
    if not all(path.exists() for path in files):
        raise SystemExit(f"run benchmarks/generate.py first (no {files[0]})")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for path in files:
        with path.open("rb") as stream:
            lines = sum(1 for _ in stream)
        print(f"\n{path.name}: {lines:,} lines")
        for label, plugins in (("no plugin", ""), ("summary", "summary")):
            seconds = min(run([str(path)], plugins)[0] for _ in range(args.repeat))
            print(f"  {label:<10} {seconds:6.2f} s  {lines / seconds:>10,.0f} lines/s")
    custom = files[0]
    print("\n10M points (custom.jsonl x10 on stdin), summary plugin:")
    for mode in ("--exact", "--bounded-memory"):
        seconds, rss = run(["-", mode], "summary", stdin_copies=custom)
        print(f"  {mode:<17} {seconds:6.2f} s  peak RSS {rss / 1024:6.0f} MiB")


if __name__ == "__main__":
    main()
