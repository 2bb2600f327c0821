"""A file mixing real k6 lines with every kind of bad line, replayed by the installed bridge."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from conftest import ROOT, bridge_exe, records

GOOD = (ROOT / "sample_outputs" / "k6-run.json").read_bytes().splitlines()
BAD = [
    b'{"metric":"http_reqs","type":"Point","data":{"time":"2026-11-24T18:00:02Z","value":1,',
    b'{"metric":"x","type":"Point" "data":{}}',  # broken JSON: a missing comma
    b'{"metric":"x","type":"Summary","data":{}}',  # unknown record type
    b'{"metric":"x","type":"Point","data":{"value":1}}',  # missing data.time
    b'{"metric":"x","type":"Point","data":{"time":"2026-11-24T18:00:02Z","value":"fast"}}',
    b'{"metric":"x","type":"Point","data":{"time":"2026-11-24T18:00:02","value":1}}',  # no zone
    b'{"metric":"x","type":"Point","data":{"time":"2026-11-24T18:00:02Z","value":1,"tags":{"a":1}}}',
    b'{"metric":"\xff\xfe","type":"Point","data":{"time":"2026-11-24T18:00:02Z","value":1}}',
    b'{"metric":"x","type":"Point","data":{"time":"2026-11-24T18:00:02Z","value":\x00}}',
    b'{"metric":"x","type":"Point","data":{"time":"' + b"9" * 10_000_000 + b'"}}',
]
TORN_LAST = b'{"metric":"vus","type":"Point","data":{"time":"2026-11-24T18:0'


def build(path: Path) -> tuple[list[int], int]:
    """Interleave the good lines with the bad ones; return the bad line numbers, good count."""
    lines: list[bytes] = []
    bad_numbers: list[int] = []
    for index, good in enumerate(GOOD):
        lines.append(good)
        if index % 50 == 7 and index // 50 < len(BAD):
            lines.append(BAD[index // 50])
            bad_numbers.append(len(lines))
    assert len(bad_numbers) == len(BAD), "sample too short for the bad-line list"
    lines.append(TORN_LAST)
    bad_numbers.append(len(lines))
    path.write_bytes(b"\n".join(lines))  # no final newline: the last line is torn
    return bad_numbers, len(GOOD)


def test_every_good_line_arrives_and_every_bad_one_is_reported(tmp_path: Path) -> None:
    source, out, dead = tmp_path / "mixed.json", tmp_path / "out.jsonl", tmp_path / "dead.txt"
    bad_numbers, good_count = build(source)
    proc = subprocess.run(
        [
            bridge_exe(),
            str(source),
            "-p",
            "jsonl",
            "-o",
            f"jsonl.path={out}",
            "--dead-letter",
            str(dead),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    stderr = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode == 65, stderr[-2000:]
    assert "Traceback" not in stderr

    delivered = records(out.read_text(encoding="utf-8"))
    assert len(delivered) == good_count

    reported = [int(n) for n in re.findall(r"warning: line (\d+)", stderr)]
    assert reported == bad_numbers
    assert "field data.time" in stderr and "field data.value" in stderr
    assert "field data.tags.a" in stderr and "field type" in stderr
    assert max(len(line) for line in stderr.splitlines()) < 2000  # the 10 MB line is cut

    assert dead.read_bytes() == b"".join(line + b"\n" for line in [*BAD, TORN_LAST])
