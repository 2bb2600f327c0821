"""``open_source``: plain and gzip files (gzip told by magic bytes), FIFOs and stdin."""

from __future__ import annotations

import gzip
import io
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import K6_SAMPLES, ROOT
from k6mcp_bridge.errors import SourceError
from k6mcp_bridge.input import source as source_module
from k6mcp_bridge.input.source import Source, open_source

SAMPLES = K6_SAMPLES
REPO_SAMPLES = ROOT / "sample_outputs"
PLAIN_SAMPLE = SAMPLES / "json-full-2vus.jsonl"


def read_all(src: Source, idle_tick: float | None = None) -> bytes:
    """Every decoded byte of ``src`` (idle ticks dropped); closes it."""
    try:
        return b"".join(src.chunks(idle_tick))
    finally:
        src.close()


def collect_until_error(src: Source) -> tuple[bytes, SourceError]:
    """The bytes yielded before ``chunks()`` raised, and the error it raised."""
    got: list[bytes] = []
    try:
        with pytest.raises(SourceError) as excinfo:
            for chunk in src.chunks():
                got.append(chunk)
    finally:
        src.close()
    return b"".join(got), excinfo.value


@pytest.fixture
def sample() -> bytes:
    return PLAIN_SAMPLE.read_bytes()


# --- plain and gzip files ----------------------------------------------------------------------


def test_plain_file_is_read_whole_and_not_live(sample: bytes) -> None:
    src = open_source(str(PLAIN_SAMPLE))
    assert src.fd is not None
    assert src.live is False
    assert src.name == str(PLAIN_SAMPLE)
    assert read_all(src) == sample


def test_close_releases_the_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"x\n")
    src = open_source(str(path))
    assert src.fd is not None
    fd = src.fd
    assert read_all(src) == b"x\n"  # read_all closes
    with pytest.raises(OSError):
        os.fstat(fd)


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_bytes(b"")
    assert read_all(open_source(str(path))) == b""


def test_one_byte_file_is_passed_through(tmp_path: Path) -> None:
    path = tmp_path / "one.gz"
    path.write_bytes(b"\x1f")  # half a gzip magic, and nothing more: plain text
    assert read_all(open_source(str(path))) == b"\x1f"


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("results.json", True),  # gzip data with a plain-looking name
        ("results", True),
        ("results.json.gz", False),  # plain data with a gzip-looking name
        ("results.gz", False),
    ],
)
def test_gzip_is_detected_by_magic_bytes_not_by_name(
    tmp_path: Path, sample: bytes, name: str, compress: bool
) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(sample) if compress else sample)
    assert read_all(open_source(str(path))) == sample


@pytest.mark.parametrize(
    ("gz", "plain"),
    [
        (SAMPLES / "json-full-2vus.jsonl.gz", SAMPLES / "json-full-2vus.jsonl"),
        (REPO_SAMPLES / "k6-run.json.gz", REPO_SAMPLES / "k6-run.json"),
    ],
    ids=["samples-2vus", "repo-k6-run"],
)
def test_real_k6_gzip_output_decompresses_to_the_plain_capture(gz: Path, plain: Path) -> None:
    expected = gzip.decompress(gz.read_bytes())  # the stdlib is the reference
    assert expected == plain.read_bytes()  # same run, both outputs
    assert read_all(open_source(str(gz))) == expected


def test_concatenated_gzip_members_are_all_decoded(tmp_path: Path, sample: bytes) -> None:
    lines = sample.splitlines(keepends=True)
    parts = [b"".join(lines[i::3]) for i in range(3)]
    path = tmp_path / "multi.jsonl"
    path.write_bytes(b"".join(gzip.compress(part) for part in parts))
    assert read_all(open_source(str(path))) == b"".join(parts)


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
@pytest.mark.parametrize("out_limit", [16, 1000])
def test_gzip_across_small_reads_and_bounded_output(
    tmp_path: Path,
    sample: bytes,
    monkeypatch: pytest.MonkeyPatch,
    chunk_size: int,
    out_limit: int,
) -> None:
    """Magic bytes split across reads, members ending mid-read, output cut into small pieces."""
    monkeypatch.setattr(source_module, "CHUNK_SIZE", chunk_size)
    monkeypatch.setattr(source_module, "_GZIP_OUT_LIMIT", out_limit)
    head, tail = sample[:5000], sample[5000:10000]
    path = tmp_path / "small-reads"
    path.write_bytes(gzip.compress(head) + gzip.compress(tail))
    chunks = list(open_source(str(path)).chunks())
    assert b"".join(chunks) == head + tail
    assert max(len(c) for c in chunks) <= out_limit


