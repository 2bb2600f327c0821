"""A real nats-server with JetStream and real k6: three execution segments, each replayed into a
bridge with ``-p nats``, merged by ``k6mcp-bridge merge --nats``; the merger killed with -9 and
restarted; the broker stopped mid-run; an instance missing."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

from natslab import (  # noqa: E402
    NEEDS_SERVER,
    SCRIPT,
    NatsServer,
    assert_like_the_whole_run,
    assert_same_buckets,
    assert_same_export,
    bridge,
    bridge_exe,
    env,
    kill_left,
    merge_nats,
    publish,
    serving,
    start_runner,
    store_whole,
    stored_buckets,
    verdicts,
)

import k6lab  # noqa: E402

PACED = Path(__file__).parent / "k6_scripts" / "paced.js"
ABORT = Path(__file__).parent / "k6_scripts" / "abort.js"

pytestmark = NEEDS_SERVER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with serving(tmp_path_factory.mktemp("nats")) as nats:
        yield nats


def k6(base_url: str, out: Path, *args: str, script: Path = SCRIPT) -> int:
    return k6lab.run_k6_to_file(base_url, script, out, *args)


@pytest.fixture(scope="module")
def runs(server: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("nats-runs")
    with k6lab.serve() as base_url:
        whole_code, codes = k6lab.run_whole_and_segments(base_url, SCRIPT, tmp)
        assert codes == [99, 99, 99]
        paced = k6(  # the last segment again, over about 6 s
            base_url, tmp / "paced.json", *k6lab.segment_args(k6lab.SEGMENTS[2]), script=PACED
        )
        assert paced == 99
    segments = [tmp / f"segment{index}.json" for index in range(3)]
    states = []
    for index, segment in enumerate(segments):
        state = tmp / f"state{index}.json"
        publish(server, segment, "ref.run", f"runner.{index}", "--state-export", str(state))
        states.append(str(state))
    merged = merge_nats(server, "ref.run", tmp / "nats.json", "--instances", "3", "--timeout", "30")
    out, err = merged.communicate(timeout=60)
    files = bridge(
        "merge", *states, "--script", str(SCRIPT), "--summary-export", str(tmp / "f.json")
    )
    return {
        "tmp": tmp,
        "segments": segments,
        "states": states,
        "whole_code": whole_code,
        "k6": json.loads((tmp / "k6.json").read_text()),
        "nats_code": merged.returncode,
        "nats_out": out,
        "nats_err": err,
        "nats": json.loads((tmp / "nats.json").read_text()),
        "files_code": files.returncode,
        "files": json.loads((tmp / "f.json").read_text()),
    }


def test_merge_nats_equals_merge_files_and_the_whole_run(runs: dict[str, Any]) -> None:
    assert runs["whole_code"] == 99
    assert runs["nats_code"] == runs["files_code"] == 99, runs["nats_err"][-3000:]
    assert "merged 3 instances: runner.0, runner.1, runner.2" in runs["nats_err"]
    assert_same_export(runs["nats"], runs["files"])
    assert_like_the_whole_run(runs["nats"], runs["k6"])
    assert verdicts(runs["nats"])[("done", "count>=90")] is False  # passes on the whole only
    assert "✓ 'count>=90'" in runs["nats_out"]


def test_merge_nats_again_gets_the_same_states(server: NatsServer, runs: dict[str, Any]) -> None:
    again = runs["tmp"] / "again.json"
    done = merge_nats(server, "ref.run", again, "--instances", "3", "--timeout", "30")
    _, err = done.communicate(timeout=60)
    assert done.returncode == 99, err
    assert_same_export(json.loads(again.read_text()), runs["nats"])


def test_a_merger_killed_with_9_and_restarted_reaches_the_same_result(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    """...and the store it feeds holds, in the run the restarted merger writes, every time
    bucket of the whole test (it reads every window again, from the stream's start)."""
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "kill.run", "runner.0")
    publish(server, segments[1], "kill.run", "runner.1")
    export, store = tmp / "killed.json", tmp / "killed.db"
    args = ("--instances", "3", "--timeout", "60", "-p", "store", "-o", f"store.path={store}")
    first = merge_nats(server, "kill.run", export, *args)
    time.sleep(3)  # it has taken (and holds) the two states, and stored their windows
    assert first.poll() is None
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=10)
    [killed] = stored_runs(store)
    publish(server, segments[2], "kill.run", "runner.2")
    second = merge_nats(server, "kill.run", export, *args)
    _, err = second.communicate(timeout=90)
    assert second.returncode == 99, err[-3000:]
    assert "merged 3 instances" in err
    assert_same_export(json.loads(export.read_text()), runs["nats"])
    whole = tmp / "kill-whole.db"
    store_whole(segments, whole)
    restarted, _ = stored_runs(store)  # newest first
    assert restarted.state == "finished" and killed.state == "running"
    stored = [stored_buckets(store, run.id).values() for run in (killed, restarted)]
    samples = [sum(bucket.count for bucket in buckets) for buckets in stored]
    assert 0 < samples[0] < samples[1]  # killed with two runners' windows stored, of three
    assert assert_same_buckets(store, whole, restarted.id) > 10


