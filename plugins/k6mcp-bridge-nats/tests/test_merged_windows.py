"""The merged run's time buckets, live: three real k6 runners (execution segments of the reference
script, run at the same time), each piped into a bridge with ``-p nats``, and ``merge --nats -p
store`` started before them. The store's merged run has the buckets of one bridge over every
sample, and the HTML report drawn from it has charts."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from natslab import (
    NEEDS_SERVER,
    NatsServer,
    assert_same_buckets,
    kill_left,
    merge_nats,
    serving,
    start_runner,
    store_whole,
    stored_buckets,
)

import k6lab  # natslab puts the core's test parts on the path
from reportlab import chart_json

PACED = Path(__file__).parent / "k6_scripts" / "paced.js"
RUN = "windows.run"

pytestmark = NEEDS_SERVER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with serving(tmp_path_factory.mktemp("nats")) as nats:
        yield nats


def stored_samples(store: Path) -> int:
    """Samples in the buckets of the store's newest run (0 while there is none)."""
    from k6mcp_bridge.errors import ConfigError, StoreError

    if not store.exists():
        return 0
    try:
        return sum(bucket.count for bucket in stored_buckets(store).values())
    except (StoreError, ConfigError):  # the merger is creating it
        return 0


@pytest.fixture(scope="module")
def live(server: NatsServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three runners of about 6 s each, at the same time; each k6 also writes its samples to a
    file (a second JSON output), for the reference."""
    tmp = tmp_path_factory.mktemp("windows")
    store = tmp / "merged.db"
    merger = merge_nats(
        server, RUN, tmp / "merged.json", "--instances", "3", "--timeout", "90",
        "-p", "store", "-o", f"store.path={store}",
        "-p", "report", "-o", f"report.path={tmp / 'merged.html'}", script=PACED,
    )  # fmt: skip
    files = [tmp / f"segment{index}.json" for index in range(3)]
    processes: list[subprocess.Popen[bytes]] = []
    while_running: list[int] = []
    with k6lab.serve() as base_url:
        try:
            for index, file in enumerate(files):
                processes += start_runner(server, base_url, PACED, RUN, index, f"--out=json={file}")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and all(p.poll() is None for p in processes[::2]):
                while_running.append(stored_samples(store))
                time.sleep(0.2)
            codes = [process.wait(60) for process in processes[::2]]
            errors = [process.communicate(timeout=60)[1].decode() for process in processes[1::2]]
            _, merger_err = merger.communicate(timeout=90)
        finally:
            kill_left([*processes, merger])
    whole = tmp / "whole.db"
    store_whole(files, whole)
    return {
        "tmp": tmp,
        "store": store,
        "whole": whole,
        "codes": codes,
        "publishers": [process.returncode for process in processes[1::2]],
        "errors": errors,
        "merger": merger.returncode,
        "merger_err": merger_err,
        "while_running": while_running,
    }


def test_the_runners_and_the_merger_ran(live: dict[str, Any]) -> None:
    assert live["codes"] == [99, 99, 99]  # each segment alone fails `done: count>=90`
    assert live["publishers"] == [99, 99, 99], live["errors"]
    assert live["merger"] == 99, live["merger_err"][-3000:]
    assert "merged 3 instances: runner." in live["merger_err"]
    for err in live["errors"]:
        assert "final)" in err and "NOT published" not in err, err[-2000:]


def test_the_merged_run_has_the_time_buckets_of_one_stream_of_every_sample(
    live: dict[str, Any],
) -> None:
    compared = assert_same_buckets(live["store"], live["whole"])
    assert compared > 100  # about 7 s of 1 s buckets, a dozen metrics, a few tag sets each
    starts = {key[2] for key in stored_buckets(live["store"])}
    assert len(starts) >= 5


def test_the_store_answered_time_bucket_queries_while_the_runners_ran(
    live: dict[str, Any],
) -> None:
    seen = [samples for samples in live["while_running"] if samples]
    final = sum(bucket.count for bucket in stored_buckets(live["store"]).values())
    assert seen and seen[0] < final, (seen, final)  # buckets of a run not over yet
    assert seen == sorted(seen)  # they only grow


def test_step_queries_of_the_merged_run_equal_the_whole_streams(live: dict[str, Any]) -> None:
    from k6mcp_bridge.store.query import Store

    answers = []
    for path in (live["store"], live["whole"]):
        with Store(path) as store:
            work = store.query("work", stats=["count", "max", "p(95)"], step=1)
            reqs = store.query("http_reqs", stats=["count"], tags={"name": "items"}, step=2)
        answers.append([series.points or [] for series in (*work.series, *reqs.series)])
    merged, whole = answers
    assert len(merged) == len(whole) == 2 and merged[0] and merged[1]
    for ours, theirs in zip(merged, whole, strict=True):
        assert [p.start for p in ours] == [p.start for p in theirs]
        for mine, point in zip(ours, theirs, strict=True):
            assert mine.values == pytest.approx(point.values, rel=0.01), point


def test_the_report_of_the_merged_run_has_charts(live: dict[str, Any]) -> None:
    """The merger's ``report`` draws what a report from its store draws, and it is not empty."""
    from k6mcp_bridge.reports.from_store import load
    from k6mcp_bridge.reports.html_data import chart_data

    stored = load(live["store"], "latest")
    data = chart_data(stored.timeline, stored.snapshot)
    assert chart_json(live["tmp"] / "merged.html") == data
    charts = {chart["id"]: chart["series"] for chart in data["charts"]}
    assert {"load", "latency", "checks"} <= set(charts), list(charts)
    for chart_id in ("load", "latency", "checks"):
        drawn = [v for series in charts[chart_id] for v in series["values"] if v is not None]
        assert drawn, chart_id
    assert len(data["x"]) >= 5
