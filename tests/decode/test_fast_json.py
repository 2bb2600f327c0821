"""Differential tests: the msgspec fast path against the pydantic path it short-cuts.

For every line, ``decode_fast`` either gives up (``None``) or yields a record whose message is
identical to what ``validate_k6_record(wrap(line))`` gives; it never accepts a line that
pydantic rejects. Real k6 captures must take the fast path whenever pydantic accepts them.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from collections import Counter
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from conftest import K6_SAMPLES, SAMPLES
from k6mcp_bridge.decode.fast_json import SHORT_LINE, decode_fast, decode_lines_fast
from k6mcp_bridge.decode.json_lines import validate_k6_record, wrap
from k6mcp_bridge.messages import MetricMessage, PointMessage
from k6mcp_bridge.samples import PointRecord, point_message

PATTERNS = ("*.jsonl", "*.jsonl.gz", "*.json", "stdout-*.txt")
Message = Any


def read_lines(path: Path) -> list[bytes]:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    lines = raw.split(b"\n")  # as the bridge's line reader splits
    return lines[:-1] if lines and not lines[-1] else lines


CAPTURE_FILES = sorted(
    {p for folder in (K6_SAMPLES, SAMPLES) for pattern in PATTERNS for p in folder.glob(pattern)}
)
REAL_LINES = sorted({line for path in CAPTURE_FILES for line in read_lines(path)})
RECORD_LINES = [line for line in REAL_LINES if line[:1] == b"{"]


def _loads(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


RECORDS = [obj for obj in map(_loads, RECORD_LINES) if isinstance(obj, dict)]
POINTS = [obj for obj in RECORDS if obj.get("type") == "Point"]
METRICS = [obj for obj in RECORDS if obj.get("type") == "Metric"]
THRESHOLDS = {"threshold": "p(95)<500", "abortOnFail": True, "delayAbortEval": "10s"}
METRICS.append(  # k6's object form of a threshold, as a script may write it
    {"type": "Metric", "data": {**METRICS[0]["data"], "thresholds": ["rate>0", THRESHOLDS]}}
)


# --- the comparison ----------------------------------------------------------------------


def to_message(record: PointRecord | MetricMessage) -> PointMessage | MetricMessage:
    return point_message(record) if isinstance(record, PointRecord) else record


def pydantic_path(line: bytes) -> Message | None:
    try:
        return validate_k6_record(wrap(line))
    except ValidationError:
        return None


def assert_identical(a: Any, b: Any, where: str = "message") -> None:
    """Equal, and equal in everything == forgives: types, -0.0, tzinfo, order, fields_set."""
    assert type(a) is type(b), where
    if isinstance(a, BaseModel):
        assert a.model_fields_set == b.model_fields_set, where
        assert list(a.__dict__) == list(b.__dict__), where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
        for key, value in a.__dict__.items():
            assert_identical(value, b.__dict__[key], f"{where}.{key}")
    elif isinstance(a, float):
        assert repr(a) == repr(b), where  # -0.0 vs 0.0, inf, nan
    elif isinstance(a, datetime):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None), where
        assert a.utcoffset() == b.utcoffset() and a.fold == b.fold, where
        assert type(a.tzinfo) is type(b.tzinfo), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key, value in a.items():
            assert_identical(value, b[key], f"{where}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def check(line: bytes) -> str:
    """Compare the two paths on ``line``; say which way it went."""
    fast = decode_fast(line)
    slow = pydantic_path(line)
    if fast is None:
        return "fallback" if slow is not None else "rejected by both"
    assert slow is not None, f"fast path accepted a line pydantic rejects: {line!r}"
    message = to_message(fast)
    assert message == slow
    assert_identical(message, slow)
    assert message.model_dump_json() == slow.model_dump_json()
    if isinstance(fast, PointRecord):  # what an aggregator reads straight off the record
        data = slow.data
        assert_identical(fast.value, data.value, "record.value")
        assert_identical(fast.time, data.time, "record.time")
        assert (fast.metric, fast.tags, fast.metadata) == (data.metric, data.tags, data.metadata)
    return "accepted"


# --- real captures -----------------------------------------------------------------------


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name)
def test_real_capture(path: Path) -> None:
    outcomes = Counter(check(line) for line in read_lines(path))
    assert outcomes["fallback"] == 0, outcomes


def test_captures_are_there() -> None:
    assert len(CAPTURE_FILES) >= 15 and len(POINTS) > 1000


# --- known quirks, one line each ---------------------------------------------------------

T = '"2026-11-24T18:02:36.123456789Z"'
P = '{"metric":"m","type":"Point","data":{"time":%s,"value":%s,"tags":{"a":"b"}}%s}'
DEEP = "[" * 200 + "]" * 200
M = '{"type":"Metric","data":{"name":"x","type":"trend","contains":"time"%s}%s}'
QUIRKS = {
    # accepted by both, same values
    "9 digits truncated": (P % (T, "1", ""), "accepted"),
    "truncation at day end": (P % ('"2026-12-31T23:59:59.9999999Z"', "1", ""), "accepted"),
    "offset": (P % ('"2026-11-24T23:30:46.014679241+05:30"', "1", ""), "accepted"),
    "-00:00": (P % ('"2026-11-24T18:02:36-00:00"', "1", ""), "accepted"),
    "-0 is 0.0": (P % (T, "-0", ""), "accepted"),
    "-0.0": (P % (T, "-0.0", ""), "accepted"),
    "2**64": (P % (T, "18446744073709551616", ""), "accepted"),
    "1e-400": (P % (T, "-1e-400", ""), "accepted"),
    "duplicate value": (P % (T, '1,"value":2', ""), "accepted"),
    "speedate's other forms": (P % ('"2026-11-24 18:02:36,5z"', "1", ""), "accepted"),
    "no seconds, '_'": (P % ('"2026-11-24_18:02+0530"', "1", ""), "accepted"),
    "threshold object": (
        M % (',"thresholds":["a",{"threshold":"b","abortOnFail":true,"delayAbortEval":null}]', ""),
        "accepted",
    ),
    "submetric without tags": (
        M % (',"submetrics":[{"name":"x{a:b}","suffix":"a:b"}]', ""),
        "accepted",
    ),
    # pydantic reads differently or more: fall back
    "flat shape": ('{"metric":"m","type":"Point","time":' + T + ',"value":1}', "fallback"),
    "top-level tags used": (
        '{"metric":"m","type":"Point","data":{"time":' + T + ',"value":1},"tags":{"a":"b"}}',
        "fallback",
    ),
    "top-level thresholds used": (M % ("", ',"thresholds":["a"]'), "fallback"),
    "explicit null tags": ((P % (T, "1", "")).replace('{"a":"b"}', "null"), "fallback"),
    "string value": (P % (T, '"1.5"', ""), "fallback"),
    "bool value": (P % (T, "true", ""), "fallback"),
    "1e400": (P % (T, "1e400", ""), "fallback"),
    "NaN token": (P % (T, "NaN", ""), "fallback"),
    "unix time": (P % ("1700000000", "1", ""), "fallback"),
    "first duplicate invalid": (P % (T, '"x","value":2', ""), "fallback"),
    "duplicate type, last wins": (
        '{"metric":"m","type":"Metric","type":"Point","data":{"time":' + T + ',"value":1}}',
        "fallback",
    ),
    "snake threshold alias": (
        '{"type":"Metric","data":{"name":"x","type":"trend","contains":'
        '"time","thresholds":[{"threshold":"a","abort_on_fail":1}]}}',
        "fallback",
    ),
    "199 deep: conservative guard": (P % (T, "1", ',"x":' + DEEP[1:-1]), "fallback"),
    "trailing keys via the wrapper": (P % (T, "1", "") + ',"type":"point"', "fallback"),
    # rejected by pydantic; msgspec alone would accept
    "200 deep in an ignored field": (P % (T, "1", ',"x":' + DEEP), "rejected by both"),
    "4301-digit int ignored": (P % (T, "1", ',"x":' + "1" * 4301), "rejected by both"),
    "4301-digit value": (P % (T, "1" * 4301, ""), "rejected by both"),
    # long lines: no length limit (msgspec refuses a float out of range, pydantic reads inf)
    "4300-digit value": (P % (T, "1" * 4300, ""), "fallback"),
    "5000-byte tag": ((P % (T, "1", "")).replace('"b"', '"' + "b" * 5000 + '"'), "accepted"),
    "bad UTF-8 ignored": (P % (T, "1", ',"x":"\udcff"'), "rejected by both"),
    "naive time": (P % ('"2026-11-24T18:02:36"', "1", ""), "rejected by both"),
    "leap second": (P % ('"2026-12-31T23:59:60Z"', "1", ""), "rejected by both"),
    "+Inf": (P % (T, "+Inf", ""), "rejected by both"),
    "escaped first tags key": (P % (T, '1,"t\\u0061gs":' + DEEP, ""), "rejected by both"),
    "duplicate tags, an escape, last wins": (
        P % (T, '1,"tags":{"a":"\\u0026"}', ""),
        "accepted",
    ),
    "first tags not UTF-8": (P % (T, '1,"tags":"\udcff"', ""), "rejected by both"),
    "first tags 200 deep in objects": (
        P % (T, '1,"tags":' + '{"":' * 200 + "{}" + "}" * 200, ""),
        "rejected by both",
    ),
    "escaped second tags key": (
        (P % (T, '1,"tags":' + DEEP, "")).replace('"tags":{', '"\\u0074ags":{'),
        "rejected by both",
    ),
}


@pytest.mark.parametrize("name", QUIRKS)
def test_quirk(name: str) -> None:
    text, expected = QUIRKS[name]
    assert check(text.encode("utf-8", "surrogateescape")) == expected


def test_a_short_line_hides_nothing() -> None:
    """A first ``tags`` (which msgspec skips unread) nested deeper than pydantic's parser
    allows, with objects alone (no ``[``) and the shortest parts: a line over ``SHORT_LINE``
    bytes. A text with a backslash (k6 escapes ``&``), ASCII, no ``[``, and no line as long is
    taken without the count of ``"tags"`` (and its search for escapes)."""

    def line(depth: int) -> bytes:
        hidden = '{"":' * depth + "{}" + "}" * depth
        return (
            '{"metric":"\\u0026","type":"Point","data":{"time":"2026-11-24T18:02Z","value":0,'
            f'"tags":{hidden},"tags":{{}}}}}}'
        ).encode()

    assert check(line(0)) == "accepted"
    depth = next(d for d in range(1, 400) if pydantic_path(line(d)) is None)
    assert check(line(depth - 1)) == "fallback"  # taken by both, but long: counted
    assert check(line(depth)) == "rejected by both"
    assert msgspec.json.decode(line(depth))  # msgspec's parser alone would take it
    assert len(line(depth)) > SHORT_LINE


# --- generated lines: mutations of real ones ---------------------------------------------


class Token(str):
    """JSON text written as is (numbers json.dumps cannot write, bare +Inf, ...)."""


class Pairs(list):  # type: ignore[type-arg]
    """An object as (key, value) pairs: may repeat a key."""


def dump(x: Any, ascii: bool, gap: str) -> str:
    if isinstance(x, Token):
        return str(x)
    if isinstance(x, (dict, Pairs)):
        items = x.items() if isinstance(x, dict) else x
        inner = f",{gap}".join(
            f"{dump(k, ascii, gap)}:{gap}{dump(v, ascii, gap)}" for k, v in items
        )
        return "{" + inner + "}"
    if isinstance(x, list):
        return "[" + f",{gap}".join(dump(v, ascii, gap) for v in x) + "]"
    return json.dumps(x, ensure_ascii=ascii)


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become invalid UTF-8


digits = st.text("0123456789", min_size=1, max_size=25)
number_tokens = st.one_of(
    st.integers().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats().map(lambda f: repr(f) if f == f and abs(f) != float("inf") else "1.5"),
    st.builds(
        lambda s, m, d, e: f"{s}{m}{d}{e}",
        st.sampled_from(["", "-"]),
        digits,
        st.sampled_from(["", ".5", ".0", ".", ".999999999999999999"]),
        st.sampled_from(["", "e400", "E-400", "e+5", "e-0", "e", "e308", "e309", "e-324"]),
    ),
    st.sampled_from(
        [
            "-0",
            "-0.0",
            "0e0",
            "-0e-5",
            "1E400",
            "-1e400",
            "NaN",
            "Infinity",
            "-Infinity",
            "+Inf",
            "-Inf",
            "+1",
            ".5",
            "01",
            "1.",
            "00",
            "-",
            "1e",
            "9" * 4300,
            "9" * 4301,
            "1" + "0" * 400,
            "0." + "0" * 400 + "1",
        ]
    ),
).map(Token)


def mostly(valid: st.SearchStrategy[str], *odd: str) -> st.SearchStrategy[str]:
    """``valid`` about 19 times in 20, else one of the ``odd`` texts."""
    return st.integers(0, 19).flatmap(lambda i: st.sampled_from(odd) if i == 7 else valid)


def two(low: int, high: int, fmt: str = "{:02d}") -> st.SearchStrategy[str]:
    return st.integers(low, high).map(fmt.format)


ODD_OFFSETS = "Z z +00:00 -00:00 +0530 +05 +24:00 +12:60 +05:30:15 -23:59 +23:59".split()  # noqa: SIM905
time_texts = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, off: f"{y}-{mo}-{d}{sep}{h}:{mi}{s}{frac}{off}",
    mostly(two(0, 9999, "{:04d}"), "+2026", "226", "0000", "0001", "9999"),
    mostly(two(1, 12), "00", "13", "1"),
    mostly(two(1, 28), "29", "30", "31", "32", "00"),
    mostly(st.just("T"), "t", " ", "_", "x", ""),
    mostly(two(0, 23), "24", "7", "00", "23"),
    mostly(two(0, 59), "60", "59"),
    mostly(two(0, 59, ":{:02d}"), ":60", "", ":6", ":59"),
    st.one_of(
        st.just(""),
        st.builds(lambda f: "." + f, st.text("0123456789", min_size=1, max_size=12)),
        st.builds(lambda n: "." + "9" * n, st.integers(1, 12)),
        st.sampled_from([",5", ".", ".123456789123456789", ".\u0661"]),
    ),
    st.one_of(
        st.just("Z"),
        st.builds(
            lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), two(0, 25), two(0, 61)
        ),
        st.sampled_from([*ODD_OFFSETS, "", " Z", "Z "]),
    ),
)
times = st.one_of(time_texts, st.sampled_from(["1700000000", "1700000000.5", "", "now"]))


def one_of_list(items: list[Any]) -> st.SearchStrategy[Any]:
    """``sampled_from`` without its per-draw hashability checks of every item (slow)."""
    return st.integers(0, len(items) - 1).map(items.__getitem__)


texts = st.one_of(
    st.text(max_size=8),
    st.text(st.sampled_from('ab "\\/\n\t\x7f\u2028é€😀<>&'), max_size=8),
    st.text(st.characters(exclude_categories=()), max_size=8),  # incl. lone surrogates
)
KEYS = (  # noqa: SIM905
    "time value tags metadata data type metric name contains thresholds submetrics threshold"
    " abortOnFail abort_on_fail delayAbortEval delay_abort_eval suffix"
).split()
LAX = "1.5 Infinity -Infinity inf nan 1_0 Point Metric counter trend time default yes true 0"
keys = st.one_of(st.sampled_from(KEYS), texts)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    number_tokens,
    st.floats(),
    texts,
    times,
    st.sampled_from([*LAX.split(), " 1 "]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)
plausible = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    time_texts,
)
values = st.one_of(
    plausible,
    json_values,
    st.dictionaries(texts, texts, max_size=4),
    st.integers(150, 260).map(lambda n: Token("[" * n + "]" * n)),
    st.integers(150, 260).map(lambda n: Token('{"":' * n + "{}" + "}" * n)),
)


def containers(x: Any) -> list[Any]:
    """The objects and arrays in ``x`` (repeated-key objects are left as they are)."""
    if isinstance(x, Pairs):
        return []
    found = [x] if isinstance(x, (dict, list)) else []
    for child in x.values() if isinstance(x, dict) else x if isinstance(x, list) else []:
        found += containers(child)
    return found


OPS = "set add delete dup hoist time value tags shuffle null alias extra".split()  # noqa: SIM905
ALIASES = {"abortOnFail": "abort_on_fail", "delayAbortEval": "delay_abort_eval"}
IGNORED = st.sampled_from(  # what only pydantic's parser minds in an ignored field
    [
        Token("[" * 199 + "]" * 199),
        Token('{"":' * 199 + "{}" + "}" * 199),
        Token("9" * 4301),
        "\udcff",
        Token("NaN"),
        Token("1e400"),
    ]
)


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    record = copy.deepcopy(draw(st.one_of(one_of_list(POINTS), one_of_list(METRICS))))
    for _ in range(draw(st.integers(1, 2))):
        op = draw(st.sampled_from(OPS))
        data = record.get("data")
        if op == "time" and isinstance(data, dict):
            data["time"] = draw(times)
        elif op == "value" and isinstance(data, dict):
            data["value"] = draw(st.one_of(number_tokens, scalars))
        elif op == "tags" and isinstance(data, dict):
            data[draw(st.sampled_from(["tags", "metadata"]))] = draw(
                st.dictionaries(texts, st.one_of(texts, texts, texts, scalars), max_size=4)
            )
        elif op == "hoist" and isinstance(data, dict) and data:
            key = draw(st.sampled_from(sorted(data)))
            record[key] = data[key] if draw(st.booleans()) else data.pop(key)
        elif op == "null" and isinstance(data, dict):
            data[draw(st.sampled_from(["tags", "metadata", "submetrics", "thresholds"]))] = None
        elif op == "alias":  # pydantic's second name for a threshold field
            for node in containers(record):
                for key in set(ALIASES) & set(node if isinstance(node, dict) else ()):
                    node[ALIASES[key]] = node[key] if draw(st.booleans()) else node.pop(key)
        elif op == "extra":
            node = draw(st.sampled_from([n for n in containers(record) if isinstance(n, dict)]))
            node[draw(st.one_of(st.just("x"), keys))] = draw(IGNORED)
        else:
            node = draw(st.sampled_from(containers(record)))
            if isinstance(node, list):
                if node and op in ("set", "delete"):
                    i = draw(st.integers(0, len(node) - 1))
                    node[i : i + 1] = [] if op == "delete" else [draw(values)]
                else:
                    node.append(draw(values))
            elif op in ("set", "delete", "dup") and node:
                key = draw(st.sampled_from(sorted(node)))
                if op == "set":
                    node[key] = draw(values)
                elif op == "delete":
                    del node[key]
                else:  # a repeated key: first or last, valid or not
                    first = draw(st.one_of(values, st.just(node[key])))
                    pairs = Pairs(node.items())
                    pairs.insert(draw(st.integers(0, len(pairs))), (key, first))
                    _replace(record, node, pairs)
            elif op == "shuffle" and node:
                items = draw(st.permutations(list(node.items())))
                node.clear()
                node.update(items)
            else:
                node[draw(keys)] = draw(values)
    return record


def _replace(root: Any, old: Any, new: Any) -> None:
    for parent in [root, *containers(root)]:
        items = parent.items() if isinstance(parent, dict) else enumerate(parent)
        for key, value in list(items):
            if value is old:
                parent[key] = new


@given(mutated_records(), st.booleans(), st.sampled_from(["", " ", "\t"]))
@settings(
    max_examples=6000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_mutated_records(record: Any, ascii: bool, gap: str) -> None:
    event(check(encode(dump(record, ascii, gap))))


GARBAGE = [
    b" ",
    b"\r",
    b"\t",
    b"\n",
    b"\x0c",
    b"\xef\xbb\xbf",
    b"}",
    b"{",
    b",",
    b"x",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\\",
    b'"',
    b',"type":"point"',
    b',"data":{}',
    b"+Inf",
    b"NaN",
    b"\\ud800",
    b"\\udc00",
    b"\\u0041",
]


@given(
    one_of_list(REAL_LINES),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "cut", "append", "prepend", "dupkey"]),
            st.integers(0, 10**6),
            st.one_of(st.sampled_from(GARBAGE), st.binary(max_size=3)),
        ),
        min_size=1,
        max_size=3,
    ),
)
@settings(
    max_examples=3000, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
def test_raw_text_mutations(line: bytes, edits: list[tuple[str, int, bytes]]) -> None:
    for op, at, piece in edits:
        at %= len(line) + 1
        if op == "insert":
            line = line[:at] + piece + line[at:]
        elif op == "delete":
            line = line[:at] + line[at + len(piece) + 1 :]
        elif op == "cut":
            line = line[:at]
        elif op == "append":
            line += piece
        elif op == "prepend":
            line = piece + line
        else:  # repeat a "key": value pair, the copy first
            pairs = list(re.finditer(rb'"[a-zA-Z_]+":("[^"]*"|[-+0-9.eE]+|true|false|null)', line))
            if pairs:
                m = pairs[at % len(pairs)]
                line = line[: m.start()] + m[0] + b"," + line[m.start() :]
    event(check(line))


@given(one_of_list(POINTS), times, st.booleans(), st.sampled_from(["", "\\u005a", "\\/"]))
@settings(max_examples=3000, deadline=None, database=None)
def test_times(point: Any, time: str, ascii: bool, escape: str) -> None:
    data = dict(point["data"], time=time)
    text = dump(dict(point, data=data), ascii, "")
    if escape == "\\u005a":
        text = text.replace('Z"', '\\u005a"')
    event(check(encode(text)))


@given(one_of_list(POINTS), number_tokens)
@settings(max_examples=2000, deadline=None, database=None)
def test_values(point: Any, value: str) -> None:
    data = dict(point["data"], value=value)
    event(check(encode(dump(dict(point, data=data), True, ""))))


# --- the batch path: one C call for many lines -------------------------------------------------


def check_batch(lines: list[bytes]) -> None:
    """``decode_lines_fast`` gives up or gives exactly what ``decode_fast`` gives line by line,
    and the same from the lines' text (``JsonDecoder.decode_text``: each line keeps its
    newline)."""
    batch = decode_lines_fast(lines)
    if not any(b"\n" in line for line in lines):  # as the line splitter cuts them
        text = b"".join(line + b"\n" for line in lines)
        from_text = decode_lines_fast(BytesIO(text).readlines(), text)
        assert (from_text is None) == (batch is None)
        for got, want in zip(from_text or [], batch or [], strict=True):
            assert_identical(to_message(got), to_message(want))
    if batch is None:
        return
    single = [decode_fast(line) for line in lines]
    assert None not in single, f"the batch path accepted a line the line path refuses: {lines}"
    assert len(batch) == len(single)
    for got, want in zip(batch, single, strict=True):
        assert want is not None
        assert_identical(to_message(got), to_message(want))


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name)
def test_real_captures_in_batches(path: Path) -> None:
    lines = read_lines(path)
    for start in range(0, len(lines), 97):
        check_batch(lines[start : start + 97])
    records = [line for line in lines if line[:1] == b"{" and decode_fast(line) is not None]
    if records:
        assert decode_lines_fast(records) is not None  # a clean batch takes the C path


NO_TYPE = '{"metric":"m","data":{"time":' + T + ',"value":1}}'
TYPE_QUIRKS = {
    "no type": NO_TYPE,
    "lower-case point": NO_TYPE.replace('"data"', '"type":"point","data"'),
    "null type": NO_TYPE.replace('"data"', '"type":null,"data"'),
    "type twice": NO_TYPE.replace('"data"', '"type":"Point","type":"Point","data"'),
    "Point then Metric": NO_TYPE.replace('"data"', '"type":"Point","type":"Metric","data"'),
    "type last": NO_TYPE.replace("}}", '},"type":"Point"}'),
}


@pytest.mark.parametrize(
    "text",
    [*TYPE_QUIRKS.values(), *(text for text, _ in QUIRKS.values())],
    ids=[*TYPE_QUIRKS, *QUIRKS],
)
def test_quirks_in_a_batch_as_alone(text: str) -> None:
    """A batch tries the lines as ``Point`` lines first (no union): it takes a quirk only if
    the line alone is taken, with equal values, wherever the quirk stands in the batch."""
    line = text.encode("utf-8", "surrogateescape")
    point = next(line for line in RECORD_LINES if b'"type":"Point"' in line)
    for batch in ([point, line], [line, point], [line]):
        check_batch(batch)
        if decode_fast(line) is None:
            assert decode_lines_fast(batch) is None


SPLICES = [b"", b" ", b"\n", b"}{", b"} {", b'{"x":', b"}\n{", b"\r", b"\t"]


@given(
    st.lists(
        st.one_of(
            one_of_list(RECORD_LINES),
            st.builds(
                lambda r, a, g: encode(dump(r, a, g)),
                mutated_records(),
                st.booleans(),
                st.sampled_from(["", " "]),
            ),
            st.builds(
                lambda a, s, b: a + s + b,
                one_of_list(RECORD_LINES),
                st.sampled_from(SPLICES),
                one_of_list(RECORD_LINES),
            ),
            st.builds(  # whitespace around a line: before it, console text; after it, allowed
                lambda a, line, b: a + line + b,
                st.sampled_from([b"", b" ", b"\t", b"\r"]),
                one_of_list(RECORD_LINES),
                st.sampled_from([b"", b" ", b"\t", b"\r"]),
            ),
            st.sampled_from(SPLICES),
        ),
        min_size=1,
        max_size=6,
    )
)
@settings(
    max_examples=2000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_batches_of_real_mutated_and_spliced_lines(lines: list[bytes]) -> None:
    check_batch(lines)
