"""The installed ``k6mcp-bridge mcp`` as a subprocess: stdio (live ``--follow`` of a file a real
10 s k6 run is writing; the legacy handshake; nothing but protocol on stdout) and streamable
HTTP (loopback, the Origin check, the bearer token, the refusal of a non-loopback bind)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from mcplab import LIVE, ROOT, bridge_exe, clean_env, k6lab, store_run

SAMPLE = ROOT / "sample_outputs" / "k6-run.json"
"""A real k6 v1.1.0 capture (see its README)."""


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data: dict[str, Any] = result.structured_content
    return data


def reqs(result: Any) -> tuple[str, float]:
    data = structured(result)
    [series] = data["series"]
    return data["run_state"], series["values"]["count"]


def stdio(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=bridge_exe(), args=["mcp", *args], env=clean_env())


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("mcp-sample") / "runs.db"
    store_run(SAMPLE, store)
    return store


def test_follow_a_file_k6_is_writing_live_then_finished(tmp_path: Path) -> None:
    results, summary, store = tmp_path / "k6.json", tmp_path / "summary.json", tmp_path / "s.db"
    with k6lab.serve() as base_url:
        k6 = subprocess.Popen(
            [
                *k6lab.k6_run_args(),
                *("--quiet", "--out", f"json={results}", "--summary-export", str(summary)),
                str(LIVE),
            ],
            env={**k6lab.k6_env(base_url), "DURATION": "10s"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        server = stdio("--store", str(store), "--follow", str(results), "--wait-pid", str(k6.pid))
        query = {"metric": "http_reqs", "stats": ["count"]}

        async def go() -> tuple[Any, Any, str]:
            async with Client(server) as client:
                await anyio.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
                live = await client.call_tool("query_metric", query)
                assert k6.poll() is None, "k6 ended before the live call"
                await anyio.to_thread.run_sync(lambda: k6.wait(timeout=30))
                deadline = time.monotonic() + 20
                while True:
                    final = await client.call_tool("query_metric", query)
                    if structured(final)["run_state"] != "running" or time.monotonic() > deadline:
                        break
                    await anyio.sleep(0.2)
                return live, final, client.protocol_version

        try:
            live, final, version = anyio.run(go)
        finally:
            if k6.poll() is None:
                k6.kill()
            k6.wait(timeout=30)
    assert version == "2026-07-28"
    exported = json.loads(summary.read_text(encoding="utf-8"))["metrics"]["http_reqs"]["count"]
    state, count = reqs(live)
    assert state == "running" and 0 < count < exported
    state, count = reqs(final)
    assert state == "finished" and count == exported


def test_stdio_legacy_handshake(sample_store: Path) -> None:
    async def go() -> tuple[str, Any]:
        async with Client(stdio("--store", str(sample_store)), mode="legacy") as client:
            return client.protocol_version, await client.call_tool("top_errors", {})

    version, result = anyio.run(go)
    assert version == "2025-11-25"
    [error] = structured(result)["errors"]
    assert error["status"] == "404" and error["endpoint"].endswith("/missing")


INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}


def test_stdout_is_only_protocol_even_while_following(tmp_path: Path) -> None:
    """Raw JSON-RPC over the pipes, with the follow pipeline logging at INFO."""
    store = tmp_path / "s.db"
    lines = [
        INIT,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    server = subprocess.Popen(
        [
            *(bridge_exe(), "mcp", "--store", str(store), "--follow", str(SAMPLE)),
            *("--idle-timeout", "0.5", "--log-level", "INFO"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert server.stdin is not None
    server.stdin.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    server.stdin.flush()
    time.sleep(2.0)  # the follow pipeline writes the run (and logs) meanwhile
    out, err = server.communicate(timeout=30)
    replies = [json.loads(line) for line in out.decode().splitlines()]
    assert [reply.get("id") for reply in replies] == [1, 2]
    assert replies[0]["result"]["protocolVersion"] == "2025-11-25"
    assert b"store: run" in err  # the bridge's log went to stderr
    assert server.returncode == 0


# --- streamable HTTP -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(store: Path, *more: str) -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [bridge_exe(), "mcp", "--store", str(store), "--http", f"127.0.0.1:{port}", *more],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the HTTP server did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr is not None:
            server.stderr.close()


HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def test_http_on_loopback_answers_and_checks_origin(sample_store: Path) -> None:
    with http_server(sample_store) as url:

        async def go() -> tuple[Any, str]:
            async with Client(url) as client:
                return await client.call_tool("list_runs", {}), client.protocol_version

        result, version = anyio.run(go)
        assert structured(result)["runs"][0]["run_state"] == "finished"
        assert version == "2026-07-28"
        foreign = httpx2.post(url, json=INIT, headers={**HEADERS, "Origin": "http://evil.example"})
        assert foreign.status_code == 403 and "evil.example" in foreign.text
        local = httpx2.post(url, json=INIT, headers={**HEADERS, "Origin": url.rsplit("/", 1)[0]})
        assert local.status_code == 200


def test_http_with_a_token_needs_it(sample_store: Path) -> None:
    with http_server(sample_store, "--token", "s3cret") as url:
        assert httpx2.post(url, json=INIT, headers=HEADERS).status_code == 401
        wrong = {**HEADERS, "Authorization": "Bearer nope"}
        assert httpx2.post(url, json=INIT, headers=wrong).status_code == 401

        async def go() -> Any:
            auth = {"Authorization": "Bearer s3cret"}
            async with (
                httpx2.AsyncClient(headers=auth) as http,
                Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
            ):
                return await client.call_tool("list_metrics", {})

        assert any(m["name"] == "http_reqs" for m in structured(anyio.run(go))["metrics"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--http", "0.0.0.0:8765"], "not a loopback address"),
        (["--http", "192.0.2.1:8765", "--allow-remote"], "needs a bearer token"),
        (["--http", "nonsense"], "expected HOST:PORT"),
    ],
)
def test_http_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    done = subprocess.run(
        [bridge_exe(), "mcp", "--store", str(tmp_path / "s.db"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=clean_env(),
    )
    assert done.returncode == 2
    assert expected in done.stderr and done.stdout == ""
