"""``store``: every run into one SQLite file (the run store), for ``runs``, ``query`` and others.

One writer per run, one transaction per delivery (``process_batch``), WAL mode so that readers
in other processes see each committed delivery while k6 still runs. What it keeps of a run:
its row in ``runs`` (state, heartbeat), the metric definitions, every series (a metric and one
tag set) in time buckets from the ``window`` messages, the latest and the final ``metrics``
snapshot, and one ``verdicts`` row each time a threshold's verdict changes. It never asks for
``point`` messages, so the bridge does not build them for it.

Buckets: a window's series are inserted; a bucket that is already there (a ``late`` window, or
a slot sent twice) is merged into it exactly (:meth:`Bucket.merge`). When the rollups move to a
wider bucket (a long run), the run's older, narrower buckets are merged into buckets of the new
width in the same transaction, so a series keeps about 1,200 buckets however long the run.

Liveness: a daemon thread refreshes ``runs.heartbeat_at`` every ``heartbeat`` seconds (k6 may be
quiet for a while), sharing the one connection under a lock. Readers call a ``running`` run whose
heartbeat is older than three intervals ``stale`` (its writer died: kill -9, a crash, power).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..aggregate.buckets import Bucket
from ..aggregate.rollups import GRACE_S
from ..messages import (
    Message,
    Metric,
    MetricsSnapshot,
    MetricType,
    SeriesRollup,
    ThresholdVerdict,
    Window,
)
from ..plugin import Plugin, RunInfo, RunResult
from .codec import bucket_row, row_bucket, tags_key
from .schema import default_path, describe, open_writer

log = logging.getLogger("k6mcp_bridge")

_STATE = {"completed": "finished", "interrupted": "interrupted", "stopped": "interrupted"}
_COLUMNS = "count, sum, min, max, nonzero, last, last_time, sketch"


class StoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    """The store file (default: ``K6MCP_BRIDGE_STORE``, else the XDG data directory's
    ``k6mcp-bridge/runs.db``); its folder is created."""
    heartbeat: float = Field(2.0, gt=0)
    """Seconds between two heartbeats; a run silent for 3 of them is ``stale``."""
    busy_timeout: float = Field(5.0, ge=0)
    """Seconds to wait for another writer's lock before giving up."""


_OF_RUN = "series_id IN (SELECT id FROM series WHERE run_id = ?)"
"""The buckets of one run (``WHERE`` clause, its id the parameter)."""


def new_run_id(started_at: datetime) -> str:
    """UTC start time to the millisecond and 6 random hex digits (sortable by start), e.g.
    ``20261124T180002.123Z-3fa91c``."""
    utc = started_at.astimezone(timezone.utc)
    return f"{utc:%Y%m%dT%H%M%S}.{utc.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


