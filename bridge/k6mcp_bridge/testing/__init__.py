"""A plugin author's test kit: replay a recorded k6 stream through the real pipeline.

    from k6mcp_bridge.testing import replay
    plugin, result = replay("k6-run", MyPlugin, limit_ms=200)
    assert result.status == "completed" and plugin.slow > 0

``source`` is a path, the bytes of a k6 ``--out json`` (or csv) stream, plain or gzip, or the
name of a bundled real k6 capture (:data:`SAMPLES`). The plugin gets exactly what it would get
from ``k6mcp-bridge SOURCE -p NAME -o NAME.KEY=VALUE``: the same decoder, batches, aggregation
(``metrics`` snapshots, ``threshold`` verdicts, ``window`` rollups when it accepts them) and
``finish(result)``. A plugin that raises fails the replay (``PluginFailed``), since a test
wants to see it. The pytest plugin (:mod:`.pytest_plugin`) gives this as fixtures.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from ..config import Settings
from ..input.source import ByteStream, Source, open_source
from ..plugin import Plugin, RunResult

__all__ = ["SAMPLES", "replay", "sample"]

_DATA = Path(__file__).with_name("data")
SAMPLES: Mapping[str, Path] = {"k6-run": _DATA / "k6-run.json.gz"}
"""Bundled real k6 v1.1.0 captures by name: ``k6-run`` is ``sample_outputs/k6-run.json``
(2 VUs for 3 s of HTTP with groups, checks, custom metrics and thresholds), gzip-compressed."""

P = TypeVar("P", bound=Plugin)


def sample(name: str = "k6-run") -> Path:
    """The path of a bundled k6 capture."""
    try:
        return SAMPLES[name]
    except KeyError:
        raise ValueError(f"no bundled sample {name!r} (there are: {', '.join(SAMPLES)})") from None


def replay(
    source: str | os.PathLike[str] | bytes,
    plugin_class: type[P],
    /,
    *,
    bridge: Mapping[str, Any] | None = None,
    **options: Any,
) -> tuple[P, RunResult]:
    """Run ``source`` through the real pipeline into one ``plugin_class`` configured with
    ``options`` (validated by its ``Config`` as ``-o`` would be: an unknown key is an error);
    ``bridge`` holds the bridge's own settings (``thresholds``, ``batch_size``,
    ``snapshot_interval``…, as in the config file's ``[bridge]``). Returns the plugin instance
    and the run's result."""
    from ..aggregate.stage import Aggregation
    from ..delivery.pipeline import Pipeline
    from ..delivery.runner import resolve_aggregation

    plugin = _instance(plugin_class, options)
    settings = Settings.model_validate({"plugin_errors": "fail", **(bridge or {})})
    stage = Aggregation(resolve_aggregation(settings, [plugin]))
    stream = _stream(source)
    try:
        result = Pipeline([plugin], settings, aggregation=stage).run(stream)
    finally:
        stream.close()
    return plugin, result


def _instance(plugin_class: type[P], options: Mapping[str, Any]) -> P:
    model = plugin_class.Config
    if model is None:
        if options:
            raise TypeError(f"{plugin_class.__name__} has no Config, but options were given")
        return plugin_class()
    strict: type[BaseModel] = type("Config", (model,), {"model_config": ConfigDict(extra="forbid")})
    return plugin_class(strict.model_validate(options))


def _stream(source: str | os.PathLike[str] | bytes) -> ByteStream:
    if isinstance(source, bytes):
        data = io.BytesIO(source)
        return Source("<bytes>", data.read, None, live=False, close=data.close)
    if isinstance(source, str) and source in SAMPLES:
        return open_source(str(SAMPLES[source]))
    return open_source(os.fspath(source))
