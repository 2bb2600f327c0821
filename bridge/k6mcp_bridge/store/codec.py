"""A bucket as a row of the ``buckets`` table, its sketch as a compact BLOB, tags as a key.

The sketch BLOB: one byte (``0``: alpha is the default 0.01; ``1``: 8 bytes of little-endian
float64 alpha follow), then unsigned LEB128 varints: zeros, +Inf count, -Inf count, then for
the positive bins and then the negative ones their number and, per bin in key order, the key's
difference from the previous key (zigzag, the first from 0) and the count. Keys are a log scale
(116 per decade) so neighbouring bins differ by 1 and most pairs take 2 bytes: a bucket of an
HTTP trend is a few dozen bytes where its JSON is a few hundred.
"""

from __future__ import annotations

import json
import struct
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..aggregate.buckets import Bucket
from ..k6.sketch import RELATIVE_ACCURACY, QuantileSketch

if TYPE_CHECKING:
    from ..messages import MetricType, Tags

Row = tuple[Any, ...]
"""``count, sum, min, max, nonzero, last, last_time, sketch``: the bucket columns after
``series_id, start, width``."""


def tags_key(tags: Tags) -> str:
    """Canonical JSON of a tag set: sorted keys, no spaces (the ``series.tags`` column)."""
    return json.dumps(tags, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def bucket_row(bucket: Bucket) -> Row:
    last_time = None if bucket.last_time is None else bucket.last_time.timestamp()
    sketch = None if bucket.sketch is None else pack_sketch(bucket.sketch)
    return (
        bucket.count,
        bucket.sum,
        bucket.min,
        bucket.max,
        bucket.nonzero,
        bucket.last,
        last_time,
        sketch,
    )


def row_bucket(kind: MetricType, row: Row) -> Bucket:
    count, total, low, high, nonzero, last, last_time, sketch = row
    return Bucket(
        kind,
        count,
        total,
        low,
        high,
        nonzero,
        last,
        None if last_time is None else datetime.fromtimestamp(last_time, timezone.utc),
        None if sketch is None else unpack_sketch(sketch),
    )


# --- the sketch BLOB ---------------------------------------------------------------------------


def _varint(out: bytearray, value: int) -> None:
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _bins(out: bytearray, bins: dict[int, int]) -> None:
    _varint(out, len(bins))
    previous = 0
    for key in sorted(bins):
        delta = key - previous
        _varint(out, (delta << 1) if delta >= 0 else ((-delta) << 1) - 1)
        _varint(out, bins[key])
        previous = key


def pack_sketch(sketch: QuantileSketch) -> bytes:
    out = bytearray()
    alpha = (sketch.gamma - 1) / (sketch.gamma + 1)
    if abs(alpha - RELATIVE_ACCURACY) < 1e-12:
        out.append(0)
    else:
        out.append(1)
        out += struct.pack("<d", alpha)
    for value in (sketch.zeros, sketch.pos_inf, sketch.neg_inf):
        _varint(out, value)
    _bins(out, sketch.pos)
    _bins(out, sketch.neg)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data, self.offset = data, offset

    def varint(self) -> int:
        data, offset, shift, value = self.data, self.offset, 0, 0
        while True:
            byte = data[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.offset = offset
                return value
            shift += 7

    def bins(self) -> dict[int, int]:
        bins: dict[int, int] = {}
        key = 0
        for _ in range(self.varint()):
            zigzag = self.varint()
            key += (zigzag >> 1) if not zigzag & 1 else -((zigzag + 1) >> 1)
            bins[key] = self.varint()
        return bins


def unpack_sketch(data: bytes) -> QuantileSketch:
    if data[0] == 0:
        alpha, offset = RELATIVE_ACCURACY, 1
    else:
        alpha, offset = struct.unpack_from("<d", data, 1)[0], 9
    reader = _Reader(data, offset)
    sketch = QuantileSketch(alpha)
    sketch.zeros, sketch.pos_inf, sketch.neg_inf = reader.varint(), reader.varint(), reader.varint()
    sketch.pos = reader.bins()
    sketch.neg = reader.bins()
    return sketch
