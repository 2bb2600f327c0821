"""Run the bridge on one input, or on every run of a followed file, and decide the exit code.

Signals (:mod:`.signals`): the first SIGINT or SIGTERM asks for a graceful stop where one exists
(a pipe keeps being read until the writer — k6, which got the same Ctrl-C — closes it; a followed
file is read to its end once more), the second stops at once. Every plugin's ``finish`` runs
either way. Under ``exec`` (:func:`execute_k6`) every signal is passed on to the k6 the bridge
started.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..aggregate.aggregator import ThresholdResult
from ..aggregate.stage import Aggregation, AggregationSettings, failed_thresholds
from ..aggregate.state import saved_state
from ..config import Settings
from ..errors import BridgeError, ExitStatus, PluginFailed, TooManyErrors
from ..input.checkpoint import Checkpoint
from ..input.source import ByteStream, open_source
from ..k6.script_options import ScriptOptions, script_options
from ..k6.sinks import parse_trend_stats
from ..k6.summary_export import write_export
from ..k6.thresholds import parse_cli_threshold
from ..plugin import Plugin, PluginReport, RunResult
from ..receive.feed import Receiver
from .k6_process import K6Command, K6Process, exit_status
from .pipeline import Pipeline, tune_gc
from .signals import Signals, signals_installed

if TYPE_CHECKING:  # imported where a file is followed: watchdog costs ~9 ms at start-up
    from ..input.follower import Follower

log = logging.getLogger("k6mcp_bridge")


@dataclass(frozen=True)
class FollowOptions:
    from_end: bool = False
    poll: bool = False
    idle_timeout: float | None = None
    wait_pid: int | None = None
    checkpoint: Path | None = None


def aggregation_settings(
    settings: Settings, plugins: Sequence[Plugin]
) -> AggregationSettings | None:
    """What to aggregate; ``None`` when nothing would read it (no plugin, export or threshold).
    Rollups run when a plugin accepts ``window`` messages or a threshold is windowed.

    The script's options (``k6 inspect``, run once) give thresholds, and the trend stats and
    time unit unless the settings give them. Raises ConfigError (naming the expression) for a
    threshold k6 would reject."""
    resolved = resolve_aggregation(settings, plugins)
    if not (plugins or resolved.thresholds or settings.summary_export or settings.state_export):
        return None
    return resolved


def resolve_aggregation(settings: Settings, plugins: Sequence[Plugin]) -> AggregationSettings:
    """The aggregation's settings (see :func:`aggregation_settings`), needed or not."""
    script = script_options(settings.script) if settings.script is not None else ScriptOptions()
    thresholds = [parse_cli_threshold(text) for text in settings.thresholds]
    thresholds += script.thresholds
    given = (settings.summary_trend_stats, script.trend_stats)
    default = AggregationSettings.trend_stats  # k6's
    trend_stats = next((stats for stats in given if stats is not None), default)
    parse_trend_stats(trend_stats)  # a bad list is a start-up error
    return AggregationSettings(
        trend_stats=trend_stats,
        time_unit=settings.summary_time_unit or script.time_unit,
        bounded=settings.bounded_memory,
        snapshot_interval=settings.snapshot_interval,
        test_duration=settings.test_duration,
        thresholds=tuple(thresholds),
        windows=any(p.accepts is None or "window" in p.accepts for p in plugins),
        max_series=settings.max_series,
        state_export=settings.state_export,
        state_instance=settings.state_instance,
    )


def execute(
    source: str | Receiver | None,
    plugins: list[Plugin],
    settings: Settings,
    follow: FollowOptions | None = None,
    aggregation: AggregationSettings | None = None,
    signals: Signals | None = None,
) -> ExitStatus:
    """Run the bridge on a file, stdin (``None``) or an HTTP receiver; return the exit status.
    With ``signals``, no signal handler is installed (for a bridge on another thread):
    ``signals.stop()`` ends it as a first Ctrl-C would."""
    with ExitStack() as stack:
        runner = _runner(plugins, settings, aggregation, stack, signals)
        if runner is None:
            return ExitStatus.USAGE
        tune_gc()
        try:
            if isinstance(source, Receiver):
                stack.callback(source.close)
                results = runner.listen(source)
            elif follow is None or source is None:
                results = runner.once(source, stack)
            else:
                results = runner.follow(Path(source), follow)
        except (TooManyErrors, PluginFailed) as exc:  # a run stopped: the others still count
            log.error("%s", exc)
            return runner.exit_status(runner.results, stopped=exc.exit_status)
        except BridgeError as exc:
            log.error("%s", exc)
            return exc.exit_status
        except KeyboardInterrupt:  # a second signal, or one before any run started
            return runner.signals.exit_status
    return runner.exit_status(results)


