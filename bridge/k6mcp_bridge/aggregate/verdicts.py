"""Threshold verdicts as ``threshold`` messages: one per change during the run, all at the end,
and the first failed ``abortOnFail`` threshold reported once (to stop the test)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..messages import AnyMessage, ThresholdMessage, ThresholdVerdict
from .aggregator import ThresholdResult

log = logging.getLogger("k6mcp_bridge")


class Verdicts:
    """The verdicts sent so far; ``on_abort`` is called once, for the first failed threshold
    with ``abortOnFail`` (``consequence`` says what follows, for the log)."""

    def __init__(
        self, on_abort: Callable[[ThresholdResult], None] | None, consequence: str
    ) -> None:
        self._on_abort = on_abort
        self._consequence = consequence
        self.aborted = False
        self._sent: dict[tuple[str, str], bool] = {}

    def messages(self, results: Sequence[ThresholdResult], *, final: bool) -> list[AnyMessage]:
        """A ``threshold`` message per changed verdict (every verdict when ``final``)."""
        messages: list[AnyMessage] = []
        for result in results:
            key = (result.metric, result.threshold.source)
            changed = result.evaluated and self._sent.get(key) != result.ok
            if result.evaluated:
                self._sent[key] = result.ok
            if changed or final:
                messages.append(verdict_message(result, final))
            if result.abort and not self.aborted:
                self._abort(result)
        return messages

    def _abort(self, result: ThresholdResult) -> None:
        self.aborted = True
        log.error(
            "THRESHOLD CROSSED WITH abortOnFail: %s on %s (observed %s): %s",
            result.threshold.source,
            result.metric,
            result.observed,
            self._consequence,
        )
        if self._on_abort is not None:
            self._on_abort(result)


def verdict_message(result: ThresholdResult, final: bool) -> ThresholdMessage:
    return ThresholdMessage(
        data=ThresholdVerdict(
            metric=result.metric,
            threshold=result.threshold.source,
            ok=result.ok,
            observed=result.observed,
            abort_on_fail=result.threshold.abort_on_fail,
            final=final,
            window=result.window,
        )
    )
