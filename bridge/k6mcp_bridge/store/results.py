"""What the read API returns: plain dataclasses with ``to_dict()`` (JSON-ready: times are
RFC 3339 strings), and the parsing of the durations and instants its arguments take."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigError
from ..k6.go_literals import parse_go_duration


def rfc3339(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RunSummary:
    """One run's row. ``state``: running, finished, interrupted, or stale (running, but its
    writer stopped heartbeating). ``first_time``/``last_time``: its buckets' span, stream time."""

    id: str
    state: str
    source: str
    script: str | None
    bridge_version: str
    started_at: str
    ended_at: str | None
    first_time: str | None
    last_time: str | None
    heartbeat_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Point:
    """One ``--step`` interval of a series."""

    start: str | None
    end: str | None
    values: dict[str, float | None]


@dataclass(frozen=True)
class Series:
    tags: dict[str, str]
    values: dict[str, float | None]
    points: list[Point] | None = None
    """Only when a step was asked for."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"tags": self.tags, "values": self.values}
        if self.points is not None:
            data["points"] = [asdict(point) for point in self.points]
        return data


@dataclass(frozen=True)
class QueryResult:
    run_id: str
    run_state: str
    as_of: str | None
    """The end of the run's latest bucket: what "now" is for the window."""
    window: dict[str, str | None]
    series: list[Series] = field(default_factory=list)
    truncated: bool = False
    """More series matched than ``limit``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_state": self.run_state,
            "as_of": self.as_of,
            "window": self.window,
            "series": [series.to_dict() for series in self.series],
            "truncated": self.truncated,
        }


def duration_s(text: str | float, what: str) -> float:
    """A Go duration (``30s``, ``1m30s``) or a number of seconds, > 0."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        try:
            seconds = parse_go_duration(text.strip()) / 1e9
        except ValueError:
            raise ConfigError(
                f"{what} {text!r} is not a duration (Go's form, e.g. 30s, 1m30s, 500ms)"
            ) from None
    if not seconds > 0:
        raise ConfigError(f"{what} {text!r} must be longer than 0")
    return seconds


def instant(text: str, origin: float, what: str) -> float:
    """An RFC 3339 time, or a Go duration after ``origin`` (the run's first bucket)."""
    if text[:1].isdigit() and ("T" in text or "-" in text[1:]):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{what} {text!r} is not an RFC 3339 time") from None
        if moment.tzinfo is None:
            raise ConfigError(f"{what} {text!r} needs a time zone (e.g. Z)")
        return moment.timestamp()
    try:
        return origin + parse_go_duration(text.strip()) / 1e9
    except ValueError:
        raise ConfigError(
            f"{what} {text!r} is neither a duration from the run's start (e.g. 10s) nor an "
            "RFC 3339 time (e.g. 2026-11-24T18:00:05Z)"
        ) from None
