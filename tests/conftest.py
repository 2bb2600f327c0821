"""Shared fixtures: sample paths, synthetic k6 lines, and real installed test plugins.

The test plugins are not mocks: ``plugin_dir`` writes importable modules plus
``*.dist-info`` directories (``METADATA``, ``entry_points.txt``) into a temporary
directory, so ``importlib.metadata`` discovers them through the entry-point group
exactly as it discovers a pip-installed plugin. Put the directory on ``sys.path``
(``installed_plugins``) for in-process tests, or on ``PYTHONPATH`` (``PluginDir.env``)
for the console script.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from k6mcp_bridge.decode.dispatch import LineDecoder
from k6mcp_bridge.decode.json_lines import Rejection
from k6mcp_bridge.messages import AnyMessage, MetricMessage, PointMessage
from k6mcp_bridge.samples import Decoded, messages_of

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_outputs"
K6_SAMPLES = ROOT / "tests" / "data" / "k6-samples"
"""Real k6 v1.1.0 captures (see its README)."""
K6_RUN = SAMPLES / "k6-run.json"
K6_RUN_GZ = SAMPLES / "k6-run.json.gz"
K6_STDOUT = SAMPLES / "k6-json-stdout.txt"

ENV_PREFIX = "K6MCP_BRIDGE_"

# --- synthetic k6 lines -------------------------------------------------------------------------


def metric_line(name: str = "m", kind: str = "counter") -> bytes:
    contains = "time" if kind == "trend" else "default"
    record = {
        "type": "Metric",
        "data": {
            "name": name,
            "type": kind,
            "contains": contains,
            "thresholds": [],
            "submetrics": None,
        },
        "metric": name,
    }
    return json.dumps(record, separators=(",", ":")).encode()


def point_line(value: float, metric: str = "m", second: int = 0) -> bytes:
    record = {
        "metric": metric,
        "type": "Point",
        "data": {
            "time": f"2026-11-25T08:00:{second % 60:02d}.123456789Z",
            "value": value,
            "tags": {"group": ""},
        },
    }
    return json.dumps(record, separators=(",", ":")).encode()


def k6_stream(points: int, metric: str = "m") -> bytes:
    """One Metric line then ``points`` Point lines valued 1..points, newline-terminated."""
    lines = [metric_line(metric)] + [point_line(i, metric, i) for i in range(1, points + 1)]
    return b"".join(line + b"\n" for line in lines)


def records(text: str) -> list[dict[str, Any]]:
    """The k6 records (``metric`` and ``point`` messages) in ``jsonl`` output, in order;
    the aggregation's ``metrics`` snapshots and ``threshold`` verdicts are left out."""
    messages = [json.loads(line) for line in text.splitlines()]
    return [m for m in messages if m["type"] in ("metric", "point")]


@dataclass
class Run:
    """What one decoder (JSON or CSV) produced from some lines."""

    decoder: LineDecoder
    records: list[Decoded] = field(default_factory=list)
    """What the decoder appended: the internal form."""
    console: list[bytes] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def messages(self) -> list[AnyMessage]:
        """The records as plugins get them."""
        return messages_of(self.records, points=True)

    @property
    def points(self) -> list[PointMessage]:
        return [m for m in self.messages if isinstance(m, PointMessage)]

    @property
    def metrics(self) -> list[MetricMessage]:
        return [m for m in self.records if isinstance(m, MetricMessage)]


# --- the console script -------------------------------------------------------------------------


def bridge_exe() -> str:
    """The installed ``k6mcp-bridge`` console script (next to the interpreter, or on PATH)."""
    beside = Path(sys.executable).parent / "k6mcp-bridge"
    if beside.exists():
        return str(beside)
    found = shutil.which("k6mcp-bridge")
    if found is None:
        pytest.fail("the k6mcp-bridge console script is not installed (pip install -e .)")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without any ``K6MCP_BRIDGE_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra)
    return env


@pytest.fixture
def bridge() -> str:
    return bridge_exe()


# --- isolation between tests ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No inherited K6MCP_BRIDGE_* variable; the bridge's logger reset before and after."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    _reset_logger()
    yield
    _reset_logger()


THREAD_GRACE = 2.0
"""Seconds a thread a test started may take to end after the test before it counts as leaked."""


@pytest.fixture(autouse=True)
def _no_thread_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread running (after a short grace join)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE
    for thread in threading.enumerate():
        if thread not in before and not _process_singleton(thread):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not _process_singleton(t)
    ]
    if leaked:
        names = ", ".join(f"{t.name} ({'daemon' if t.daemon else 'non-daemon'})" for t in leaked)
        pytest.fail(f"the test left {len(leaked)} thread(s) running: {names}", pytrace=False)


def _process_singleton(thread: threading.Thread) -> bool:
    """watchdog's one shared inotify reader: started on first use, it lives as long as the process
    (not a leak of the test that happened to be first to use inotify)."""
    kind = type(thread)
    return (
        kind.__module__ == "watchdog.observers.inotify_c"
        and kind.__name__ == "InotifyFD"
        and getattr(kind, "_instance", None) is thread
    )


