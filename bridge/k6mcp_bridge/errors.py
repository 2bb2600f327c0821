"""The bridge's exceptions and its exit codes (the one place that lists them)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Process exit codes; the CLI is the only place that turns outcomes into these.

    When several apply, the most severe wins: 130/143, then 70, 99, 65, 2 (see the README)."""

    OK = 0
    USAGE = 2
    REJECTED_RECORDS = 65
    """Lines were rejected, the input broke off, or it held no k6 record at all."""
    PLUGIN_FAILED = 70
    """A plugin failed or hung, whatever ``plugin_errors`` says (that decides only whether the
    run goes on)."""
    INCOMPLETE = 75
    """``merge --nats``: not every instance sent its final state before ``--timeout`` (sysexits'
    EX_TEMPFAIL: try again later)."""
    THRESHOLD_FAILED = 99
    INTERRUPTED = 130
    TERMINATED = 143


class BridgeError(Exception):
    """Base class of every error the bridge raises on purpose."""

    exit_status = ExitStatus.USAGE


class ConfigError(BridgeError):
    """A bad configuration value, file, option or plugin selection."""


class SourceError(BridgeError):
    """The input cannot be opened (a usage error), or broke off while read (counted as such)."""


class TruncatedInput(SourceError):
    """Compressed input that ends before its end: truncated, or still being written."""


class StoreError(BridgeError):
    """The run store cannot be opened or read: not SQLite, corrupt, locked, of another schema."""


class PluginFailed(BridgeError):
    """A plugin raised while the policy is ``fail``."""

    exit_status = ExitStatus.PLUGIN_FAILED


class TooManyErrors(BridgeError):
    """``--max-errors`` was reached."""

    exit_status = ExitStatus.REJECTED_RECORDS
