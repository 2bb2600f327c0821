"""k6mcp-bridge: k6 result streams as validated MCP messages, delivered to plugins.

Plugin authors need only this module: :class:`Plugin`, the run types, and the messages.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .messages import Message, Metric, MetricMessage, Point, PointMessage
from .plugin import Plugin, RunInfo, RunResult, Stats

__all__ = [
    "Message",
    "Metric",
    "MetricMessage",
    "Plugin",
    "Point",
    "PointMessage",
    "RunInfo",
    "RunResult",
    "Stats",
    "__version__",
]
