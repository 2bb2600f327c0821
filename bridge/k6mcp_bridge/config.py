"""Settings from one ``.ini`` file, then ``K6MCP_BRIDGE_*`` variables, then flags.

Later layers win. Every key is validated; an error names where the bad value came
from (file and section, variable, or flag). The bridge runs with no file at all.
"""

from __future__ import annotations

import configparser
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .environment import ENV_CONFIG, ENV_LOAD_PLUGINS, ENV_PREFIX, ENV_STORE
from .errors import ConfigError
from .messages import TIME_UNITS, MetricType, TimeUnit
from .registry import Option

log = logging.getLogger("k6mcp_bridge")
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseModel):
    """Every setting of a run, with its default."""

    model_config = ConfigDict(extra="forbid")

    passthrough: bool = True
    """Copy k6's console lines (banner, progress, summary) to stderr."""
    dead_letter: Path | None = None
    """Write every rejected line here, byte for byte."""
    max_errors: int | None = Field(None, ge=1)
    """Stop after this many rejected lines."""
    plugin_errors: Literal["disable", "fail"] = "disable"
    """What a plugin's failure does to the run: go on without it, or stop (exit 70 either way)."""
    plugin_timeout: float = Field(30.0, gt=0)
    """Seconds one call into a plugin may take before the plugin is declared hung."""
    batch_size: int = Field(1000, ge=1)
    """Deliver a batch once it holds this many messages..."""
    batch_wait: float = Field(0.1, gt=0)
    """...or once its first message has waited this many seconds."""
    format: Literal["auto", "json", "csv"] = "auto"
    """The input format; ``auto`` tells k6's CSV header from JSON lines."""
    metric_types: dict[str, MetricType] = Field(default_factory=dict)
    """Types of custom metrics in CSV input (CSV carries none), e.g. ``{"my_trend": "trend"}``."""
    snapshot_interval: float = Field(10.0, ge=0)
    """Seconds of stream time between two ``metrics`` messages; 0: only the final one."""
    summary_trend_stats: str | None = None
    """k6's ``--summary-trend-stats``: which trend values to compute (``count``, ``p(N)``...);
    default: the script's ``summaryTrendStats``, else k6's ``avg,min,med,max,p(90),p(95)``."""
    summary_time_unit: TimeUnit | None = None
    """k6's ``--summary-time-unit`` (``s``, ``ms`` or ``us``) for the text summary's times;
    default: the script's ``summaryTimeUnit``, else k6's automatic units."""
    max_series: int = Field(1000, ge=1)
    """Rollups: tag sets kept per metric; further ones fold into one ``(other)`` series."""
    bounded_memory: bool = False
    """Trends in a quantile sketch (1% relative error, flat memory) instead of every value."""
    test_duration: float | None = Field(None, gt=0)
    """Seconds counter rates divide by; default: the span of the sample times."""
    thresholds: list[str] = Field(default_factory=list)
    """``METRIC:EXPRESSION`` thresholds, e.g. ``http_req_duration:p(99)<300``."""
    script: Path | None = None
    """A k6 script whose thresholds (submetric ones too), summary trend stats and time unit
    are read with ``k6 inspect``."""
    state_export: Path | None = None
    """Write the run's mergeable state here at every snapshot and at the end (for ``merge``)."""
    state_instance: str = ""
    """This runner's name in the state (default: the host name and the state file's path)."""
    summary_export: Path | None = None
    """Write k6's ``--summary-export`` JSON here at the end."""
    listen: str | None = None
    """``HOST:PORT`` (host 127.0.0.1 if left out; port 0: any free one): read what clients POST
    to ``http://HOST:PORT/mcp`` instead of a file or stdin."""
    listen_token: str | None = Field(None, min_length=1, repr=False)
    """The token every request to ``listen`` must carry (``Authorization: Bearer TOKEN``);
    required on an address other than loopback."""
    listen_max_body: int = Field(16 << 20, ge=1)
    """The largest request body ``listen`` reads, in bytes (16 MiB); a larger one gets 413."""
    abort_on_fail: bool = False
    """With ``--wait-pid``: send SIGINT to that process when an abortOnFail threshold fails."""
    progress: bool = False
    """Draw progress on stderr (``--progress``; the CLI turns it on by itself when stderr is a
    terminal, but under -q and for ``exec``)."""
    log_level: LogLevel = "INFO"
    plugins: list[str] = Field(default_factory=lambda: ["summary"])
    """The enabled plugins."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("summary_time_unit", mode="before")
    @classmethod
    def _time_unit(cls, value: Any) -> Any:
        if value == "":  # as k6's --summary-time-unit '': unset
            return None
        if isinstance(value, str) and value not in TIME_UNITS:  # k6's words
            raise PydanticCustomError(
                "time_unit",
                "invalid summary time unit '{unit}', use 's', 'ms' or 'us'",
                {"unit": value},
            )
        return value

    @field_validator("thresholds", mode="before")
    @classmethod
    def _lines(cls, value: Any) -> Any:
        if isinstance(value, str):  # one per line (multi-line .ini value) or ';'-separated
            return [part.strip() for part in value.replace(";", "\n").splitlines() if part.strip()]
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [name.strip() for name in value.split(",")]
        if isinstance(value, list):
            return list(dict.fromkeys(name for name in value if name))  # once each, in order
        return value


# (section, key) in the file → setting name
_OWN_SECTION = {("logging", "level"): "log_level", ("plugins", "enabled"): "plugins"}
_MAPPINGS = ("metric_types",)
_FILE_KEYS = {
    ("bridge", name): name
    for name in Settings.model_fields
    if name not in _OWN_SECTION.values() and name not in _MAPPINGS
} | _OWN_SECTION
_RENAMED = {"thresholds_from": "script"}
"""Old names of settings, still read from the file and the environment, with a warning."""


def _current(name: str, origin: str) -> str:
    new = _RENAMED.get(name)
    if new is None:
        return name
    log.warning("%s: %r is deprecated, it is now %r", origin, name, new)
    return new


@dataclass
class Layered:
    """Raw values with their origins, before validation."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    plugin_options: dict[str, dict[str, Option]] = field(default_factory=dict)

    def set(self, name: str, value: Any, origin: str) -> None:
        self.values[name] = value
        self.origins[name] = origin

    def set_entry(self, name: str, key: str, value: str, origin: str) -> None:
        """One key of a mapping setting (``metric_types``)."""
        self.values.setdefault(name, {})[key] = value
        self.origins[f"{name}.{key}"] = origin

    def set_option(self, plugin: str, key: str, value: str, origin: str) -> None:
        self.plugin_options.setdefault(plugin, {})[key] = Option(value, origin)


