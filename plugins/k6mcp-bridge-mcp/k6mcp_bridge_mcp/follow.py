"""``--follow FILE``: the bridge's follow pipeline with the ``store`` plugin, on a thread.

It is the same code as ``k6mcp-bridge --follow FILE -p store``: every run of the file goes into
the store, and the server's tools read it there like any other writer's. Only the ``store``
plugin runs (never ``summary``: stdout is the MCP protocol); k6's console lines are not copied.
Signal handlers work on the main thread only, so the pipeline runs with a
:class:`~k6mcp_bridge.delivery.signals.Signals` that :meth:`Following.stop` drives: the server's
end is a first Ctrl-C for the pipeline (read what is there, finish the run: ``interrupted``
if k6 was still writing).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from k6mcp_bridge.errors import ExitStatus
from k6mcp_bridge.plugin import Plugin

log = logging.getLogger("k6mcp_bridge")

DEFAULT_IDLE_TIMEOUT = 10.0
"""Seconds without growth after which the followed run is finished (k6 writes its ``vus``
gauge every second while it runs, so a silent file means k6 has ended)."""


class Following:
    """Follows ``source`` into the store at ``store_path`` on a daemon thread."""

    def __init__(
        self,
        source: Path,
        store_path: Path | None,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        wait_pid: int | None = None,
        poll: bool = False,
        script: Path | None = None,
        thresholds: Sequence[str] = (),
        log_level: str = "INFO",
    ) -> None:
        """Raises ConfigError (bad threshold, script, store option) before anything starts."""
        from k6mcp_bridge.cli.settings import settings_from
        from k6mcp_bridge.delivery.runner import FollowOptions, aggregation_settings
        from k6mcp_bridge.delivery.signals import Signals
        from k6mcp_bridge.store.writer import StoreConfig, StorePlugin

        flags = {"passthrough": False, "script": script, "log_level": log_level}
        settings, _ = settings_from(None, flags, [], [])
        settings.plugins[:] = ["store"]
        settings.summary_export = None
        settings.thresholds.extend(thresholds)
        self.source = source
        self.plugins: list[Plugin] = [
            StorePlugin(StoreConfig(path=None if store_path is None else str(store_path)))
        ]
        self.settings = settings
        self.aggregation = aggregation_settings(settings, self.plugins)
        self.options = FollowOptions(poll=poll, idle_timeout=idle_timeout, wait_pid=wait_pid)
        self.signals = Signals()
        self.exit_status: ExitStatus | None = None
        self._thread = threading.Thread(target=self._run, name="k6mcp-mcp-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from k6mcp_bridge.delivery.runner import execute

        try:
            self.exit_status = execute(
                str(self.source),
                self.plugins,
                self.settings,
                self.options,
                self.aggregation,
                self.signals,
            )
        except BaseException as exc:  # never kill the server: say it, and let the tools go on
            log.error("following %s failed: %s: %s", self.source, type(exc).__name__, exc)
            self.exit_status = ExitStatus.PLUGIN_FAILED
        else:
            log.info(
                "following %s ended (exit status %d); still serving", self.source, self.exit_status
            )

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> str | None:
        """A note for a failing tool call: following stopped on an error."""
        ended_well = (ExitStatus.OK, ExitStatus.THRESHOLD_FAILED, ExitStatus.TERMINATED)
        if self.exit_status is None or self.exit_status in ended_well:
            return None
        code = int(self.exit_status)
        return f"following {self.source} stopped with exit status {code}: see the server's stderr"

    def stop(self, timeout: float = 10.0) -> None:
        """End following (the run in progress is finished) and wait for the thread."""
        if self._thread.is_alive():
            self.signals.stop()
            self._thread.join(timeout)
