"""An example k6mcp-bridge plugin: counts points per metric, prints progress and totals."""

from __future__ import annotations

import sys
from collections import Counter

from pydantic import BaseModel, Field

from k6mcp_bridge import Message, Plugin, RunInfo, RunResult


class ExampleConfig(BaseModel):
    every: int = Field(1000, ge=1)
    """Print a progress line every this many points."""
    metric: str | None = None
    """Count only this metric (all metrics when unset)."""


class ExamplePlugin(Plugin):
    name = "example"
    description = "Counts points per metric; prints a line every N points and the totals"
    Config = ExampleConfig
    config: ExampleConfig

    def start(self, run_info: RunInfo) -> None:
        self.counts: Counter[str] = Counter()
        print(f"example: reading {run_info.source}", file=sys.stderr)

    def process_data(self, message: Message) -> None:
        if message.type != "point":
            return
        point = message.data
        if self.config.metric not in (None, point.metric):
            return
        self.counts[point.metric] += 1
        total = sum(self.counts.values())
        if total % self.config.every == 0:
            print(f"example: {total} points so far", file=sys.stderr)

    def finish(self, result: RunResult) -> None:
        for metric, count in sorted(self.counts.items()):
            print(f"example: {metric} {count}", file=sys.stderr)
