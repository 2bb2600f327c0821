"""Cost of the bridge next to a real k6 HTTP test at full speed: `k6 | k6mcp-bridge`.

Usage (k6 v1.1.0 on PATH or next to the Python in use, the project installed):

    python benchmarks/pipe.py [--duration 10] [--vus 4] [--repeat 1] [--server epoll]
                              [--bridge-args "-p jsonl -o jsonl.path=/dev/null"]...
                              [--json FILE] [--timeout SECONDS] [--keep DIR]

Each run starts its own loopback HTTP server (127.0.0.1, free port, in a child process: this
file with ``--serve KIND``) and a k6 test written from ``SCRIPT`` below: ``constant-vus`` with
``--vus`` VUs for ``--duration`` seconds, no sleep, one ``http.get(BASE_URL + '/')`` and one
check per iteration, response bodies discarded. The rows, run side by side (interleaved,
``--repeat`` rounds):

* ``baseline``: ``k6 run -q --out json=FILE script.js`` (k6 writes its JSON lines to a file);
* ``piped``: ``k6 run -q --out json=- script.js | k6mcp-bridge run -`` with the default plugins
  (every ``K6MCP_BRIDGE_*`` variable removed from its environment); k6's stdout is the bridge's
  stdin (an ``os.pipe``), the bridge's stdout and stderr go to files;
* ``piped <ARGS>``: one more row per ``--bridge-args ARGS`` (split like a shell would), e.g.
  ``--bridge-args "-p jsonl -o jsonl.path=/dev/null"``.

The server (``--server``) answers every request head with one fixed ``200`` (keep-alive):
``epoll`` (default) on a bare ``select.epoll`` loop, ``asyncio`` on an asyncio protocol, or
``k6lab``: the ThreadingHTTPServer of ``tests/k6lab.py``. It shares the CPUs with k6 and the
bridge, so its cost is a column. Measured on 2 CPUs: about 20 µs of CPU per request for
``epoll``, 40-50 for ``asyncio`` and 150 for ``k6lab``, which then caps k6 near 4,600 req/s.

The bridge is the installed console script, its package's bytecode written first
(``bench_tools.compile_package``), as ``pip install`` writes it for a user: an editable install
under ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile its modules at every start (~0.1 s
of CPU in the bridge's column).

k6's end-of-test summary is *on* in every run, so the runs do the same work: ``--no-summary``
would also switch off ``--summary-export``, which gives the request count and rate. The script's
``handleSummary`` returns ``{}``, so no summary text reaches k6's stdout (only JSON lines).
Every child is started with ``subprocess.Popen`` and reaped with ``os.wait4``, whose rusage is
that child's alone. Every run is bounded: k6's duration is fixed, a watchdog SIGKILLs whatever
is still running after ``--timeout`` seconds (default 2 x duration + 60), and the server stops
when its stdin closes or its own lifetime ends.

Columns of the runs table:

* ``k6 req/s``: ``metrics.http_reqs.rate`` of k6's ``--summary-export`` (count / test run time);
* ``reqs``: ``metrics.http_reqs.count``;
* ``k6 CPU s``: k6's user + system CPU seconds; ``k6 µs/req``: that per request;
* ``k6 RSS MiB``: k6's peak RSS (``ru_maxrss``); ``k6 wall s``: k6's start to exit;
* ``srv CPU s``: CPU seconds of the loopback HTTP server during the run (it shares the CPUs);
* ``other CPU s``: busy CPU seconds of the whole machine (``/proc/stat``) during the run minus
  those of k6, the bridge and the server: other load (and kernel work not charged to them);
  well above zero means the numbers of that row are noisy;
* ``lines``: JSON lines k6 wrote (baseline: counted in its file; piped: the bridge's
  ``lines read`` from its summary plugin, blank if that plugin is off);
* ``br CPU s``, ``br RSS MiB``: the bridge's user + system CPU seconds and peak RSS;
* ``br lines/s``: lines / the bridge's wall time (its start to its exit, start-up included);
* ``br µs/line``: the bridge's CPU per line (start-up included);
* ``br/k6 CPU``: bridge CPU ÷ k6 CPU of the same run;
* ``drain s``: the bridge's exit minus k6's exit (how long it read after k6 was done);
* ``exit``: exit codes, k6 then bridge (``-9``: killed by the watchdog).

The ratios table divides each piped row by the baseline (medians over ``--repeat``): k6 req/s,
k6 peak RSS, k6 CPU seconds and k6 wall time. ``--json FILE`` saves every raw number.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
import re
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import k6lab  # noqa: E402
from bench_tools import bridge_command  # noqa: E402

SCRIPT = """\
import http from 'k6/http';
import { check } from 'k6';

