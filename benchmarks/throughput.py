"""Replay throughput and memory of the bridge next to its floors, in one run.

Usage (after `python benchmarks/generate.py`):

    python benchmarks/throughput.py [--data-dir benchmarks/data] [--repeat 3]

Per file it times, best of ``--repeat``:

* ``bridge cli``: the installed ``k6mcp-bridge FILE`` with no plugin, as a user runs it
  (process start-up included), and its peak RSS;
* ``bridge pipeline``: the same pipeline in this process (no start-up);
* ``validate_json``: a bare loop of the decoder's validator on the same models, one call per
  line — the floor the pipeline adds to;
* ``json.loads``: a plain standard-library loop;
* ``jq -c .``: if jq is installed;

and the bridge on the CSV twin of each file (written by the same k6 run), rows/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from k6mcp_bridge.config import Settings
from k6mcp_bridge.decode.json_lines import validate_k6_record
from k6mcp_bridge.delivery.pipeline import Pipeline, tune_gc
from k6mcp_bridge.input.source import open_source

HERE = Path(__file__).resolve().parent
CUSTOM_TYPES = "ops=counter,level=gauge,ok=rate,work=trend"
"""The custom metrics of custom-short-lines.js, for its CSV twin (CSV carries no types)."""


def best(repeat: int, run: Callable[[], None]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def validate_loop(path: Path) -> None:
    validate = validate_k6_record
    with path.open("rb") as stream:
        for line in stream:
            validate(b'{"data":' + line + b"}")


def json_loop(path: Path) -> None:
    loads = json.loads
    with path.open("rb") as stream:
        for line in stream:
            loads(line)


def pipeline_run(path: Path) -> None:
    source = open_source(str(path))
    try:
        types = dict(item.split("=") for item in CUSTOM_TYPES.split(","))
        settings = Settings(plugins=[], metric_types=types)  # type: ignore[arg-type]
        result = Pipeline([], settings).run(source)
    finally:
        source.close()
    assert result.stats.rejected == 0, result.stats
    assert result.stats.messages > 0, result.stats


def cli_run(path: Path) -> int:
    """Run the console script with no plugin; return its peak RSS in KiB."""
    env = {**os.environ, "K6MCP_BRIDGE_PLUGINS": "", "K6MCP_BRIDGE_METRIC_TYPES": CUSTOM_TYPES}
    exe = shutil.which("k6mcp-bridge") or str(Path(sys.executable).with_name("k6mcp-bridge"))
    proc = subprocess.Popen([exe, str(path)], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"bridge exited {proc.returncode}"
    return usage.ru_maxrss


def jq_run(path: Path) -> None:
    with path.open("rb") as stream:
        subprocess.run(["jq", "-c", "."], stdin=stream, stdout=subprocess.DEVNULL, check=True)


def bench_csv(path: Path, repeat: int) -> None:
    """The bridge on the CSV twin of a JSON file (same k6 run): pipeline and CLI."""
    with path.open("rb") as stream:
        rows = sum(1 for _ in stream) - 1
    print(f"\n{path.name}: {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB")
    rss: list[int] = []
    for name, run in (
        ("bridge cli (no plugin)", lambda: rss.append(cli_run(path))),
        ("bridge pipeline (in-process)", lambda: pipeline_run(path)),
    ):
        seconds = best(repeat, run)
        print(f"  {name:<30} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s")
    print(f"  bridge cli peak RSS: {max(rss) / 1024:.0f} MiB")


def bench_file(path: Path, repeat: int) -> None:
    with path.open("rb") as stream:
        lines = sum(1 for _ in stream)
    size_mb = path.stat().st_size / 1e6
    print(f"\n{path.name}: {lines:,} lines, {size_mb:.0f} MB, {size_mb * 1e6 / lines:.0f} B/line")
    rss: list[int] = []
    rows = {
        "bridge cli (no plugin)": best(repeat, lambda: rss.append(cli_run(path))),
        "bridge pipeline (in-process)": best(repeat, lambda: pipeline_run(path)),
        "validate_json loop (floor)": best(repeat, lambda: validate_loop(path)),
        "json.loads loop": best(repeat, lambda: json_loop(path)),
    }
    if shutil.which("jq"):
        rows["jq -c ."] = best(1, lambda: jq_run(path))
    floor = lines / rows["validate_json loop (floor)"]
    jq = lines / rows["jq -c ."] if "jq -c ." in rows else None
    for name, seconds in rows.items():
        rate = lines / seconds
        vs_jq = f"  {rate / jq:5.2f}x jq" if jq else ""
        ratio = f"{rate / floor:5.2f}x floor{vs_jq}"
        print(f"  {name:<30} {seconds:7.2f} s  {rate:>10,.0f} lines/s  {ratio}")
    print(f"  bridge cli peak RSS: {max(rss) / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    files = sorted(args.data_dir.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no *.jsonl in {args.data_dir}: run benchmarks/generate.py first")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    tune_gc()  # as the CLI does; the floors are measured under the same collector settings
    for path in files:
        bench_file(path, args.repeat)
        if path.with_suffix(".csv").exists():
            bench_csv(path.with_suffix(".csv"), args.repeat)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nthis process peak RSS: {own / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
