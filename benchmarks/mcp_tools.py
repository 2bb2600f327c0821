"""How fast each MCP tool answers on a run store: p50 and p95 per tool, in milliseconds.

Usage:

    python benchmarks/mcp_tools.py STORE [--run latest] [--repeat 30]
    python benchmarks/mcp_tools.py --build OUT.db [--capture FILE] [--seconds 3600]

A call is what the server does for one tool call: open the store read-only, run the tool's
function (``k6mcp_bridge_mcp.tools`` or ``.endpoints``), render the text; the MCP framing
around it is the SDK's and the same for every tool. The budget is 100 ms per tool on the 1-hour
benchmark store.
"cold": the process's cache of decoded sketch BLOBs (``store.codec``) emptied before each call;
"warm": as in a server that has answered about those buckets before.

``--build`` makes a long store without waiting an hour: it runs the MCP tests' k6 script
(``plugins/k6mcp-bridge-mcp/tests/k6/mix.js``, 10 s, bounded) once, or takes ``--capture``,
and pipes that real capture into ``k6mcp-bridge -p store`` again and again, each copy shifted
by the capture's length and its values scaled by 0-20% (so that no two copies' buckets are
alike), until ``--seconds`` of stream time are covered (the store's buckets then widen as in a
real long run). It also stores one short run first, the baseline for
``compare_runs``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

import k6lab  # noqa: E402

MIX = ROOT / "plugins" / "k6mcp-bridge-mcp" / "tests" / "k6" / "mix.js"
_TIME = re.compile(rb'"time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)')
_VALUE = re.compile(rb'"value":([-0-9.e+]+)')


def capture(folder: Path) -> Path:
    out = folder / "mix.json"
    with k6lab.serve() as base_url:
        env = {**k6lab.k6_env(base_url), "DURATION": "10s", "SLOW_MS": "20"}
        subprocess.run(
            [*k6lab.k6_run_args(), "--quiet", "--no-summary", "--out", f"json={out}", str(MIX)],
            env=env,
            check=False,
            timeout=60,
            capture_output=True,
        )
    return out


def shifted(source: Path, seconds: float) -> Iterator[bytes]:
    """The capture's lines, then copies of its Point lines shifted by its span, to ``seconds``."""
    lines = source.read_bytes().splitlines(keepends=True)
    stamps = [m.group(1) for line in lines if (m := _TIME.search(line))]
    first = datetime.strptime(min(stamps).decode(), "%Y-%m-%dT%H:%M:%S")
    last = datetime.strptime(max(stamps).decode(), "%Y-%m-%dT%H:%M:%S")
    span = (last - first).total_seconds() + 1
    yield from lines
    points = [line for line in lines if b'"type":"Point"' in line]
    cache: dict[tuple[bytes, int], bytes] = {}
    for copy in range(1, int(seconds // span) + 1):

        def shift(match: re.Match[bytes], copy: int = copy) -> bytes:
            key = (match.group(1), copy)
            if key not in cache:
                moved = datetime.strptime(key[0].decode(), "%Y-%m-%dT%H:%M:%S")
                moved += timedelta(seconds=span * copy)
                cache[key] = b'"time":"' + moved.strftime("%Y-%m-%dT%H:%M:%S").encode()
            return cache[key]

        factor = 1 + (copy * 7919 % 1000) / 5000  # each copy's values 0-20% larger: its
        # buckets (and their sketches) differ from every other copy's, as a real run's do

        def scale(match: re.Match[bytes], factor: float = factor) -> bytes:
            return b'"value":' + repr(float(match.group(1)) * factor).encode()

        for line in points:
            yield _VALUE.sub(scale, _TIME.sub(shift, line, count=1), count=1)


def build(store: Path, source: Path | None, seconds: float) -> None:
    bridge = Path(sys.executable).with_name("k6mcp-bridge")
    with tempfile.TemporaryDirectory() as folder:
        source = source or capture(Path(folder))
        args = [str(bridge), "-q", "-p", "store", "-o", f"store.path={store}", "--no-passthrough"]
        subprocess.run([*args, str(source)], check=False)  # the short baseline run
        started = time.monotonic()
        proc = subprocess.Popen(args, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        written = 0
        for line in shifted(source, seconds):
            proc.stdin.write(line)
            written += 1
        proc.stdin.close()
        proc.wait()
        print(f"built {store}: {written} lines in {time.monotonic() - started:.0f} s")


def calls(store: Any, run_id: str) -> dict[str, Callable[[Any], dict[str, Any]]]:
    from k6mcp_bridge_mcp import endpoints, tools

    runs = store.runs()
    baseline = next((run.id for run in runs if run.id != run_id), run_id)
    dur = "http_req_duration"
    return {
        "list_runs": lambda s: tools.list_runs(s),
        "get_summary": lambda s: tools.get_summary(s, run_id),
        "list_metrics": lambda s: tools.list_metrics(s, run_id),
        "list_tag_values": lambda s: tools.list_tag_values(s, "http_reqs", "name", run_id),
        "query_metric": lambda s: tools.query_metric(
            s, dur, run_id, ["count", "p(95)"], tags={"name": "slow"}
        ),
        "query_metric window_s=30": lambda s: tools.query_metric(s, dur, run_id, window_s=30),
        "query_metric group_by step_s=60": lambda s: tools.query_metric(
            s, dur, run_id, group_by=["name"], step_s=60
        ),
        "get_thresholds history": lambda s: tools.get_thresholds(s, run_id, True),
        "top_errors": lambda s: endpoints.top_errors(s, run_id),
        "top_errors window_s=60": lambda s: endpoints.top_errors(s, run_id, 60),
        "slowest_endpoints": lambda s: endpoints.slowest_endpoints(s, run_id),
        "slowest_endpoints window_s=60": lambda s: endpoints.slowest_endpoints(
            s, run_id, window_s=60
        ),
        "compare_runs": lambda s: tools.compare_runs(s, baseline, run_id),
    }


def measure(path: Path, run: str, repeat: int) -> None:
    from k6mcp_bridge.store import codec
    from k6mcp_bridge.store.query import Store
    from k6mcp_bridge_mcp.server import render

    with Store(path) as store:
        info = store.run(run)
        table = calls(store, info.id)
        buckets = store._rows(  # the size of what is read
            "SELECT COUNT(*) FROM buckets b JOIN series s ON s.id = b.series_id WHERE s.run_id = ?",
            [info.id],
        )[0][0]
    span = "?"
    if info.first_time and info.last_time:
        first = datetime.fromisoformat(info.first_time.replace("Z", "+00:00"))
        last = datetime.fromisoformat(info.last_time.replace("Z", "+00:00"))
        span = f"{(last - first).total_seconds():.0f} s"
    print(f"store {path}, run {info.id} ({info.state}): {span} of stream time, {buckets} buckets")
    stats = f"{'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}"
    print(f"{'':34} {'cold: no sketch decoded yet':>26}   {'warm: asked before':>26}")
    print(f"{'tool':34} {stats}   {stats}")
    for name, fn in table.items():
        cells = []
        for cold in (True, False):
            times = []
            for _ in range(repeat):
                if cold:
                    codec._DECODED.clear()
                started = time.perf_counter()
                with Store(path) as store:
                    render(fn(store))
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            cells.append(f"{statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
        print(f"{name:34} {cells[0]}   {cells[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", type=Path)
    parser.add_argument("--run", default="latest")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--build", type=Path, metavar="OUT.db")
    parser.add_argument("--capture", type=Path)
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    if args.build is not None:
        build(args.build, args.capture, args.seconds)
        return
    if args.store is None:
        parser.error("give STORE, or --build OUT.db")
    measure(args.store, args.run, args.repeat)


if __name__ == "__main__":
    main()
