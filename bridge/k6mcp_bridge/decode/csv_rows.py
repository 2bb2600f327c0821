"""k6's CSV output (``--out csv=…``) → MCP messages, console text or precise rejections.

The interface mirrors :class:`~.decoder.JsonDecoder`: lists of physical lines (no ``\\n``)
in, messages appended to ``out``, other lines to the ``on_console``/``on_reject`` callbacks.

How k6 v1.1.0 writes CSV, and how it is read back here (``docs/k6-formats.md`` §2);
single values (timestamps, ``extra_tags``/``metadata``, header and console lines) are read by
:mod:`.csv_values`, which documents them:

* **Header.** Columns are found by name, never by position. A header line met again later
  (concatenated files, a followed file that was replaced) is read again. Lines before the
  first header are console text: with ``--out csv=-`` k6 prints its banner before the header.
* **Records.** RFC 4180 quoting, read by :mod:`csv` (strict). A quoted field may contain line
  breaks: the physical lines of such a record are joined before parsing (at most
  :data:`MAX_RECORD_LINES` lines; past that, or at the end of input, the first line is
  rejected and the lines after it are read again as records). ``\\r\\n`` line ends work.
* **Tags.** A tag column's value is the tag; an empty column is an absent tag (k6 writes
  absent and empty alike), except ``group``: k6 tags every sample a VU emits with its group,
  ``""`` for the root group, so an empty ``group`` column is the root group ``""`` — for all
  metrics but those k6 emits outside VUs (:data:`~.k6_metrics.EMITTED_OUTSIDE_VUS`), whose
  samples have no ``group`` tag in k6's JSON output of the same run. ``extra_tags`` add to
  them (:func:`~.csv_values.decode_pairs`).
* **Values.** ``%f`` (six decimals), or ``+Inf``/``-Inf``. ``NaN`` is rejected (k6 never
  writes it).
* **Metric messages.** CSV has no ``Metric`` records, so one is made before a metric's first
  point, typed by :class:`~.metric_typing.MetricTyping` (k6's built-ins, ``metric_types``,
  else a trend with one warning per metric).
  Thresholds and submetrics are not in CSV: ``[]`` and ``None``.
* **Console text after the header** (:func:`~.csv_values.is_console`) passes through. Every
  other line is a record, decoded or rejected: a bad row is never mistaken for console text.
  k6's 4 KiB stdout buffer can cut a row in two around a progress line (as for JSON); such
  halves are rejected, not joined: use ``-q`` or a file.

Rejections name the first physical line of the record, the CSV column at fault
(``metric_name``, ``timestamp``, ``metric_value``; ``None`` for the record as a whole) and keep
the physical lines exactly as read. ``rejoined`` stays 0: a multi-line quoted record is
ordinary CSV, not a record repaired after k6's console output split it; ``multiline`` counts
them.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from ..k6.builtin_metrics import EMITTED_OUTSIDE_VUS
from ..messages import MetricMessage, MetricType
from ..samples import Decoded, PointRecord, validate_time
from .csv_records import MAX_RECORD_LINES, Batch, Records, last_line
from .csv_values import (
    HEADER_START,
    decode_pairs,
    is_console,
    is_header,
    parse_time,
    unix_time,
)
from .json_lines import Rejection, shorten_value
from .metric_typing import MetricTyping

log = logging.getLogger("k6mcp_bridge.input")

_HEADER_TEXT = ",".join(HEADER_START)
_BOM = "\ufeff"
_PAIR_CACHE_SIZE = 4096
_NAN = float("nan")
_NO_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""Stands in before the first row's time (whose text, ``None``, no stamp equals): never read."""
_NO_TYPES: Mapping[str, MetricType] = MappingProxyType({})


@dataclass(frozen=True)
class _Columns:
    """Where things are in the rows under one header."""

    count: int
    name: int
    time: int
    value: int
    tag_names: tuple[str, ...]
    tag_values: Callable[[list[str]], tuple[str, ...]]
    extra: int | None
    metadata: int | None
    has_group: bool

    @classmethod
    def of(cls, header: list[str]) -> _Columns:
        special = {*HEADER_START, "extra_tags", "metadata"}
        tag_at = [i for i, name in enumerate(header) if name not in special]
        return cls(
            count=len(header),
            name=header.index("metric_name"),
            time=header.index("timestamp"),
            value=header.index("metric_value"),
            tag_names=tuple(header[i] for i in tag_at),
            tag_values=_getter(tag_at),
            extra=header.index("extra_tags") if "extra_tags" in header else None,
            metadata=header.index("metadata") if "metadata" in header else None,
            has_group="group" in header,
        )


