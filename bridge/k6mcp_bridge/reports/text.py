"""Small text helpers shared by the reports: k6-style observed values, and names made safe."""

from __future__ import annotations

import re

from ..k6.humanize import humanize
from ..messages import MetricSummary, ThresholdState

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
"""Characters XML 1.0 forbids (and DEL), kept out of names; tab, LF and CR are allowed."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot hold shown as ``\\xNN``/``\\uNNNN``."""

    def show(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _SURROGATE.sub(show, _CONTROL.sub(show, text))


def stat_of(source: str) -> str:
    """The stat a threshold expression compares: ``p(95)<500`` → ``p(95)``."""
    return re.split(r"[=><!]", source, maxsplit=1)[0].strip()


def observed_text(source: str, state: ThresholdState, metric: MetricSummary) -> str:
    """The value a threshold was checked against, in k6's style: ``p(95)=612.31ms``."""
    stat = stat_of(source)
    if state.observed is None:
        return f"{stat}=(no value)"
    return f"{stat}={humanize(state.observed, metric)}"
