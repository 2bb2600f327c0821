"""k6's JSON lines → MCP messages, console text, or precise rejections.

The fast path is one C-level map of msgspec over a batch of lines, else per line
(:mod:`.fast_json`): a k6 ``Point`` becomes a :class:`~..samples.PointRecord`, the internal
form the aggregation reads, and a ``Metric`` its :class:`~..messages.MetricMessage`. When it
is not sure, the pydantic path decides: the line is wrapped as ``{"data": LINE}`` and
validated by a tagged union that picks :class:`~..messages.MetricMessage` or
:class:`~..messages.PointMessage` from the record's ``type`` (``"Metric"``/``"Point"``); the
two paths accept the same lines with the same values.

Everything unusual takes the slow path, which only runs when the fast one failed:

* k6's bare ``+Inf``/``-Inf`` value tokens (not JSON) are rewritten and retried;
* lines that are not records (k6's banner, progress and summary when ``--out json=-``
  shares stdout with the console) are console text, handed to ``on_console``;
* a record that k6's progress output split in two (k6 writes JSON to stdout in 4 KiB
  pieces) is held, the console lines in between are passed on, and the record is joined
  with its continuation line;
* anything else is a :class:`Rejection` naming the line, the field and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydantic import ValidationError
from pydantic_core import SchemaValidator, from_json
from pydantic_core import core_schema as cs

from ..input.lines import Overlong, line_problem
from ..messages import MetricMessage, PointMessage
from ..samples import Decoded, record_of
from .fast_json import decode_fast, decode_lines_fast

_RECORD_VALIDATOR = SchemaValidator(
    cs.tagged_union_schema(
        choices={
            "Metric": MetricMessage.__pydantic_core_schema__,
            "Point": PointMessage.__pydantic_core_schema__,
        },
        discriminator=["data", "type"],  # type: ignore[arg-type]  # a path is allowed
    )
)
validate_k6_record: Callable[[bytes], MetricMessage | PointMessage] = (
    _RECORD_VALIDATOR.validate_json
)
"""Validate one ``{"data": <k6 line>}`` document; used by the benchmarks as the floor."""

_WRAP_OPEN = b'{"data":'
_INF_VALUE = re.compile(rb'"value":([+-])Inf(?=[,}\s]|$)')
_TORN_INF = re.compile(rb'"value":[+-](I(nf?)?)?$')
"""A line cut inside k6's bare ``+Inf``: JSON parsers call it an error, not an early end."""
_RAW_SHOWN = 200


def wrap(line: bytes) -> bytes:
    """The document :data:`validate_k6_record` expects for one k6 line."""
    return _WRAP_OPEN + line + b"}"


@dataclass(frozen=True)
class Rejection:
    """A line (or a split record's lines) that is not a valid record."""

    lineno: int
    field: str | None
    reason: str
    raw: tuple[bytes, ...]
    """The rejected line(s) exactly as read."""
    place: str | None = None
    """Where it was, when not a line of the input (``request 3, item 2``)."""

    def describe(self) -> str:
        where = self.place or f"line {self.lineno}"
        if len(self.raw) > 1:
            where += " (record continued on a later line)"
        field = f" field {self.field}:" if self.field else ""
        return f"{where}:{field} {self.reason}; raw: {shorten(b''.join(self.raw))}"


@dataclass(frozen=True)
class _Problem:
    field: str | None
    reason: str
    torn: bool = False
    """The JSON stopped before the record was complete."""
    json_error: bool = False


@dataclass
class _Fragment:
    lineno: int
    raw: bytes


