"""checkpoint.py on real files: identify(), same_file(), atomic saves, rate limiting, flush.

The process-level promises (kill -9 and restart, clean restart, identity mismatch, corrupt
checkpoints) are in test_follow.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import metric_line, point_line
from k6mcp_bridge.input import checkpoint as checkpoint_module
from k6mcp_bridge.input.checkpoint import Checkpoint, Identity, State, identify

HEADER = metric_line() + b"\n"
CSV_HEADER = b"metric_name,timestamp,metric_value,status,extra_tags,metadata\n"
CSV_ROW = b"http_reqs,1795543429,1.000000,200,,vu=1"


def sha(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


@contextmanager
def opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDONLY)
    try:
        yield fd
    finally:
        os.close(fd)


def identity_of(path: Path) -> Identity:
    with opened(path) as fd:
        return identify(fd)


# --- identify -------------------------------------------------------------------------------------


def test_identity_is_device_inode_and_the_hash_of_the_first_point_line(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    first = point_line(1.0, second=1)
    path.write_bytes(HEADER + first + b"\n" + metric_line("n") + b"\n" + point_line(2.0) + b"\n")
    info = path.stat()
    assert identity_of(path) == Identity(info.st_dev, info.st_ino, sha(first))


@pytest.mark.parametrize(
    "content",
    [b"", HEADER, HEADER + point_line(1.0)],  # nothing, only definitions, a torn first point
    ids=["empty", "metrics only", "torn point"],
)
def test_identity_has_no_sample_until_a_whole_point_line_is_written(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(content)
    assert identity_of(path).first_sample is None
    with path.open("ab") as stream:
        stream.write(b"" if content.endswith(point_line(1.0)) else point_line(1.0))
        stream.write(b"\n")
    assert identity_of(path).first_sample == sha(point_line(1.0))


def test_identity_of_a_csv_file_hashes_its_first_row(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_bytes(CSV_HEADER)
    assert identity_of(path).first_sample is None
    path.write_bytes(CSV_HEADER + CSV_ROW + b"\n" + CSV_ROW.replace(b"1.0", b"2.0") + b"\n")
    assert identity_of(path).first_sample == sha(CSV_ROW)


def test_identify_does_not_move_the_file_offset(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_bytes(HEADER + point_line(1.0) + b"\n")
    with opened(path) as fd:
        os.lseek(fd, 7, os.SEEK_SET)
        identify(fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == 7


def test_two_k6_runs_with_the_same_first_lines_differ_by_their_first_sample(
    tmp_path: Path,
) -> None:
    """k6 files start with the same Metric lines run after run; the first sample differs."""
    path = tmp_path / "results.json"
    path.write_bytes(HEADER + point_line(1.0, second=1) + b"\n")
    before = identity_of(path)
    path.write_bytes(HEADER + point_line(1.0, second=2) + b"\n")  # same inode, a rerun
    after = identity_of(path)
    assert (before.device, before.inode) == (after.device, after.inode)
    assert not before.same_file(after)


# --- same_file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (Identity(1, 2, "x"), Identity(1, 2, "x"), True),
        (Identity(1, 2, "x"), Identity(1, 2, "y"), False),
        (Identity(1, 2, "x"), Identity(1, 3, "x"), False),
        (Identity(1, 2, "x"), Identity(9, 2, "x"), False),
        (Identity(1, 2, None), Identity(1, 2, "x"), True),  # no sample yet: cannot tell apart
        (Identity(1, 2, "x"), Identity(1, 2, None), True),
        (Identity(1, 2, None), Identity(1, 3, None), False),
    ],
)
def test_same_file(a: Identity, b: Identity, same: bool) -> None:
    assert a.same_file(b) is same
    assert b.same_file(a) is same


# --- saving and loading ---------------------------------------------------------------------------

STATE = State(Identity(64768, 1234, sha(b"first")), 4096)


def saved(path: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def test_save_then_load(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    Checkpoint(path).save(STATE)
    assert saved(path) == {
        "identity": {"device": 64768, "inode": 1234, "first_sample": sha(b"first")},
        "offset": 4096,
    }
    assert Checkpoint(path).load() == STATE


def test_a_missing_checkpoint_loads_as_none_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "k6mcp_bridge"):
        assert Checkpoint(tmp_path / "state.json").load() is None
    assert caplog.records == []


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"\xff\xfe", b"[]", b"null", b'{"offset": 1}', b'{"identity": {}}'],
)
def test_a_corrupt_checkpoint_loads_as_none_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with caplog.at_level(logging.DEBUG, "k6mcp_bridge"):
        assert Checkpoint(path).load() is None
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert str(path) in caplog.text


def test_save_writes_a_temp_file_fsyncs_it_then_renames_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    path.write_text("old")
    calls: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(("replace", (Path(src), Path(dst))))
        assert path.read_text() == "old"  # the checkpoint is whole until the rename
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint_module.os, "replace", replace)
    Checkpoint(path).save(STATE)
    assert len(calls) == 2
    (what1, synced), (what2, renamed) = calls
    assert (what1, what2) == ("fsync", "replace")
    assert isinstance(renamed, tuple)
    temp = renamed[0]
    assert synced == str(temp)
    assert renamed[1] == path
    assert temp.parent == path.parent  # same file system: the rename is atomic
    assert not temp.exists()
    assert Checkpoint(path).load() == STATE


def test_each_write_is_a_new_file_renamed_over_the_old(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint = Checkpoint(path, interval=0)
    checkpoint.save(STATE)
    inode = path.stat().st_ino
    checkpoint.save(State(STATE.identity, 8192))
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_saves_are_rate_limited_and_flush_writes_the_last_one(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    checkpoint = Checkpoint(path, interval=0.3)
    checkpoint.save(State(STATE.identity, 1))
    started = time.monotonic()
    checkpoint.save(State(STATE.identity, 2))
    checkpoint.save(State(STATE.identity, 3))
    if time.monotonic() - started < 0.3:
        assert saved(path)["offset"] == 1  # kept for later
    checkpoint.flush()
    assert saved(path)["offset"] == 3
    time.sleep(0.35)
    checkpoint.save(State(STATE.identity, 4))  # the interval has passed: written at once
    assert saved(path)["offset"] == 4


def test_flush_with_nothing_pending_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    Checkpoint(path).flush()
    assert not path.exists()
    checkpoint = Checkpoint(path, interval=0)
    checkpoint.save(STATE)
    mtime = path.stat().st_mtime_ns
    inode = path.stat().st_ino
    checkpoint.flush()
    checkpoint.save(STATE)  # the same state again: no rewrite
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (mtime, inode)


def test_a_save_replaces_a_corrupt_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"\x00garbage")
    checkpoint = Checkpoint(path)
    assert checkpoint.load() is None
    checkpoint.save(STATE)
    assert Checkpoint(path).load() == STATE
