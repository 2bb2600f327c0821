"""``k6mcp-bridge --listen``: the real bridge process serving real HTTP on 127.0.0.1, fed by
real k6 (the seed's example script) and by a stdlib client; its output read back from ``jsonl``.

Every bridge here is ended by SIGTERM (or ``--idle-timeout``) and waited for with a timeout.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import k6lab
from conftest import ROOT, bridge_exe, clean_env, k6_stream, point_line, records

SEED_SCRIPT = ROOT / "examples" / "seed-post-metrics.js"
CAPTURE = ROOT / "tests" / "data" / "k6-samples" / "json-full-2vus.jsonl"
TIMEOUT_S = 60


@dataclass
class Listening:
    """A running ``k6mcp-bridge --listen``: its URL, and its stderr so far."""

    process: subprocess.Popen[bytes]
    url: str
    stderr: list[str]
    reader: threading.Thread

    def post(
        self, body: bytes, content_type: str | None = "application/json", **headers: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        return request(self.url, "POST", body, content_type, **headers)

    def stop(self) -> tuple[int, str]:
        """SIGTERM (unless it has ended), then the exit code and the whole of stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=TIMEOUT_S)
        self.reader.join(timeout=TIMEOUT_S)  # stderr read to its end
        return code, "".join(self.stderr)


def request(
    url: str,
    method: str,
    body: bytes | None = None,
    content_type: str | None = None,
    **headers: str,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT_S)
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    try:
        connection.request(method, parts.path, body=body, headers=sent)
        response = connection.getresponse()
        answer = response.read()
        return response.status, json.loads(answer or b"{}"), dict(response.getheaders())
    finally:
        connection.close()


@contextmanager
def listening(
    tmp_path: Path, *args: str, address: str = "127.0.0.1:0", **env: str
) -> Iterator[Listening]:
    """The bridge with ``--listen ADDRESS -p jsonl -o jsonl.path=TMP/out.jsonl`` and ``args``,
    ``env`` added to its environment."""
    argv = [
        bridge_exe(),
        "--listen",
        address,
        "-p",
        "jsonl",
        "-o",
        f"jsonl.path={tmp_path / 'out.jsonl'}",
    ]
    process = subprocess.Popen([*argv, *args], stderr=subprocess.PIPE, env=clean_env(**env))
    assert process.stderr is not None
    stderr: list[str] = []
    ready = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert process.stderr is not None
        for raw in process.stderr:
            line = raw.decode(errors="replace")
            stderr.append(line)
            if "listening on " in line and not url:
                url.append(line.split("listening on ", 1)[1].strip())
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, name="bridge-stderr", daemon=True)
    reader.start()
    try:
        assert ready.wait(TIMEOUT_S), "the bridge did not start listening"
        assert url, f"the bridge ended before listening: {''.join(stderr)}"
        yield Listening(process, url[0], stderr, reader)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT_S)
        reader.join(timeout=TIMEOUT_S)


def out_records(tmp_path: Path) -> list[dict[str, Any]]:
    return records((tmp_path / "out.jsonl").read_text(encoding="utf-8"))


