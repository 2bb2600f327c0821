"""The plugin base class: subclass it, register the class as an entry point, done.

A plugin is a class with a ``name``, a ``description``, an optional pydantic
``Config`` model, and up to four methods. Only one of ``process_data`` or
``process_batch`` is required::

    class Counter(Plugin):
        name = "counter"
        description = "Counts points"

        def process_data(self, message: Message) -> None:
            ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel

from .messages import Message, MetricsSnapshot

if TYPE_CHECKING:
    from .aggregate.state import RunState

Status = Literal["completed", "interrupted", "stopped"]
PluginState = Literal["ok", "failed", "hung"]


@dataclass(frozen=True)
class RunInfo:
    """What a plugin learns when a run starts."""

    source: str
    """The input's name: a path, ``<stdin>``, or the receiver's URL (``--listen``)."""
    started_at: datetime
    bridge_version: str
    resumed: bool = False
    """True when a followed file is resumed from a checkpoint mid-file (append, don't reset)."""
    script: str | None = None
    """The k6 script, when the bridge was told (``--script``)."""
    state: RunState | None = None
    """Resumed from a checkpoint that holds the run's state: that state (the samples before the
    offset it resumes at; a plugin that keeps a run state of its own continues from it)."""


@dataclass
class Stats:
    """Counts kept by the pipeline while it reads."""

    lines: int = 0
    """Physical input lines read (``--listen``: the items of the requests)."""
    messages: int = 0
    """Records (``metric`` and ``point`` messages) delivered to plugins."""
    console_lines: int = 0
    """Non-record lines (k6's banner, progress, summary) passed through."""
    rejected: int = 0
    """Lines (or split records) that were not valid records."""
    rejoined: int = 0
    """Records that k6's console output had split in two, joined back together."""
    input_errors: list[str] = field(default_factory=list)
    """Problems with the input as a whole, such as a truncated gzip file."""


@dataclass(frozen=True)
class RunResult:
    """What a plugin learns when a run ends, whatever ended it."""

    status: Status
    """``completed`` (end of input), ``interrupted`` (Ctrl-C) or ``stopped`` (an error limit)."""
    stats: Stats
    elapsed: float
    """Seconds from start to finish."""
    metrics: MetricsSnapshot | None = None
    """The final snapshot of k6's numbers and threshold verdicts (when aggregation ran)."""
    plugins: tuple[PluginReport, ...] = ()
    """Every enabled plugin's state, messages and time, as they stood when ``finish`` began."""


@dataclass(frozen=True)
class PluginReport:
    """How one plugin fared in a run."""

    name: str
    state: PluginState
    """``ok``; ``failed`` (it raised: it got nothing more); ``hung`` (a call outlived
    ``plugin_timeout``: it got nothing more and was not waited for)."""
    received: int
    """Messages handed to it."""
    seconds: float
    """Time spent inside its methods."""


class MessageFailed(Exception):
    """Raised by the default :meth:`Plugin.process_batch` to say which message failed."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class Plugin:
    """Base class of every k6mcp-bridge plugin."""

    name: ClassVar[str]
    """The name users select the plugin by; equal to its entry-point name."""
    description: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel] | None] = None
    """A pydantic model of the plugin's options, validated from the config file and ``-o``."""
    accepts: ClassVar[frozenset[str] | None] = None
    """The message types it wants (``metric``, ``point``, ``metrics``, ``threshold``); ``None``,
    the default, is every type. A plugin that wants no ``point`` saves the bridge building them."""

    config: Any
    """The validated ``Config`` instance (``None`` when the plugin has no ``Config``)."""
    origin: str = ""
    """The distribution and version it came from, for messages; set by the bridge."""

    def __init__(self, config: BaseModel | None = None) -> None:
        self.config = config

    def start(self, run_info: RunInfo) -> None:
        """Called once before the first message."""

    def process_batch(self, messages: Sequence[Message]) -> None:
        """Called with each batch of messages, in stream order. Default: ``process_data`` each."""
        process = self.process_data
        for index, message in enumerate(messages):
            try:
                process(message)
            except Exception as exc:
                raise MessageFailed(index) from exc

    def process_data(self, message: Message) -> None:
        """Called with each message when ``process_batch`` is not overridden."""
        raise NotImplementedError(
            f"{type(self).__name__} defines neither process_data nor process_batch"
        )

    def finish(self, result: RunResult) -> None:
        """Always called once at the end, even after an error or an interrupt."""
