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
import re
import struct
import sys
from array import array
from collections import deque
from datetime import datetime, timezone
from itertools import accumulate, compress
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


# --- reading many rows into one bucket (the read API's hot path) ---------------------------------

_UNZIGZAG = [(z >> 1) if not z & 1 else -((z + 1) >> 1) for z in range(128)]
_LANE = 8
"""Bytes per bin in a :class:`Rows` lane sum: 64-bit counts never overflow."""
_LANE_OFFSETS = [_LANE * delta for delta in _UNZIGZAG]


class Rows:
    """Bucket rows merged into one bucket, as ``merge``-ing ``row_bucket`` of each would, fast.

    A trend's sketch BLOBs are not decoded into dicts and merged bin by bin: each sign's bins
    become one big integer with one 64-bit lane per key (placed by C-level slice and ``map``
    operations, nearly always possible: the bins after the first are one-byte varints), and
    the BLOBs add up as integers; :meth:`done` turns the lanes back into bins. That is what
    keeps a query over a long run's thousands of trend buckets within ~100 ms."""

    __slots__ = ("_bases", "_sums", "bucket")

    def __init__(self, kind: MetricType) -> None:
        self.bucket = Bucket(kind)
        self._sums = [0, 0]
        self._bases: list[int | None] = [None, None]

    def add(self, row: Row) -> None:
        count, total, low, high, nonzero, _, last_time, sketch = row
        if not count:
            return
        bucket = self.bucket
        if last_time is not None or (sketch is not None and sketch[0] != 0):
            bucket.merge(row_bucket(bucket.type, row))  # a gauge, a sketch of another alpha
            return
        bucket.count += count
        bucket.sum += total
        if low < bucket.min:
            bucket.min = low
        if high > bucket.max:
            bucket.max = high
        bucket.nonzero += nonzero
        if sketch is not None:
            if bucket.sketch is None:
                bucket.sketch = QuantileSketch()
            self._add_sketch(sketch, bucket.sketch)

    def _add_sketch(self, data: bytes, sketch: QuantileSketch) -> None:
        decoded = _DECODED.get(data)
        if decoded is None:
            decoded = _decode(data)
            if len(_DECODED) >= DECODED_CACHE:
                for old in list(_DECODED)[: DECODED_CACHE // 4]:  # the oldest quarter
                    _DECODED.pop(old, None)  # another thread may have
            _DECODED[data] = decoded
        zeros, pos_inf, neg_inf, sides, loose = decoded
        sketch.zeros += zeros
        sketch.pos_inf += pos_inf
        sketch.neg_inf += neg_inf
        for side, key, count in loose:
            bins = sketch.neg if side else sketch.pos
            bins[key] = bins.get(key, 0) + count
        for side, lanes in enumerate(sides):
            if lanes is None:
                continue
            first, value = lanes
            base = self._bases[side]
            if base is None:
                self._bases[side], self._sums[side] = first, value
            elif first >= base:
                self._sums[side] += value << (_LANE * 8 * (first - base))
            else:
                self._sums[side] = (self._sums[side] << (_LANE * 8 * (base - first))) + value
                self._bases[side] = first

    def absorb(self, other: Rows) -> None:
        """Add ``other``'s rows (the same metric) to these; before either's :meth:`done`."""
        self.bucket.merge(other.bucket)  # the counts, and the bins outside the lanes
        for side in (0, 1):
            base, value = other._bases[side], other._sums[side]
            if base is None:
                continue
            mine = self._bases[side]
            if mine is None:
                self._bases[side], self._sums[side] = base, value
            elif base >= mine:
                self._sums[side] += value << (_LANE * 8 * (base - mine))
            else:
                self._sums[side] = (self._sums[side] << (_LANE * 8 * (mine - base))) + value
                self._bases[side] = base

    def done(self) -> Bucket:
        """The merged bucket (call once, after the last :meth:`add`)."""
        sketch = self.bucket.sketch
        if sketch is not None:
            for side, bins in ((0, sketch.pos), (1, sketch.neg)):
                base, value = self._bases[side], self._sums[side]
                if base is None or not value:
                    continue
                lanes = -(-value.bit_length() // (8 * _LANE))
                counts = array("Q", value.to_bytes(lanes * _LANE, "little"))
                if sys.byteorder == "big":
                    counts.byteswap()
                found = zip(
                    compress(range(base, base + lanes), counts), filter(None, counts), strict=True
                )
                if not bins:
                    bins.update(found)
                    continue
                for at, count in found:  # bins the general reader put there
                    bins[at] = bins.get(at, 0) + count
            sketch._index = None
        return self.bucket


_Decoded = tuple[int, int, int, list["tuple[int, int] | None"], list[tuple[int, int, int]]]
DECODED_CACHE = 20_000
"""Sketch BLOBs kept decoded (by content: always right, never stale; ~1.5 KB each, so ~30 MB
at most). A server answering one question after another reads the same buckets again."""
_DECODED: dict[bytes, _Decoded] = {}


def _decode(data: bytes) -> _Decoded:
    """A sketch BLOB (default alpha) as zeros, +Inf, -Inf, per sign its bins as ``(first key,
    integer with one lane per key)`` (or ``None``), and the bins the general reader read."""
    reader = _Reader(data, 1)
    zeros, pos_inf, neg_inf = reader.varint(), reader.varint(), reader.varint()
    sides: list[tuple[int, int] | None] = [None, None]
    loose: list[tuple[int, int, int]] = []
    for side in (0, 1):
        n = reader.varint()
        if not n:
            continue
        zigzag = reader.varint()
        first = (zigzag >> 1) if not zigzag & 1 else -((zigzag + 1) >> 1)
        first_count = reader.varint()
        start = reader.offset
        end = start + 2 * (n - 1)
        chunk = data[start:end]
        if len(chunk) != end - start or (chunk and max(chunk) >= 0x80):
            wide = _wide_bins(data, start, n - 1)  # counts ≥ 128: wide buckets
            if wide is not None:
                lanes_of, reader.offset = wide
                sides[side] = (first, lanes_of + first_count)
                continue
            loose.append((side, first, first_count))  # the general reader
            key = first
            for _ in range(n - 1):
                zigzag = reader.varint()
                key += (zigzag >> 1) if not zigzag & 1 else -((zigzag + 1) >> 1)
                loose.append((side, key, reader.varint()))
            continue
        reader.offset = end
        offsets = list(accumulate(map(_LANE_OFFSETS.__getitem__, chunk[0::2])))
        lanes = bytearray((offsets[-1] if offsets else 0) + _LANE)
        deque(map(lanes.__setitem__, offsets, chunk[1::2]), 0)
        sides[side] = (first, int.from_bytes(lanes, "little") + first_count)  # lane 0: first
    return zeros, pos_inf, neg_inf, sides, loose


_TOKEN = re.compile(rb"[\x80-\xff]*[\x00-\x7f]")
"""One varint: continuation bytes, then a last byte."""
_VARINTS = {bytes([b]): b for b in range(0x80)} | {
    bytes([low | 0x80, high]): low | high << 7 for low in range(0x80) for high in range(0x80)
}
"""Every varint of one or two bytes (< 16384) by its bytes."""
_UNZIGZAG_WIDE = [(z >> 1) if not z & 1 else -((z + 1) >> 1) for z in range(1 << 14)]


def _wide_bins(data: bytes, start: int, pairs: int) -> tuple[int, int] | None:
    """``pairs`` (key delta, count) varints from ``start`` as lanes relative to the previous
    key, and the offset after them; ``None`` when one takes three bytes or more. Split into
    varints by a regular expression and looked up in a table: C speed, any count < 16384."""
    if not pairs:
        return 0, start
    tokens = _TOKEN.findall(data, start)[: 2 * pairs]
    if len(tokens) < 2 * pairs:
        return None
    try:
        ints = list(map(_VARINTS.__getitem__, tokens))
        offsets = list(accumulate(map(_UNZIGZAG_WIDE.__getitem__, ints[0::2])))
    except (KeyError, IndexError):
        return None
    if min(offsets) < 1:
        return None  # keys out of order: not from pack_sketch
    lanes = array("Q", bytes(_LANE * (offsets[-1] + 1)))
    deque(map(lanes.__setitem__, offsets, ints[1::2]), 0)
    if sys.byteorder == "big":
        lanes.byteswap()
    return int.from_bytes(lanes.tobytes(), "little"), start + sum(map(len, tokens))