def test_truncated_gzip_yields_the_data_before_the_cut_then_fails(
    tmp_path: Path, sample: bytes
) -> None:
    whole = gzip.compress(sample)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    got, error = collect_until_error(open_source(str(path)))
    assert "truncated" in str(error)
    assert str(path) in str(error)
    assert got, "nothing arrived before the cut"
    assert sample.startswith(got)
    complete_lines = got.split(b"\n")[:-1]
    assert len(complete_lines) > 0
    assert complete_lines == sample.split(b"\n")[: len(complete_lines)]


def test_gzip_cut_inside_its_header_fails_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "header-only"
    path.write_bytes(gzip.compress(b"hello\n")[:5])
    got, error = collect_until_error(open_source(str(path)))
    assert got == b""
    assert "truncated" in str(error)


def test_corrupt_deflate_data_is_a_source_error(tmp_path: Path, sample: bytes) -> None:
    whole = gzip.compress(sample)
    header = 10  # gzip.compress writes no optional header fields
    path = tmp_path / "corrupt.gz"
    path.write_bytes(whole[:header] + b"\xff" * 64 + whole[header + 64 :])
    _, error = collect_until_error(open_source(str(path)))
    assert "corrupt" in str(error)
    assert str(path) in str(error)


def test_bad_crc_is_a_source_error(tmp_path: Path, sample: bytes) -> None:
    whole = bytearray(gzip.compress(sample))
    whole[-8] ^= 0xFF  # first byte of the CRC32 trailer
    path = tmp_path / "badcrc.gz"
    path.write_bytes(bytes(whole))
    got, error = collect_until_error(open_source(str(path)))
    assert "corrupt" in str(error)
    assert sample.startswith(got)


def test_garbage_after_gzip_data_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "trailing.gz"
    path.write_bytes(gzip.compress(b"line\n") + b"not gzip")
    got, error = collect_until_error(open_source(str(path)))
    assert got == b"line\n"
    assert "after the gzip data" in str(error)


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(SourceError, match=r"nope\.json"):
        open_source(str(missing))


def test_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="directory"):
        open_source(str(tmp_path))


# --- named pipes -------------------------------------------------------------------------------


class SlowWriter:
    """Writes ``pieces`` into a FIFO from a thread, pausing ``pause`` seconds before each."""

    def __init__(self, fifo: Path, pieces: list[bytes], pause: float) -> None:
        self.fifo = fifo
        self.pieces = pieces
        self.pause = pause
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="fifo-writer", daemon=True)

    def _run(self) -> None:
        try:
            with open(self.fifo, "wb", buffering=0) as pipe:
                for piece in self.pieces:
                    time.sleep(self.pause)
                    pipe.write(piece)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self) -> None:
        if self.thread.is_alive():
            # unblock a writer still waiting in open() for a reader that never came
            fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
            try:
                self.thread.join(timeout=10)
            finally:
                os.close(fd)
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the FIFO writer thread did not end"


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "k6.fifo"
    os.mkfifo(path)
    return path


def run_fifo(
    fifo: Path, pieces: list[bytes], pause: float = 0.2, idle_tick: float = 0.05
) -> tuple[Source, list[bytes]]:
    """Read ``fifo`` with ``chunks(idle_tick)`` while a thread writes ``pieces`` slowly."""
    writer = SlowWriter(fifo, pieces, pause)
    writer.thread.start()
    chunks: list[bytes] = []
    try:
        src = open_source(str(fifo))  # blocks until the writer has opened its end
        try:
            chunks = list(src.chunks(idle_tick=idle_tick))
        finally:
            src.close()
    finally:
        writer.join()
    assert writer.error is None
    return src, chunks


