"""What the benchmark scripts share (run them as scripts: this folder is on their path)."""

from __future__ import annotations

import compileall
import importlib.util
import shutil
import sys
from pathlib import Path


def compile_package(folder: Path | None = None) -> None:
    """Write the bytecode of the package in ``folder`` (default: the installed ``k6mcp_bridge``),
    as ``pip install`` does for a user. An editable install has none until something writes
    it, and with ``PYTHONDONTWRITEBYTECODE=1`` nothing does: every start would compile the
    package's modules again (~0.1 s) and the benchmarks would time that instead of what users
    run."""
    if folder is None:
        spec = importlib.util.find_spec("k6mcp_bridge")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("the k6mcp_bridge package is not installed (pip install -e .)")
        folder = Path(next(iter(spec.submodule_search_locations)))
    compileall.compile_dir(folder, quiet=1)


def bridge_command() -> list[str]:
    """The installed ``k6mcp-bridge`` console script: next to this Python, else on PATH; its
    package's bytecode written first (:func:`compile_package`)."""
    beside = Path(sys.executable).with_name("k6mcp-bridge")
    found = str(beside) if beside.exists() else shutil.which("k6mcp-bridge")
    if not found:
        sys.exit("the k6mcp-bridge console script is not installed (pip install -e .)")
    compile_package()
    return [found]