def execute_k6(
    command: K6Command,
    plugins: list[Plugin],
    settings: Settings,
    aggregation: AggregationSettings | None = None,
) -> int:
    """``exec``: start k6 on a private pipe (or follow its ``--out json=FILE``), forward
    signals to it, stop it on a failed ``abortOnFail`` threshold; the exit status is
    :func:`~.k6_process.exit_status` of the bridge's and k6's."""
    with ExitStack() as stack:
        runner = _runner(plugins, settings, aggregation, stack)
        if runner is None:
            return ExitStatus.USAGE
        tune_gc()
        try:
            k6 = stack.enter_context(K6Process(command))
        except BridgeError as exc:
            log.error("%s", exc)
            return exc.exit_status
        runner.signals.forward = k6.signal
        runner.abort = lambda result: k6.abort()
        status = ExitStatus.OK
        try:
            if command.out_file is None:
                results = runner.read(k6.source(), writer_signalled=True)
            else:
                following = FollowOptions(wait_pid=k6.pid)
                results = runner.follow(command.out_file, following, writer_signalled=True)
        except (TooManyErrors, PluginFailed) as exc:
            log.error("%s", exc)
            status = runner.exit_status(runner.results, stopped=exc.exit_status, records=False)
        except BridgeError as exc:
            log.error("%s", exc)
            status = exc.exit_status
        except KeyboardInterrupt:  # a second signal
            status = runner.signals.exit_status
        else:
            status = runner.exit_status(results, records=False)
        try:
            stack.close()  # k6 has ended (or is stopped): its exit code is known
        except KeyboardInterrupt:  # a signal while waiting for k6 to stop
            k6.kill()
            status = runner.signals.exit_status
        code = k6.exit_code()
        if not any(r.stats.messages for r in runner.results):
            if code:
                log.error(
                    "k6 exited with status %d before writing any sample (its message is above)",
                    code,
                )
            elif status == ExitStatus.OK:
                log.error("k6 wrote no sample")
                status = ExitStatus.REJECTED_RECORDS
        elif code and not (k6.aborted or k6.signalled):
            log.error("k6 exited with status %d", code)
        return exit_status(status, code, k6.aborted)


def _runner(
    plugins: list[Plugin],
    settings: Settings,
    aggregation: AggregationSettings | None,
    stack: ExitStack,
    signals: Signals | None = None,
) -> _Runner | None:
    """A runner with its dead-letter file open and the signal handlers set, unless ``signals``
    is given (``None``: the dead-letter file cannot be written, which is said)."""
    dead: BinaryIO | None = None
    if settings.dead_letter is not None:
        try:
            dead = stack.enter_context(settings.dead_letter.open("wb"))
        except OSError as exc:
            log.error("cannot write dead-letter file %s: %s", settings.dead_letter, exc)
            return None
    return _Runner(
        plugins, settings, aggregation, dead, stack.enter_context(signals_installed(signals))
    )


