"""Generate large real k6 JSON-lines files for benchmarks (git-ignored, not committed).

Usage (k6 v1.1.0 on PATH or next to the Python in use):

    python benchmarks/generate.py [--out-dir benchmarks/data] [--lines 1000000]

Writes `http.jsonl` (HTTP against the loopback k6lab server: long lines, many tags) and
`custom.jsonl` (custom metrics in a tight loop, no HTTP: short lines), each with a `.csv` twin
written by the same k6 run (`--out json=… --out csv=…`). Each k6 run is bounded:
a fixed iteration count chosen to reach about `--lines` lines, and a `maxDuration` in the script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import k6lab  # noqa: E402

K6_TIMEOUT_S = 600


@dataclass(frozen=True)
class Job:
    output: str  # file name inside --out-dir
    script: str  # k6 script next to this file
    lines_per_iteration: int  # Point lines one iteration writes (measured with k6 v1.1.0)

    def iterations(self, target_lines: int) -> int:
        return max(1, round(target_lines / self.lines_per_iteration))


JOBS = (
    # 3 requests x 9 http_req_* points + 2 checks + 1 group_duration + 4 per-iteration points.
    Job("http.jsonl", "http-long-lines.js", 34),
    # 50 x 4 custom metric points + 4 per-iteration points.
    Job("custom.jsonl", "custom-short-lines.js", 204),
)


def count_lines(path: Path) -> int:
    """Count newlines without loading the whole file."""
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def run_job(job: Job, out_dir: Path, target_lines: int, base_url: str) -> None:
    out = out_dir / job.output
    csv_out = out.with_suffix(".csv")  # the same samples as CSV, from the same run
    env = k6lab.k6_env(base_url)
    env["ITERATIONS"] = str(job.iterations(target_lines))
    outs = ["--out", f"json={out}", "--out", f"csv={csv_out}"]
    cmd = [*k6lab.k6_run_args(), "-q", "--no-summary", *outs, job.script]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=HERE, env=env, capture_output=True, timeout=K6_TIMEOUT_S, check=False
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.stderr.buffer.write(proc.stderr)
        raise SystemExit(f"k6 exited with {proc.returncode}: {' '.join(cmd)}")
    lines = count_lines(out)
    print(
        f"{out}: {lines:,} lines, {out.stat().st_size / 1e6:,.1f} MB, "
        f"{env['ITERATIONS']} iterations, k6 took {elapsed:.1f} s"
    )
    if abs(lines - target_lines) > target_lines // 10:
        print(f"warning: {lines:,} lines is not within 10% of {target_lines:,}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=HERE / "data")
    parser.add_argument("--lines", type=int, default=1_000_000, help="target lines per file")
    args = parser.parse_args(argv)
    out_dir: Path = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with k6lab.serve() as base_url:
        for job in JOBS:
            run_job(job, out_dir, args.lines, base_url)


if __name__ == "__main__":
    main()
