"""The read API over a run store: runs, and k6's stats of a metric over a window of a run.

Everything returned is a plain dataclass with ``to_dict()`` (JSON-ready: times are RFC 3339
strings), so the CLI's ``--json`` and an MCP server give the same shape::

    with Store("runs.db") as store:
        store.runs()                       # [RunSummary, ...], newest first
        result = store.query("http_req_duration", tags={"name": "X"}, stats=["p(95)"])
        result.to_dict()                   # {"run_id", "run_state", "as_of", "window", ...}

A store is opened read-only: a query never blocks or changes a live writer, and sees every
delivery it has committed. Bad arguments raise :class:`~..errors.ConfigError` naming what is
wrong and the valid choices; a file that cannot be read raises :class:`~..errors.StoreError`.

Windows are in stream time (k6's sample times) and count back from the run's last bucket
(``as_of``), not from the wall clock. A bucket is in a window when its start is; the window
reported is the one asked for, clipped to the run's buckets, and a counter's ``rate`` divides
by its length.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..aggregate.buckets import Bucket, check_stat
from ..errors import ConfigError
from .codec import Rows, row_bucket
from .grouping import Group, grouped
from .results import Point, QueryResult, RunSummary, Series, duration_s, instant, rfc3339
from .schema import default_path, describe, open_reader

if TYPE_CHECKING:
    from ..messages import MetricType

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Group",
    "Point",
    "QueryResult",
    "RunSummary",
    "Series",
    "Store",
    "duration_s",
    "rfc3339",
]

DEFAULT_LIMIT = 20
"""Series returned when no limit is given."""
MAX_LIMIT = 1000
"""The most series one query returns."""
STALE_BEATS = 3
"""A ``running`` run whose heartbeat is older than this many of its intervals is ``stale``."""
DEFAULT_STATS: dict[MetricType, tuple[str, ...]] = {
    "counter": ("count", "rate"),
    "gauge": ("value",),
    "rate": ("rate", "passes", "fails"),
    "trend": ("count", "avg", "min", "med", "p(90)", "p(95)", "max"),
}
"""The stats a query gives when none is asked for."""

K = TypeVar("K", bound=Hashable)
"""A group's key (see :meth:`Store.groups`)."""
_COLUMNS = "count, sum, min, max, nonzero, last, last_time, sketch"


