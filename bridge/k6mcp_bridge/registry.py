"""Find plugins through entry points, load each one safely, and build the enabled ones."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ConfigError
from .messages import MESSAGE_TYPES
from .plugin import Plugin

GROUP = "k6mcp_bridge.plugins"
log = logging.getLogger(__name__)


@dataclass
class PluginEntry:
    """One installed plugin, loaded or not."""

    name: str
    target: str
    """The entry point's ``module:Class``."""
    distribution: str
    version: str
    cls: type[Plugin] | None = None
    error: str | None = None
    """Why it could not be loaded; ``None`` when it loaded."""

    @property
    def description(self) -> str:
        return self.cls.description if self.cls is not None else ""


@dataclass(frozen=True)
class Option:
    """A plugin option's value and where it was set (for error messages)."""

    value: str
    origin: str


def discover(
    load_only: frozenset[str] | None = None, wanted: Collection[str] | None = None
) -> dict[str, PluginEntry]:
    """Every plugin entry point, keyed by name; only those in ``load_only`` are imported, and
    of them only the ``wanted`` ones when given (a run imports just its enabled plugins)."""
    found: dict[str, PluginEntry] = {}
    for point in entry_points(group=GROUP):
        entry = _entry(point)
        if entry.name in found:
            log.warning(
                "plugin %r from %s is ignored: %s already registers that name",
                entry.name,
                entry.distribution,
                found[entry.name].distribution,
            )
            continue
        found[entry.name] = entry
        if load_only is not None and entry.name not in load_only:
            entry.error = "not loaded: not listed in K6MCP_BRIDGE_LOAD_PLUGINS"
            continue
        if wanted is None or entry.name in wanted:
            _load(point, entry)
    return found


def _entry(point: EntryPoint) -> PluginEntry:
    dist = point.dist
    return PluginEntry(
        name=point.name,
        target=point.value,
        distribution=dist.name if dist is not None else "?",
        version=dist.version if dist is not None else "?",
    )


def _load(point: EntryPoint, entry: PluginEntry) -> None:
    try:
        loaded = point.load()
    except Exception as exc:  # a broken plugin must never stop the others
        entry.error = f"cannot import {entry.target}: {type(exc).__name__}: {exc}"
        log.warning(
            "plugin %r (%s %s) failed to load: %s; uninstall it or leave it out of "
            "K6MCP_BRIDGE_LOAD_PLUGINS",
            entry.name,
            entry.distribution,
            entry.version,
            entry.error,
        )
        return
    if not (isinstance(loaded, type) and issubclass(loaded, Plugin)):
        entry.error = f"{entry.target} is not a k6mcp_bridge.Plugin subclass"
        log.warning("plugin %r (%s): %s", entry.name, entry.distribution, entry.error)
        return
    accepts = loaded.accepts
    if accepts is not None:
        unknown = set(accepts) - set(MESSAGE_TYPES) if isinstance(accepts, Collection) else None
        if unknown is None or unknown or isinstance(accepts, str):
            entry.error = (
                f"{entry.target}.accepts must be a set of message types "
                f"({', '.join(MESSAGE_TYPES)}), not {accepts!r}"
            )
            log.warning("plugin %r (%s): %s", entry.name, entry.distribution, entry.error)
            return
    entry.cls = loaded


def build(entry: PluginEntry, options: Mapping[str, Option]) -> Plugin:
    """An instance of ``entry``'s class with its ``Config`` validated from ``options``."""
    if entry.cls is None:
        raise ConfigError(f"plugin {entry.name!r} is enabled but {entry.error}")
    config_model = entry.cls.Config
    if config_model is None:
        if options:
            key, option = next(iter(options.items()))
            raise ConfigError(
                f"plugin {entry.name!r} takes no options, but {key!r} is set ({option.origin})"
            )
        plugin = entry.cls()
    else:
        plugin = entry.cls(_validate_options(entry, config_model, options))
    plugin.origin = f"{entry.distribution} {entry.version}"
    return plugin


def _validate_options(
    entry: PluginEntry, config_model: type[BaseModel], options: Mapping[str, Option]
) -> BaseModel:
    strict: type[BaseModel] = type(
        "Config", (config_model,), {"model_config": ConfigDict(extra="forbid")}
    )
    try:
        return strict.model_validate({k: o.value for k, o in options.items()})
    except ValidationError as exc:
        raise ConfigError(_option_errors(entry.name, exc, options)) from None


def _option_errors(plugin: str, exc: ValidationError, options: Mapping[str, Option]) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        key = str(error["loc"][0]) if error["loc"] else "?"
        origin = options[key].origin if key in options else "default"
        if error["type"] == "extra_forbidden":
            lines.append(f"plugin {plugin!r} has no option {key!r} ({origin})")
        else:
            lines.append(f"plugin {plugin!r} option {key!r} ({origin}): {error['msg']}")
    return "\n".join(lines)
