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
from itertools import accumulate
from typing import Any

from ..aggregate.buckets import Bucket
from ..k6.sketch import RELATIVE_ACCURACY, QuantileSketch
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


# --- reading many rows into one bucket (the read API's hot path) ---------------------------------

_UNZIGZAG = [(z >> 1) if not z & 1 else -((z + 1) >> 1) for z in range(128)]


def merge_row(bucket: Bucket, row: Row) -> None:
    """``bucket.merge(row_bucket(bucket.type, row))`` without building the row's bucket: a
    sketch BLOB's bins are added straight into ``bucket``'s sketch (what makes a query over a
    long run's thousands of trend buckets fast)."""
    count, total, low, high, nonzero, _, last_time, sketch = row
    if not count:
        return
    if last_time is not None or sketch is None or sketch[0] != 0:
        bucket.merge(row_bucket(bucket.type, row))
        return
    bucket.count += count
    bucket.sum += total
    if low < bucket.min:
        bucket.min = low
    if high > bucket.max:
        bucket.max = high
    bucket.nonzero += nonzero
    if bucket.sketch is None:
        bucket.sketch = QuantileSketch()
    add_packed(sketch, bucket.sketch)


def add_packed(data: bytes, sketch: QuantileSketch) -> None:
    """Add a sketch BLOB of the default alpha to ``sketch``. The bins after each sign's first
    one are nearly always one-byte varints (key deltas of ±63, counts < 128): those are read
    as byte slices; anything else takes the general reader."""
    reader = _Reader(data, 1)
    sketch.zeros += reader.varint()
    sketch.pos_inf += reader.varint()
    sketch.neg_inf += reader.varint()
    for bins in (sketch.pos, sketch.neg):
        n = reader.varint()
        if not n:
            continue
        zigzag = reader.varint()
        key = (zigzag >> 1) if not zigzag & 1 else -((zigzag + 1) >> 1)
        bins[key] = bins.get(key, 0) + reader.varint()
        start = reader.offset
        end = start + 2 * (n - 1)
        chunk = data[start:end]
        if len(chunk) == end - start and (not chunk or max(chunk) < 0x80):
            get = bins.get
            keys = accumulate(map(_UNZIGZAG.__getitem__, chunk[0::2]), initial=key)
            next(keys)
            for at, count in zip(keys, chunk[1::2]):  # noqa: B905 (equal lengths)
                bins[at] = get(at, 0) + count
            reader.offset = end
            continue
        for _ in range(n - 1):
            zigzag = reader.varint()
            key += (zigzag >> 1) if not zigzag & 1 else -((zigzag + 1) >> 1)
            bins[key] = bins.get(key, 0) + reader.varint()
    sketch._index = None
