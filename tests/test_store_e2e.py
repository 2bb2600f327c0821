"""The run store end to end: a real k6 v1.1.0 against the loopback server, piped into
``k6mcp-bridge -p store``, queried while k6 runs, after it ends, and after the writer is killed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import k6lab
from conftest import ROOT, bridge_exe, clean_env
from storelab import cli, k6_percentile, k6_values, query_json, runs_json

SCRIPT = ROOT / "tests" / "k6_scripts" / "store_live.js"


@contextmanager
def k6_into_store(
    store: Path, *k6_args: str, bridge_args: tuple[str, ...] = ()
) -> Iterator[tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """k6 (10 s) piped into the bridge writing ``store``; both are ended on the way out."""
    with k6lab.serve() as base_url:
        env = k6lab.k6_env(base_url)
        k6 = subprocess.Popen(
            [*k6lab.k6_run_args(), "--out", "json=-", *k6_args, str(SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        bridge = subprocess.Popen(
            [bridge_exe(), "-q", "-p", "store", "-o", f"store.path={store}", *bridge_args],
            stdin=k6.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        assert k6.stdout is not None
        k6.stdout.close()
        try:
            yield k6, bridge
        finally:
            for process in (k6, bridge):
                if process.poll() is None:
                    process.kill()
                process.wait(timeout=30)
            if bridge.stderr is not None:
                bridge.stderr.close()


def wait_for_buckets(store: Path, deadline_s: float = 20) -> None:
    """Until the store lists a run that has buckets."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if store.exists():
            done = cli("runs", "--store", str(store), "--json")
            if done.returncode == 0:
                runs = json.loads(done.stdout)
                if runs and runs[0]["last_time"] is not None:
                    return
        time.sleep(0.2)
    raise AssertionError("no bucket reached the store in time")


def count(result: dict[str, Any]) -> float:
    [series] = result["series"]
    value: float = series["values"]["count"]
    return value


def test_queries_while_k6_runs_and_after_it_ends(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    reference = tmp_path / "k6.json"
    summary = tmp_path / "summary.json"
    started = time.monotonic()
    with k6_into_store(store, "--out", f"json={reference}", "--summary-export", str(summary)) as (
        k6,
        bridge,
    ):
        wait_for_buckets(store)
        time.sleep(max(0.0, 5.0 - (time.monotonic() - started)))
        args = ("--tag", "name=home", "--stat", "count", "--stat", "p(95)")
        early = query_json(store, "http_req_duration", *args)
        early_reqs = query_json(store, "http_reqs", "--stat", "count")
        time.sleep(2.0)
        later = query_json(store, "http_req_duration", *args)
        assert k6.poll() is None, "k6 ended before the live queries were made"
        assert k6.wait(timeout=60) == 0
        assert bridge.wait(timeout=60) == 0

    assert early["run_state"] == later["run_state"] == "running"
    assert early_reqs["run_state"] == "running"
    assert 0 < count(early) < count(later)
    assert early["as_of"] < later["as_of"]

    home = [
        v
        for tags, values in k6_values(reference, "http_req_duration").items()
        if dict(tags).get("name") == "home"
        for v in values
    ]
    final = query_json(store, "http_req_duration", *args)
    assert final["run_state"] == "finished"
    assert count(final) == len(home) > count(later)
    p95 = final["series"][0]["values"]["p(95)"]
    assert abs(p95 - k6_percentile(home, 0.95)) <= 0.01 * k6_percentile(home, 0.95)

    exported = json.loads(summary.read_text(encoding="utf-8"))["metrics"]["http_reqs"]["count"]
    assert count(query_json(store, "http_reqs", "--stat", "count")) == exported
    [run] = runs_json(store)
    assert run["state"] == "finished" and run["ended_at"] is not None


def test_a_killed_writer_leaves_a_stale_run_whose_data_is_readable(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with k6_into_store(store, bridge_args=("-o", "store.heartbeat=0.5")) as (k6, bridge):
        wait_for_buckets(store)
        time.sleep(1.0)
        bridge.send_signal(signal.SIGKILL)
        bridge.wait(timeout=10)
        [run] = runs_json(store)
        assert run["state"] == "running"  # its last heartbeat is still fresh
        k6.kill()
    time.sleep(2.0)  # > 3 heartbeats of 0.5 s
    [run] = runs_json(store)
    assert run["state"] == "stale"
    result = query_json(store, "http_reqs", "--stat", "count")
    assert result["run_state"] == "stale"
    assert result["run_id"] == run["id"]
    assert count(result) > 0
    assert query_json(store, "http_req_duration", "--tag", "name=items")["series"]
