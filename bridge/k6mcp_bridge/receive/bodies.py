"""The bodies POSTed to ``--listen`` → records for the pipeline, and the answer's errors.

A body is a list of items, each read on its own:

* ``application/json``: one JSON value, an object or an array of objects;
* NDJSON (:data:`NDJSON_TYPES`): an object per line; blank lines are skipped. Each body holds
  whole lines: a record cut at the end of a body is rejected, not joined with the next body.

An item is, by its ``type``:

* a k6 record (``"Metric"``, ``"Point"``), read exactly as a line of ``k6 run --out json``
  (the same decoder: the same values, the same rejections);
* an MCP envelope (``{"type": "point", "data": ...}``, see :mod:`~..messages`): ``metric``
  and ``point`` become records as k6's would; ``metrics`` snapshots, ``threshold`` verdicts and
  ``window`` rollups are checked and counted as *recomputed*, not passed on, since the bridge
  computes them itself from the points it receives (a plugin would otherwise see two versions
  of one run's numbers);
* seed-style data, as the first k6-mcp-server took it: a ``metrics`` envelope whose ``data``
  is not a snapshot (has no ``root_group``), ``{"vus": 10, "iterations": 100}``. Every entry is
  one sample: a point of the metric of that name (k6's rules for names), at the time the request
  arrived, with no tags. A metric's definition goes before its first point, typed as
  :class:`~..decode.metric_typing.MetricTyping` says: k6's built-in type (``iterations`` is a
  counter, so every POST adds its value, as k6's own 1-per-iteration points do), else
  ``--metric-type``, else a trend.

Each rejected item is a :class:`Problem` with its line (NDJSON) or index (array), the field
and the reason; the valid items of the same body are delivered all the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec
from pydantic import ValidationError

from ..decode.fast_json import decode_lines_fast
from ..decode.json_lines import Rejection, decode_record, shorten_value
from ..decode.metric_typing import MetricTyping
from ..messages import MESSAGE_ADAPTER, MESSAGE_TYPES, MetricMessage, MetricType, PointMessage
from ..samples import Decoded, PointRecord, record_of, validate_time

BodyKind = Literal["json", "ndjson"]
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)
ACCEPTED_TYPES = ", ".join([*sorted(JSON_TYPES), *sorted(NDJSON_TYPES)])
"""Every ``Content-Type`` a body may have (``Accept-Post``)."""
MAX_ERRORS_ANSWERED = 100
"""Errors listed in one answer; the count of the others is given."""

_METRIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{1,128}")
"""k6 v1.1.0's rule for metric names (``metrics/registry.go``), checked on seed-style data."""
_NAME_RULE = (
    "metric names must only include up to 128 ASCII letters, numbers, or underscores "
    "and start with a letter or an underscore (k6's rule)"
)
_KINDS = "k6 records ('Metric', 'Point') or MCP envelopes (" + ", ".join(MESSAGE_TYPES) + ")"


class _Typed(msgspec.Struct):
    type: Any = None


class _SeedEnvelope(msgspec.Struct):
    data: dict[str, Any]


_type_of = msgspec.json.Decoder(_Typed).decode
_seed_of = msgspec.json.Decoder(_SeedEnvelope).decode


