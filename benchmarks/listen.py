"""The ``--listen`` receiver under real k6: the seed's example script POSTing as fast as it can.

Usage (k6 v1.1.0 on PATH or next to the Python in use, the project installed with [http]):

    python benchmarks/listen.py [--duration 10] [--vus 4] [--repeat 1]

Rows, side by side (interleaved over ``--repeat`` rounds), each a fresh server on 127.0.0.1
and one run of ``examples/seed-post-metrics.js`` (every iteration POSTs
``{"type": "metrics", "data": {"vus": 10, "iterations": 100}}``):

* ``bare uvicorn``: the baseline, the same server library (uvicorn with httptools) running an
  ASGI app that reads the body and answers 202, nothing more: this file with ``--bare``;
* ``bridge``: ``k6mcp-bridge --listen 127.0.0.1:0`` with the default plugins;
* ``bridge -p jsonl``: every message written out, and counted: ``lost`` is the points a
  request was answered 202 for (two per request: ``vus`` and ``iterations``) but that are not
  in the output.

Columns: k6's ``http_reqs`` rate and count (its ``--summary-export``), the server's CPU seconds
and µs of CPU per request (``os.wait4`` rusage), ``lost``, and the server's exit code. The
server is stopped with SIGTERM once k6 is done; a watchdog kills anything still running after
``--duration`` x 2 + 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_tools import bridge_command
from pipe import fmt, markdown

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "seed-post-metrics.js"
sys.path.insert(0, str(ROOT / "tests"))
import k6lab  # noqa: E402  (the tests' k6 helpers: binary, environment, no REST API)


@dataclass
class Row:
    label: str
    rate: float
    requests: int
    cpu_s: float
    lost: int | None
    exit: int


def bare_server() -> None:
    """The baseline: uvicorn (httptools) and an ASGI app that answers 202 to every request."""
    import uvicorn

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        body = b'{"accepted":0}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"14")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    original = server.startup

    async def startup(sockets=None):  # type: ignore[no-untyped-def]
        await original(sockets)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"listening on http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def start(argv: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    """A server process and the URL it prints on stderr once it listens."""
    process = subprocess.Popen(argv, stderr=subprocess.PIPE)
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode(errors="replace")
        if "listening on " in line:
            threading.Thread(target=process.stderr.read, daemon=True).start()  # keep it drained
            return process, line.split("listening on ", 1)[1].strip()
    raise SystemExit(f"{argv[0]} did not start listening")


def run_once(label: str, argv: list[str], jsonl: Path | None, args: argparse.Namespace) -> Row:
    server, url = start(argv)
    watchdog = threading.Timer(args.duration * 2 + 60, server.kill)
    watchdog.start()
    export = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        env = k6lab.k6_env("") | {"MCP_URL": url, "DURATION": f"{args.duration}s"}
        subprocess.run(
            [
                *k6lab.k6_run_args(),
                "-q",
                "--vus",
                str(args.vus),
                "--summary-export",
                str(export),
                str(SCRIPT),
            ],
            env=env,
            capture_output=True,
            timeout=args.duration * 2 + 60,
            check=True,
        )
        server.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
    finally:
        watchdog.cancel()
    metrics = json.loads(export.read_text())["metrics"]
    export.unlink()
    requests = int(metrics["http_reqs"]["count"])
    lost = None
    if jsonl is not None:
        lines = jsonl.read_text().splitlines()
        points = sum(json.loads(line)["type"] == "point" for line in lines)
        lost = 2 * int(metrics["checks"]["passes"]) - points
        jsonl.unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return Row(label, metrics["http_reqs"]["rate"], requests, cpu, lost, server.returncode)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="k6 seconds per run")
    parser.add_argument("--vus", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare:
        bare_server()
        return 0
    out = Path(tempfile.mkdtemp()) / "out.jsonl"
    bridge = [*bridge_command(), "--listen", "127.0.0.1:0"]
    targets = [
        ("bare uvicorn", [sys.executable, __file__, "--bare"], None),
        ("bridge", bridge, None),
        ("bridge -p jsonl", [*bridge, "-p", "jsonl", "-o", f"jsonl.path={out}"], out),
    ]
    rows = [run_once(*target, args) for _ in range(args.repeat) for target in targets]
    header = ["server", "k6 req/s", "reqs", "srv CPU s", "srv µs/req", "lost", "exit"]
    table = [
        [
            r.label,
            fmt(r.rate, 0),
            str(r.requests),
            fmt(r.cpu_s),
            fmt(r.cpu_s / r.requests * 1e6, 0),
            "" if r.lost is None else str(r.lost),
            str(r.exit),
        ]
        for r in rows
    ]
    print(markdown(header, table))
    # uvicorn, on the main thread of the bare server, ends by re-raising the SIGTERM it caught
    ok = [r.exit in (0, -signal.SIGTERM) and not r.lost for r in rows]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