class _Runner:
    """Makes one pipeline per run, with the same plugins, settings and outputs."""

    def __init__(
        self,
        plugins: list[Plugin],
        settings: Settings,
        aggregation: AggregationSettings | None,
        dead: BinaryIO | None,
        signals: Signals,
    ) -> None:
        self.plugins = plugins
        self.settings = settings
        self.aggregation = aggregation
        self.dead = dead
        self.console = sys.stderr.buffer if settings.passthrough else None
        self.signals = signals
        self.abort: Callable[[ThresholdResult], None] | None = None
        self.export_failed = False
        self.stages: list[Aggregation] = []
        """The aggregation of every run (one whose state export failed exits 2)."""
        self.reports: list[PluginReport] = []
        """Every plugin's report of every run so far (a hung or failed one exits 70)."""
        self.results: list[RunResult] = []
        """Every run that ended so far."""

    def pipeline(
        self,
        on_commit: Callable[[int, bytes | None], None] | None = None,
        saved: bytes | None = None,
    ) -> Pipeline:
        """A pipeline; ``saved``: the run state its checkpoint holds (a resumed run)."""
        stage = None
        if self.aggregation is not None:
            restored = saved_state(saved) if saved is not None else None
            stage = Aggregation(self.aggregation, self.abort, restored)
            self.stages.append(stage)
        progress = self.settings.progress
        return Pipeline(
            self.plugins, self.settings, self.console, self.dead, on_commit, stage, progress
        )

    def ran(self, pipeline: Pipeline, source: ByteStream | Receiver) -> RunResult:
        """Run ``pipeline``; a plugin that hung is left out of the runs after this one."""
        try:
            result = self.finished(pipeline.run(source))
            self.results.append(result)
            return result
        finally:
            self.reports.extend(pipeline.reports)
            hung = {r.name for r in pipeline.reports if r.state == "hung"}
            self.plugins = [p for p in self.plugins if p.name not in hung]

    def once(self, source: str | None, stack: ExitStack) -> list[RunResult]:
        opened = open_source(source)
        stack.callback(opened.close)
        return self.read(opened)

    def read(self, opened: ByteStream, writer_signalled: bool = False) -> list[RunResult]:
        """One run of ``opened``; ``writer_signalled``: the writer gets every signal too (the
        k6 that ``exec`` started), so any first signal reads on until it closes."""
        pipeline = self.pipeline()
        pipeline.say_if_empty = not writer_signalled

        def graceful(signum: int) -> None:
            if opened.live and (signum == signal.SIGINT or writer_signalled):
                pipeline.interrupted = True  # k6 got the same Ctrl-C: read until it closes
            else:
                pipeline.stop_requested = True  # deliver what was read, then stop

        self.signals.graceful = graceful
        return [self.ran(pipeline, opened)]

    def listen(self, receiver: Receiver) -> list[RunResult]:
        """One run of what clients POST; a first signal stops the receiver (what it accepted
        is still delivered) and is the run's normal end."""
        pipeline = self.pipeline()
        self.signals.graceful = lambda signum: receiver.stop()
        self.signals.expected = True
        return [self.ran(pipeline, receiver)]

    def follow(
        self, path: Path, options: FollowOptions, writer_signalled: bool = False
    ) -> list[RunResult]:
        """One pipeline run per run of the followed file (``writer_signalled``: see
        :meth:`read`)."""
        follower = _follower(path, options)
        current: list[Pipeline] = []

        def graceful(signum: int) -> None:
            if not writer_signalled:  # else k6 ends, then --wait-pid stops the follower
                follower.stop("interrupted")
            for pipeline in current:
                pipeline.interrupted = True

        self.signals.graceful = graceful
        if self.settings.abort_on_fail and options.wait_pid is not None:
            self.abort = lambda result: _stop_k6(options.wait_pid)
        if options.checkpoint is not None and self.aggregation is not None:
            self.aggregation = replace(self.aggregation, keep_state=True)  # saved with it
        results = []
        for run in follower.runs():
            pipeline = self.pipeline(follower.committer(run), run.start.saved_state)
            pipeline.say_if_empty = not writer_signalled
            current[:] = [pipeline]
            try:
                results.append(self.ran(pipeline, run))
            finally:
                run.close()
                follower.flush_checkpoint()
        return results

    def finished(self, result: RunResult) -> RunResult:
        """Write the summary export of a finished run, if asked."""
        path = self.settings.summary_export
        if path is not None and result.metrics is not None:
            try:
                write_export(result.metrics, path)
            except OSError as exc:
                log.error("cannot write the summary export %s: %s", path, exc)
                self.export_failed = True
        return result

    def exit_status(
        self, results: list[RunResult], stopped: ExitStatus | None = None, records: bool = True
    ) -> ExitStatus:
        """The most severe outcome, in the README's order: 130/143, 70, 99, 65, 2; ``stopped``
        is the status of a run that stopped on an error (``--max-errors``, the fail policy);
        ``records=False``: an input without any record is the caller's to judge (``exec``)."""
        if self.signals.interrupted or any(r.status == "interrupted" for r in results):
            return self.signals.exit_status
        if any(r.state != "ok" for r in self.reports):  # each was reported when it happened
            return ExitStatus.PLUGIN_FAILED
        if stopped is not None:
            return stopped
        failed = [
            name for r in results if r.metrics is not None for name in failed_thresholds(r.metrics)
        ]
        if failed:
            log.error("thresholds crossed: %s", ", ".join(failed))
            return ExitStatus.THRESHOLD_FAILED
        if any(r.stats.rejected or r.stats.input_errors for r in results):
            return ExitStatus.REJECTED_RECORDS
        if records and not any(r.stats.messages for r in results):
            return ExitStatus.REJECTED_RECORDS  # no k6 record at all: the pipeline said so
        unwritten = self.export_failed or any(stage.state_failed for stage in self.stages)
        return ExitStatus.USAGE if unwritten else ExitStatus.OK


def _stop_k6(pid: int | None) -> None:
    """What k6 does itself on an abortOnFail threshold: stop the test (SIGINT)."""
    if pid is None:
        return
    log.error("--abort-on-fail: sending SIGINT to process %d", pid)
    try:
        os.kill(pid, signal.SIGINT)
    except OSError as exc:
        log.error("cannot signal process %d: %s", pid, exc)


def _follower(path: Path, follow: FollowOptions) -> Follower:
    from ..input.follower import Follower

    checkpoint = None
    if follow.checkpoint is not None:  # written at every delivery: a restart repeats one batch
        checkpoint = Checkpoint(follow.checkpoint, interval=0.0)
    return Follower(
        path,
        poll=follow.poll,
        from_end=follow.from_end,
        idle_timeout=follow.idle_timeout,
        wait_pid=follow.wait_pid,
        checkpoint=checkpoint,
    )
