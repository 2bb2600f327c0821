"""k6's ``humanizeValue`` and name order, as its end-of-test summary (``summary.js``) has them.

Numbers are formatted as k6's JavaScript does (truncated durations ``2.69ms``/``418.58µs``,
rates ``48.48%``, data ``12 kB``, counts ``toFixed(6)`` without trailing zeros); names sort
like k6's ``localeCompare`` (Unicode collation). The text summary (:mod:`.summary_text`) and
the reports use them.
"""

from __future__ import annotations

import math
import unicodedata

from ..messages import MetricSummary
from .summary_export import js_number, js_to_fixed

_TIME_UNITS = {"s": ("s", 0.001), "ms": ("ms", 1.0), "us": ("µs", 1000.0)}
_BYTE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def _trunc(x: float) -> float:
    return float(math.trunc(x)) if math.isfinite(x) else x


def _mod(a: float, b: float) -> float:
    return math.fmod(a, b) if math.isfinite(a) else math.nan


def _no_trailing_zeros(value: float, places: int) -> str:
    return js_number(float(js_to_fixed(value, places)))


def _truncated(value: float, places: int) -> str:
    scale = 10.0**places
    return _no_trailing_zeros(_trunc(scale * value) / scale, places)


def _duration(ms: float, unit: str | None) -> str:
    if unit in _TIME_UNITS:
        suffix, coefficient = _TIME_UNITS[unit]
        return js_to_fixed(ms * coefficient, 2) + suffix
    if ms == 0:
        return "0s"
    if ms < 0.001:
        return js_number(_trunc(ms * 1000000)) + "ns"
    if ms < 1:
        return _truncated(ms * 1000, 2) + "µs"
    if ms < 1000:
        return _truncated(ms, 2) + "ms"
    text = _truncated(_mod(ms, 60000) / 1000, 0 if ms > 60000 else 2) + "s"
    minutes = _trunc(ms / 60000)
    if minutes < 1:
        return text
    text = js_number(_mod(minutes, 60)) + "m" + text
    hours = _trunc(minutes / 60)
    return text if hours < 1 else js_number(hours) + "h" + text


def _bytes(size: float) -> str:
    if size < 10:
        return js_number(size) + " B"
    power = math.floor(math.log(size) / math.log(1000)) if math.isfinite(size) else 0
    suffix = _BYTE_UNITS[power] if power < len(_BYTE_UNITS) else "undefined"
    scaled = math.floor((size / 1000.0**power) * 10 + 0.5) / 10 if math.isfinite(size) else math.nan
    return js_to_fixed(scaled, 1 if scaled < 10 else 0) + " " + suffix


def humanize(value: float, metric: MetricSummary, time_unit: str | None = None) -> str:
    """k6's ``humanizeValue``: how the summary prints one number of ``metric``."""
    if metric.type == "rate":
        return js_to_fixed(_trunc(value * 100 * 100) / 100, 2) + "%"
    if metric.contains == "data":
        return _bytes(value)
    if metric.contains == "time":
        return _duration(value, time_unit)
    return _no_trailing_zeros(value, 6)


_COLLATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_PRIMARY = {char: rank for rank, char in enumerate(_COLLATION)}


def collation_key(text: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """A sort key ordering strings like k6's (sobek's) ``localeCompare``: primary weights
    (case- and accent-blind), then accents, then case (lower before upper)."""
    primary, secondary, tertiary = [], [], []
    for char in text:
        base = unicodedata.normalize("NFD", char)
        lower = base[0].lower()
        primary.append(_PRIMARY.get(lower, len(_COLLATION) + ord(lower)))
        secondary.append(sum(map(ord, base[1:])))
        tertiary.append(int(base[0] != lower))
    return tuple(primary), tuple(secondary), tuple(tertiary)