def test_windows_of_an_earlier_run_of_the_same_name_are_left_out(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    """``runner.2`` of run ``again.run`` ran a minute before (the third segment's samples, a
    minute earlier), then again (the paced one): the merged run's buckets are those of the runs
    whose states count."""
    tmp, segments = runs["tmp"], runs["segments"]
    earlier = tmp / "earlier.json"
    earlier.write_text(shifted(segments[2].read_text(), -60.0))
    publish(server, earlier, "again.run", "runner.2")
    for index, segment in enumerate([segments[0], segments[1], tmp / "paced.json"]):
        publish(server, segment, "again.run", f"runner.{index}")
    store, whole = tmp / "again.db", tmp / "again-whole.db"
    merged = merge_nats(
        server, "again.run", tmp / "again.json", "--instances", "3", "--timeout", "30",
        "-p", "store", "-o", f"store.path={store}",
    )  # fmt: skip
    _, err = merged.communicate(timeout=60)
    assert merged.returncode == 99, err[-3000:]
    assert "of an earlier run of that name left out" in err, err[-3000:]
    store_whole([segments[0], segments[1], tmp / "paced.json"], whole)
    assert assert_same_buckets(store, whole) > 10


STAMP = re.compile(r"(.*T\d\d:\d\d:\d\d)(\.\d+|)(.*)")
"""k6's sample time: the clock to the second, the fraction, the zone (``Z``, ``+02:00``)."""


def shifted(k6_json: str, seconds: float) -> str:
    """k6's JSON lines with every sample ``seconds`` later (RFC 3339, nanoseconds kept)."""
    lines = []
    for line in k6_json.splitlines():
        record = json.loads(line)
        if record["type"] == "Point":
            clock, fraction, zone = STAMP.fullmatch(record["data"]["time"]).groups()  # type: ignore[union-attr]
            moved = datetime.fromisoformat(clock) + timedelta(seconds=seconds)
            record["data"]["time"] = f"{moved.isoformat()}{fraction}{zone}"
        lines.append(json.dumps(record) + "\n")
    return "".join(lines)


def stored_runs(store: Path) -> list[Any]:
    """The runs of a store, newest first."""
    from k6mcp_bridge.store.query import Store

    with Store(store) as opened:
        return opened.runs()


def slow_feed(source: Path, seconds: float) -> str:
    """A Python one-liner that writes ``source`` to stdout over about ``seconds``."""
    return (
        "import sys,time\n"
        f"lines=open({str(source)!r},'rb').readlines()\n"
        f"pause={seconds}/max(len(lines),1)\n"
        "for n,line in enumerate(lines):\n"
        "    sys.stdout.buffer.write(line)\n"
        "    if n%20==0: sys.stdout.buffer.flush(); time.sleep(pause*20)\n"
    )


def points(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.startswith('{"type":"point"'))


def test_the_broker_stopped_mid_run_costs_the_other_plugins_nothing(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "outage.run", "runner.0")
    publish(server, segments[1], "outage.run", "runner.1")
    paced = tmp / "paced.json"  # the third segment over about 6 s of stream time
    reference = tmp / "reference.jsonl"
    alone = bridge(str(paced), "--no-passthrough", "-p", "jsonl", "-o", f"jsonl.path={reference}")
    assert alone.returncode == 99
    jsonl, state = tmp / "outage.jsonl", tmp / "outage-state.json"
    feeder = subprocess.Popen([sys.executable, "-c", slow_feed(paced, 8.0)], stdout=subprocess.PIPE)
    started = time.monotonic()
    options = {
        "jsonl.path": jsonl,
        "nats.url": server.url,
        "nats.run": "outage.run",
        "nats.instance": "runner.2",
        "nats.interval": "0.3",
        "nats.finish_timeout": "20",
    }
    runner = subprocess.Popen(
        [bridge_exe(), "-", "--no-passthrough", "-p", "nats", "-p", "jsonl"]
        + [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
        + ["--state-export", str(state)],
        stdin=feeder.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    assert feeder.stdout is not None
    feeder.stdout.close()
    time.sleep(2.0)
    server.stop()
    down_at = points(jsonl)
    time.sleep(4.0)
    while_down = points(jsonl) - down_at
    server.start()
    _, err = runner.communicate(timeout=60)
    feeder.wait(10)
    elapsed = time.monotonic() - started
    assert runner.returncode == 99, err[-3000:]
    assert while_down > 0, "jsonl got nothing while the broker was down"
    assert points(jsonl) == points(reference)
    assert elapsed < 20, elapsed
    assert "nats: disconnected from" in err, err
    assert "final); " in err and "disconnections" in err, err  # and it says so at the end
    assert "NOT published" not in err, err  # every state and window, once the broker was back
    export, store, whole = tmp / "outage.json", tmp / "outage.db", tmp / "outage-whole.db"
    into_store = ("-p", "store", "-o", f"store.path={store}")
    merged = merge_nats(
        server, "outage.run", export, "--instances", "3", "--timeout", "30", *into_store
    )
    _, merged_err = merged.communicate(timeout=60)
    assert merged.returncode == 99, merged_err[-3000:]
    store_whole([segments[0], segments[1], paced], whole)
    assert assert_same_buckets(store, whole) > 10  # no window lost while the broker was away
    files = tmp / "outage-files.json"
    from_files = bridge(
        "merge",
        *runs["states"][:2],
        str(state),
        "--script",
        str(SCRIPT),
        "--summary-export",
        str(files),
    )
    assert from_files.returncode == 99, from_files.stderr
    ours = json.loads(export.read_text())
    assert_same_export(ours, json.loads(files.read_text()))
    assert verdicts(ours) == verdicts(runs["k6"])
    for name in ("done", "work", "odd", "iterations", "checks"):
        for key, value in runs["nats"]["metrics"][name].items():
            if key in ("count", "min", "max", "passes", "fails", "avg"):
                assert ours["metrics"][name][key] == value, (name, key)


def saved_done(checkpoint: Path) -> int:
    """The ``done`` samples in the run state a checkpoint holds (0 while it holds none)."""
    try:
        saved = json.loads(checkpoint.read_text())
    except (OSError, ValueError):
        return 0
    series = saved.get("state", {}).get("series", [])
    return sum(s["count"] for s in series if s["metric"] == "done")


def series_of(state: Path) -> dict[tuple[str, str], tuple[int, float]]:
    return {
        (s["metric"], json.dumps(s["tags"], sort_keys=True)): (s["count"], s["sum"])
        for s in json.loads(state.read_text())["series"]
    }


def test_a_publisher_killed_with_9_and_resumed_from_its_checkpoint_counts_nothing_twice(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    """Real k6 writes the third segment into a file; its bridge (``--follow --checkpoint -p
    nats``) is killed with -9 mid-run and started again: the merged run is the whole run's."""
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "resume.run", "runner.0")
    publish(server, segments[1], "resume.run", "runner.1")
    out, checkpoint, state = tmp / "live.json", tmp / "live-checkpoint.json", tmp / "live.state"
    options = [f"url={server.url}", "run=resume.run", "instance=runner.2", "interval=0.3"]
    follow = [bridge_exe(), str(out), "--follow", "--checkpoint", str(checkpoint)]
    follow += ["--no-passthrough", "--state-export", str(state), "-p", "nats"]
    follow += [arg for option in options for arg in ("-o", f"nats.{option}")]
    with k6lab.serve() as base_url:
        segment = k6lab.segment_args(k6lab.SEGMENTS[2])
        k6 = subprocess.Popen(
            [*k6lab.k6_run_args(), "--quiet", "--out", f"json={out}", *segment, str(PACED)],
            env=k6lab.k6_env(base_url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        first = subprocess.Popen(follow, stderr=subprocess.DEVNULL, env=env())
        try:
            deadline = time.monotonic() + 30
            while saved_done(checkpoint) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
            first.kill()
            first.wait(10)
            at_kill = saved_done(checkpoint)
            assert k6.poll() is None, "k6 should still be running"
            second = subprocess.Popen(
                [*follow, "--wait-pid", str(k6.pid)],
                stderr=subprocess.PIPE,
                text=True,
                env=env(),
            )
            assert k6.wait(60) == 99  # the segment alone fails `done: count>=90`
            _, err = second.communicate(timeout=60)
        finally:
            for process in (k6, first):
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
    assert 5 <= at_kill < 30, at_kill  # resumed mid-run, with part of the samples saved
    assert second.returncode == 99, err[-3000:]
    assert "the run goes on from the checkpoint's state" in err, err[-3000:]
    export = tmp / "resumed.json"
    merged = merge_nats(server, "resume.run", export, "--instances", "3", "--timeout", "30")
    _, merged_err = merged.communicate(timeout=60)
    assert merged.returncode == 99, merged_err[-3000:]
    ours = json.loads(export.read_text())
    assert_like_the_whole_run(ours, runs["k6"])
    assert ours["metrics"]["done"]["count"] == 90
    replayed = tmp / "live-replayed.state"  # the same file read by a bridge never stopped
    assert bridge(str(out), "--no-passthrough", "--state-export", str(replayed)).returncode == 99
    resumed, whole = series_of(state), series_of(replayed)
    assert {key: count for key, (count, _) in resumed.items()} == {
        key: count for key, (count, _) in whole.items()
    }
    for key, (_, total) in whole.items():
        assert resumed[key][1] == pytest.approx(total, rel=1e-9), key


def stored_done(store: Path, snapshot: str = "latest") -> int | None:
    """The merged ``done`` count in the store's latest (or final) snapshot, if it holds one."""
    from k6mcp_bridge.errors import StoreError
    from k6mcp_bridge.store.query import Store

    if not store.exists():
        return None
    try:
        with Store(store) as runs:
            found = runs.runs()
            merged = runs.snapshot(found[0].id, snapshot) if found else None
    except StoreError:  # the merger is creating it
        return None
    if merged is None or "done" not in merged["metrics"]:
        return None
    return int(merged["metrics"]["done"]["values"]["count"])


def test_the_merger_hands_the_merged_run_to_its_plugins_while_the_runners_run(
    server: NatsServer, runs: dict[str, Any]
) -> None:
    """Two runners are done, a third (real k6, about 6 s) still runs: the store of ``merge
    --nats -p store`` already holds a snapshot of all three, before the third one ends."""
    tmp, segments = runs["tmp"], runs["segments"]
    publish(server, segments[0], "live.run", "runner.0")
    publish(server, segments[1], "live.run", "runner.1")
    store = tmp / "live-store.db"
    merger = merge_nats(
        server, "live.run", tmp / "live-merged.json", "--instances", "3", "--timeout", "60",
        "-p", "store", "-o", f"store.path={store}",
    )  # fmt: skip
    seen_while_running: list[int] = []
    with k6lab.serve() as base_url:
        k6, publisher = start_runner(server, base_url, PACED, "live.run", 2)
        try:
            deadline = time.monotonic() + 60
            while k6.poll() is None and time.monotonic() < deadline:
                done = stored_done(store)
                if done is not None and k6.poll() is None:
                    seen_while_running.append(done)
                time.sleep(0.1)
            assert k6.wait(10) == 99
            _, runner_err = publisher.communicate(timeout=60)
            _, merger_err = merger.communicate(timeout=60)
        finally:
            kill_left([k6, publisher, merger])
    assert publisher.returncode == 99, runner_err[-3000:]
    assert merger.returncode == 99, merger_err[-3000:]
    live = [done for done in seen_while_running if 60 < done < 90]
    assert live, f"no merged snapshot of all three runners while k6 ran: {seen_while_running}"
    assert seen_while_running == sorted(seen_while_running)  # it only grows
    assert stored_done(store, "final") == 90
    from k6mcp_bridge.store.query import Store

    with Store(store) as stored:
        [run] = stored.runs()
        assert run.state == "finished"
        assert "live.run" in run.source
        assert {"done", "work", "http_reqs"} <= set(stored.metrics(run.id))
        verdicts = {(v["metric"], v["threshold"]): v["ok"] for v in stored.verdicts(run.id)}
    assert verdicts[("done", "count>=90")] is True  # judged on all three: only the whole passes
    assert verdicts[("work", "max<50")] is False


def test_a_global_abort_on_fail_threshold_stops_every_runner_through_its_rest_api(
    server: NatsServer, tmp_path: Path
) -> None:
    """``done: count<45`` with abortOnFail: no runner alone gets there before about 9 s of its
    20 s, the whole test does in about 3 s; the merger stops all three through k6's REST API."""
    addresses = [f"127.0.0.1:{k6lab.free_port()}" for _ in k6lab.SEGMENTS]
    export = tmp_path / "aborted.json"
    stops = [arg for address in addresses for arg in ("--stop-runner", f"http://{address}")]
    merger = merge_nats(
        server, "abort.run", export, "--instances", "3", "--timeout", "90", *stops, script=ABORT
    )
    processes: list[subprocess.Popen[bytes]] = []
    started = time.monotonic()
    with k6lab.serve() as base_url:
        try:
            for index, address in enumerate(addresses):
                processes += start_runner(
                    server, base_url, ABORT, "abort.run", index, "--no-thresholds", address=address
                )
            codes = [process.wait(60) for process in processes[::2]]
            elapsed = time.monotonic() - started
            for process in processes[1::2]:
                process.communicate(timeout=60)
            _, err = merger.communicate(timeout=60)
        finally:
            kill_left([*processes, merger])
    assert codes == [103, 103, 103], err[-3000:]  # k6's exit code when stopped from its API
    assert elapsed < 16, elapsed  # each would run about 20 s
    assert merger.returncode == 99, err[-3000:]
    assert "THRESHOLD CROSSED WITH abortOnFail: count<45 on done" in err, err[-3000:]
    assert "3 of 3 runners stopped" in err, err
    done = json.loads(export.read_text())["metrics"]["done"]["count"]
    assert 45 <= done < 300  # every runner's samples until it stopped, counted once


def test_a_missing_instance_is_named_on_timeout(server: NatsServer, runs: dict[str, Any]) -> None:
    done = bridge(
        "merge", "--nats", server.url, "--run", "ref.run", "--instances", "4", "--timeout", "2"
    )
    assert done.returncode == 75, done.stderr
    assert "1 of 4 instances have not sent a final state (1 never sent any)" in done.stderr
    assert "final: runner.0, runner.1, runner.2" in done.stderr
    assert "Traceback" not in done.stderr
    asyncio.run(publish_unfinished(server.url))
    done = bridge("merge", "--nats", server.url, "--run", "open.run", "--timeout", "2")
    assert done.returncode == 75, done.stderr
    assert "missing the final state of slow.runner" in done.stderr


async def publish_unfinished(url: str) -> None:
    import nats

    from k6mcp_bridge.aggregate.state import RunState
    from k6mcp_bridge_nats.sender import ensure_streams
    from k6mcp_bridge_nats.subjects import subject

    client = await nats.connect(url)
    js = client.jetstream()
    await ensure_streams(js)
    state = RunState(
        instance="slow.runner",
        seq=1,
        final=False,
        first_time=None,
        last_time=None,
        metrics=[],
        series=[],
    )
    await js.publish(subject("open.run", "slow.runner"), state.model_dump_json().encode())
    await client.close()


def test_no_server_is_one_clear_error() -> None:
    done = bridge("merge", "--nats", "nats://127.0.0.1:1", "--run", "x", "--timeout", "1")
    assert done.returncode == 2, done.stderr
    assert "cannot connect to NATS at nats://127.0.0.1:1" in done.stderr
    assert "Traceback" not in done.stderr
