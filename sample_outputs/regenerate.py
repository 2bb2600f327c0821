"""Regenerate the real k6 captures in this directory.

Usage (k6 v1.1.0 on PATH or next to the Python in use):

    python sample_outputs/regenerate.py

Runs `script.js` twice against the loopback k6lab server: once writing JSON to a plain file and
a gzip file (plus `--summary-export`), once with `--out json=-` and no `-q`, keeping stdout as a
user piping k6 would get it (banner, progress, JSON and summary mixed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import k6lab  # noqa: E402

MAX_BYTES = 1_000_000
FILE_RUN = ["k6-run.json", "k6-run.json.gz", "k6-summary-export.json"]
STDOUT_RUN = "k6-json-stdout.txt"


def _run_k6(extra_args: list[str], base_url: str) -> bytes:
    """Run `k6 run … script.js` in this directory; return its stdout, fail loudly on error."""
    env = k6lab.k6_env(base_url)
    env["TZ"] = "UTC"  # stable `Z` timestamps whoever regenerates
    cmd = [*k6lab.k6_run_args(), *extra_args, "script.js"]
    proc = subprocess.run(cmd, cwd=HERE, env=env, capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        sys.stderr.buffer.write(proc.stderr)
        raise SystemExit(f"k6 exited with {proc.returncode}: {' '.join(cmd)}")
    return proc.stdout


def _report_splits(stdout: bytes) -> None:
    """Say how many JSON records the progress lines cut in two (the point of that capture)."""
    lines = stdout.decode("utf-8").splitlines()
    progress = sum(line.startswith("running (") for line in lines)
    split = sum(line.startswith("{") and not line.endswith("}") for line in lines)
    print(f"{STDOUT_RUN}: {progress} progress lines, {split} JSON records split by them")
    if not split:
        print("warning: no split record this time; run again to get one", file=sys.stderr)


def main() -> None:
    with k6lab.serve() as base_url:
        _run_k6(
            [
                "-q",
                "--out",
                f"json={FILE_RUN[0]}",
                "--out",
                f"json={FILE_RUN[1]}",
                "--summary-export",
                FILE_RUN[2],
            ],
            base_url,
        )
        # One slow VU for ~4 s: a few JSON flushes with progress lines in between.
        stdout = _run_k6(["--vus", "1", "--duration", "4s", "--out", "json=-"], base_url)
        (HERE / STDOUT_RUN).write_bytes(stdout)
        _report_splits(stdout)

    for name in [*FILE_RUN, STDOUT_RUN]:
        size = (HERE / name).stat().st_size
        print(f"wrote {name}: {size:,} bytes")
        if size >= MAX_BYTES:
            raise SystemExit(f"{name} is {size:,} bytes, over the 1 MB limit: shrink script.js")


if __name__ == "__main__":
    main()
