"""``summary``: a short end-of-run report on stderr."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

from ..messages import Message
from ..plugin import Plugin, RunResult


class SummaryPlugin(Plugin):
    name = "summary"
    description = (
        "Prints a short report at the end: records, points per metric, console and rejected lines"
    )

    def __init__(self, config: None = None) -> None:
        super().__init__(config)
        self.points: Counter[str] = Counter()
        self.metrics = 0

    def process_batch(self, messages: Sequence[Message]) -> None:
        points = self.points
        for message in messages:
            if message.type == "point":
                points[message.data.metric] += 1
            elif message.type == "metric":
                self.metrics += 1

    def finish(self, result: RunResult) -> None:
        print(self.report(result), file=sys.stderr)

    def report(self, result: RunResult) -> str:
        stats = result.stats
        total = sum(self.points.values())
        width = max((len(name) for name in self.points), default=0)
        lines = [
            f"k6mcp-bridge summary ({result.status}, {result.elapsed:.2f} s)",
            f"  lines read       {stats.lines}",
            f"  records          {stats.messages} ({self.metrics} metric, {total} point)",
            f"  console lines    {stats.console_lines}",
            f"  rejected lines   {stats.rejected}",
        ]
        if stats.rejoined:
            lines.append(f"  rejoined records {stats.rejoined} (split by k6's console output)")
        lines += [f"  input error      {error}" for error in stats.input_errors]
        if self.points:
            lines.append("  points per metric")
            lines += [f"    {name:<{width}}  {n}" for name, n in sorted(self.points.items())]
        return "\n".join(lines)