def read_file(path: Path, layers: Layered) -> None:
    """Add the settings of one ``.ini`` file."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # metric names keep case
    try:
        with path.open(encoding="utf-8") as stream:
            parser.read_file(stream)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not a valid .ini file: {exc}") from exc
    if parser.defaults():
        raise ConfigError(f"{path}: unknown section [{parser.default_section}]")
    for section in parser.sections():
        if section.startswith("plugin."):
            plugin = section.removeprefix("plugin.")
            for key, value in parser.items(section):
                layers.set_option(plugin, key, value, f"{path} [{section}] {key}")
            continue
        if section == "metric_types":
            for key, value in parser.items(section):
                layers.set_entry("metric_types", key, value, f"{path} [{section}] {key}")
            continue
        if section not in {s for s, _ in _FILE_KEYS}:
            raise ConfigError(
                f"{path}: unknown section [{section}] "
                "(known: [bridge], [logging], [plugins], [metric_types], [plugin.NAME])"
            )
        for key, value in parser.items(section):
            origin = f"{path} [{section}] {key}"
            name = _FILE_KEYS.get((section, _current(key, origin) if section == "bridge" else key))
            if name is None:
                known = ", ".join(k for s, k in _FILE_KEYS if s == section)
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}] (known: {known})")
            layers.set(name, value, origin)


def read_env(env: Mapping[str, str], layers: Layered) -> None:
    """Add ``K6MCP_BRIDGE_<SETTING>`` variables."""
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or var in (ENV_CONFIG, ENV_LOAD_PLUGINS, ENV_STORE):
            continue
        name = _current(var.removeprefix(ENV_PREFIX).lower(), f"environment variable {var}")
        if name not in Settings.model_fields:
            raise ConfigError(f"unknown environment variable {var}")
        if name in _MAPPINGS:  # NAME=VALUE,NAME=VALUE
            for item in filter(None, (part.strip() for part in value.split(","))):
                key, _, item_value = item.partition("=")
                layers.set_entry(
                    name, key.strip(), item_value.strip(), f"environment variable {var}"
                )
            continue
        layers.set(name, value, f"environment variable {var}")


def validate(layers: Layered) -> Settings:
    """The validated settings; an error names each bad value's origin."""
    try:
        return Settings.model_validate(layers.values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = [str(part) for part in error["loc"]]
            name = ".".join(loc[:2]) if loc[0] in _MAPPINGS else loc[0]
            origin = layers.origins.get(name, "?")
            problems.append(f"bad value for {name} ({origin}): {error['msg']}")
        raise ConfigError("\n".join(problems)) from None


def load_only(env: Mapping[str, str]) -> frozenset[str] | None:
    """The plugins ``K6MCP_BRIDGE_LOAD_PLUGINS`` allows to load (``None``: all)."""
    if ENV_LOAD_PLUGINS not in env:
        return None
    return frozenset(n.strip() for n in env[ENV_LOAD_PLUGINS].split(",") if n.strip())


def config_path(flag: Path | None, env: Mapping[str, str]) -> Path | None:
    if flag is not None:
        return flag
    value = env.get(ENV_CONFIG)
    return Path(value) if value else None