def replay_records(tmp_path: Path, source: Path, *args: str) -> list[dict[str, Any]]:
    out = tmp_path / "replay.jsonl"
    done = subprocess.run(
        [bridge_exe(), str(source), "-p", "jsonl", "-o", f"jsonl.path={out}", *args],
        capture_output=True,
        timeout=TIMEOUT_S,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return records(out.read_text(encoding="utf-8"))


def sockets_of(pid: int) -> int:
    """How many sockets the process holds open."""
    fds = Path(f"/proc/{pid}/fd")
    return sum(os.readlink(fds / fd).startswith("socket:") for fd in os.listdir(fds))


# --- real k6, the seed's example ------------------------------------------------------------------


def test_the_seed_script_under_real_k6_gives_one_point_per_entry_per_request(
    tmp_path: Path,
) -> None:
    export = tmp_path / "bridge-export.json"
    with listening(tmp_path, "--summary-export", str(export)) as bridge:
        k6 = subprocess.run(
            [
                *k6lab.k6_run_args(),
                "-q",
                "--summary-export",
                str(tmp_path / "k6.json"),
                str(SEED_SCRIPT),
            ],
            env=k6lab.k6_env("") | {"MCP_URL": bridge.url, "DURATION": "2s"},
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        code, stderr = bridge.stop()
    assert k6.returncode == 0, k6.stderr.decode()
    assert code == 0, stderr
    k6_metrics = json.loads((tmp_path / "k6.json").read_text())["metrics"]
    requests = k6_metrics["http_reqs"]["count"]
    assert requests > 100
    assert k6_metrics["checks"]["passes"] == requests  # every POST got its 202

    got = out_records(tmp_path)
    points = [m["data"] for m in got if m["type"] == "point"]
    assert sum(p["metric"] == "vus" for p in points) == requests
    assert sum(p["metric"] == "iterations" for p in points) == requests
    assert {(p["metric"], p["value"]) for p in points} == {("vus", 10.0), ("iterations", 100.0)}
    kinds = {m["data"]["name"]: m["data"]["type"] for m in got if m["type"] == "metric"}
    assert kinds == {"vus": "gauge", "iterations": "counter"}
    ours = json.loads(export.read_text())["metrics"]
    assert ours["iterations"]["count"] == 100 * requests  # a counter adds every POST's value
    assert ours["vus"]["value"] == 10


# --- the same pipeline as a replay ----------------------------------------------------------------


def test_ndjson_of_a_real_capture_posted_in_chunks_equals_a_replay(tmp_path: Path) -> None:
    lines = CAPTURE.read_bytes().splitlines(keepends=True)
    ours, theirs = tmp_path / "listen.json", tmp_path / "replay.json"
    with listening(tmp_path, "--summary-export", str(ours)) as bridge:
        for start in range(0, len(lines), 50):
            status, answer, _ = bridge.post(
                b"".join(lines[start : start + 50]), "application/x-ndjson"
            )
            assert (status, answer["rejected"]) == (202, 0)
        code, stderr = bridge.stop()
    assert code == 0, stderr
    assert out_records(tmp_path) == replay_records(
        tmp_path, CAPTURE, "--summary-export", str(theirs)
    )
    assert json.loads(ours.read_text()) == json.loads(theirs.read_text())


def test_the_bridges_own_jsonl_posted_back_gives_the_same_records(tmp_path: Path) -> None:
    replayed = replay_records(tmp_path, CAPTURE)
    every = (tmp_path / "replay.jsonl").read_text(encoding="utf-8").splitlines()
    derived = sum(json.loads(line)["type"] not in ("metric", "point") for line in every)
    assert derived > 0
    with listening(tmp_path) as bridge:
        status, answer, _ = bridge.post(("[" + ",".join(every) + "]").encode())
        code, stderr = bridge.stop()
    assert (status, answer["recomputed"], answer["accepted"]) == (202, derived, len(replayed))
    assert code == 0, stderr
    assert out_records(tmp_path) == replayed


# --- answers --------------------------------------------------------------------------------------


def test_bad_items_get_400_with_line_and_field_and_the_good_ones_arrive(tmp_path: Path) -> None:
    good = k6_stream(3).splitlines()
    bad = json.loads(good[1])
    bad["data"]["value"] = "fast"
    body = b"\n".join([good[0], json.dumps(bad).encode(), good[1], b"hello", good[2]])
    with listening(tmp_path) as bridge:
        status, answer, _ = bridge.post(body, "application/x-ndjson")
        code, stderr = bridge.stop()
    assert status == 400
    assert answer["accepted"] == 3 and answer["rejected"] == 2
    assert [(e["line"], e["field"]) for e in answer["errors"]] == [(2, "data.value"), (4, None)]
    assert len(out_records(tmp_path)) == 3
    assert code == 65, stderr  # records were refused: as for bad lines in a file
    assert "request 1, line 2: field data.value:" in stderr
    assert re.search(r"^  items read +5$", stderr, re.M), stderr  # the summary counts items
    assert re.search(r"^  rejected items +2$", stderr, re.M), stderr
    assert "lines" not in stderr.split("k6mcp-bridge summary")[-1]


def test_limits_content_types_paths_and_health(tmp_path: Path) -> None:
    point = point_line(1.5)
    with listening(tmp_path, "--listen-max-body", "2000") as bridge:
        assert bridge.post(point * 30, "application/x-ndjson")[0] == 413
        chunked = _chunked_post(bridge.url, [point + b"\n"] * 30)
        assert chunked == 413  # no Content-Length: counted as it streams in
        status, answer, _ = bridge.post(point, "text/plain")
        assert status == 415 and "application/x-ndjson" in answer["error"]
        assert bridge.post(point, None)[0] == 415
        assert request(bridge.url, "GET")[0] == 405
        assert request(bridge.url.replace("/mcp", "/other"), "GET")[0] == 404
        health = bridge.url.replace("/mcp", "/healthz")
        assert request(health, "GET")[:2] == (200, {"status": "ok", "requests": 0})
        assert bridge.post(point, "application/x-ndjson")[0] == 202
        code, stderr = bridge.stop()
    assert code == 0, stderr
    assert len(out_records(tmp_path)) == 1


def _chunked_post(url: str, parts: list[bytes]) -> int:
    target = urlsplit(url)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=TIMEOUT_S)
    try:
        headers = {"Content-Type": "application/x-ndjson", "Transfer-Encoding": "chunked"}
        connection.request(
            "POST", target.path, body=iter(parts), headers=headers, encode_chunked=True
        )
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("where", ["flag", "environment"])
def test_with_a_token_every_request_needs_it(tmp_path: Path, where: str) -> None:
    body = json.dumps({"type": "metrics", "data": {"vus": 1}}).encode()
    given = (
        listening(tmp_path, "--listen-token", "s3cret")
        if where == "flag"
        else listening(tmp_path, K6MCP_BRIDGE_LISTEN_TOKEN="s3cret")
    )
    with given as bridge:
        status, _, headers = bridge.post(body)
        assert status == 401 and headers["www-authenticate"].startswith("Bearer")
        assert bridge.post(body, Authorization="Bearer wrong")[0] == 401
        assert request(bridge.url.replace("/mcp", "/healthz"), "GET")[0] == 401
        assert bridge.post(body, Authorization="Bearer s3cret")[0] == 202
        code, stderr = bridge.stop()
    assert code == 0, stderr
    assert [m["data"]["metric"] for m in out_records(tmp_path) if m["type"] == "point"] == ["vus"]


def test_a_non_loopback_address_without_a_token_does_not_start(bridge: str) -> None:
    done = subprocess.run(
        [bridge, "--listen", "0.0.0.0:0"], capture_output=True, timeout=TIMEOUT_S, env=clean_env()
    )
    assert done.returncode == 2
    assert "--listen-token" in done.stderr.decode()
    assert "listening on" not in done.stderr.decode()


def test_a_taken_port_is_a_clear_start_up_error(bridge: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [bridge, "--listen", f"127.0.0.1:{port}"],
            capture_output=True,
            timeout=TIMEOUT_S,
            env=clean_env(),
        )
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


@pytest.mark.parametrize(
    "args",
    [["results.json"], ["--follow", "results.json"], ["--checkpoint", "cp"]],
    ids=["source", "follow", "checkpoint"],
)
def test_listen_is_a_source_of_its_own(bridge: str, args: list[str]) -> None:
    done = subprocess.run(
        [bridge, "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        timeout=TIMEOUT_S,
        env=clean_env(),
    )
    assert done.returncode == 2
    assert "--listen" in done.stderr.decode() and "Traceback" not in done.stderr.decode()


def test_nothing_listens_without_listen(tmp_path: Path, bridge: str) -> None:
    piped = subprocess.Popen(
        [bridge, "-p", "jsonl", "-o", f"jsonl.path={tmp_path / 'p.jsonl'}"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
    )
    assert piped.stdin is not None
    try:
        piped.stdin.write(CAPTURE.read_bytes())
        piped.stdin.flush()
        _wait_for_lines(tmp_path / "p.jsonl")  # the plugins run: the bridge is past start-up
        assert sockets_of(piped.pid) == 0
    finally:
        piped.stdin.close()
        assert piped.wait(timeout=TIMEOUT_S) == 0
    with listening(tmp_path) as receiver:
        assert sockets_of(receiver.process.pid) >= 1
        receiver.stop()


def _wait_for_lines(path: Path) -> None:
    ready = threading.Event()
    for _ in range(600):
        if path.exists() and path.stat().st_size > 0:
            return
        ready.wait(0.05)
    pytest.fail(f"{path} stayed empty")


# --- the end --------------------------------------------------------------------------------------


def test_sigterm_delivers_every_accepted_request_then_ends(tmp_path: Path) -> None:
    accepted: list[int] = []
    lock = threading.Lock()

    with listening(tmp_path) as bridge:

        def client(number: int) -> None:
            for index in range(400):
                body = json.dumps({"type": "metrics", "data": {f"client_{number}": index}}).encode()
                try:
                    status, answer, _ = bridge.post(body)
                except OSError:  # the server has stopped taking requests
                    return
                if status == 202:
                    with lock:
                        accepted.append(answer["accepted"])

        clients = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(4)]
        for thread in clients:
            thread.start()
        while len(accepted) < 200:
            threading.Event().wait(0.01)
        code, stderr = bridge.stop()
        for thread in clients:
            thread.join(timeout=TIMEOUT_S)
    assert code == 0, stderr  # a signal is how a receiver ends
    assert len(out_records(tmp_path)) == sum(accepted)
    assert "summary" in stderr


def test_idle_timeout_ends_the_run(tmp_path: Path) -> None:
    with listening(tmp_path, "--idle-timeout", "0.5") as bridge:
        assert bridge.post(json.dumps({"type": "metrics", "data": {"vus": 2}}).encode())[0] == 202
        code = bridge.process.wait(timeout=TIMEOUT_S)  # no signal: it ends by itself
    assert code == 0
    assert len(out_records(tmp_path)) == 2  # the definition and the point


def test_a_receiver_that_got_no_record_says_so(tmp_path: Path) -> None:
    with listening(tmp_path, "--idle-timeout", "0.3") as bridge:
        assert bridge.post(b"nonsense\n", "application/x-ndjson")[0] == 400
        code, stderr = bridge.stop()  # it ends by itself: --idle-timeout
    assert code == 65
    assert f"no record was POSTed to {bridge.url} (1 items read, none valid)" in stderr