def body_kind(content_type: str | None) -> BodyKind | None:
    """How to read a body of this ``Content-Type`` (parameters such as ``charset`` aside)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media in JSON_TYPES:
        return "json"
    if media in NDJSON_TYPES:
        return "ndjson"
    return None


@dataclass(frozen=True)
class Problem:
    """One rejected item: ``line`` (NDJSON, from 1) or ``index`` (array, from 0), or neither."""

    line: int | None
    index: int | None
    field: str | None
    reason: str
    raw: bytes

    def answer(self) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        if self.line is not None:
            answer["line"] = self.line
        elif self.index is not None:
            answer["index"] = self.index
        return answer | {"field": self.field, "reason": self.reason}

    def rejection(self, request: int) -> Rejection:
        """As the pipeline logs and counts it: ``request 3, line 2: ...``."""
        place = f"request {request}"
        if self.line is not None:
            place += f", line {self.line}"
        elif self.index is not None:
            place += f", item {self.index}"
        return Rejection(self.line or 0, self.field, self.reason, (self.raw,), place)


@dataclass
class Parcel:
    """What one request brought: records in order, rejected items, recomputed envelopes."""

    request: int
    records: list[Decoded] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    recomputed: int = 0
    items: int = 0
    """JSON values read (lines, array items), accepted or not."""

    def __bool__(self) -> bool:
        return bool(self.items)

    def answer(self) -> dict[str, Any]:
        """The JSON answer (202 without problems, else 400)."""
        answer: dict[str, Any] = {
            "accepted": len(self.records),
            "recomputed": self.recomputed,
            "rejected": len(self.problems),
        }
        if self.problems:
            answer["errors"] = [p.answer() for p in self.problems[:MAX_ERRORS_ANSWERED]]
            if len(self.problems) > MAX_ERRORS_ANSWERED:
                answer["more_errors"] = len(self.problems) - MAX_ERRORS_ANSWERED
        return answer


class BodyReader:
    """Reads request bodies in arrival order; remembers which metrics are defined, so that
    seed-style data sends a metric's definition once. Not thread-safe: one reader per server
    loop."""

    def __init__(self, metric_types: Mapping[str, MetricType]) -> None:
        self._typing = MetricTyping(metric_types, "seed-style HTTP data carries no metric types")
        self._defined: set[str] = set()
        self.requests = 0

    def read(self, body: bytes, kind: BodyKind) -> Parcel:
        self.requests += 1
        parcel = Parcel(self.requests)
        arrived = validate_time(datetime.now(timezone.utc).isoformat())
        if kind == "ndjson":
            self._lines(body, parcel, arrived)
        else:
            self._json(body, parcel, arrived)
        return parcel

    def _lines(self, body: bytes, parcel: Parcel, arrived: datetime) -> None:
        lines = body.split(b"\n")
        filled = [line for line in lines if line.strip()]
        whole = decode_lines_fast(filled)
        if whole is not None:  # the usual body: k6's own lines, one C call
            parcel.items = len(filled)
            self._add(whole, parcel)
            return
        for number, line in enumerate(lines, 1):
            if line.strip():
                self._item(line, number, None, parcel, arrived)

    def _json(self, body: bytes, parcel: Parcel, arrived: datetime) -> None:
        if body.lstrip()[:1] != b"[":
            self._item(body, None, None, parcel, arrived)
            return
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            parcel.items = 1
            parcel.problems.append(Problem(None, None, None, f"invalid JSON: {exc}", body))
            return
        for index, item in enumerate(items):
            self._item(bytes(item), None, index, parcel, arrived)

    def _item(
        self, raw: bytes, line: int | None, index: int | None, parcel: Parcel, arrived: datetime
    ) -> None:
        parcel.items += 1
        result = decode_record(raw)
        if not isinstance(result, tuple):
            self._add([result], parcel)
            return
        where, reason = result
        if where == "type":  # not a k6 record: an envelope?
            try:
                kind = _type_of(raw).type
            except (msgspec.DecodeError, msgspec.ValidationError):
                kind = None
            if kind in MESSAGE_TYPES:
                self._envelope(kind, raw, line, index, parcel, arrived)
                return
            what = "not a record" if kind is None else f"unknown type {shorten_value(kind)}"
            reason = f"{what}: expected {_KINDS}"
        parcel.problems.append(Problem(line, index, where, reason, raw))

    def _envelope(
        self,
        kind: str,
        raw: bytes,
        line: int | None,
        index: int | None,
        parcel: Parcel,
        arrived: datetime,
    ) -> None:
        if kind == "metrics":
            try:
                seed = _seed_of(raw).data
            except (msgspec.DecodeError, msgspec.ValidationError):
                seed = None
            if seed is not None and "root_group" not in seed:
                self._seed(seed, line, index, parcel, arrived, raw)
                return
        try:
            message = MESSAGE_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = first["loc"][1:]  # (type, data, ...): a field of data is found in two ways,
            if loc[:2] == ("data", "data"):  # flat or k6's data.data: name it once
                loc = loc[1:]
            path = ".".join(str(part) for part in loc) or None
            got = f" (got {shorten_value(first['input'])})" if first["type"] != "missing" else ""
            reason = f"{kind} envelope: {first['msg']}{got}"
            parcel.problems.append(Problem(line, index, path, reason, raw))
            return
        if isinstance(message, PointMessage):
            self._add([record_of(message)], parcel)
        elif isinstance(message, MetricMessage):
            self._add([message], parcel)
        else:
            parcel.recomputed += 1

    def _seed(
        self,
        data: dict[str, Any],
        line: int | None,
        index: int | None,
        parcel: Parcel,
        arrived: datetime,
        raw: bytes,
    ) -> None:
        records = parcel.records
        for name, value in data.items():
            problem = _seed_problem(name, value)
            if problem is not None:
                parcel.problems.append(Problem(line, index, f"data.{name}", problem, raw))
                continue
            if name not in self._defined:
                self._defined.add(name)
                records.append(self._typing.message(name))
            records.append(PointRecord(name, float(value), None, None, arrived))

    def _add(self, records: list[Decoded], parcel: Parcel) -> None:
        for record in records:
            if type(record) is MetricMessage:
                self._defined.add(record.data.name)
        parcel.records += records


def _seed_problem(name: str, value: Any) -> str | None:
    if not _METRIC_NAME.fullmatch(name):
        return f"invalid metric name {shorten_value(name)}: {_NAME_RULE}"
    if type(value) not in (int, float):
        return f"a number is expected (got {shorten_value(value)})"
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    return None if finite else f"a finite number is expected (got {shorten_value(value)})"
