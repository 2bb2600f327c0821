"""A msgspec fast path for k6 JSON lines that never disagrees with the pydantic path.

Contract: for any ``line: bytes``, :func:`decode_fast` returns either ``None`` ("not sure":
the decoder then asks the pydantic path, which also words any rejection) or what the pydantic
path makes of the line: a :class:`~..samples.PointRecord` whose message
(:func:`~..samples.point_message`) equals ``validate_k6_record(wrap(line))`` in every field
(``time`` to the microsecond and its UTC offset, ``value`` bit for bit, ``tags``,
``metadata``, the fields set), or that same :class:`~..messages.MetricMessage`. It never returns a
record for a line that pydantic rejects. It returns ``None`` for what k6 never writes but
pydantic would still accept or read differently:

* any field k6 v1.1.0 does not write (every struct forbids unknown fields): so a field at the
  top level that the models would read there (the flat MCP shape: the ``AliasChoices`` fall
  back from ``data.tags`` to ``tags`` etc.), and JSON the models would skip unread (where
  pydantic's parser limits nesting to ~200 and integers to 4300 digits) never pass here;
  explicit ``null`` tags;
* lax-mode values msgspec reads strictly: ``"1.5"``/``"Infinity"``/``true`` as a value,
  ``1e400`` (pydantic: inf), numbers as times, ``"yes"``/``1`` as ``abortOnFail``, ``NaN``;
* anything else msgspec rejects: malformed JSON (bare ``+Inf``, torn lines), trailing text
  after the record (which the ``{"data":`` wrapper would let pydantic read as extra keys),
  a duplicate key whose first value is invalid, wrong types, unknown ``type``.

There is no limit on a line's length: an integer of more than 4300 digits, which pydantic's
parser refuses, is out of a float's range, which msgspec refuses too.

Times are validated and converted by pydantic-core's own validator for ``Point.time``
(:data:`~..samples.validate_time`), so a time is accepted and valued exactly as pydantic does,
by construction. ``tests/decode/test_fast_json.py`` holds the two paths together: every line of
every real capture, and generated mutations of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal, cast

import msgspec
from msgspec import UNSET, UnsetType
from pydantic_core import SchemaValidator

from ..messages import MetricMessage, Tags
from ..samples import Decoded, PointRecord, validate_time

_validate_metric: Callable[[Any], MetricMessage] = SchemaValidator(
    MetricMessage.__pydantic_core_schema__
).validate_python


class _Strict(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """Only the fields k6 writes: anything else goes to the pydantic path."""


class _PointData(_Strict):
    time: str
    value: float
    tags: msgspec.Raw | UnsetType = UNSET
    """Decoded through :func:`_tags`: one dict per distinct tag text."""
    metadata: Tags | UnsetType = UNSET


class _PointLine(_Strict, tag="Point", tag_field="type"):
    metric: str
    data: _PointData


class _Threshold(_Strict):
    threshold: str
    abortOnFail: bool | UnsetType = UNSET
    delayAbortEval: str | UnsetType | None = UNSET


class _Submetric(_Strict):
    name: str
    suffix: str
    tags: Tags | UnsetType | None = UNSET


class _MetricData(_Strict):
    name: str
    type: Literal["counter", "gauge", "rate", "trend"]
    contains: Literal["default", "time", "data"]
    thresholds: list[str | _Threshold] | UnsetType = UNSET
    submetrics: list[_Submetric] | UnsetType | None = UNSET


class _MetricLine(_Strict, tag="Metric", tag_field="type"):
    data: _MetricData
    metric: str | UnsetType = UNSET


_decoder = msgspec.json.Decoder(_PointLine | _MetricLine)
_decode = _decoder.decode


class _Point(_Strict):
    """A ``Point`` line for :func:`decode_lines_fast`'s first try. Decoded alone, a tagged
    struct would take a line with no ``type`` at all; a ``Literal`` field wants one, and takes
    only lines the union takes, with equal values. Without the union's look-ahead for its tag
    (k6 writes ``metric`` first) a line costs ~10% fewer instructions (callgrind)."""

    metric: str
    type: Literal["Point"]
    data: _PointData


_decode_point = msgspec.json.Decoder(_Point).decode


_decode_tags = msgspec.json.Decoder(Tags).decode
TAG_SETS = 4096
"""Distinct tag texts remembered; the memory is dropped and started again when it is full."""
_tag_sets: dict[bytes, Tags] = {}


def _tags(raw: msgspec.Raw) -> Tags:
    """The tags of ``raw`` (a JSON object of strings), the same dict for the same text.

    k6 writes a few tag sets many times (every sample of a request has the same), and a dict of
    16 tags costs ~1.8 µs to build where looking up its text costs ~0.4 µs. The dicts are shared
    between points: messages are read-only (see the README). ``DecodeError`` when ``raw`` is not
    an object of strings (``null`` too)."""
    text = bytes(raw)
    tags = _tag_sets.get(text)
    if tags is None:
        tags = _decode_tags(raw)
        if len(_tag_sets) >= TAG_SETS:
            _tag_sets.clear()
        _tag_sets[text] = tags
    return tags


_LETTER_ESCAPE = re.compile(rb"\\u00[67]")
"""``\\u0061``, ``\\u0074``...: how a key spells ``tags`` without the text ``"tags"``."""
SHORT_LINE = 1000
"""Bytes under which a line cannot hide a ``tags`` value that only pydantic refuses (see
:func:`_nothing_hidden`)."""


def _all_tags_seen(text: bytes, tagged: int, lines: list[bytes]) -> bool:
    """Whether the ``tagged`` raw ``tags`` read from ``text`` (its ``lines``) are all its
    ``tags`` keys, or no other could matter (:func:`_nothing_hidden`).

    A raw ``tags`` is not validated, so a second ``tags`` key would hide a first value that
    pydantic refuses. Every key msgspec reads as ``tags`` is the text ``"tags"`` unless it
    escapes a letter (``"t\\u0061gs"``), which k6 never does. (The text ``"tags"`` as a tag
    or metadata key or value sends a line to the pydantic path too.) Searching for such an
    escape reads every byte slowly (a regex: ~2,400 instructions a k6 HTTP line whose tags
    escape an ``&`` as ``\\u0026``), so a text with a backslash is first looked at with
    cheaper eyes."""
    if b"\\" not in text:
        return text.count(b'"tags"') == tagged
    if _nothing_hidden(text, lines):
        return True
    return text.count(b'"tags"') == tagged and _LETTER_ESCAPE.search(text) is None


def _nothing_hidden(text: bytes, lines: list[bytes]) -> bool:
    """Whether no ``tags`` value that msgspec skips in ``text`` (the first of two ``tags``
    keys) can be one that pydantic's parser refuses: then both read the last ``tags``.

    msgspec's skip refuses what pydantic's parser refuses (``tests/decode``), but for three
    things, each of which needs what this rules out: a byte that is not ASCII (invalid UTF-8),
    an integer of more than 4,300 digits, and nesting deeper than pydantic's ~200 levels:
    without ``[`` a level is an object, at least 5 bytes (``{"":`` and ``}``), so over
    :data:`SHORT_LINE` bytes. ~650 instructions a k6 HTTP line, most of them in ``isascii``
    and the lines' lengths: no cheaper than the count, but than the count and the search."""
    return b"[" not in text and text.isascii() and max(map(len, lines)) < SHORT_LINE


def decode_fast(line: bytes) -> Decoded | None:
    """The record in ``line``, or ``None`` when only the pydantic path can tell."""
    try:
        records, tagged = _records([_decode(line)])
    except (msgspec.DecodeError, ValueError):  # pydantic_core.ValidationError is a ValueError
        return None
    return records[0] if _all_tags_seen(line, tagged, [line]) else None


def decode_lines_fast(lines: list[bytes], text: bytes | None = None) -> list[Decoded] | None:
    """Every line's record, each line decoded as :func:`decode_fast` decodes it (the lines in
    one C-level ``map``); ``None`` unless all of them decode (then each line goes through
    :func:`decode_fast` or the pydantic path on its own). With ``text``, their text, every line
    ends with a newline (``readlines``), which msgspec reads as trailing whitespace.

    The ``"tags"`` are counted over the batch: no line has fewer than the tags it was read
    with, so the sums agree only if every line's count does."""
    # min(): every line starts with "{" or a byte above it (which msgspec refuses): no blank
    # line, no console text, no leading whitespace (which msgspec would skip)
    if not lines or min(lines)[:1] != b"{":
        return None
    try:
        decoded: list[_Point] | list[_PointLine | _MetricLine]
        try:
            decoded = list(map(_decode_point, lines))
        except msgspec.DecodeError:  # a Metric line (a metric's first sample), or worse
            decoded = list(map(_decode, lines))
        records, tagged = _records(decoded)
    except (msgspec.DecodeError, ValueError):
        return None
    joined = b"\n".join(lines) if text is None else text
    return records if _all_tags_seen(joined, tagged, lines) else None


def _records(decoded: list[_Point] | list[_PointLine | _MetricLine]) -> tuple[list[Decoded], int]:
    """The internal records, and how many ``tags`` keys they were read from (points and
    submetrics), for :func:`_all_tags_seen`; ``ValueError`` for a time the model would refuse."""
    out: list[Decoded] = []
    tagged = len(decoded)  # every record a point with tags, until one is not
    append = out.append
    tag_sets = _tag_sets
    last_text: str | None = None
    last_time = None
    last_raw: msgspec.Raw | None = None
    last_tags: Tags | None = None
    for record in cast("list[_PointLine]", decoded):
        data = record.data
        try:
            text = data.time
        except AttributeError:  # a Metric line (rare): no type check per point
            submetrics = cast(_MetricLine, record).data.submetrics
            tagged -= 1
            if submetrics:
                tagged += sum(sub.tags is not UNSET for sub in submetrics)
            append(_validate_metric({"data": msgspec.to_builtins(record.data)}))
            continue
        if text != last_text:  # k6 stamps a request's samples with one time
            last_time, last_text = validate_time(text), text
        raw, metadata = data.tags, data.metadata
        if raw is UNSET:
            tags = None
            tagged -= 1
        else:
            if raw != last_raw:  # and one tag set (a memcmp, where a lookup hashes)
                last_tags = tag_sets.get(bytes(raw))  # inline: a call costs ~70 ns
                if last_tags is None:
                    last_tags = _tags(raw)
                last_raw = raw
            tags = last_tags
        append(
            PointRecord(
                record.metric,
                data.value,
                tags,
                None if metadata is UNSET else metadata,
                last_time,  # type: ignore[arg-type]  # set with last_text
            )
        )
    return out, tagged
