"""Progress on a terminal: a bar for a replayed file, a status line for a followed one; nothing
when stderr is not a terminal, under -q or with --no-progress."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from conftest import K6_SAMPLES, bridge_exe, clean_env

SAMPLE = K6_SAMPLES / "json-full-2vus.jsonl"
STATUS = re.compile(r"[\d,]+ records [\d,]+/s")


def on_a_terminal(*args: str, stdin: bytes | None = None) -> tuple[int, str]:
    """The bridge with its stderr on a pseudo-terminal (and ``stdin`` piped in); its exit code
    and what it drew."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [bridge_exe(), *args],
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=clean_env(COLUMNS="120"),
    )
    os.close(slave)
    if proc.stdin is not None and stdin is not None:
        proc.stdin.write(stdin)
        proc.stdin.close()
    drawn = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal's other end closed: the bridge has exited
            break
        if not data:
            break
        drawn += data
    os.close(master)
    return proc.wait(timeout=60), drawn.decode("utf-8", errors="replace")


def test_a_replay_draws_a_bar_on_a_terminal() -> None:
    code, drawn = on_a_terminal(str(SAMPLE), "--no-passthrough")
    assert code == 0
    assert STATUS.search(drawn), drawn[-2000:]
    assert "json-full-2vus.jsonl" in drawn
    size = SAMPLE.stat().st_size / 1e3
    assert re.search(rf"{size:.1f}/{size:.1f} kB", drawn), drawn[-2000:]  # all of it was read
    assert "555 records" in drawn  # the last draw counts every record


def test_a_pipe_shows_a_status_line() -> None:
    code, drawn = on_a_terminal("--no-passthrough", "-", stdin=SAMPLE.read_bytes())
    assert code == 0
    assert "555 records" in drawn
    assert "/150.7 kB" not in drawn  # no size to show a bar against


def test_a_followed_file_shows_how_far_behind_the_writer(tmp_path: Path) -> None:
    followed = tmp_path / "results.json"
    followed.write_bytes(SAMPLE.read_bytes())
    code, drawn = on_a_terminal(str(followed), "-f", "--idle-timeout", "0.5", "--no-passthrough")
    assert code == 0
    assert STATUS.search(drawn)
    assert "0 B behind k6" in drawn


def test_nothing_is_drawn_piped_quiet_or_asked_not_to() -> None:
    piped = subprocess.run(
        [bridge_exe(), str(SAMPLE), "--no-passthrough"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert piped.returncode == 0
    assert not STATUS.search(piped.stderr)
    for flag in ("-q", "--no-progress"):
        code, drawn = on_a_terminal(str(SAMPLE), "--no-passthrough", flag)
        assert code == 0
        assert not STATUS.search(drawn), flag
