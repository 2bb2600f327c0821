"""``summary``: k6's end-of-test summary, then what the bridge read, on stderr."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

from ..k6.summary_text import render
from ..messages import Message
from ..plugin import Plugin, RunInfo, RunResult


class SummaryPlugin(Plugin):
    name = "summary"
    description = "Prints k6's end-of-test summary and thresholds, then what the bridge read"

    def __init__(self, config: None = None) -> None:
        super().__init__(config)
        self._reset()

    def start(self, run_info: RunInfo) -> None:
        self._reset()  # per run: a followed file can have several

    def _reset(self) -> None:
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
        if result.metrics is not None and result.metrics.metrics:
            sys.stderr.write(render(result.metrics))
        print(self.report(result, per_metric=result.metrics is None), file=sys.stderr)

    def report(self, result: RunResult, *, per_metric: bool = True) -> str:
        stats = result.stats
        total = sum(self.points.values())
        lines = [
            f"k6mcp-bridge summary ({result.status}, {result.elapsed:.2f} s)",
            f"  lines read       {stats.lines}",
            f"  records          {self.metrics + total} ({self.metrics} metric, {total} point)",
            f"  console lines    {stats.console_lines}",
            f"  rejected lines   {stats.rejected}",
        ]
        if stats.rejoined:
            lines.append(f"  rejoined records {stats.rejoined} (split by k6's console output)")
        lines += [f"  input error      {error}" for error in stats.input_errors]
        if per_metric and self.points:
            width = max(len(name) for name in self.points)
            lines.append("  points per metric")
            lines += [f"    {name:<{width}}  {n}" for name, n in sorted(self.points.items())]
        return "\n".join(lines)
