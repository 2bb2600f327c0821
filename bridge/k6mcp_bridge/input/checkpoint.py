"""Where a followed file was left: its identity and the offset every plugin has processed.

The identity is the file's device and inode plus a hash of its first ``Point`` line (or first
CSV row): k6 files begin with the same lines run after run, so those cannot tell two runs
apart, while the first sample's time stamp can. The file is written atomically (temporary file,
fsync, rename), at most every ``interval`` seconds and once more at exit. When the run keeps a
state (``docs/state-format.md``), the file holds it too, under ``state``: the state after exactly
the records before ``offset``, so that a resumed run counts nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)
_SCAN_LIMIT = 1 << 20


@dataclass(frozen=True)
class Identity:
    device: int
    inode: int
    first_sample: str | None
    """sha256 of the first sample line, ``None`` while the file has none."""

    def same_file(self, other: Identity) -> bool:
        if (self.device, self.inode) != (other.device, other.inode):
            return False
        return None in (self.first_sample, other.first_sample) or (
            self.first_sample == other.first_sample
        )


def identify(fd: int) -> Identity:
    """The identity of the open file ``fd`` (reads at most its first MiB, leaves no offset)."""
    info = os.fstat(fd)
    head = os.pread(fd, _SCAN_LIMIT, 0)
    lines = head.split(b"\n")[:-1]  # complete lines only
    sample = next((line for line in lines if b'"type":"Point"' in line), None)
    if sample is None and lines and lines[0].startswith(b"metric_name,"):
        sample = lines[1] if len(lines) > 1 else None  # CSV: the first row after the header
    digest = hashlib.sha256(sample).hexdigest() if sample is not None else None
    return Identity(info.st_dev, info.st_ino, digest)


@dataclass(frozen=True)
class State:
    identity: Identity
    offset: int
    run_state: bytes | None = None
    """The run's mergeable state (JSON) after exactly the records before ``offset``: written in
    the same file, so the offset and the state always match."""


class Checkpoint:
    """Loads and saves one checkpoint file."""

    def __init__(self, path: Path, interval: float = 0.25) -> None:
        folder = path.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise ConfigError(f"--checkpoint {path}: {folder} is not a writable directory")
        self.path = path
        self.interval = interval
        self._saved_at = 0.0
        self._last: State | None = None
        self._pending: State | None = None
        self._failed = False

    def load(self) -> State | None:
        """The saved state; ``None`` (and a warning) when missing is normal or corrupt."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            state = State(Identity(**raw["identity"]), int(raw["offset"]))
            if raw.get("state") is not None:  # JSON again: the run's state is not read here
                state = replace(state, run_state=json.dumps(raw["state"]).encode("utf-8"))
            if state.offset < 0:
                raise ValueError(f"negative offset {state.offset}")
            return state
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the checkpoint %s: it cannot be read (%s)", self.path, exc)
            return None

    def save(self, state: State) -> None:
        """Write ``state`` now, or keep it for later if the last write is under ``interval`` old."""
        if time.monotonic() - self._saved_at < self.interval:
            self._pending = state
            return
        self._write(state)

    def flush(self) -> None:
        """Write the state kept for later, if any (at exit, or after a run)."""
        if self._pending is not None:
            self._write(self._pending)

    def _write(self, state: State) -> None:
        self._pending = None
        if state == self._last:
            return
        temp = self.path.with_name(f".{self.path.name}.tmp")
        data = json.dumps({"identity": asdict(state.identity), "offset": state.offset}).encode()
        if state.run_state is not None:  # already JSON: spliced in, not parsed again
            data = data[:-1] + b', "state": ' + state.run_state + b"}"
        try:
            with open(temp, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temp, self.path)
        except OSError as exc:
            if not self._failed:
                log.error("cannot write the checkpoint %s: %s (reading goes on)", self.path, exc)
            self._failed = True
            return
        self._saved_at, self._last = time.monotonic(), state
