"""What the progress bar costs a replay: the same file with stderr on a pseudo-terminal, with
``--progress`` and with ``--no-progress``, alternated, best of ``--repeat``. Target: ≤ 3%.

Usage (after `python benchmarks/generate.py`):

    python benchmarks/progress.py [--file benchmarks/data/http.jsonl] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import time
from pathlib import Path

from bench_tools import bridge_command

HERE = Path(__file__).resolve().parent
TARGET = 1.03


def replay(path: Path, flag: str) -> float:
    """Seconds of ``k6mcp-bridge FILE FLAG`` with its stderr on a pseudo-terminal (drained)."""
    master, slave = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*bridge_command(), str(path), "--no-passthrough", flag],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    while True:
        try:
            if not os.read(master, 65536):
                break
        except OSError:
            break
    os.close(master)
    assert proc.wait() == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=HERE / "data" / "http.jsonl")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    best = {"--progress": float("inf"), "--no-progress": float("inf")}
    for _ in range(args.repeat):
        for flag in best:
            best[flag] = min(best[flag], replay(args.file, flag))
    ratio = best["--progress"] / best["--no-progress"]
    print(f"{args.file.name}, best of {args.repeat}, stderr on a pseudo-terminal")
    for flag, seconds in best.items():
        print(f"  {flag:<14} {seconds:6.2f} s")
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"  with / without  {ratio:6.3f}x  (target ≤ {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