def idle_ticks_between_data(chunks: list[bytes]) -> int:
    """How many data chunks were preceded by at least one idle tick since the last data."""
    count, idle = 0, False
    for chunk in chunks:
        if not chunk:
            idle = True
        elif idle:
            count, idle = count + 1, False
    return count


def test_fifo_yields_data_and_idle_ticks(fifo: Path) -> None:
    pieces = [b'{"a":1}\n', b'{"b":', b"2}\n", b"tail"]
    src, chunks = run_fifo(fifo, pieces)
    assert src.live is True
    assert src.fd is not None
    assert b"".join(chunks) == b"".join(pieces)
    assert b"" in chunks
    # the writer pauses before every piece: each piece after the first comes after an idle tick
    assert idle_ticks_between_data(chunks) >= len(pieces) - 1


def test_fifo_with_gzip_data_still_ticks(fifo: Path, sample: bytes) -> None:
    payload = sample[:20000]
    compressed = gzip.compress(payload)
    third = len(compressed) // 3
    pieces = [compressed[:1], compressed[1:third], compressed[third:]]  # magic split too
    _, chunks = run_fifo(fifo, pieces)
    assert b"".join(chunks) == payload
    assert idle_ticks_between_data(chunks) >= 1


def test_fifo_without_idle_tick_yields_no_empty_chunks(fifo: Path) -> None:
    pieces = [b"one\n", b"two\n"]
    writer = SlowWriter(fifo, pieces, pause=0.05)
    writer.thread.start()
    try:
        src = open_source(str(fifo))
        try:
            chunks = list(src.chunks())
        finally:
            src.close()
    finally:
        writer.join()
    assert writer.error is None
    assert b"".join(chunks) == b"one\ntwo\n"
    assert all(chunks)


# --- standard input ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [None, "-"])
def test_in_memory_stdin(monkeypatch: pytest.MonkeyPatch, sample: bytes, path: str | None) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(sample)))
    src = open_source(path)
    assert src.name == "<stdin>"
    assert src.fd is None
    assert src.live is False
    chunks = list(src.chunks(idle_tick=0.05))
    src.close()
    assert all(chunks), "an in-memory stream never idles"
    assert b"".join(chunks) == sample


def test_in_memory_stdin_gzip_is_detected(monkeypatch: pytest.MonkeyPatch, sample: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(gzip.compress(sample))))
    assert read_all(open_source(None)) == sample


def test_stdin_redirected_from_a_file_is_not_live(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample: bytes
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(sample)
    with open(path) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        src = open_source("-")
        assert src.fd == stdin.fileno()
        assert src.live is False
        assert read_all(src) == sample
        assert not stdin.closed  # closing the source leaves stdin to its owner


def test_stdin_from_a_pipe_is_live(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r") as stdin:
        try:
            os.write(write_fd, b"piped\n")
        finally:
            os.close(write_fd)
        monkeypatch.setattr(sys, "stdin", stdin)
        src = open_source(None)
        assert src.live is True
        assert read_all(src, idle_tick=0.05) == b"piped\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="F_SETPIPE_SZ is Linux's")
@pytest.mark.parametrize("how", ["stdin", "fifo"])
def test_a_pipe_is_widened(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str) -> None:
    """k6's writes block less in a wider pipe (``PIPE_SIZE``, where the system allows it)."""
    import fcntl

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    wanted = min(source_module.PIPE_SIZE, limit)
    stdin = None
    if how == "stdin":
        read_fd, write_fd = os.pipe()
        assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) < wanted
        stdin = os.fdopen(read_fd, "r")
        monkeypatch.setattr(sys, "stdin", stdin)
        src = open_source(None)
    else:
        path = tmp_path / "k6.fifo"
        os.mkfifo(path)
        read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer can open
        write_fd = os.open(path, os.O_WRONLY)
        src = open_source(str(path))
        os.close(read_fd)
    try:
        assert fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ) == wanted
        os.write(write_fd, b"x" * 100_000)  # more than the default pipe takes, without a reader
        os.close(write_fd)
        assert read_all(src) == b"x" * 100_000
    finally:
        if stdin is not None:
            stdin.close()
