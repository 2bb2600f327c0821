"""What the benchmark scripts share (run them as scripts: this folder is on their path)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def bridge_command() -> list[str]:
    """The installed ``k6mcp-bridge`` console script: next to this Python, else on PATH."""
    beside = Path(sys.executable).with_name("k6mcp-bridge")
    found = str(beside) if beside.exists() else shutil.which("k6mcp-bridge")
    if not found:
        sys.exit("the k6mcp-bridge console script is not installed (pip install -e .)")
    return [found]
