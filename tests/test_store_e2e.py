"""The run store end to end: a real k6 v1.1.0 against the loopback server, piped into
``k6mcp-bridge -p store``, queried while k6 runs, after it ends, and after the writer is killed."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import k6lab
from conftest import ROOT, PluginDir, bridge_exe, clean_env
from k6mcp_bridge.aggregate.rollups import GRACE_S
from storelab import cli, k6_percentile, k6_values, query_json, runs_json, store_file

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


def slot_counts(store: Path, metric: str) -> dict[int, int]:
    """``metric``'s count per bucket start, all series added, in the store's one run."""
    with closing(sqlite3.connect(store)) as conn:
        rows = conn.execute(
            "SELECT b.start, SUM(b.count) FROM buckets b JOIN series s ON s.id = b.series_id "
            "WHERE s.metric = ? GROUP BY b.start",
            (metric,),
        ).fetchall()
    return {start: total for start, total in rows}


def checkpoint_last_time(checkpoint: Path) -> float | None:
    """The last sample time of the run state a checkpoint holds (None while it holds none)."""
    try:
        state = json.loads(checkpoint.read_text()).get("state") or {}
    except (OSError, ValueError):
        return None
    last = state.get("last_time")
    return None if last is None else datetime.fromisoformat(last).timestamp()


def closed_at_checkpoint(store: Path, checkpoint: Path) -> bool:
    """Mid-run: the checkpoint's state is past the grace of the store's first ``http_reqs``
    bucket (a bucket closed before it), and the store holds 4 buckets. The slow plugin holds
    the checkpoint back, so the store alone says nothing of it."""
    at = checkpoint_last_time(checkpoint)
    if at is None or not store.exists():
        return False
    slots = slot_counts(store, "http_reqs")
    return len(slots) >= 4 and min(slots) + 1 <= at - GRACE_S


def final_count(store: Path, metric: str) -> float:
    """``metric``'s count in the final snapshot of the store's one run."""
    with closing(sqlite3.connect(store)) as conn:
        (body,) = conn.execute("SELECT body FROM snapshots WHERE kind = 'final'").fetchone()
    value: float = json.loads(body)["metrics"][metric]["values"]["count"]
    return value


def test_a_followed_run_killed_with_9_and_resumed_goes_on_as_the_same_run(
    tmp_path: Path, plugin_dir: PluginDir
) -> None:
    """k6 writes a file that ``--follow --checkpoint -p store`` reads, beside a slow plugin that
    holds the checkpoint behind what the store has; the bridge is killed with -9 mid-run and
    started again. The store holds one run, finished, with the whole run's summary; its buckets
    equal a replay's, but for those still open at the checkpoint, which hold only what came
    after it: no sample counts twice."""
    store, out, checkpoint = tmp_path / "s.db", tmp_path / "k6.json", tmp_path / "ck.json"
    follow = [bridge_exe(), str(out), "--follow", "--checkpoint", str(checkpoint), "-q"]
    follow += ["-p", "store", "-o", f"store.path={store}"]
    with k6lab.serve() as base_url:
        k6 = subprocess.Popen(
            [
                *k6lab.k6_run_args(),
                "--quiet",
                "-e",
                "DURATION=16s",
                "--out",
                f"json={out}",
                str(SCRIPT),
            ],
            env=k6lab.k6_env(base_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        slow = ["-p", "recorder", "-o", "recorder.delay=0.4"]
        first = subprocess.Popen([*follow, *slow], stderr=subprocess.DEVNULL, env=plugin_dir.env())
        second: subprocess.Popen[str] | None = None
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not closed_at_checkpoint(store, checkpoint):
                time.sleep(0.1)
            first.kill()
            first.wait(10)
            at_kill = checkpoint_last_time(checkpoint)
            assert at_kill is not None and k6.poll() is None, "k6 should still be running"
            assert runs_json(store)[0]["last_time"] is not None  # buckets were stored
            second = subprocess.Popen(
                [*follow, "--wait-pid", str(k6.pid)],
                stderr=subprocess.PIPE,
                text=True,
                env=clean_env(),
            )
            assert k6.wait(60) == 0
            _, err = second.communicate(timeout=60)
        finally:
            for process in (k6, first, second):
                if process is not None and process.poll() is None:
                    process.kill()
                    process.wait(10)
    assert second.returncode == 0, err[-3000:]
    [run] = runs_json(store)
    assert run["state"] == "finished" and run["ended_at"] is not None
    reference = tmp_path / "replayed.db"
    store_file(out, reference)
    assert final_count(store, "http_reqs") == final_count(reference, "http_reqs")
    mine, whole = slot_counts(store, "http_reqs"), slot_counts(reference, "http_reqs")
    assert set(mine) <= set(whole)
    closed = [start for start in whole if start + 1 <= at_kill - GRACE_S]
    after = [start for start in whole if start > at_kill]
    assert closed and after
    for start, total in whole.items():
        if start in closed or start in after:
            assert mine.get(start) == total, (start, at_kill)
        else:  # open at the checkpoint: what came after it, never more
            assert mine.get(start, 0) <= total, (start, at_kill)
    assert sum(mine.values()) < sum(whole.values())  # the open buckets' samples before it