class StorePlugin(Plugin):
    name = "store"
    description = "Writes each run into a SQLite run store (for `k6mcp-bridge runs` / `query`)"
    Config = StoreConfig
    config: StoreConfig
    accepts = frozenset({"metric", "metrics", "threshold", "window"})

    _conn: sqlite3.Connection | None = None
    _beater: threading.Thread | None = None

    def start(self, run_info: RunInfo) -> None:
        self.path = Path(self.config.path) if self.config.path else default_path()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._series: dict[tuple[str, str], tuple[int, MetricType]] = {}
        self._kinds: dict[int, MetricType] = {}
        self._metrics: set[str] = set()
        self._verdicts: dict[tuple[str, str], bool] = {}
        self._width: int | None = None
        self._first: float | None = None
        self._last: float | None = None
        self._stream_time: float | None = None
        conn = open_writer(self.path, self.config.busy_timeout)
        self._conn = conn
        try:
            resumed = self._resume(run_info)
            self.run_id = resumed or new_run_id(run_info.started_at)
            if resumed is None:
                conn.execute(
                    "INSERT INTO runs (id, source, script, bridge_version, started_at, state, "
                    "heartbeat_at, heartbeat_s) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)",
                    (
                        self.run_id,
                        run_info.source,
                        run_info.script,
                        run_info.bridge_version,
                        run_info.started_at.astimezone(timezone.utc).isoformat(),
                        time.time(),
                        self.config.heartbeat,
                    ),
                )
        except sqlite3.Error as exc:
            self._conn = None
            conn.close()
            raise describe(self.path, exc) from None
        log.info("store: run %s in %s%s", self.run_id, self.path, " (resumed)" if resumed else "")
        self._beater = threading.Thread(
            target=self._beat, name="k6mcp-store-heartbeat", daemon=True
        )
        self._beater.start()

    def _resume(self, run_info: RunInfo) -> str | None:
        """A followed file resumed from its checkpoint continues the store's latest run of that
        source (``RunInfo.resumed``: append, don't reset): its id, or ``None`` for a new run.

        The stream goes on from the checkpoint's offset with fresh rollups. The buckets that
        were closed at the checkpoint (``GRACE_S`` behind its last sample) are kept; the later
        ones, which may hold samples read again now, are deleted and built again from the
        samples that follow. So no sample counts twice, and the buckets equal an uninterrupted
        run's but those open at the checkpoint (~3 s of stream time at 1 s buckets, one stored
        bucket's width once they are wider), which miss the samples from before it. The run's
        summary and verdicts come from the checkpoint's state and are exact."""
        state = run_info.state
        if not run_info.resumed or state is None or state.last_time is None:
            return None
        conn = self._conn_()
        row = conn.execute(
            "SELECT id, width_s FROM runs WHERE source = ? ORDER BY id DESC LIMIT 1",
            (run_info.source,),
        ).fetchone()
        if row is None:
            return None
        run_id: str = row[0]
        since = state.last_time.timestamp() - GRACE_S  # a bucket ending later was still open
        conn.execute("BEGIN IMMEDIATE")  # readers see the run before or after, never between
        conn.execute(f"DELETE FROM buckets WHERE start + width > ? AND {_OF_RUN}", (since, run_id))
        self._first, self._last = conn.execute(
            f"SELECT MIN(start), MAX(start + width) FROM buckets WHERE {_OF_RUN}", (run_id,)
        ).fetchone()
        conn.execute(
            "UPDATE runs SET state = 'running', ended_at = NULL, heartbeat_at = ?, "
            "first_time = ?, last_time = ? WHERE id = ?",
            (time.time(), self._first, self._last, run_id),
        )
        conn.execute("COMMIT")
        self._width = row[1]
        self._metrics = {
            name for (name,) in conn.execute("SELECT name FROM metrics WHERE run_id = ?", (run_id,))
        }
        for series_id, metric, tags, kind in conn.execute(
            "SELECT s.id, s.metric, s.tags, m.type FROM series s JOIN metrics m "
            "ON m.run_id = s.run_id AND m.name = s.metric WHERE s.run_id = ?",
            (run_id,),
        ):
            self._series[(metric, tags)] = (series_id, kind)
            self._kinds[series_id] = kind
        for metric, threshold, ok in conn.execute(  # the last verdict of each, in order
            "SELECT metric, threshold, ok FROM verdicts WHERE run_id = ? ORDER BY rowid", (run_id,)
        ):
            self._verdicts[(metric, threshold)] = bool(ok)
        return run_id

    # --- deliveries ----------------------------------------------------------------------------

    def process_batch(self, messages: Sequence[Message]) -> None:
        conn = self._conn
        assert conn is not None
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for message in messages:
                    if message.type == "window":
                        self._window(message.data)
                    elif message.type == "metric":
                        self._metric(message.data)
                    elif message.type == "metrics":
                        self._snapshot(message.data)
                    elif message.type == "threshold":
                        self._verdict(message.data)
                conn.execute(
                    "UPDATE runs SET heartbeat_at = ?, first_time = ?, last_time = ?, "
                    "width_s = ? WHERE id = ?",
                    (time.time(), self._first, self._last, self._width, self.run_id),
                )
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):  # e.g. locked past busy_timeout: name the file
                    raise describe(self.path, exc) from None
                raise

    def _metric(self, metric: Metric) -> None:
        thresholds = [t if isinstance(t, str) else t.model_dump() for t in metric.thresholds]
        self._conn_().execute(
            "INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?)",
            (self.run_id, metric.name, metric.type, metric.contains, json.dumps(thresholds)),
        )
        self._metrics.add(metric.name)

    def _window(self, window: Window) -> None:
        width = window.width_s
        if self._width is None or width > self._width:
            if self._width is not None:
                self._compact(width)
            self._width = width
        width = self._width  # a late window of a narrower, compacted slot lands in its bucket
        start = int(window.start.timestamp()) // width * width
        for rollup in window.series:
            series_id = self._series_id(rollup)
            self._put(series_id, start, width, Bucket.from_model(rollup))
        begin, end = window.start.timestamp(), window.end.timestamp()
        self._first = begin if self._first is None else min(self._first, begin)
        self._last = end if self._last is None else max(self._last, end)
        self._stream_time = end if self._stream_time is None else max(self._stream_time, end)

    def _series_id(self, rollup: SeriesRollup) -> int:
        key = (rollup.metric, tags_key(rollup.tags))
        known = self._series.get(key)
        if known is not None:
            return known[0]
        conn = self._conn_()
        if rollup.metric not in self._metrics:  # no definition seen (yet): its type will do
            conn.execute(
                "INSERT OR IGNORE INTO metrics VALUES (?, ?, ?, 'default', '[]')",
                (self.run_id, rollup.metric, rollup.type),
            )
            self._metrics.add(rollup.metric)
        conn.execute(
            "INSERT OR IGNORE INTO series (run_id, metric, tags) VALUES (?, ?, ?)",
            (self.run_id, *key),
        )
        (series_id,) = conn.execute(
            "SELECT id FROM series WHERE run_id = ? AND metric = ? AND tags = ?",
            (self.run_id, *key),
        ).fetchone()
        self._series[key] = (series_id, rollup.type)
        self._kinds[series_id] = rollup.type
        return int(series_id)

    def _put(self, series_id: int, start: int, width: int, bucket: Bucket) -> None:
        """Insert the bucket, or merge it into the one already at ``start``."""
        conn = self._conn_()
        row = bucket_row(bucket)
        inserted = conn.execute(
            f"INSERT INTO buckets (series_id, start, width, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (series_id, start, width, *row),
        ).rowcount
        if inserted:
            return
        stored = conn.execute(
            f"SELECT {_COLUMNS} FROM buckets WHERE series_id = ? AND start = ?",
            (series_id, start),
        ).fetchone()
        merged = row_bucket(self._kinds[series_id], stored)
        merged.merge(bucket)
        conn.execute(
            "UPDATE buckets SET width = ?, count = ?, sum = ?, min = ?, max = ?, nonzero = ?, "
            "last = ?, last_time = ?, sketch = ? WHERE series_id = ? AND start = ?",
            (width, *bucket_row(merged), series_id, start),
        )

    def _compact(self, width: int) -> None:
        """Merge every narrower bucket of the run into buckets of ``width`` (exactly), one
        series at a time: memory holds one series' buckets (≤ ~1,200), not the run's."""
        conn = self._conn_()
        total = 0
        for series_id, kind in self._kinds.items():
            rows = conn.execute(
                f"SELECT start, {_COLUMNS} FROM buckets WHERE series_id = ? AND width < ?",
                (series_id, width),
            ).fetchall()
            if not rows:
                continue
            merged: dict[int, Bucket] = {}
            for start, *row in rows:
                slot = start // width * width
                bucket = merged.get(slot)
                if bucket is None:
                    bucket = merged[slot] = Bucket(kind)
                bucket.merge(row_bucket(kind, tuple(row)))
            del rows
            conn.execute(
                "DELETE FROM buckets WHERE series_id = ? AND width < ?", (series_id, width)
            )
            for start, bucket in merged.items():
                self._put(series_id, start, width, bucket)
            total += len(merged)
        log.debug("store: %d buckets compacted to %d s", total, width)

    def _snapshot(self, snapshot: MetricsSnapshot) -> None:
        conn = self._conn_()
        when = None if snapshot.time is None else snapshot.time.isoformat()
        body = snapshot.model_dump_json()
        kinds = ("latest", "final") if snapshot.final else ("latest",)
        for kind in kinds:
            conn.execute(
                "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                (self.run_id, kind, when, body),
            )
        if snapshot.time is not None:
            seconds = snapshot.time.timestamp()
            self._stream_time = max(self._stream_time or seconds, seconds)

    def _verdict(self, verdict: ThresholdVerdict) -> None:
        key = (verdict.metric, verdict.threshold)
        if self._verdicts.get(key) is verdict.ok:
            return
        self._verdicts[key] = verdict.ok
        self._conn_().execute(
            "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                self.run_id,
                verdict.metric,
                verdict.threshold,
                self._stream_time,
                verdict.ok,
                verdict.observed,
                verdict.final,
                verdict.model_dump_json(),
            ),
        )

    # --- liveness and the end ------------------------------------------------------------------

    def _beat(self) -> None:
        while not self._stop.wait(self.config.heartbeat):
            with self._lock:
                if self._conn is None:
                    return
                try:
                    self._conn.execute(
                        "UPDATE runs SET heartbeat_at = ? WHERE id = ?", (time.time(), self.run_id)
                    )
                except sqlite3.Error as exc:  # another writer's lock: the next beat will do
                    log.debug("store: heartbeat skipped: %s", exc)

    def finish(self, result: RunResult) -> None:
        if self._beater is not None:
            self._stop.set()
            self._beater.join()
            self._beater = None
        conn = self._conn
        if conn is None:
            return
        try:
            with self._lock:
                conn.execute("BEGIN IMMEDIATE")
                if result.metrics is not None:
                    body = result.metrics.model_dump_json()
                    when = None if result.metrics.time is None else result.metrics.time.isoformat()
                    for kind in ("latest", "final"):
                        conn.execute(
                            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)",
                            (self.run_id, kind, when, body),
                        )
                conn.execute(
                    "UPDATE runs SET state = ?, ended_at = ?, heartbeat_at = ? WHERE id = ?",
                    (
                        _STATE[result.status],
                        datetime.now(timezone.utc).isoformat(),
                        time.time(),
                        self.run_id,
                    ),
                )
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise describe(self.path, exc) from None
        finally:
            self._conn = None
            conn.close()

    def _conn_(self) -> sqlite3.Connection:
        assert self._conn is not None
        return self._conn
