"""``summary``: k6's end-of-test summary, then what the bridge read, on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..k6.summary_text import render
from ..messages import Message
from ..plugin import Plugin, RunInfo, RunResult


class SummaryPlugin(Plugin):
    name = "summary"
    description = "Prints k6's end-of-test summary and thresholds, then what the bridge read"
    accepts = frozenset({"metric"})
    """Only metric definitions: the numbers come with ``finish``, so points need not be built."""

    def __init__(self, config: None = None) -> None:
        super().__init__(config)
        self._reset()

    def start(self, run_info: RunInfo) -> None:
        self._reset(run_info.source)  # per run: a followed file can have several

    def _reset(self, source: str = "") -> None:
        self.metrics = 0
        # --listen: the source is the receiver's URL, and what it counts are request items
        self.unit = "items" if source.startswith(("http://", "https://")) else "lines"

    def process_batch(self, messages: Sequence[Message]) -> None:
        self.metrics += len(messages)

    def finish(self, result: RunResult) -> None:
        if result.metrics is not None and result.metrics.metrics:
            sys.stderr.write(render(result.metrics))
        print(self.report(result), file=sys.stderr)

    def report(self, result: RunResult) -> str:
        stats = result.stats
        total = stats.messages - self.metrics
        lines = [
            f"k6mcp-bridge summary ({result.status}, {result.elapsed:.2f} s)",
            f"  {self.unit} read       {stats.lines}",
            f"  records          {self.metrics + total} ({self.metrics} metric, {total} point)",
        ]
        if self.unit == "lines":
            lines.append(f"  console lines    {stats.console_lines}")
        lines.append(f"  rejected {self.unit:<8}{stats.rejected}")
        if stats.rejoined:
            lines.append(f"  rejoined records {stats.rejoined} (split by k6's console output)")
        lines += [f"  input error      {error}" for error in stats.input_errors]
        width = max((len(report.name) for report in result.plugins), default=0)
        lines += [
            f"  plugin {r.name:<{width}}  {r.state:<6} {r.received:>11,} messages "
            f"{r.seconds:8.2f} s"
            for r in result.plugins
        ]
        return "\n".join(lines)