def _getter(indexes: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    if not indexes:
        return lambda row: ()
    if len(indexes) == 1:
        only = indexes[0]
        return lambda row: (row[only],)
    get: Callable[[list[str]], tuple[str, ...]] = itemgetter(*indexes)
    return get


class CsvDecoder:
    """Decodes lists of complete lines of k6 CSV; keeps the header and a multi-line record.

    ``lineno`` counts physical lines consumed, ``multiline`` the records that spanned several
    physical lines (quoted line breaks); ``rejoined`` is always 0 (see the module docstring).
    """

    def __init__(
        self,
        on_console: Callable[[bytes], None],
        on_reject: Callable[[Rejection], None],
        metric_types: Mapping[str, MetricType] = _NO_TYPES,
        max_record_lines: int = MAX_RECORD_LINES,
    ) -> None:
        self.lineno = 0
        self.rejoined = 0
        self._on_console = on_console
        self._on_reject = on_reject
        self._typing = MetricTyping(metric_types, "k6's CSV output does not carry metric types")
        self._columns: _Columns | None = None
        self._records = Records(max_record_lines)
        self._metrics: set[str] = set()
        self._pairs: dict[str, dict[str, str]] = {}
        self._last_time: tuple[str | None, datetime] = (None, _NO_TIME)

    @property
    def held(self) -> int:
        """Bytes of input (newlines included) held as the first lines of an open record."""
        return self._records.held_bytes

    @property
    def multiline(self) -> int:
        return self._records.multiline

    def decode(self, lines: list[bytes], out: list[Decoded]) -> None:
        """Append the messages in ``lines`` to ``out``; other lines go to the callbacks.

        ``out`` keeps what was decoded even when a callback raises part way.
        """
        if not lines:
            return
        first = self.lineno + 1
        self._rows(self._records.split(lines, first), out)
        self.lineno = first + len(lines) - 1

    def finish(self, tail: bytes | None, out: list[Decoded]) -> None:
        """Decode a last line that had no newline, then report a quoted field left open."""
        if tail is not None:
            self.decode([tail], out)
        end = self.lineno
        while self._records.held is not None:
            self._rows(self._records.release("the input ended inside a quoted field"), out)
        self.lineno = end
        if self._columns is None and end:
            log.warning(
                "no k6 CSV header (%s,...) in %d lines: nothing was decoded", _HEADER_TEXT, end
            )

    # --- records → messages ----------------------------------------------------------------

    def _rows(self, batch: Batch, out: list[Decoded]) -> None:
        reader = csv.reader(batch.texts, strict=True)
        while True:
            try:
                if not self._read_rows(reader, batch, out):
                    return
            except csv.Error as exc:
                index = reader.line_num - 1
                if self._columns is None or is_console(batch.texts[index]):
                    self._console(batch, index)
                else:
                    self._reject(batch, index, None, f"malformed CSV: {exc}")

    def _read_rows(self, reader: Any, batch: Batch, out: list[Decoded]) -> bool:
        """Decode rows until the end (``False``) or until a header changed the columns."""
        append = out.append
        columns = self._columns
        if columns is None:
            count = -1  # no row is complete before a header
        else:
            count, names, tag_values = columns.count, columns.tag_names, columns.tag_values
            name_at, time_at, value_at = columns.name, columns.time, columns.value
            extra_at, metadata_at, has_group = columns.extra, columns.metadata, columns.has_group
        metrics = self._metrics
        last_text, last_time = self._last_time  # the time of the last row, as text and value
        pairs = self._pairs_of
        for row in reader:
            if len(row) == count:
                name = row[name_at]
                stamp = row[time_at]
                try:
                    if stamp != last_text:
                        if stamp.isdigit():
                            last_time = unix_time(stamp)
                        elif stamp[4:5] == "-":  # RFC 3339, as the model's validator reads it
                            last_time = validate_time(stamp)
                        else:
                            raise ValueError(stamp)
                        last_text = stamp
                    value = float(row[value_at])
                except ValueError:
                    value = _NAN
                if name and value == value:  # not NaN
                    tags = {k: v for k, v in zip(names, tag_values(row), strict=True) if v}
                    if has_group and "group" not in tags and name not in EMITTED_OUTSIDE_VUS:
                        tags["group"] = ""
                    if extra_at is not None and row[extra_at]:
                        tags = {**pairs(row[extra_at]), **tags}
                    metadata = None
                    if metadata_at is not None and row[metadata_at]:
                        metadata = pairs(row[metadata_at])
                    if name not in metrics:
                        append(self._metric(name))
                    append(PointRecord(name, value, tags, metadata, last_time))
                    continue
                self._bad_row(row, reader.line_num - 1, batch)
            else:
                self._odd_row(row, reader.line_num - 1, batch)
            if self._columns is not columns:  # a header: go on with its columns
                self._last_time = (last_text, last_time)
                return True
        self._last_time = (last_text, last_time)
        return False

    def _pairs_of(self, text: str) -> dict[str, str]:
        """:func:`decode_pairs`, cached: k6 repeats the same few strings (do not modify)."""
        cached = self._pairs.get(text)
        if cached is None:
            if len(self._pairs) >= _PAIR_CACHE_SIZE:
                self._pairs.clear()
            cached = self._pairs[text] = decode_pairs(text)
        return cached

    def _odd_row(self, row: list[str], index: int, batch: Batch) -> None:
        """A record without the header's column count: header, console text or rejection."""
        text = batch.texts[index]
        if index in batch.problems:
            reason, text = batch.problems[index]
            if text and (self._columns is None or is_console(text)):
                self._console(batch, index)  # k6's console text with an odd '"'
            else:
                self._reject(batch, index, None, reason)
            return
        if self._columns is None and text.startswith(_BOM):
            text = text[1:]
            row = next(csv.reader([text], strict=True))
        if is_header(row):
            self._header(row)
            return
        if self._columns is None or is_console(text):
            self._console(batch, index)
            return
        reason = f"{len(row)} columns where the header has {self._columns.count}"
        self._reject(batch, index, None, reason)

    def _bad_row(self, row: list[str], index: int, batch: Batch) -> None:
        """A row with the right columns whose name, time or value is wrong."""
        columns = self._columns
        assert columns is not None
        if is_header(row):
            self._header(row)
            return
        if not row[columns.name]:
            self._reject(batch, index, "metric_name", "empty metric name")
            return
        stamp = row[columns.time]
        try:
            parse_time(stamp)
        except ValueError as exc:
            reason = (
                f"not a k6 timestamp ({exc}): expected unix seconds, milliseconds, "
                f"microseconds or nanoseconds, or RFC 3339 with a zone; got {shorten_value(stamp)}"
            )
            self._reject(batch, index, "timestamp", reason)
            return
        value = row[columns.value]
        try:
            float(value)
            reason = "NaN is not a value k6 writes"
        except ValueError:
            reason = f"not a number: {shorten_value(value)}"
        self._reject(batch, index, "metric_value", reason)

    def _console(self, batch: Batch, index: int) -> None:
        self.lineno = last_line(batch, index)
        raw = batch.raws[index]
        for line in raw if isinstance(raw, tuple) else (raw,):
            self._on_console(line)

    def _header(self, row: list[str]) -> None:
        """Read a header; one after the first starts another k6 output (concatenated files)."""
        if self._columns is not None:
            self._metrics.clear()  # its metrics are announced again, as k6's JSON would
        self._columns = _Columns.of(row)

    def _reject(self, batch: Batch, index: int, field: str | None, reason: str) -> None:
        self.lineno = last_line(batch, index)
        raw = batch.raws[index]
        lines = raw if isinstance(raw, tuple) else (raw,)
        self._on_reject(Rejection(batch.firsts[index], field, reason, lines))

    def _metric(self, name: str) -> MetricMessage:
        self._metrics.add(name)
        return self._typing.message(name)
