"""The bridge's signal handling: the first SIGINT or SIGTERM asks for a graceful stop, the second
stops at once (see :mod:`.runner`)."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from ..errors import ExitStatus

log = logging.getLogger("k6mcp_bridge")


class Signals:
    """The first SIGINT/SIGTERM calls ``graceful`` (if any); the next one stops at once.

    Passed to :func:`execute`, it installs no handler (signal handlers work on the main thread
    only): a caller running the bridge on another thread calls :meth:`stop` instead."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.graceful: Callable[[int], None] | None = None
        self.forward: Callable[[int], None] | None = None
        """Called with every signal first (``exec``: pass it on to the k6 the bridge started)."""
        self.expected = False
        """A first signal is how the run ends, not an interruption (``--listen``)."""

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.forward is not None:
            self.forward(signum)
        if self.received is None and self.graceful is not None:
            self.received = signum
            doing = (
                "taking no more requests, delivering those accepted"
                if self.expected
                else "interrupted: finishing what is being read"
            )
            name = signal.Signals(signum).name
            log.warning("%s: %s (send it again to stop now)", name, doing)
            self.graceful(signum)
            return
        self.received = self.received or signum
        raise KeyboardInterrupt

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """From any thread: what a first signal does (read what is there, finish every run)."""
        if self.received is None and self.graceful is not None:
            self.received = signum
            self.graceful(signum)

    @property
    def interrupted(self) -> bool:
        """A signal stopped the run before its end."""
        return self.received is not None and not self.expected

    @property
    def exit_status(self) -> ExitStatus:
        return ExitStatus.TERMINATED if self.received == signal.SIGTERM else ExitStatus.INTERRUPTED


@contextmanager
def signals_installed(given: Signals | None) -> Iterator[Signals]:
    if given is not None:
        yield given
        return
    handler = Signals()
    previous = {sig: signal.signal(sig, handler.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
