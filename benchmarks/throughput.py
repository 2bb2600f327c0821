"""Replay throughput and memory of the bridge next to its floors, in one run.

Usage (after `python benchmarks/generate.py`):

    python benchmarks/throughput.py [--data-dir benchmarks/data] [--repeat 3]
                                    [--baseline /tmp/old]

Per file it times, best of ``--repeat``:

* the installed ``k6mcp-bridge FILE`` as a user runs it (process start-up included), with no
  plugin, with the default plugins (``summary``), and with ``-p jsonl`` (every point built and
  written, to /dev/null); its peak RSS;
* the same pipeline in this process, no plugin (no start-up);
* the floors: a msgspec typed decode of the same file (``decode_lines`` over 64 KiB chunks of
  whole lines: the fastest a Python program can turn these bytes into typed records), a
  per-line msgspec loop, a per-line pydantic ``validate_json`` loop, ``json.loads``, and
  ``jq -c .`` if jq is installed;
* with ``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/old <commit>``), the
  three CLI rows again with that checkout's package (``python -m k6mcp_bridge``), side by side;

both packages' bytecode written first (``bench_tools.compile_package``), as ``pip install``
writes it for a user: so no row times the compiling of the package's modules, which an
editable install under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise do at every start;

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

import msgspec

from bench_tools import bridge_command, compile_package
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


class _Data(msgspec.Struct):
    time: str
    value: float
    tags: dict[str, str] | None = None
    metadata: dict[str, str] | None = None


class _PointRecord(msgspec.Struct, tag="Point", tag_field="type"):
    metric: str
    data: _Data


class _MetricRecord(msgspec.Struct, tag="Metric", tag_field="type"):
    data: msgspec.Raw


_TYPED = msgspec.json.Decoder(_PointRecord | _MetricRecord)


def msgspec_floor(path: Path) -> None:
    """A typed decode of every line, 64 KiB of whole lines per ``decode_lines`` call."""
    decode_lines, rest = _TYPED.decode_lines, b""
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(65536), b""):
            chunk = rest + chunk
            end = chunk.rfind(b"\n") + 1
            rest = chunk[end:]
            decode_lines(chunk[:end])
    decode_lines(rest)


def msgspec_loop(path: Path) -> None:
    decode = _TYPED.decode
    with path.open("rb") as stream:
        for line in stream:
            decode(line)


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


def cli_run(path: Path, *args: str, baseline: Path | None = None) -> int:
    """Run the console script (or ``baseline``'s package); return its peak RSS in KiB."""
    env = {**os.environ, "K6MCP_BRIDGE_METRIC_TYPES": CUSTOM_TYPES}
    if "--default" in args:
        args = tuple(a for a in args if a != "--default")
        env.pop("K6MCP_BRIDGE_PLUGINS", None)
    elif not args:
        env["K6MCP_BRIDGE_PLUGINS"] = ""
    command = [*bridge_command(), str(path), *args]
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline / "bridge")
        command = [sys.executable, "-m", "k6mcp_bridge", str(path), *args]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, f"bridge exited {proc.returncode}"
    return usage.ru_maxrss


CLI_ROWS = {
    "bridge cli, no plugin": (),
    "bridge cli, default plugins": ("--default",),
    "bridge cli, -p jsonl": ("--default", "-p", "jsonl", "-o", "jsonl.path=/dev/null"),
}


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


def bench_file(path: Path, repeat: int, baseline: Path | None) -> None:
    with path.open("rb") as stream:
        lines = sum(1 for _ in stream)
    size_mb = path.stat().st_size / 1e6
    print(f"\n{path.name}: {lines:,} lines, {size_mb:.0f} MB, {size_mb * 1e6 / lines:.0f} B/line")
    rss: dict[str, int] = {}
    rows: dict[str, float] = {}
    for name, args in CLI_ROWS.items():
        rows[name] = best(repeat, lambda a=args, n=name: rss.__setitem__(n, cli_run(path, *a)))
        if baseline is not None:
            old = f"  baseline: {name[len('bridge ') :]}"
            rows[old] = best(
                repeat,
                lambda a=args, n=old: rss.__setitem__(n, cli_run(path, *a, baseline=baseline)),
            )
    rows["bridge pipeline (in-process)"] = best(repeat, lambda: pipeline_run(path))
    rows["msgspec decode_lines (floor)"] = best(repeat, lambda: msgspec_floor(path))
    rows["msgspec per-line loop"] = best(repeat, lambda: msgspec_loop(path))
    rows["pydantic validate_json loop"] = best(repeat, lambda: validate_loop(path))
    rows["json.loads loop"] = best(repeat, lambda: json_loop(path))
    if shutil.which("jq"):
        rows["jq -c ."] = best(1, lambda: jq_run(path))
    floor = lines / rows["msgspec decode_lines (floor)"]
    jq = lines / rows["jq -c ."] if "jq -c ." in rows else None
    for name, seconds in rows.items():
        rate = lines / seconds
        vs_jq = f"  {rate / jq:5.2f}x jq" if jq else ""
        memory = f"  {rss[name] / 1024:4.0f} MiB" if name in rss else ""
        print(
            f"  {name:<32} {seconds:7.2f} s {rate:>11,.0f} lines/s {rate / floor:5.2f}x floor"
            f"{vs_jq}{memory}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to run side by side")
    args = parser.parse_args()
    files = sorted(args.data_dir.glob("*.jsonl"))
    if not files:
        raise SystemExit(f"no *.jsonl in {args.data_dir}: run benchmarks/generate.py first")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    tune_gc()  # as the CLI does; the floors are measured under the same collector settings
    if args.baseline is not None:
        compile_package(args.baseline / "bridge" / "k6mcp_bridge")
    for path in files:
        bench_file(path, args.repeat, args.baseline)
        if path.with_suffix(".csv").exists():
            bench_csv(path.with_suffix(".csv"), args.repeat)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nthis process peak RSS: {own / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