def _reset_logger() -> None:
    # the CLI installs its own handler and stops propagation; caplog needs propagation
    logger = logging.getLogger("k6mcp_bridge")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


# --- real test plugins ----------------------------------------------------------------------------

PLUGINS_MODULE = "k6t_plugins"
BROKEN_MODULE = "k6t_broken"
PLUGINS_DIST = "k6t-plugins"
BROKEN_DIST = "k6t-broken"

_PLUGINS_SOURCE = '''
"""Plugins used by k6mcp-bridge's tests. Each can record what happens to a JSON-lines file."""

import json
import time

from pydantic import BaseModel

from k6mcp_bridge import Plugin


class RecordConfig(BaseModel):
    record: str = ""
    delay: float = 0.0
    """Seconds each batch takes (a slow but live plugin)."""


class _Recording(Plugin):
    Config = RecordConfig

    def note(self, **event):
        if self.config.record:
            with open(self.config.record, "a", encoding="utf-8") as stream:
                stream.write(json.dumps({"plugin": self.name, **event}) + "\\n")

    def start(self, run_info):
        self.note(event="start", source=run_info.source)

    def finish(self, result):
        self.note(
            event="finish",
            status=result.status,
            messages=result.stats.messages,
            rejected=result.stats.rejected,
        )


def _key(message):
    return message.data.value if message.type == "point" else "metric:" + message.data.name


class Recorder(_Recording):
    name = "recorder"
    description = "Records start, each batch and finish"

    def process_batch(self, messages):
        time.sleep(self.config.delay)
        records = [m for m in messages if m.type in ("metric", "point")]  # not snapshots
        if records:
            self.note(event="batch", keys=[_key(m) for m in records])


class HangConfig(RecordConfig):
    at: int = 3
    """The batch it never returns from (0: none)."""
    in_finish: bool = False
    """Never return from finish either."""


class Hang(_Recording):
    name = "hang"
    description = "Never returns from its third batch (or finish)"
    Config = HangConfig

    def __init__(self, config=None):
        super().__init__(config)
        self.batches = 0

    def process_batch(self, messages):
        self.batches += 1
        if self.batches == self.config.at:
            time.sleep(3600)

    def finish(self, result):
        if self.config.in_finish:
            time.sleep(3600)


class Boom(_Recording):
    name = "boom"
    description = "Raises on the third point"

    def __init__(self, config=None):
        super().__init__(config)
        self.points = 0

    def process_data(self, message):
        if message.type == "point":
            self.points += 1
            if self.points == 3:
                raise RuntimeError("boom on the third point")
        self.note(event="data", key=_key(message))


class ConfiguredConfig(RecordConfig):
    limit: int = 5
    label: str = "plain"


class Configured(_Recording):
    name = "configured"
    description = "Has a pydantic Config with limit:int and label:str"
    Config = ConfiguredConfig

    def process_data(self, message):
        pass

    def finish(self, result):
        self.note(event="finish", limit=self.config.limit, label=self.config.label)


class NotAPlugin:
    name = "notaplugin"
'''

_BROKEN_SOURCE = 'raise ImportError("k6t_broken needs the frobnicate package")\n'

ENTRY_POINTS = {
    "recorder": f"{PLUGINS_MODULE}:Recorder",
    "boom": f"{PLUGINS_MODULE}:Boom",
    "hang": f"{PLUGINS_MODULE}:Hang",
    "configured": f"{PLUGINS_MODULE}:Configured",
    "notaplugin": f"{PLUGINS_MODULE}:NotAPlugin",
}


def write_dist(
    root: Path, dist: str, version: str, modules: dict[str, str], entry_points: dict[str, str]
) -> None:
    """A minimal installed distribution: its modules and a ``.dist-info`` with entry points."""
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[k6mcp_bridge.plugins]\n{lines}", encoding="utf-8")


@dataclass
class PluginDir:
    path: Path

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for the console script that finds these plugins."""
        paths = [str(self.path)]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        return clean_env(PYTHONPATH=os.pathsep.join(paths), **extra)


@pytest.fixture
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> PluginDir:
    """Two distributions: ``k6t-plugins`` 0.1 (recorder, boom, hang, configured, notaplugin) and
    ``k6t-broken`` 0.2 (broken, whose module raises ImportError)."""
    root = tmp_path_factory.mktemp("site")
    write_dist(root, PLUGINS_DIST, "0.1", {PLUGINS_MODULE: _PLUGINS_SOURCE}, ENTRY_POINTS)
    write_dist(
        root, BROKEN_DIST, "0.2", {BROKEN_MODULE: _BROKEN_SOURCE}, {"broken": f"{BROKEN_MODULE}:X"}
    )
    return PluginDir(root)


@pytest.fixture
def installed_plugins(
    plugin_dir: PluginDir, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PluginDir]:
    """``plugin_dir`` importable and discoverable in this process."""
    monkeypatch.syspath_prepend(str(plugin_dir.path))
    yield plugin_dir
    for module in (PLUGINS_MODULE, BROKEN_MODULE):
        sys.modules.pop(module, None)


def read_record(path: Path) -> list[dict[str, Any]]:
    """The events a test plugin wrote with ``-o NAME.record=PATH``."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