class Store:
    """A run store opened read-only (``path`` default: :func:`~.schema.default_path`)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._conn = open_reader(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, tuple(args)).fetchall()
        except sqlite3.Error as exc:
            raise describe(self.path, exc) from None

    # --- runs -------------------------------------------------------------------------------------

    def runs(self) -> list[RunSummary]:
        """Every run, newest first."""
        rows = self._rows(
            "SELECT id, state, source, script, bridge_version, started_at, ended_at, first_time, "
            "last_time, heartbeat_at, heartbeat_s FROM runs ORDER BY started_at DESC, id DESC"
        )
        now = time.time()
        return [
            RunSummary(
                run_id,
                "stale"
                if state == "running" and now - beat > STALE_BEATS * interval
                else str(state),
                source,
                script,
                version,
                started,
                ended,
                rfc3339(first),
                rfc3339(last),
                rfc3339(beat),
            )
            for (
                run_id,
                state,
                source,
                script,
                version,
                started,
                ended,
                first,
                last,
                beat,
                interval,
            ) in rows
        ]

    def run(self, ref: str = "latest") -> RunSummary:
        """A run by id; ``latest``: the newest running (not stale) run, else the newest run."""
        runs = self.runs()
        if not runs:
            raise ConfigError(f"store {self.path} holds no run yet")
        if ref == "latest":
            live = [run for run in runs if run.state == "running"]
            return (live or runs)[0]
        for run in runs:
            if run.id == ref:
                return run
        ids = ", ".join(run.id for run in runs[:20]) + (" ..." if len(runs) > 20 else "")
        raise ConfigError(f"no run {ref!r} in {self.path}; runs: latest, {ids}")

    def metrics(self, run_id: str) -> dict[str, MetricType]:
        """The run's metrics and their types."""
        rows = self._rows("SELECT name, type FROM metrics WHERE run_id = ? ORDER BY name", [run_id])
        return {name: kind for name, kind in rows}

    def definitions(self, run_id: str) -> list[dict[str, Any]]:
        """The run's metric definitions: ``name``, ``type``, ``contains``, ``thresholds``."""
        rows = self._rows(
            "SELECT name, type, contains, thresholds FROM metrics WHERE run_id = ? ORDER BY name",
            [run_id],
        )
        return [
            {"name": n, "type": t, "contains": c, "thresholds": json.loads(th)}
            for n, t, c, th in rows
        ]

    def snapshot(self, run_id: str, kind: str = "latest") -> dict[str, Any] | None:
        """The run's ``latest`` or ``final`` metrics snapshot (the ``metrics`` message's data)."""
        rows = self._rows(
            "SELECT body FROM snapshots WHERE run_id = ? AND kind = ?", [run_id, kind]
        )
        return json.loads(rows[0][0]) if rows else None

    def verdicts(self, run_id: str) -> list[dict[str, Any]]:
        """Each change of a threshold's verdict, in order, with its stream ``time``."""
        rows = self._rows(
            "SELECT time, body FROM verdicts WHERE run_id = ? ORDER BY rowid", [run_id]
        )
        return [{"time": rfc3339(when), **json.loads(body)} for when, body in rows]

    def buckets(
        self, run_id: str
    ) -> Iterator[tuple[str, MetricType, dict[str, str], int, int, Bucket]]:
        """Every bucket of the run: ``(metric, type, tags, start, width, bucket)``, by start (for
        a report rebuilt from the store)."""
        types = self.metrics(run_id)
        rows = self._rows(
            f"SELECT s.metric, s.tags, b.start, b.width, b.{_COLUMNS.replace(', ', ', b.')} "
            "FROM buckets b JOIN series s ON s.id = b.series_id WHERE s.run_id = ? "
            "ORDER BY b.start",
            [run_id],
        )
        for metric, tags, start, width, *row in rows:
            kind = types.get(metric)
            if kind is not None:
                yield metric, kind, json.loads(tags), start, width, row_bucket(kind, tuple(row))

    # --- query ------------------------------------------------------------------------------------

    def query(
        self,
        metric: str,
        *,
        run: str = "latest",
        stats: Sequence[str] = (),
        tags: Mapping[str, str] | None = None,
        window: str | float | None = None,
        since: str | None = None,
        until: str | None = None,
        group_by: Sequence[str] = (),
        step: str | float | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> QueryResult:
        """k6's ``stats`` of ``metric`` in one run: series whose tags contain all of ``tags``,
        merged by the values of the ``group_by`` tags (all into one without), over ``window``
        (the last ``window`` before the run's last bucket) or ``since``..``until`` (each a Go
        duration from the run's first bucket, or an RFC 3339 time; default: the whole run);
        with ``step``, also per step-aligned interval. Series by count, descending."""
        tags = dict(tags or {})
        if not 1 <= limit <= MAX_LIMIT:
            raise ConfigError(f"limit {limit} must be between 1 and {MAX_LIMIT}")
        info = self.run(run)
        kind = self._kind(info.id, metric)
        stats = list(stats) or list(DEFAULT_STATS[kind])
        for stat in stats:
            check_stat(stat, kind, metric)
        step_s = None if step is None else duration_s(step, "step")
        series = self._series(info.id, metric, tags, group_by)
        first, last = self._span(info.id)
        lo, hi = self._window(first, last, window, since, until)
        begin = lo if first is None else max(lo, first)
        end = hi if last is None else min(hi, last)
        rows: dict[tuple[str, ...], Rows] = {}
        slots: dict[tuple[str, ...], dict[int, Rows]] = {}
        for series_id, start, _, row in self._buckets(list(series), lo, hi):
            key = series[series_id]
            if step_s is None:
                if key not in rows:
                    rows[key] = Rows(kind)
                rows[key].add(row)
            else:  # each row into its step, the steps into the whole (fewer sketch merges)
                slot = math.floor(start / step_s)
                in_slots = slots.setdefault(key, {})
                if slot not in in_slots:
                    in_slots[slot] = Rows(kind)
                in_slots[slot].add(row)
        for key, parts in slots.items():
            whole = rows[key] = Rows(kind)
            for _, rows_of_slot in sorted(parts.items()):
                whole.absorb(rows_of_slot)
        groups = {key: merged.done() for key, merged in rows.items()}
        steps = {key: {n: part.done() for n, part in ps.items()} for key, ps in slots.items()}
        ordered = sorted(
            groups.items(), key=lambda item: (-item[1].count, [v or "" for v in item[0]])
        )
        results = []
        for key, bucket in ordered[:limit]:
            points = None
            if step_s is not None:
                points = []
                for slot, part in sorted(steps[key].items()):
                    p_lo, p_hi = max(slot * step_s, begin), min((slot + 1) * step_s, end)
                    values = {s: part.stat(s, max(p_hi - p_lo, 0.0)) for s in stats}
                    points.append(
                        Point(rfc3339(slot * step_s), rfc3339((slot + 1) * step_s), values)
                    )
            labels = dict(zip(group_by, key, strict=True)) if group_by else tags
            values = {s: bucket.stat(s, max(end - begin, 0.0)) for s in stats}
            results.append(
                Series({k: v for k, v in labels.items() if v is not None}, values, points)
            )
        return QueryResult(
            info.id,
            info.state,
            rfc3339(last),
            {"start": rfc3339(begin), "end": rfc3339(end)},
            results,
            len(ordered) > limit,
        )

    def tag_values(self, metric: str, tag: str, *, run: str = "latest") -> dict[str, int]:
        """The values ``tag`` takes on ``metric`` in a run, each with its sample count (the
        whole run), most samples first. ConfigError for an unknown metric or tag."""
        info = self.run(run)
        self._kind(info.id, metric)
        rows = self._rows(
            "SELECT s.tags, COALESCE(SUM(b.count), 0) FROM series s LEFT JOIN buckets b "
            "ON b.series_id = s.id WHERE s.run_id = ? AND s.metric = ? GROUP BY s.id",
            [info.id, metric],
        )
        counts: dict[str, int] = {}
        known: set[str] = set()
        for text, total in rows:
            tags = json.loads(text)
            known.update(tags)
            if tag in tags:
                counts[tags[tag]] = counts.get(tags[tag], 0) + int(total)
        if tag not in known:
            names = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"{metric} has no tag {tag!r} in run {info.id}; tags: {names}")
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def groups(
        self,
        metric: str,
        key: Callable[[dict[str, str]], K | None],
        *,
        run: str = "latest",
        window: str | float | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> tuple[RunSummary, dict[str, str | None], dict[K, Group]]:
        """``metric``'s series merged by ``key(tags)`` (a series whose key is ``None`` is left
        out) over a window (as in :meth:`query`): the run, the window, and each group's bucket
        with the span of its buckets that hold samples (and, for a rate, non-zero ones)."""
        return grouped(self, metric, key, run, window, since, until)

    def _kind(self, run_id: str, metric: str) -> MetricType:
        kinds = self.metrics(run_id)
        if metric not in kinds:
            names = list(kinds)
            shown = ", ".join(names[:40]) + (" ..." if len(names) > 40 else "")
            raise ConfigError(f"no metric {metric!r} in run {run_id}; metrics: {shown or 'none'}")
        return kinds[metric]

    def _series(
        self, run_id: str, metric: str, tags: Mapping[str, str], group_by: Sequence[str]
    ) -> dict[int, tuple[Any, ...]]:
        """The matching series' ids → their group key (the ``group_by`` tags' values)."""
        rows = self._rows(
            "SELECT id, tags FROM series WHERE run_id = ? AND metric = ?", [run_id, metric]
        )
        all_tags = [(series_id, json.loads(text)) for series_id, text in rows]
        values: dict[str, set[str]] = {}
        for _, series_tags in all_tags:
            for key, value in series_tags.items():
                values.setdefault(key, set()).add(value)
        for key in [*tags, *group_by]:
            if key not in values:
                known = ", ".join(sorted(values)) or "none"
                raise ConfigError(f"{metric} has no tag {key!r} in run {run_id}; tags: {known}")
        for key, value in tags.items():
            if value not in values[key]:
                seen = sorted(values[key])
                shown = ", ".join(seen[:20]) + (" ..." if len(seen) > 20 else "")
                raise ConfigError(
                    f"no {metric} series has {key}={value} in run {run_id}; {key}: {shown}"
                )
        return {
            series_id: tuple(series_tags.get(key) for key in group_by)
            for series_id, series_tags in all_tags
            if all(series_tags.get(key) == value for key, value in tags.items())
        }

    def _span(self, run_id: str) -> tuple[float | None, float | None]:
        rows = self._rows("SELECT first_time, last_time FROM runs WHERE id = ?", [run_id])
        first, last = rows[0]
        return first, last

    def _window(
        self,
        first: float | None,
        last: float | None,
        window: str | float | None,
        since: str | None,
        until: str | None,
    ) -> tuple[float, float]:
        if window is not None and (since is not None or until is not None):
            raise ConfigError("give either a window or since/until, not both")
        origin = first if first is not None else 0.0
        hi = last if last is not None else origin
        if window is not None:
            return hi - duration_s(window, "window"), hi
        lo = origin if since is None else instant(since, origin, "since")
        if until is not None:
            hi = instant(until, origin, "until")
        if hi <= lo:
            raise ConfigError(
                f"the window is empty: until ({rfc3339(hi)}) is not after since ({rfc3339(lo)})"
            )
        return lo, hi

    def _buckets(self, ids: list[int], lo: float, hi: float) -> list[tuple[int, int, int, Any]]:
        found = []
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            marks = ",".join("?" * len(part))
            rows = self._rows(
                f"SELECT series_id, start, width, {_COLUMNS} FROM buckets "
                f"WHERE series_id IN ({marks}) AND start >= ? AND start < ? ORDER BY start",
                [*part, lo, hi],
            )
            found += [(sid, start, width, tuple(row)) for sid, start, width, *row in rows]
        return found
