"""The values in k6's CSV output (``--out csv=…``), one at a time; used by :mod:`.csv_decoder`.

What k6 v1.1.0 writes, and how it is read back here (``docs/k6-formats.md`` §2):

* **Format.** :func:`detect_format` tells k6's CSV from its JSON output by the first bytes.
* **Header.** The first line names the columns: ``metric_name,timestamp,metric_value``
  (:data:`HEADER_START`), the enabled indexable system tags (sorted), then
  ``extra_tags,metadata`` (:func:`is_header`).
* **Quoting.** RFC 4180: a quoted field may contain line breaks (:func:`ends_quoted`).
* **extra_tags / metadata.** ``k=v`` pairs joined with ``&``, not escaped: see
  :func:`decode_pairs` for the best-effort rule when a key or value contains ``&`` or ``=``.
* **Time.** Each value is recognised on its own, so no flag is needed: digits only are unix
  time, seconds/milliseconds/microseconds/nanoseconds by magnitude (see :func:`parse_time`);
  anything else must be RFC 3339 with a zone (``rfc3339``, ``rfc3339_nano``), and keeps it.
  Precision is the microsecond; nanoseconds are truncated, as for JSON.
* **Console text.** With ``--out csv=-`` k6 also prints its banner, summary (and, without
  ``-q``, progress lines) on stdout. A line that is empty, starts with white space or a
  non-ASCII character, or is one of k6's progress lines (``running (…), …`` and
  ``name [ 42% ] …``) is console text (:func:`is_console`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from operator import methodcaller
from typing import Final, Literal

from pydantic import AwareDatetime, TypeAdapter, ValidationError

HEADER_START: Final = ("metric_name", "timestamp", "metric_value")
"""The first three columns of every k6 CSV header."""

_HEADER_BYTES = ",".join(HEADER_START).encode()
_DECIDE_BY = 64 * 1024
_ROW_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_,")
_PROGRESS = re.compile(r"running \(|\S+\s+(?:\S\s+)?\[\s*\d+% \]")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_PARSE_RFC3339: Callable[[str], datetime] = TypeAdapter(AwareDatetime).validate_python
_SPLIT_PAIR: Callable[[str], list[str]] = methodcaller("split", "=", 1)


def detect_format(head: bytes, *, at_end: bool = False) -> Literal["json", "csv"] | None:
    """``"csv"`` or ``"json"`` from the first bytes of the (decompressed) stream.

    Lines are looked at in order: one starting with ``{`` means JSON, k6's CSV header
    (``metric_name,timestamp,metric_value…``) means CSV, anything else (k6's banner, which
    precedes the CSV header with ``--out csv=-``) is skipped. ``None`` means "too few bytes
    to tell": call again with more. Undecided after 64 KiB, or at the end of input
    (``at_end``), the answer is ``"json"``, whose decoder passes console text through.
    """
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    lines = head.split(b"\n")
    last = lines.pop()
    for line in lines:
        if line.startswith(b"{"):
            return "json"
        if line.startswith(_HEADER_BYTES):
            return "csv"
    if last.startswith(b"{"):
        return "json"
    if last.startswith(_HEADER_BYTES):
        return "csv"
    if at_end or len(head) >= _DECIDE_BY:
        return "json"
    return None


def parse_time(text: str) -> datetime:
    """A k6 CSV timestamp in any ``timeFormat`` as an aware datetime (µs, truncated).

    Digits only are unix time, told apart by magnitude: below 10¹¹ seconds (k6 ``unix``,
    10 digits today), below 10¹⁴ milliseconds (13), below 10¹⁷ microseconds (16), else
    nanoseconds (19); UTC. Anything else must be RFC 3339 with a zone, which is kept.
    Raises ``ValueError``.
    """
    if text.isdigit():
        return unix_time(text)
    if text[4:5] != "-":  # the validator would also read "-5" or "1.5" as unix seconds
        raise ValueError("neither digits nor an RFC 3339 date-time")
    try:
        return _PARSE_RFC3339(text)
    except ValidationError as exc:
        raise ValueError(exc.errors(include_url=False)[0]["msg"]) from None


def unix_time(digits: str) -> datetime:
    """The unix-time half of :func:`parse_time`: ``digits`` (``str.isdigit``) by magnitude."""
    if not digits.isascii():
        raise ValueError("digits other than 0-9")
    number = int(digits)
    if number < 10**11:
        micros = number * 1_000_000
    elif number < 10**14:
        micros = number * 1000
    elif number < 10**17:
        micros = number
    else:
        micros = number // 1000
    try:
        return _EPOCH + micros * _ONE_US
    except OverflowError:
        raise ValueError("out of range") from None


def decode_pairs(text: str) -> dict[str, str]:
    """k6's unescaped ``k=v&k=v`` encoding of ``extra_tags`` and ``metadata``, best effort.

    k6 joins ``key=value`` with ``&`` in random order and escapes nothing, so ``&`` or ``=``
    inside a key or value is ambiguous. The rule: split at every ``&``; a piece with ``=``
    starts a pair (the key ends at its first ``=``, so a value keeps its own ``=``); a piece
    without ``=`` belongs to the value before it (``u=a&&q=1`` → ``{"u": "a&", "q": "1"}``),
    or, when no pair came before, to the key after it (``m&k=v=1&x`` →
    ``{"m&k": "v=1&x"}``); a piece whose key was already seen also continues the value before
    it. What this cannot recover: a value containing ``&name=`` (``a=x&b=y`` is always read as
    two pairs) and a key containing ``&`` that follows another pair.
    """
    pieces = text.split("&")
    if text.count("=") >= len(pieces):  # perhaps plain k6 output: every piece has a "="
        try:
            pairs = dict(map(_SPLIT_PAIR, pieces))
            if len(pairs) == len(pieces):
                return pairs
        except ValueError:
            pass
    pairs = {}
    last: str | None = None
    held: list[str] = []
    for piece in pieces:
        key, eq, value = piece.partition("=")
        if eq and key not in pairs:
            if held:
                key = "&".join([*held, key])
                held = []
            pairs[key] = value
            last = key
        elif last is not None:
            pairs[last] += "&" + piece
        else:
            held.append(piece)
    if held:  # no "=" at all: not k6's encoding; keep the text as a key
        pairs["&".join(held)] = ""
    return pairs


def ends_quoted(text: str, quoted: bool) -> bool:
    """Whether an RFC 4180 record is inside a quoted field at the end of ``text``.

    ``quoted`` says whether ``text`` starts inside one (the line continues a record).
    """
    at, end = 0, len(text)
    if not quoted and text.startswith('"'):
        at, quoted = 1, True
    while True:
        if quoted:
            close = text.find('"', at)
            while close >= 0 and text.startswith('"', close + 1):  # "" is an escaped quote
                close = text.find('"', close + 2)
            if close < 0:
                return True
            at, quoted = close + 1, False
        field_end = text.find(",", at)
        if field_end < 0:
            return False
        at = field_end + 1
        quoted = text.startswith('"', at)
        if quoted:
            at += 1
        elif at > end:  # pragma: no cover - defensive
            return False


def is_header(row: list[str]) -> bool:
    """Whether a parsed row is a k6 CSV header: :data:`HEADER_START` first, no name twice."""
    return tuple(row[:3]) == HEADER_START and len(set(row)) == len(row)


def is_console(text: str) -> bool:
    """k6's own console output: blank, indented or non-ASCII first, or a progress line."""
    return text[:1] not in _ROW_START or _PROGRESS.match(text) is not None
