"""k6mcp-bridge: k6 result streams as validated MCP messages, delivered to plugins.

Plugin authors need only this module: :class:`Plugin`, the run types, and the messages. They
are imported on first use, so that the command line starts without pydantic when it needs none
(``k6mcp-bridge --help``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .messages import Message, Metric, MetricMessage, Point, PointMessage
    from .plugin import Plugin, PluginReport, RunInfo, RunResult, Stats

_PUBLIC = {
    "Message": "messages",
    "Metric": "messages",
    "MetricMessage": "messages",
    "Point": "messages",
    "PointMessage": "messages",
    "Plugin": "plugin",
    "PluginReport": "plugin",
    "RunInfo": "plugin",
    "RunResult": "plugin",
    "Stats": "plugin",
}

__all__ = [
    "Message",
    "Metric",
    "MetricMessage",
    "Plugin",
    "PluginReport",
    "Point",
    "PointMessage",
    "RunInfo",
    "RunResult",
    "Stats",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:  # a submodule, as ``import k6mcp_bridge; k6mcp_bridge.plugin`` had it
        try:
            return import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'k6mcp_bridge' has no attribute {name!r}") from None
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
