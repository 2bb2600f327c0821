"""Go's number and duration literals, read and written exactly as Go (and k6 v1.1.0) do.

k6 is written in Go, so its thresholds (:mod:`.thresholds`) and sink names (:mod:`.sinks`)
follow Go's rules: :func:`parse_go_float` is ``strconv.ParseFloat`` (``1e3``, ``0x1p-2``,
``1_000``, ``Inf``), :func:`parse_go_duration` is ``time.ParseDuration``,
:func:`parse_k6_duration` is k6's ``types.ParseExtendedDuration`` (``delayAbortEval``) and
:func:`go_format_float` is ``%g`` (how ``p(99.9)`` is named). Errors are ``ValueError`` with
Go's message.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

_DECIMAL = re.compile(r"[+-]?(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9][0-9_]*)?")
_HEX = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][+-]?[0-9][0-9_]*"
)
_SPECIAL = re.compile(r"([+-]?)(inf|infinity)|nan", re.IGNORECASE)


def _underscores_ok(text: str) -> bool:
    """Go's ``underscoreOK``: an ``_`` only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexadecimal = text[:2].lower() == "0x"
    if hexadecimal:
        i, saw = 2, "0"
    digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
    for char in text[i:]:
        if char in digits:
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_go_float(text: str) -> float:
    """Go's ``strconv.ParseFloat(text, 64)``; ValueError with Go's message when it fails."""
    special = _SPECIAL.fullmatch(text)
    if special:
        return math.nan if special.group(2) is None else float(special.group(1) + "inf")
    hexadecimal = _HEX.fullmatch(text) is not None
    well_formed = hexadecimal or (
        _DECIMAL.fullmatch(text) is not None and re.search("[0-9]", re.split("[eE]", text)[0])
    )
    if not well_formed or ("_" in text and not _underscores_ok(text)):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": invalid syntax')
    plain = text.replace("_", "")
    try:
        value = float.fromhex(plain) if hexadecimal else float(plain)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise ValueError(f'strconv.ParseFloat: parsing "{text}": value out of range')
    return value


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` (``"10s"``, ``"1m30s"``, ``"500ms"``), in nanoseconds."""
    rest, negative = text, text[:1] == "-"
    if rest[:1] in ("+", "-"):
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    while rest:
        part = _DURATION_PART.match(rest)
        assert part is not None  # the pattern matches any text, possibly empty
        whole, fraction, unit = part.groups()
        if not whole and not fraction:
            raise ValueError(f'time: invalid duration "{text}"')
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _DURATION_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        scale = _DURATION_UNITS[unit]
        total += int(whole or 0) * scale
        if fraction:
            total += int(int(fraction) * (scale / 10 ** len(fraction)))
        if total > 2**63 - 1:
            raise ValueError(f'time: invalid duration "{text}"')
        rest = rest[part.end() :]
    return -total if negative else total


def parse_k6_duration(text: str) -> float:
    """k6's ``types.ParseExtendedDuration`` in seconds: a bare number is milliseconds, and a
    ``d`` (days) prefix is allowed before a Go duration (``"1d12h"``)."""
    try:
        return int(parse_go_float(text) * 1e6) / 1e9
    except (ValueError, OverflowError):  # not a number, or NaN/Inf: not a duration either
        pass
    day = text.find("d")
    if day < 0:
        return parse_go_duration(text) / 1e9
    hours = parse_go_duration(text[day + 1 :]) if day + 1 < len(text) else 0
    if hours < 0:
        raise ValueError(f"invalid time format '{text[day + 1 :]}'")
    if not re.fullmatch(r"[+-]?[0-9]+", text[:day]):
        raise ValueError(f'strconv.ParseInt: parsing "{text[:day]}": invalid syntax')
    days = int(text[:day])
    return (days * 86_400_000_000_000 + (-hours if days < 0 else hours)) / 1e9


def go_format_float(value: float) -> str:
    """Go's ``%g`` (shortest form; exponent below 1e-4 and from 1e+06): names ``p(99.9)``."""
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    _, digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digits_tuple))
    exp10 = len(digits) - 1 + exponent
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if exp10 < 0:
        return f"{sign}0.{'0' * (-exp10 - 1)}{digits}"
    whole = digits[: exp10 + 1].ljust(exp10 + 1, "0")
    fraction = digits[exp10 + 1 :]
    return sign + whole + ("." + fraction if fraction else "")
