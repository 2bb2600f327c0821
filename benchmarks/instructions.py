"""Instructions per line of the bridge, counted by valgrind's callgrind, next to a baseline.

Usage (valgrind installed: `apt-get install valgrind`):

    python benchmarks/instructions.py FILE [--lines 200000] [--baseline DIR] [-- BRIDGE ARGS...]

Wall and CPU times on a shared 2-core machine vary by 30% from one run to the next; callgrind
counts the instructions a run executes, which repeat to a few parts in a million for the same
code and input, whatever else the machine does. So a change to the hot path is judged here,
and the time benchmarks (``throughput.py``, ``pipe.py``) say what it is worth in seconds.

The first ``--lines`` lines of FILE (a real k6 capture: ``pipe.py --keep DIR`` keeps one) are
replayed by ``python -m k6mcp_bridge`` with BRIDGE ARGS (default: none, so the default
plugins), and so are its first 2,000 lines: their difference over the lines between is the cost
of a line, start-up and the end of the run subtracted. With ``--baseline DIR`` (another
checkout, e.g. ``git worktree add /tmp/old <commit>``) the same two runs use that checkout's
package, side by side. Both packages' bytecode is written first (``bench_tools.compile_package``).
A run under callgrind is ~50x slower: 200,000 HTTP lines take ~30 s.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_tools import compile_package

HERE = Path(__file__).resolve().parent
SHORT = 2_000
"""Lines of the start-up run."""


def head(source: Path, lines: int, target: Path) -> int:
    """Write the first ``lines`` lines of ``source`` to ``target``; return how many there were."""
    count = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        for line in reader:
            if count == lines:
                break
            writer.write(line)
            count += 1
    return count


def instructions(path: Path, package: Path, args: list[str]) -> int:
    """Instructions of one replay of ``path`` by the package in ``package`` (its folder)."""
    env = dict(os.environ, PYTHONPATH=str(package.parent))
    env = {k: v for k, v in env.items() if not k.startswith("K6MCP_BRIDGE_")}
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "k6mcp_bridge",
        str(path),
        *args,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        sys.exit(f"callgrind counted nothing (exit {done.returncode}): {done.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="a k6 JSON-lines capture")
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--baseline", type=Path, help="another checkout of the project")
    parser.add_argument("bridge_args", nargs="*", help="after --: the bridge's own arguments")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    packages = {"this checkout": HERE.parent / "bridge" / "k6mcp_bridge"}
    if args.baseline is not None:
        packages["baseline"] = args.baseline.resolve() / "bridge" / "k6mcp_bridge"
    with tempfile.TemporaryDirectory() as temp:
        long, short = Path(temp) / "long.json", Path(temp) / "short.json"
        lines = head(args.file, args.lines, long)
        short_lines = head(args.file, SHORT, short)
        if lines <= short_lines:
            sys.exit(f"{args.file} has {lines} lines: more than {SHORT} are needed")
        shown = " ".join(args.bridge_args) or "(none: the default plugins)"
        print(f"{args.file.name}: {lines:,} lines vs its first {short_lines:,}; args {shown}")
        print("\n| package | start-up Ir | Ir per line |\n| :--- | ---: | ---: |")
        for name, package in packages.items():
            compile_package(package)
            start = instructions(short, package, args.bridge_args)
            whole = instructions(long, package, args.bridge_args)
            per_line = (whole - start) / (lines - short_lines)
            print(f"| {name} | {start:,} | {per_line:,.0f} |")


if __name__ == "__main__":
    main()