class JsonDecoder:
    """Decodes lists of complete lines; keeps the line count and a held split record."""

    def __init__(
        self,
        on_console: Callable[[bytes], None],
        on_reject: Callable[[Rejection], None],
    ) -> None:
        self.lineno = 0
        self.rejoined = 0
        self._on_console = on_console
        self._on_reject = on_reject
        self._pending: _Fragment | None = None

    @property
    def held(self) -> int:
        """Bytes of input (newline included) held as the first part of a split record."""
        return len(self._pending.raw) + 1 if self._pending is not None else 0

    def decode(self, lines: list[bytes], out: list[Decoded]) -> None:
        """Append the messages in ``lines`` to ``out``; other lines go to the callbacks.

        ``out`` keeps what was decoded even when a callback raises part way.
        """
        if self._pending is None and Overlong not in map(type, lines):
            records = decode_lines_fast(lines)  # the usual batch: all records, one C map
            if records is not None:
                out.extend(records)
                self.lineno += len(lines)
                return
        self._decode_each(lines, out)

    def decode_text(self, text: bytes, out: list[Decoded]) -> None:
        """:meth:`decode` for the lines of ``text``, each ending with a newline (none over the
        splitter's limit): the usual batch is cut at ``memchr`` speed by ``readlines``, its
        lines keeping their newline (``bytes.split`` reads byte by byte: ~1,200 instructions
        a k6 HTTP line, ~7% of its cost)."""
        if self._pending is None:
            lines = BytesIO(text).readlines()
            records = decode_lines_fast(lines, text)
            if records is not None:
                out.extend(records)
                self.lineno += len(lines)
                return
        self._decode_each(text[:-1].split(b"\n"), out)

    def _decode_each(self, lines: list[bytes], out: list[Decoded]) -> None:
        append = out.append
        fast = decode_fast
        lineno = self.lineno
        for line in lines:
            lineno += 1
            if line[:1] == b"{" and self._pending is None and type(line) is not Overlong:
                record = fast(line)
                if record is not None:
                    append(record)
                    continue
            self.lineno = lineno  # exact even if a callback raises in the slow path
            message = self._slow(line, lineno)
            if message is not None:
                append(message)
        self.lineno = lineno

    def finish(self, tail: bytes | None, out: list[Decoded]) -> None:
        """Decode a last line that had no newline, then report a record left unfinished."""
        if tail is not None:
            self.decode([tail], out)
        if self._pending is not None:
            fragment, self._pending = self._pending, None
            reason = "the record is incomplete: the input ended before its end"
            self._on_reject(Rejection(fragment.lineno, None, reason, (fragment.raw,)))

    def _slow(self, line: bytes, lineno: int) -> Decoded | None:
        if isinstance(line, Overlong):
            self._on_reject(Rejection(lineno, None, str(line_problem(line)), (line,)))
            return None
        is_record = line[:1] == b"{"
        if self._pending is not None:
            joined, message = self._join(line, is_record)
            if joined:
                return message
        if is_record:
            return self._record(line, lineno)
        problem = line_problem(line)  # console text must be text
        if problem is None:
            self._on_console(line)
        else:
            self._on_reject(Rejection(lineno, None, problem, (line,)))
        return None

    def _join(self, line: bytes, is_record: bool) -> tuple[bool, Decoded | None]:
        """Try ``line`` as the rest of the held fragment: (was it?, the message if valid)."""
        fragment = self._pending
        assert fragment is not None
        result = _decode(fragment.raw + line)
        if isinstance(result, _Problem) and result.json_error:
            if is_record:  # a new record began: the held one never got its end
                self._pending = None
                reason = "the record is incomplete: the next record began before its end"
                self._on_reject(Rejection(fragment.lineno, None, reason, (fragment.raw,)))
            return False, None  # otherwise console text between the halves: keep holding
        self._pending = None
        if isinstance(result, _Problem):
            raw = (fragment.raw, line)
            self._on_reject(Rejection(fragment.lineno, result.field, result.reason, raw))
            return True, None
        self.rejoined += 1
        return True, result

    def _record(self, line: bytes, lineno: int) -> Decoded | None:
        result = _decode(line)
        if not isinstance(result, _Problem):
            return result
        if result.torn:
            self._pending = _Fragment(lineno, line)
        else:
            self._on_reject(Rejection(lineno, result.field, result.reason, (line,)))
        return None


def decode_record(raw: bytes) -> Decoded | tuple[str | None, str]:
    """One k6 JSON record on its own (no split record is held): the record, or the field at
    fault and the reason, worded as for a line of a stream."""
    record = decode_fast(raw) if raw[:1] == b"{" else None
    if record is not None:
        return record
    result = _decode(raw)
    return (result.field, result.reason) if isinstance(result, _Problem) else result


def _decode(raw: bytes) -> Decoded | _Problem:
    try:
        message = validate_k6_record(wrap(raw))
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:
        try:  # one JSON value: text after the record would pass as more keys of the wrapper
            from_json(raw)
        except ValueError as exc:
            return _Problem(None, f"invalid JSON: {exc}", json_error=True)
        return record_of(message) if isinstance(message, PointMessage) else message
    if errors[0]["type"] != "json_invalid":
        return _validation_problem(errors)
    fixed = _INF_VALUE.sub(lambda m: b'"value":"' + m[1] + b'Infinity"', raw)
    if fixed != raw:
        return _decode(fixed)
    try:
        from_json(raw)
    except ValueError as exc:
        text = str(exc)
        torn = text.startswith("EOF while parsing") or bool(_TORN_INF.search(raw))
        return _Problem(None, f"invalid JSON: {text}", torn=torn, json_error=True)
    return _Problem(None, "invalid JSON", json_error=True)  # pragma: no cover - defensive


def _validation_problem(errors: list[Any]) -> _Problem:
    first = errors[0]
    kind, loc = first["type"], first["loc"]
    if kind == "union_tag_invalid":
        tag = shorten_value(first["ctx"]["tag"])
        return _Problem("type", f"unknown record type {tag} (k6 writes 'Metric' or 'Point')")
    if kind in ("union_tag_not_found", "model_attributes_type", "dict_type"):
        return _Problem("type", "not a k6 record: a JSON object with a 'type' field is expected")
    # loc is (tag, "data", <the k6 field path...>): drop the tag and the wrapper
    reasons = [f"{_path(e['loc'][2:])}: {_reason(e)}" for e in errors[1:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    reason = "; ".join([_reason(first), *reasons]) + more
    return _Problem(_path(loc[2:]), reason)


def _path(loc: tuple[Any, ...]) -> str:
    parts = [str(part) if len(str(part)) <= 60 else str(part)[:60] + "…" for part in loc]
    return ".".join(parts) or "(record)"


def _reason(error: Any) -> str:
    if error["type"] == "missing":
        return "missing"
    return f"{error['msg']} (got {shorten_value(error.get('input'))})"


def shorten(raw: bytes, limit: int = _RAW_SHOWN) -> str:
    """``raw`` as printable text, cut to ``limit`` characters for a log line."""
    text = raw.decode("utf-8", errors="backslashreplace")
    if len(text) > limit:
        return f"{text[:limit]!r}… ({len(raw)} bytes)"
    return repr(text)


def shorten_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "…"
