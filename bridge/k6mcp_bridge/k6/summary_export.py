"""``--summary-export``: the JSON file k6 v1.1.0 writes, from a :class:`MetricsSnapshot`.

k6 builds it in ``oldJSONSummary`` (``internal/js/summary-wrapper.js``) from the
``handleSummary`` data (``summarizeMetricsToObject``, ``internal/js/summary.go``):

* ``root_group``: ``{name, path, id, groups, checks}`` where ``groups`` and ``checks`` are
  objects keyed by name (arrays in ``handleSummary``); a check is
  ``{name, path, id, passes, fails}``;
* ``metrics``: each metric's ``values`` flattened: counter ``{count, rate}``, gauge
  ``{value, min, max}``, rate ``{passes, fails, value}`` (the rate's ``rate`` renamed ``value``),
  trend one key per summary trend stat; with ``"thresholds": {source: bool}`` when it has
  thresholds, where **true means the threshold failed**;
* ``setup_data``: what ``setup()`` returned, when it returned something. The stream does not
  carry it: it is written only when the caller passes it.

The text is ``JSON.stringify(results, null, 4)`` as k6's JavaScript runtime (sobek) writes it:
numbers as JavaScript prints them (``16``, ``1e+21``, ``1e-7``), ±Infinity and NaN as ``null``,
no newline at the end, and sobek's indentation quirk: after an empty ``{}`` or ``[]``, the
following sibling objects of the same parent are indented one more level (visible in k6's own
files as the deeper ``checks`` of nested groups whose ``groups`` is ``{}``). k6 writes keys in
Go map order, which varies from run to run (a rotation of the insertion order); this module
writes the insertion order: ``root_group``, ``metrics``, ``setup_data``; name, path, id, groups,
checks; values in k6's order, then ``thresholds``, then a rate's ``value``. Metrics come in
snapshot order.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from ..messages import Check, Group, MetricsSnapshot, MetricSummary

NO_SETUP_DATA: Any = object()
"""``setup_data`` default: ``setup()`` returned nothing (or it is not known), so no key."""

# --- JavaScript number formatting (ECMAScript Number::toString and toFixed, as sobek does) ------


def js_number(x: float) -> str:
    """``String(x)`` in JavaScript: shortest round-trip digits, JavaScript's notation rules."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    point = len(digit_tuple) + int(exponent)  # x = 0.<digits> * 10**point
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    return sign + text


def js_to_fixed(x: float, places: int) -> str:
    """``x.toFixed(places)``: the exact value rounded half up; ``String(x)`` from 1e21 on."""
    if math.isnan(x):
        return "NaN"
    if abs(x) >= 1e21:
        return js_number(x)
    rounded = Decimal(abs(x)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return ("-" if x < 0 else "") + f"{rounded:f}"


# --- the document -------------------------------------------------------------------------------


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _check(check: Check) -> dict[str, Any]:
    return {
        "name": check.name,
        "path": check.path,
        "id": check.id,
        "passes": check.passes,
        "fails": check.fails,
    }


def _group(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "path": group.path,
        "id": group.id,
        "groups": {sub.name: _group(sub) for sub in group.groups},
        "checks": {check.name: _check(check) for check in group.checks},
    }


def _metric(metric: MetricSummary) -> dict[str, Any]:
    flat: dict[str, Any] = {key: _number(value) for key, value in metric.values.items()}
    if metric.thresholds:
        flat["thresholds"] = {source: not state.ok for source, state in metric.thresholds.items()}
    if metric.type == "rate" and "rate" in flat:
        flat["value"] = flat.pop("rate")
    return flat


def export(snapshot: MetricsSnapshot, *, setup_data: Any = NO_SETUP_DATA) -> dict[str, Any]:
    """k6's ``--summary-export`` document (``None`` where k6 writes ``null``)."""
    document: dict[str, Any] = {
        "root_group": _group(snapshot.root_group),
        "metrics": {name: _metric(metric) for name, metric in snapshot.metrics.items()},
    }
    if setup_data is not NO_SETUP_DATA:
        document["setup_data"] = setup_data
    return document


# --- JSON.stringify(value, null, 4) as sobek writes it ------------------------------------------


class _Stringify:
    def __init__(self, gap: str) -> None:
        self.gap = gap
        self.indent = ""
        self.parts: list[str] = []

    def value(self, value: Any) -> None:
        if isinstance(value, dict):
            self.container("{", "}", list(value.items()))
        elif isinstance(value, (list, tuple)):
            self.container("[", "]", [(None, item) for item in value])
        else:
            self.parts.append(_scalar(value))

    def container(self, opening: str, closing: str, items: list[tuple[Any, Any]]) -> None:
        stepback = self.indent
        self.indent += self.gap
        if not items:  # sobek returns here without restoring the indentation
            self.parts.append(opening + closing)
            return
        separator = ",\n" + self.indent
        self.parts.append(opening + "\n" + self.indent)
        for index, (key, item) in enumerate(items):
            if index:
                self.parts.append(separator)
            if key is not None:
                self.parts.append(json.dumps(str(key), ensure_ascii=False) + ": ")
            self.value(item)
        self.parts.append("\n" + stepback + closing)
        self.indent = stepback


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return js_number(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"not JSON: {value!r}")


def dumps(document: Any) -> str:
    """``JSON.stringify(document, null, 4)`` byte for byte as k6 v1.1.0 writes it."""
    writer = _Stringify("    ")
    writer.value(document)
    return "".join(writer.parts)


def write_export(
    snapshot: MetricsSnapshot, path: str | Path, *, setup_data: Any = NO_SETUP_DATA
) -> None:
    """Write k6's ``--summary-export`` file for ``snapshot`` (UTF-8, no final newline)."""
    Path(path).write_text(dumps(export(snapshot, setup_data=setup_data)), encoding="utf-8")