export const options = {
  discardResponseBodies: true,
  scenarios: {
    load: {
      executor: 'constant-vus',
      vus: Number(__ENV.PIPE_VUS),
      duration: __ENV.PIPE_DURATION,
      gracefulStop: '2s',
    },
  },
};

export default function () {
  const res = http.get(`${__ENV.BASE_URL}/`);
  check(res, { 'status is 200': (r) => r.status === 200 });
}

// The summary is computed (so --summary-export works) but no text is printed on stdout.
export function handleSummary() {
  return {};
}
"""

_BODY = b"<!doctype html><html><head><title>k6lab</title></head><body>ok</body></html>\n"
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BODY), _BODY)
)
_END_OF_HEAD = b"\r\n\r\n"
_LINES_READ = re.compile(rb"lines read\s+(\d+)")
SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 10.0
KILL_GRACE_S = 5.0  # after k6 is killed, for the bridge to read EOF and end
SERVERS = ("epoll", "asyncio", "k6lab")


# --- the loopback servers (run in a child process: `pipe.py --serve KIND`) -------------------


class _FixedResponder(asyncio.Protocol):
    """HTTP/1.1 keep-alive: one fixed 200 response per request head (GETs: no bodies)."""

    def __init__(self, open_transports: set[asyncio.Transport]) -> None:
        self._open = open_transports
        self._transport: asyncio.Transport | None = None
        self._pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._open.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._open.discard(self._transport)

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        pending = self._pending + data if self._pending else data
        heads = pending.count(_END_OF_HEAD)
        if heads:
            self._transport.write(_RESPONSE * heads)
            pending = pending[pending.rindex(_END_OF_HEAD) + len(_END_OF_HEAD) :]
        if len(pending) > 65536:  # not a client of ours
            self._transport.close()
        self._pending = pending


async def _serve_asyncio(lifetime_s: float) -> None:
    loop = asyncio.get_running_loop()
    open_transports: set[asyncio.Transport] = set()
    server = await loop.create_server(
        lambda: _FixedResponder(open_transports), "127.0.0.1", 0, backlog=128
    )
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    stop: asyncio.Future[None] = loop.create_future()

    def finish() -> None:
        if not stop.done():
            stop.set_result(None)

    def on_stdin() -> None:
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data:  # the parent closed our stdin (or died)
            finish()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    loop.call_later(lifetime_s, finish)
    await stop
    server.close()
    for transport in list(open_transports):
        transport.abort()
    await server.wait_closed()


def _serve_epoll(lifetime_s: float) -> None:
    """The same responder as `_FixedResponder` on a bare epoll loop (no asyncio layers)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    listener.setblocking(False)
    print(f"http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    stdin = sys.stdin.fileno()
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    poller.register(stdin, select.EPOLLIN)
    conns: dict[int, socket.socket] = {}
    pending: dict[int, bytes] = {}
    end = time.monotonic() + lifetime_s
    try:
        while (left := end - time.monotonic()) > 0:
            for fd, _ in poller.poll(min(left, 1.0)):
                if fd == listener.fileno():
                    with suppress(BlockingIOError):
                        while True:
                            conn, _addr = listener.accept()
                            conn.setblocking(True)  # epoll says when recv will not block
                            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                            conns[conn.fileno()] = conn
                            pending[conn.fileno()] = b""
                            poller.register(conn.fileno(), select.EPOLLIN)
                elif fd == stdin:
                    if not os.read(stdin, 4096):  # the parent closed our stdin (or died)
                        return
                else:
                    conn = conns[fd]
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        data = b""
                    buffer = pending[fd] + data if pending[fd] else data
                    heads = buffer.count(_END_OF_HEAD)
                    if heads:
                        try:
                            conn.sendall(_RESPONSE * heads)
                        except OSError:
                            data = b""
                        buffer = buffer[buffer.rindex(_END_OF_HEAD) + len(_END_OF_HEAD) :]
                    if not data or len(buffer) > 65536:
                        poller.unregister(fd)
                        del conns[fd], pending[fd]
                        conn.close()
                    else:
                        pending[fd] = buffer
    finally:
        for conn in conns.values():
            conn.close()
        poller.close()
        listener.close()


def _serve_k6lab(lifetime_s: float) -> None:
    stdin_closed = threading.Event()

    def watch_stdin() -> None:
        with suppress(OSError):
            while os.read(sys.stdin.fileno(), 4096):
                pass
        stdin_closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    with k6lab.serve() as base_url:
        print(base_url, flush=True)
        stdin_closed.wait(lifetime_s)


def serve(kind: str, lifetime_s: float) -> None:
    """Serve until stdin closes or `lifetime_s` passes; print the base URL first."""
    if kind == "epoll":
        _serve_epoll(lifetime_s)
    elif kind == "asyncio":
        asyncio.run(_serve_asyncio(lifetime_s))
    else:
        _serve_k6lab(lifetime_s)


# --- children reaped with os.wait4 -------------------------------------------------------------


@dataclass
class Usage:
    """What os.wait4 says about one child, plus its wall time."""

    exit_code: int | None = None  # None: not reaped (should not happen); -9: SIGKILL
    wall_s: float = 0.0
    user_s: float = 0.0
    sys_s: float = 0.0
    maxrss_kib: int = 0
    killed: bool = False  # by the watchdog

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


class Child:
    """A Popen reaped by os.wait4 in a thread (so each child gets its own rusage)."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.popen = popen
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.usage = Usage()
        self._thread = threading.Thread(target=self._reap, name=f"reap-{name}", daemon=True)
        self._thread.start()

    def _reap(self) -> None:
        _, status, rusage = os.wait4(self.popen.pid, 0)
        self.ended = time.perf_counter()
        code = os.waitstatus_to_exitcode(status)
        self.popen.returncode = code  # Popen must never waitpid() this pid itself
        self.usage.exit_code = code
        self.usage.wall_s = self.ended - self.started
        self.usage.user_s = rusage.ru_utime
        self.usage.sys_s = rusage.ru_stime
        self.usage.maxrss_kib = rusage.ru_maxrss  # KiB on Linux

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, deadline: float) -> bool:
        """Wait until reaped or `deadline` (perf_counter); True if reaped."""
        self._thread.join(timeout=max(0.0, deadline - time.perf_counter()))
        return not self.running

    def kill(self) -> None:
        if self.running:
            self.usage.killed = True
            with suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
        self._thread.join(timeout=10)


@contextmanager
def reaped(children: list[Child]) -> Iterator[list[Child]]:
    """On any way out (timeout, Ctrl-C, error) no child is left running."""
    try:
        yield children
    finally:
        for child in children:
            child.kill()


def start_server(kind: str, lifetime_s: float, stderr: IO[bytes]) -> tuple[Child, str]:
    me = str(Path(__file__).resolve())
    popen = subprocess.Popen(
        [sys.executable, me, "--serve", kind, "--serve-lifetime", str(lifetime_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    child = Child(f"server-{kind}", popen)
    box: list[bytes] = []  # its first stdout line, read in a thread: bounded wait
    reader = threading.Thread(target=_read_line, args=(popen.stdout, box), daemon=True)
    reader.start()
    reader.join(SERVER_START_TIMEOUT_S)
    line = box[0] if box else b""
    url = line.decode("utf-8", "replace").strip()
    if not url.startswith("http://127.0.0.1:"):
        stop_server(child)
        raise RuntimeError(f"the {kind} server did not start (got {line!r})")
    return child, url


def _read_line(stream: IO[bytes] | None, box: list[bytes]) -> None:
    if stream is not None:
        box.append(stream.readline())


def stop_server(child: Child) -> None:
    stdin = child.popen.stdin
    if stdin is not None:
        with suppress(OSError):
            stdin.close()
    if not child.wait(time.perf_counter() + SERVER_STOP_TIMEOUT_S):
        child.kill()
    if child.popen.stdout is not None:
        child.popen.stdout.close()


# --- one run ----------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    kind: str  # baseline | piped
    round: int
    bridge_args: list[str] = field(default_factory=list)
    http_reqs: int | None = None
    req_per_s: float | None = None
    test_run_s: float | None = None  # http_reqs count / rate
    checks_failed: int | None = None
    http_req_failed: float | None = None  # rate, 0..1
    lines: int | None = None
    k6: Usage = field(default_factory=Usage)
    server: Usage = field(default_factory=Usage)
    bridge: Usage | None = None
    drain_s: float | None = None
    busy_cpu_s: float | None = None  # every CPU, from before the server starts to after it ends
    k6_stderr_tail: str = ""
    bridge_stderr_tail: str = ""

    @property
    def other_cpu_s(self) -> float | None:
        """Busy CPU not used by this run's children: other load on the machine, the kernel."""
        if self.busy_cpu_s is None:
            return None
        ours = self.k6.cpu_s + self.server.cpu_s + (self.bridge.cpu_s if self.bridge else 0.0)
        return self.busy_cpu_s - ours

    @property
    def ok(self) -> bool:
        codes = [self.k6.exit_code] + ([self.bridge.exit_code] if self.bridge else [])
        return all(code == 0 for code in codes) and self.http_reqs is not None


@dataclass(frozen=True)
class Config:
    vus: int
    duration_s: float
    server: str
    timeout_s: float
    workdir: Path
    keep: bool
    bridge: tuple[str, ...]  # the k6mcp-bridge console script


def busy_cpu_s() -> float | None:
    """CPU seconds every CPU has spent busy since boot (/proc/stat), None if unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def tail(path: Path, limit: int = 800) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace").strip()


def run_once(config: Config, label: str, bridge_args: list[str] | None, index: int) -> Run:
    """One k6 test (and one bridge if `bridge_args` is not None) against a fresh server."""
    piped = bridge_args is not None
    run = Run(label, "piped" if piped else "baseline", index, list(bridge_args or []))
    stem = f"r{index}-{re.sub(r'[^A-Za-z0-9]+', '_', label).strip('_')}"
    work = config.workdir
    script = work / "script.js"
    results = work / f"{stem}.json"
    summary = work / f"{stem}-summary.json"
    paths = {
        name: work / f"{stem}-{name}.txt"
        for name in ("server-err", "k6-out", "k6-err", "bridge-out", "bridge-err")
    }
    env = k6lab.k6_env("")
    env.update({"PIPE_VUS": str(config.vus), "PIPE_DURATION": f"{config.duration_s:g}s"})
    k6_cmd = [*k6lab.k6_run_args(), "-q", "--summary-export", str(summary)]
    k6_cmd += ["--out", "json=-" if piped else f"json={results}", str(script)]
    bridge_env = {k: v for k, v in os.environ.items() if not k.startswith("K6MCP_BRIDGE_")}

    busy_before = busy_cpu_s()
    with (
        open(paths["server-err"], "wb") as server_err,
        open(paths["k6-out"], "wb") as k6_out,
        open(paths["k6-err"], "wb") as k6_err,
        open(paths["bridge-out"], "wb") as bridge_out,
        open(paths["bridge-err"], "wb") as bridge_err,
    ):
        server, base_url = start_server(config.server, config.timeout_s + 30, server_err)
        env["BASE_URL"] = base_url
        try:
            with reaped([]) as children:
                deadline = time.perf_counter() + config.timeout_s
                bridge: Child | None = None
                if piped:
                    read_end, write_end = os.pipe()  # not inheritable: only the dup2'd copies
                    try:
                        bridge = Child(
                            "bridge",
                            subprocess.Popen(
                                [*config.bridge, "run", *(bridge_args or []), "-"],
                                stdin=read_end,
                                stdout=bridge_out,
                                stderr=bridge_err,
                                env=bridge_env,
                            ),
                        )
                        children.append(bridge)
                        k6 = Child(
                            "k6",
                            subprocess.Popen(
                                k6_cmd,
                                stdin=subprocess.DEVNULL,
                                stdout=write_end,
                                stderr=k6_err,
                                env=env,
                            ),
                        )
                        children.insert(0, k6)  # wait for (and kill) k6 first: the bridge then
                        # reads EOF and ends by itself
                    finally:
                        os.close(read_end)
                        os.close(write_end)
                else:
                    k6 = Child(
                        "k6",
                        subprocess.Popen(
                            k6_cmd, stdin=subprocess.DEVNULL, stdout=k6_out, stderr=k6_err, env=env
                        ),
                    )
                    children.append(k6)
                for child in children:
                    if not child.wait(deadline):
                        print(
                            f"pipe.py: {label}: {child.name} still running after "
                            f"{config.timeout_s:g} s: killed",
                            file=sys.stderr,
                        )
                        child.kill()
                        deadline = time.perf_counter() + KILL_GRACE_S  # the bridge: EOF now
        finally:
            stop_server(server)
    busy_after = busy_cpu_s()
    if busy_before is not None and busy_after is not None:
        run.busy_cpu_s = busy_after - busy_before

    run.k6 = k6.usage
    run.server = server.usage
    if bridge is not None:
        run.bridge = bridge.usage
        if k6.ended is not None and bridge.ended is not None:
            run.drain_s = bridge.ended - k6.ended
        for name in ("bridge-out", "bridge-err"):  # where the summary plugin prints it
            match = _LINES_READ.search(paths[name].read_bytes())
            if match:
                run.lines = int(match.group(1))
                break
        run.bridge_stderr_tail = tail(paths["bridge-err"])
    elif results.exists():
        run.lines = count_lines(results)
    run.k6_stderr_tail = tail(paths["k6-err"])
    read_summary(run, summary)
    if not config.keep:
        for path in [results, summary, *paths.values()]:
            path.unlink(missing_ok=True)
    return run


def read_summary(run: Run, path: Path) -> None:
    try:
        metrics = json.loads(path.read_text())["metrics"]
    except (OSError, ValueError, KeyError):
        return
    reqs = metrics.get("http_reqs", {})
    if "count" in reqs and "rate" in reqs:
        run.http_reqs = int(reqs["count"])
        run.req_per_s = float(reqs["rate"])
        run.test_run_s = run.http_reqs / run.req_per_s if run.req_per_s else None
    run.checks_failed = metrics.get("checks", {}).get("fails")
    run.http_req_failed = metrics.get("http_req_failed", {}).get("value")


# --- report -----------------------------------------------------------------------------------


def fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def mib(kib: int) -> float:
    return kib / 1024


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    right = ["---:" if i else ":---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(right) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def runs_table(runs: Sequence[Run], repeat: int) -> str:
    header = [
        "run",
        "k6 req/s",
        "reqs",
        "k6 CPU s",
        "k6 µs/req",
        "k6 RSS MiB",
        "k6 wall s",
        "srv CPU s",
        "other CPU s",
        "lines",
        "br CPU s",
        "br RSS MiB",
        "br lines/s",
        "br µs/line",
        "br/k6 CPU",
        "drain s",
        "exit",
    ]
    rows = []
    for run in runs:
        bridge = run.bridge
        per_req = run.k6.cpu_s / run.http_reqs * 1e6 if run.http_reqs else None
        codes = [run.k6.exit_code] + ([bridge.exit_code] if bridge else [])
        rows.append(
            [
                run.label + (f" #{run.round + 1}" if repeat > 1 else ""),
                fmt(run.req_per_s, 0),
                fmt(run.http_reqs),
                fmt(run.k6.cpu_s),
                fmt(per_req, 1),
                fmt(mib(run.k6.maxrss_kib), 1),
                fmt(run.k6.wall_s),
                fmt(run.server.cpu_s),
                fmt(run.other_cpu_s),
                fmt(run.lines),
                fmt(bridge.cpu_s) if bridge else "",
                fmt(mib(bridge.maxrss_kib), 1) if bridge else "",
                fmt(run.lines / bridge.wall_s, 0) if bridge and run.lines and bridge.wall_s else "",
                fmt(bridge.cpu_s / run.lines * 1e6, 1) if bridge and run.lines else "",
                fmt(bridge.cpu_s / run.k6.cpu_s) if bridge and run.k6.cpu_s else "",
                fmt(run.drain_s),
                "/".join("?" if code is None else str(code) for code in codes),
            ]
        )
    return markdown(header, rows)


def median_of(runs: Sequence[Run], value: Callable[[Run], float | None]) -> float | None:
    values = [v for v in map(value, runs) if v is not None]
    return statistics.median(values) if values else None


def ratios_table(runs: Sequence[Run], labels: Sequence[str]) -> str:
    def by(label: str) -> list[Run]:
        return [run for run in runs if run.label == label and run.ok]

    measures: list[tuple[str, Callable[[Run], float | None]]] = [
        ("req/s ÷ baseline", lambda r: r.req_per_s),
        ("k6 RSS ÷ baseline", lambda r: float(r.k6.maxrss_kib)),
        ("k6 CPU ÷ baseline", lambda r: r.k6.cpu_s),
        ("k6 wall ÷ baseline", lambda r: r.k6.wall_s),
    ]
    base = by("baseline")
    rows = []
    for label in labels[1:]:
        row = [label]
        for _, value in measures:
            top, bottom = median_of(by(label), value), median_of(base, value)
            row.append(fmt(top / bottom, 3) if top is not None and bottom else "")
        rows.append(row)
    return markdown(["run", *(name for name, _ in measures)], rows)


@functools.cache
def k6_version() -> str:
    try:
        out = subprocess.run(
            [k6lab.k6_binary(), "version"], capture_output=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.decode("utf-8", "replace").strip()


def run_as_dict(run: Run) -> dict[str, Any]:
    data = asdict(run)
    data["ok"] = run.ok
    data["other_cpu_s"] = run.other_cpu_s
    for name in ("k6", "server", "bridge"):
        usage: Usage | None = getattr(run, name)
        if usage is not None:
            data[name]["cpu_s"] = usage.cpu_s
    return data


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="k6 alone vs `k6 --out json=- | k6mcp-bridge`: req/s, CPU, peak RSS.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of k6 load")
    parser.add_argument("--vus", type=int, default=4, help="k6 virtual users")
    parser.add_argument("--repeat", type=int, default=1, help="rounds (each runs every row)")
    parser.add_argument(
        "--bridge-args",
        action="append",
        default=[],
        metavar="ARGS",
        help="extra `k6mcp-bridge run` arguments for one more piped row (repeatable), "
        'e.g. --bridge-args="-p jsonl -o jsonl.path=/dev/null"',
    )
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="epoll",
        help="epoll: fixed 200 response on a bare epoll loop; asyncio: the same on asyncio; "
        "k6lab: tests/k6lab.py's ThreadingHTTPServer",
    )
    parser.add_argument(
        "--timeout", type=float, help="seconds before a run is killed (default 2 x duration + 60)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the script, results and logs in DIR"
    )
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--serve-lifetime", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is None:
        if args.duration <= 0 or args.vus < 1 or args.repeat < 1:
            parser.error("--duration must be > 0, --vus and --repeat >= 1")
        if args.timeout is None:
            args.timeout = 2 * args.duration + 60
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.serve_lifetime)
        return 0

    rows: list[tuple[str, list[str] | None]] = [("baseline", None), ("piped", [])]
    for extra in args.bridge_args:
        rows.append((f"piped {extra}", shlex.split(extra)))
    labels = [label for label, _ in rows]

    with tempfile.TemporaryDirectory(prefix="k6mcp-pipe-") as temp:
        workdir = Path(temp) if args.keep is None else args.keep
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "script.js").write_text(SCRIPT)
        config = Config(
            vus=args.vus,
            duration_s=args.duration,
            server=args.server,
            timeout_s=args.timeout,
            workdir=workdir,
            keep=args.keep is not None,
            bridge=tuple(bridge_command()),
        )
        runs: list[Run] = []
        for index in range(args.repeat):
            for label, bridge_args in rows:
                print(f"pipe.py: round {index + 1}/{args.repeat}: {label} ...", file=sys.stderr)
                run = run_once(config, label, bridge_args, index)
                runs.append(run)
                if not run.ok:
                    print(
                        f"pipe.py: {label}: failed (exit {run.k6.exit_code}"
                        f"{'/' + str(run.bridge.exit_code) if run.bridge else ''})\n"
                        f"k6 stderr: {run.k6_stderr_tail}\n"
                        f"bridge stderr: {run.bridge_stderr_tail}",
                        file=sys.stderr,
                    )
                elif run.checks_failed or run.http_req_failed:
                    print(
                        f"pipe.py: {label}: {run.checks_failed} failed checks, "
                        f"http_req_failed rate {run.http_req_failed}",
                        file=sys.stderr,
                    )

    cores = os.cpu_count()
    print(
        f"k6 `{k6_version()}`, Python {platform.python_version()}, {cores} CPUs, "
        f"{args.vus} VUs x {args.duration:g} s, server `{args.server}`, {args.repeat} round(s)\n"
    )
    print(runs_table(runs, args.repeat))
    print()
    print(ratios_table(runs, labels))
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "vus": args.vus,
                    "duration_s": args.duration,
                    "repeat": args.repeat,
                    "server": args.server,
                    "cpus": cores,
                    "k6_version": k6_version(),
                    "python": platform.python_version(),
                    "runs": [run_as_dict(run) for run in runs],
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if all(run.ok for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
