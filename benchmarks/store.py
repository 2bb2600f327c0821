"""The run store next to its targets: replay speed with ``store``, a 1-hour run's size, a query.

Usage (after `python benchmarks/generate.py`):

    python benchmarks/store.py [--data-dir benchmarks/data] [--repeat 3]
                               [--duration 3600] [--rate 1000] [--endpoints 20]
                               [--keep FILE]

Three parts, each row printed next to its target:

1. **Replay** of ``http.jsonl`` (~1M real k6 HTTP lines), best of ``--repeat``: the installed
   ``k6mcp-bridge FILE --no-passthrough -q`` as a user runs it (process start-up included) with
   the default plugins (``summary``), and with ``-p store -o store.path=TMP`` added (``summary``
   and ``store``); next to the msgspec floor of the same file, computed by ``throughput.py``'s
   own :func:`throughput.msgspec_floor` in this process. Target: ``summary + store`` at
   ≥ 0.3x the floor's lines/s.

2. **A 1-hour store**: ``--duration`` s (3,600) of an HTTP test at ``--rate`` requests/s
   (1,000) over ``--endpoints`` endpoints (20). Piping its ~41M JSON lines through the bridge
   would take minutes, so this part skips the JSON decoding but nothing after it: it makes the
   bridge's own ``PointRecord`` s in Python, feeds them to the real
   :class:`~k6mcp_bridge.aggregate.rollups.Rollups` one second of stream time at a time (so
   the bucket widths climb the ladder exactly as in a run: 1 s, 2 s after 20 min, 10 s after
   40 min), turns each closed bucket into its ``window`` message
   (:meth:`Rollups.message`), and hands them to the real ``StorePlugin.process_batch``, one
   delivery per second of stream time (the store compacts as it would). Measured: the file
   size (db + -wal after a checkpoint), this process's RSS every simulated minute (first,
   middle, last, max; ``/proc/self/statm``), the time of the rollups and of the store writer.
   Targets: ≤ 100 MB, RSS flat.

   What is real: every tag set and every value comes from ``http.jsonl`` (a real k6 run against
   a loopback server): each request is a real request of that capture (its 9 ``http_req*``
   points, values as k6 measured them: trends jittered by a uniform ±10%, counters and rates
   kept), every 3rd request also the capture's per-iteration points (``checks``,
   ``group_duration``, ``data_sent``, ``data_received``, ``iterations``,
   ``iteration_duration``) of a real iteration, and ``vus``/``vus_max`` once a second. What is
   synthetic: the times (request ``k`` of second ``s`` at ``s + k / rate``: spread evenly) and
   the ``name``/``url`` tags, rewritten to cycle over the endpoints (endpoint ``e`` takes the
   real requests of the capture's kind ``e % 3``: ``/api/items`` 200, ``/`` 200, ``/missing``
   404, with their own status, group and error tags). No JSON is parsed or written for it.

3. **Query** on that store: ``k6mcp-bridge query http_req_duration --store DB --tag
   name=<endpoint 0> --stat 'p(95)' --window 5m --json`` as a user runs it (start-up included,
   best of ``--repeat``), and the same through the Python API (``Store(DB).query(...)``, the
   store opened once, best of 20). Target: ≤ 50 ms each. The answer's count is checked against
   5 min x rate / endpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_tools import bridge_command
from k6mcp_bridge.aggregate.rollups import LADDER, Rollups
from k6mcp_bridge.delivery.pipeline import tune_gc
from k6mcp_bridge.messages import Message, Metric, MetricMessage, MetricType
from k6mcp_bridge.plugin import RunInfo, RunResult, Stats
from k6mcp_bridge.samples import PointRecord
from k6mcp_bridge.store.query import Store
from k6mcp_bridge.store.writer import StoreConfig, StorePlugin
from throughput import msgspec_floor

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")
REQUEST = (
    "http_reqs",
    "http_req_duration",
    "http_req_blocked",
    "http_req_connecting",
    "http_req_tls_handshaking",
    "http_req_sending",
    "http_req_waiting",
    "http_req_receiving",
    "http_req_failed",
)
"""The points k6 writes per HTTP request, in its order."""
ITERATION = (
    "checks",
    "group_duration",
    "data_sent",
    "data_received",
    "iterations",
    "iteration_duration",
)
"""The points k6 writes per iteration (3 requests in the capture's script)."""
TEMPLATE_LINES = 200_000
"""Lines of the capture read for templates (~17,000 requests)."""
REPLAY_TARGET = 0.3
SIZE_TARGET_MB = 100.0
QUERY_TARGET_MS = 50.0


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# --- 1. replay ---------------------------------------------------------------------------------


def cli_replay(path: Path, *args: str) -> int:
    """The console script with the default plugins and ``args``; its peak RSS in KiB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("K6MCP_BRIDGE_")}
    command = [*bridge_command(), str(path), "--no-passthrough", "-q", *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"bridge exited {code}: {err[-2000:]}"
    return usage.ru_maxrss


def bench_replay(path: Path, repeat: int) -> None:
    with path.open("rb") as stream:
        lines = sum(1 for _ in stream)
    print(f"\n1. replay of {path.name}: {lines:,} real k6 lines, best of {repeat}")
    floor_s = best(repeat, lambda: msgspec_floor(path))
    rss: dict[str, int] = {}

    def store_run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "runs.db"
            rss["store"] = max(rss.get("store", 0), cli_replay(path, "-p", "store", *opt(db)))

    def summary_run() -> None:
        rss["summary"] = max(rss.get("summary", 0), cli_replay(path))

    rows = {
        "msgspec decode_lines (floor)": (floor_s, None),
        "bridge cli, summary": (best(repeat, summary_run), "summary"),
        "bridge cli, summary + store": (best(repeat, store_run), "store"),
    }
    floor = lines / floor_s
    print(f"  {'row':<30} {'s':>6} {'lines/s':>11} {'x floor':>8} {'RSS MiB':>8}  target")
    for name, (seconds, key) in rows.items():
        rate = lines / seconds
        memory = f"{rss[key] / 1024:8.0f}" if key else " " * 8
        target = ""
        if key == "store":
            target = f"≥ {REPLAY_TARGET}x floor: {verdict(rate / floor >= REPLAY_TARGET)}"
        print(f"  {name:<30} {seconds:6.2f} {rate:>11,.0f} {rate / floor:8.2f} {memory}  {target}")


def opt(db: Path) -> tuple[str, str]:
    return ("-o", f"store.path={db}")


# --- 2. the 1-hour store -----------------------------------------------------------------------

Point = tuple[str, float, dict[str, str]]
"""A metric, a value and the tags of one real point."""


class Capture:
    """Real requests and iterations of a k6 capture, to replay with new times and names."""

    def __init__(self, path: Path, endpoints: int) -> None:
        self.metrics: dict[str, Metric] = {}
        self.kinds: list[str] = []
        """The distinct request URLs of the capture, in order of appearance."""
        requests: dict[str, list[list[float]]] = {}
        """Per kind (URL): every request's values, in :data:`REQUEST` order."""
        request_tags: dict[str, dict[str, str]] = {}
        iterations: list[list[Point]] = []
        self.gauges: dict[str, tuple[float, dict[str, str]]] = {}
        current: dict[str, float] = {}
        iteration: list[Point] = []
        with path.open("rb") as stream:
            for number, line in enumerate(stream):
                if number >= TEMPLATE_LINES:
                    break
                record = json.loads(line)
                if record["type"] == "Metric":
                    metric = Metric.model_validate(record["data"])
                    self.metrics[metric.name] = metric
                    continue
                name, data = record["metric"], record["data"]
                tags = data.get("tags") or {}
                if name in REQUEST:
                    kind = tags["url"]
                    if name == REQUEST[0]:
                        current = {}
                        if kind not in requests:
                            self.kinds.append(kind)
                            requests[kind], request_tags[kind] = [], tags
                    current[name] = float(data["value"])
                    if name == REQUEST[-1] and len(current) == len(REQUEST):
                        requests[kind].append([current[m] for m in REQUEST])
                elif name in ITERATION:
                    iteration.append((name, float(data["value"]), tags))
                    if name == ITERATION[-1]:
                        if {p[0] for p in iteration} == set(ITERATION):
                            iterations.append(iteration)
                        iteration = []
                elif name in ("vus", "vus_max"):
                    self.gauges[name] = (float(data["value"]), tags)
        assert requests and iterations, f"no complete request or iteration in {path}"
        self.requests = [requests[kind] for kind in self.kinds]
        self.iterations = iterations
        base = self.kinds[0].split("/", 3)
        self.endpoint_tags: list[dict[str, str]] = []
        self.endpoint_kind: list[int] = []
        for e in range(endpoints):
            kind = e % len(self.kinds)
            url = "/".join([*base[:3], f"api/endpoint-{e:02d}"])
            self.endpoint_tags.append({**request_tags[self.kinds[kind]], "name": url, "url": url})
            self.endpoint_kind.append(kind)

    def type_of(self, metric: str) -> MetricType | None:
        known = self.metrics.get(metric)
        return None if known is None else known.type


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def one_second(capture: Capture, second: int, rate: int, rng: random.Random) -> list[PointRecord]:
    """The records of one second of stream time: ``rate`` requests spread evenly."""
    records: list[PointRecord] = []
    append = records.append
    endpoints = len(capture.endpoint_tags)
    uniform = rng.uniform
    trends = [capture.type_of(m) == "trend" for m in REQUEST]
    for k in range(rate):
        when = datetime.fromtimestamp(second + k / rate, timezone.utc)
        e = (second * rate + k) % endpoints
        tags = capture.endpoint_tags[e]
        values = rng.choice(capture.requests[capture.endpoint_kind[e]])
        for metric, value, trend in zip(REQUEST, values, trends, strict=True):
            append(
                PointRecord(metric, value * uniform(0.9, 1.1) if trend else value, tags, None, when)
            )
        if k % 3 == 2:
            for metric, value, iteration_tags in rng.choice(capture.iterations):
                jitter = capture.type_of(metric) == "trend"
                value = value * uniform(0.9, 1.1) if jitter else value
                append(PointRecord(metric, value, iteration_tags, None, when))
    when = datetime.fromtimestamp(second + 1 - 1 / rate, timezone.utc)
    for metric, (value, tags) in capture.gauges.items():
        append(PointRecord(metric, value, tags, None, when))
    return records


def bench_store(path: Path, db: Path, duration: int, rate: int, endpoints: int) -> tuple[str, int]:
    """Write the synthetic run into ``db``; return endpoint 0's name and the points made."""
    capture = Capture(path, endpoints)
    print(
        f"\n2. store of a {duration:,} s HTTP test at {rate:,} req/s over {endpoints} endpoints"
        f"\n  method: real Rollups -> window messages -> StorePlugin.process_batch, one delivery"
        f"\n  per second of stream time; tag sets and values from {path.name} (real k6),"
        f"\n  times and name/url tags synthetic (see the docstring); no JSON decoding."
        f"\n  templates: {sum(map(len, capture.requests)):,} real requests of "
        f"{len(capture.kinds)} kinds, {len(capture.iterations):,} real iterations"
    )
    rng = random.Random(1)
    rollups = Rollups(capture.type_of)
    plugin = StorePlugin(StoreConfig(path=str(db)))
    started = datetime.now(timezone.utc)
    plugin.start(
        RunInfo(
            source="benchmarks/store.py (synthetic)", started_at=started, bridge_version="bench"
        )
    )
    definitions: list[Message] = [MetricMessage(data=m) for m in capture.metrics.values()]
    plugin.process_batch(definitions)
    first = int(datetime.fromisoformat("2026-12-01T23:00:00+00:00").timestamp())
    make_s = rollup_s = message_s = store_s = 0.0
    points = windows = 0
    rss: list[tuple[int, float]] = []
    """(second, RSS MiB) every simulated minute; ``peak``: the most after any second."""
    peak = 0.0
    widths: set[int] = set()

    def deliver(closed_at: datetime | None, final: bool) -> None:
        nonlocal rollup_s, message_s, store_s, windows
        t0 = time.perf_counter()
        closed = rollups.close(closed_at, final=final)
        t1 = time.perf_counter()
        messages: list[Message] = [rollups.message(c) for c in closed]
        t2 = time.perf_counter()
        if messages:
            plugin.process_batch(messages)
        t3 = time.perf_counter()
        rollup_s += t1 - t0
        message_s += t2 - t1
        store_s += t3 - t2
        windows += len(closed)
        widths.update(c.width for c in closed)

    wall = time.perf_counter()
    for second in range(first, first + duration):
        t0 = time.perf_counter()
        records = one_second(capture, second, rate, rng)
        t1 = time.perf_counter()
        rollups.add(records)
        rollup_s += time.perf_counter() - t1
        make_s += t1 - t0
        points += len(records)
        deliver(records[-1].time, final=False)
        now = rss_mib()
        peak = max(peak, now)
        if (second - first) % 60 == 0 or second == first + duration - 1:
            rss.append((second - first, now))
    deliver(None, final=True)
    t0 = time.perf_counter()
    plugin.finish(RunResult(status="completed", stats=Stats(), elapsed=0.0))
    store_s += time.perf_counter() - t0
    wall = time.perf_counter() - wall
    size_before = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages, free = (
        conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count")
    )
    buckets, series = (
        conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("buckets", "series")
    )
    conn.close()
    files = {p.name: p.stat().st_size for p in db.parent.glob(db.name + "*")}
    size = files.get(db.name, 0) + files.get(db.name + "-wal", 0)
    page = 4096 if not pages else files[db.name] / pages
    mid = rss[len(rss) // 2]
    print(
        f"  {points:,} points ({points / duration / rate:.1f} per request), {windows:,} windows,"
        f" widths {sorted(widths)} s (ladder {LADDER[:4]}...), {series:,} series,"
        f" {buckets:,} buckets"
    )
    print(
        f"  time: {wall:.1f} s wall = making records {make_s:.1f} s + rollups {rollup_s:.1f} s"
        f" + window messages {message_s:.1f} s + store writer {store_s:.1f} s"
    )
    print(f"  {'row':<44} {'value':>10}  target")
    ok_size = size / 1e6 <= SIZE_TARGET_MB
    print(
        f"  {'store file (db + -wal, after checkpoint)':<44} {size / 1e6:7.1f} MB"
        f"  ≤ {SIZE_TARGET_MB:.0f} MB: {verdict(ok_size)}"
    )
    print(
        f"  {'  of it free pages (compacted away)':<44} {free * page / 1e6:7.1f} MB"
        f"  (before checkpoint: {size_before / 1e6:.1f} MB with -wal and -shm)"
    )
    flat = max(peak, rss[-1][1]) <= rss[min(1, len(rss) - 1)][1] * 1.25 + 10
    print(
        f"  {'RSS at minute 1 / middle / last; max':<44} "
        f"{rss[min(1, len(rss) - 1)][1]:.0f} / {mid[1]:.0f} / {rss[-1][1]:.0f}; {peak:.0f} MiB"
        f"  flat: {verdict(flat)}"
    )
    every = max(1, len(rss) // 12)
    trace = " ".join(f"{mb:.0f}" for _, mb in rss[::every])
    print(f"    RSS MiB every {every} simulated min: {trace}")
    print(
        f"  {'store writer per simulated second':<44} {store_s / duration * 1e3:7.2f} ms"
        f"  ({store_s / max(windows, 1) * 1e3:.2f} ms per window)"
    )
    return capture.endpoint_tags[0]["name"], points


# --- 3. query ----------------------------------------------------------------------------------


def bench_query(db: Path, name: str, duration: int, rate: int, endpoints: int, repeat: int) -> None:
    print(f"\n3. query of p(95) of http_req_duration, name={name}, last 5m")
    args = [
        "query",
        "http_req_duration",
        "--store",
        str(db),
        "--tag",
        f"name={name}",
        "--stat",
        "p(95)",
        "--stat",
        "count",
        "--window",
        "5m",
        "--json",
    ]
    out: list[Any] = []

    def cli() -> None:
        proc = subprocess.run([*bridge_command(), *args], capture_output=True, check=True)
        out.append(json.loads(proc.stdout))

    cli_s = best(repeat, cli)
    with Store(db) as store:

        def api() -> None:
            out.append(
                store.query(
                    "http_req_duration",
                    tags={"name": name},
                    stats=["p(95)", "count"],
                    window="5m",
                ).to_dict()
            )

        api_s = best(20, api)
    expected = min(300, duration) * rate / endpoints
    values = out[0]["series"][0]["values"]
    assert out[-1]["series"] == out[0]["series"], (out[-1], out[0])
    sane = abs(values["count"] - expected) <= 0.02 * expected
    print(f"  {'row':<44} {'ms':>7}  target")
    for label, seconds in (
        (f"k6mcp-bridge query (cli, best of {repeat})", cli_s),
        ("Store.query (Python API, best of 20)", api_s),
    ):
        ok = seconds * 1e3 <= QUERY_TARGET_MS
        print(f"  {label:<44} {seconds * 1e3:7.1f}  ≤ {QUERY_TARGET_MS:.0f} ms: {verdict(ok)}")
    print(
        f"  answer: count {values['count']:,.0f} (expected 5 min x {rate}/{endpoints} req/s ="
        f" {expected:,.0f}: {verdict(sane)}), p(95) {values['p(95)']:.3f} ms,"
        f" window {out[0]['window']['start']} .. {out[0]['window']['end']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE / "data")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3600, help="seconds of the long test")
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="write the long test's store here (kept)")
    parser.add_argument("--skip-replay", action="store_true", help="only parts 2 and 3")
    args = parser.parse_args()
    path = args.data_dir / "http.jsonl"
    if not path.exists():
        raise SystemExit(f"no {path}: run benchmarks/generate.py first")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    tune_gc()  # as the CLI does
    if not args.skip_replay:
        bench_replay(path, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.keep or Path(tmp) / "runs.db"
        if db.exists():
            raise SystemExit(f"{db} exists: give a new file to --keep")
        name, _ = bench_store(path, db, args.duration, args.rate, args.endpoints)
        bench_query(db, name, args.duration, args.rate, args.endpoints, args.repeat)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\nthis process peak RSS: {own / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
